/*-------------------------------------------------------------------------
 *
 * crypto.h
 *	  pg_kms cryptographic core: AES-256-GCM with reusable contexts, HKDF,
 *	  HMAC, the ciphertext blob layout, the canonical encryption-context
 *	  encoding and master-key wrapping.
 *
 * This part is plain C over OpenSSL 3 EVP: it includes no PostgreSQL
 * header, allocates with malloc only inside kms_aead_new(), and never
 * reports errors itself (every function returns a status), so the KAT test
 * and the fuzz driver link it without a server.  It holds no global state
 * except cipher/KDF objects fetched once; it is therefore safe in any
 * process, and there is nothing to lock.
 *
 * The byte layouts below are normative; docs/ciphertext-format.md repeats
 * them for independent implementations and test/interop checks them.
 *
 * IDENTIFICATION
 *	  src/crypto/crypto.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_CRYPTO_H
#define PG_KMS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Ciphertext blob, format 1 (all integers big-endian):
 *
 *	offset	size	field
 *	0		1		format byte, KMS_FORMAT_V1 (0x01)
 *	1		16		key id (the KMS key's UUID, 16 raw bytes)
 *	17		4		key version (uint32; 1 is the key's first material)
 *	21		12		derivation salt D
 *	33		12		GCM nonce N
 *	45		n		AES-256-GCM ciphertext (n = plaintext length, may be 0)
 *	45+n	16		GCM tag
 *
 * Data key:	K_D = HKDF-SHA256(IKM = version material (32 bytes),
 *							  salt = D, info = "pg_kms v1 data key", L = 32)
 * AAD:			blob[0..45) || canonical encryption context (below)
 */
#define KMS_FORMAT_V1		0x01
#define KMS_KEY_ID_LEN		16
#define KMS_SALT_LEN		12
#define KMS_NONCE_LEN		12
#define KMS_TAG_LEN			16
#define KMS_HEADER_LEN		45
#define KMS_BLOB_OVERHEAD	(KMS_HEADER_LEN + KMS_TAG_LEN)	/* 61 */
#define KMS_AES_KEY_LEN		32
#define KMS_HKDF_INFO		"pg_kms v1 data key"

/* Largest symmetric material we hold (HMAC_512 keys are 64 bytes). */
#define KMS_MAX_MATERIAL_LEN 64

typedef struct KmsBlobHeader
{
	uint8_t		format;
	uint8_t		key_id[KMS_KEY_ID_LEN];
	uint32_t	version;
	const uint8_t *salt;		/* points into the blob */
	const uint8_t *nonce;		/* points into the blob */
	const uint8_t *ciphertext;	/* points into the blob */
	size_t		ciphertext_len;
	const uint8_t *tag;			/* points into the blob */
} KmsBlobHeader;

/*
 * Parse a blob.  Returns 0 and fills *hdr when the length and the format
 * byte are plausible (len >= KMS_BLOB_OVERHEAD, format == 1, version != 0),
 * -1 otherwise.  Never reads outside blob[0..len).  Authenticity is only
 * established by a later successful kms_aead_decrypt().
 */
extern int	kms_blob_parse(const uint8_t *blob, size_t len, KmsBlobHeader *hdr);

/* Write the 45-byte header to out. */
extern void kms_blob_write_header(uint8_t *out, const uint8_t *key_id,
								  uint32_t version, const uint8_t *salt,
								  const uint8_t *nonce);

/*
 * Canonical encryption context (the ESDK AAD encoding):
 *	uint16 count, then for each pair sorted by key bytes ascending (memcmp,
 *	shorter first on a common prefix): uint16 keylen, key, uint16 vallen,
 *	value.  An empty context encodes as the two bytes 00 00.
 */
typedef struct KmsContextPair
{
	const char *key;
	size_t		keylen;
	const char *val;
	size_t		vallen;
} KmsContextPair;

/*
 * Sort pairs in place and encode them into out (capacity outcap).
 * Returns 0 on success, -1 on a duplicate key, a key or value longer than
 * 65535 bytes, more than 65535 pairs, or too small a buffer.
 * kms_context_encoded_len() gives the exact size needed (no sorting).
 */
extern size_t kms_context_encoded_len(const KmsContextPair *pairs, int npairs);
extern int	kms_context_encode(KmsContextPair *pairs, int npairs,
							   uint8_t *out, size_t outcap, size_t *outlen);

/*
 * An AES-256-GCM key with its expanded schedule kept, so that each message
 * costs only a nonce reset (docs/performance.md measures it).
 * kms_aead_new() returns NULL on allocation or OpenSSL failure;
 * kms_aead_free() cleanses and frees (NULL is a no-op).
 */
typedef struct KmsAead KmsAead;

extern KmsAead *kms_aead_new(const uint8_t *key32);
extern void kms_aead_free(KmsAead *aead);

/*
 * AAD is the concatenation aad1 || aad2 (either may be NULL with length 0).
 * encrypt: writes ptlen bytes to ct and 16 to tag; 0 ok, -1 failure.
 * decrypt: writes ctlen bytes to pt; 0 ok, -1 authentication failure or
 * other error (pt must then be treated as garbage and zeroed by the caller).
 * ct and pt may not overlap.
 */
extern int	kms_aead_encrypt(KmsAead *aead, const uint8_t *nonce,
							 const uint8_t *aad1, size_t aad1len,
							 const uint8_t *aad2, size_t aad2len,
							 const uint8_t *pt, size_t ptlen,
							 uint8_t *ct, uint8_t *tag);
extern int	kms_aead_decrypt(KmsAead *aead, const uint8_t *nonce,
							 const uint8_t *aad1, size_t aad1len,
							 const uint8_t *aad2, size_t aad2len,
							 const uint8_t *ct, size_t ctlen,
							 const uint8_t *tag, uint8_t *pt);

/* HKDF-SHA256 (RFC 5869, extract-and-expand).  0 ok, -1 failure. */
extern int	kms_hkdf_sha256(const uint8_t *ikm, size_t ikmlen,
							const uint8_t *salt, size_t saltlen,
							const uint8_t *info, size_t infolen,
							uint8_t *out, size_t outlen);

/* Derive the data key K_D of a blob (see above).  0 ok, -1 failure. */
extern int	kms_derive_data_key(const uint8_t *material, size_t materiallen,
								const uint8_t *salt, uint8_t *out32);

/*
 * HMAC with digest "SHA224", "SHA256", "SHA384" or "SHA512".
 * out must hold 64 bytes; *outlen receives the MAC length.  0 ok, -1 failure.
 */
extern int	kms_hmac(const char *digest, const uint8_t *key, size_t keylen,
					 const uint8_t *msg, size_t msglen,
					 uint8_t *out, size_t *outlen);

/* Cryptographically strong random bytes (RAND_bytes).  0 ok, -1 failure. */
extern int	kms_random_bytes(uint8_t *buf, size_t n);

/* Constant-time comparison: 1 if equal, 0 if not. */
extern int	kms_const_time_eq(const uint8_t *a, const uint8_t *b, size_t n);

/* Overwrite memory in a way the compiler cannot elide (OPENSSL_cleanse). */
extern void kms_cleanse(void *p, size_t n);

/*
 * Master-key wrapping of key-version material (local provider), format 1:
 *
 *	offset	size	field
 *	0		1		0x01
 *	1		12		GCM nonce (random)
 *	13		m		AES-256-GCM(master key) ciphertext of the material
 *	13+m	16		GCM tag
 *
 *	AAD = "pg_kms wrap v1" (14 bytes) || key id (16) || version (uint32 BE)
 *
 * kms_wrap writes KMS_WRAP_OVERHEAD + materiallen bytes to out.
 * kms_unwrap writes the material to out (capacity outcap) and its length to
 * *outlen; returns 0 ok, -1 on a bad layout or authentication failure.
 */
#define KMS_WRAP_FORMAT_V1	0x01
#define KMS_WRAP_AAD_PREFIX "pg_kms wrap v1"
#define KMS_WRAP_OVERHEAD	(1 + 12 + 16)

extern int	kms_wrap(const uint8_t *master32, const uint8_t *key_id,
					 uint32_t version, const uint8_t *material,
					 size_t materiallen, uint8_t *out);
extern int	kms_unwrap(const uint8_t *master32, const uint8_t *key_id,
					   uint32_t version, const uint8_t *wrapped,
					   size_t wrappedlen, uint8_t *out, size_t outcap,
					   size_t *outlen);

/*
 * Key check value of a master key: the first 16 bytes of
 * HMAC-SHA256(master, "pg_kms key check value v1").  0 ok, -1 failure.
 */
#define KMS_KCV_LEN 16
extern int	kms_master_kcv(const uint8_t *master32, uint8_t *out16);

#endif							/* PG_KMS_CRYPTO_H */
