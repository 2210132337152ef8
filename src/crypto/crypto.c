/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  pg_kms cryptographic core over OpenSSL 3 EVP: AES-256-GCM with kept
 *	  contexts, HKDF-SHA256, HMAC, the blob header, the canonical
 *	  encryption-context encoding and master-key wrapping.
 *
 * Plain C, no PostgreSQL header, so the KAT and fuzz programs link it
 * alone.  Every function checks its arguments and returns a status: the
 * fuzz driver feeds them garbage.
 *
 * The only global state is the AES-256-GCM cipher, the HKDF KDF and the
 * HMAC MAC, each fetched once on first use and never freed.  They hold no
 * secret.  PostgreSQL backends are single-threaded processes, so no
 * locking is needed; in a threaded caller two threads racing on the first
 * fetch would only leak one fetched object.
 *
 * IDENTIFICATION
 *	  src/crypto/crypto.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "crypto.h"

/* EVP update calls take an int length; feed longer inputs in chunks. */
#define KMS_EVP_CHUNK	(1 << 30)

/* KMS_HKDF_INFO and the KCV label are used without their NUL. */
#define KMS_KCV_LABEL	"pg_kms key check value v1"
#define KMS_WRAP_AAD_LEN	(sizeof(KMS_WRAP_AAD_PREFIX) - 1 + KMS_KEY_ID_LEN + 4)

struct KmsAead
{
	EVP_CIPHER_CTX *enc;		/* keyed once for encryption */
	EVP_CIPHER_CTX *dec;		/* keyed once for decryption */
};

static EVP_CIPHER *kms_gcm_cipher = NULL;
static EVP_KDF *kms_hkdf = NULL;
static EVP_MAC *kms_hmac_mac = NULL;

/* A non-NULL address for zero-length OSSL_PARAM octet strings. */
static const uint8_t kms_empty[1] = {0};

static inline void
put_u16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

static inline void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static inline uint32_t
get_u32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

/* Fetching by name costs a lock and a hash lookup: do it once. */
static EVP_CIPHER *
gcm_cipher(void)
{
	if (kms_gcm_cipher == NULL)
		kms_gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	return kms_gcm_cipher;
}

/*
 * One GCM message on an already keyed context: reset the nonce (the key
 * schedule and GHASH key stay), absorb AAD, process data, then produce or
 * check the tag.  The nonce is KMS_NONCE_LEN = 12 bytes, GCM's default.
 */
static int
gcm_run(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *nonce,
		const uint8_t *aad1, size_t aad1len,
		const uint8_t *aad2, size_t aad2len,
		const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
	const uint8_t *aads[2] = {aad1, aad2};
	size_t		aadlens[2] = {aad1len, aad2len};
	OSSL_PARAM	params[2];
	uint8_t		dummy[16];
	int			outl;
	int			i;

	if (ctx == NULL || nonce == NULL || tag == NULL)
		return -1;
	if (len > 0 && (in == NULL || out == NULL))
		return -1;

	if (enc ? !EVP_EncryptInit_ex2(ctx, NULL, NULL, nonce, NULL)
		: !EVP_DecryptInit_ex2(ctx, NULL, NULL, nonce, NULL))
		return -1;

	/* Data updates with a NULL output are AAD; skip empty pieces. */
	for (i = 0; i < 2; i++)
	{
		const uint8_t *p = aads[i];
		size_t		n = aadlens[i];

		if (n > 0 && p == NULL)
			return -1;
		while (n > 0)
		{
			int			chunk = n > KMS_EVP_CHUNK ? KMS_EVP_CHUNK : (int) n;

			if (!EVP_CipherUpdate(ctx, NULL, &outl, p, chunk))
				return -1;
			p += chunk;
			n -= chunk;
		}
	}

	/* An empty update with a NULL output would count as AAD: skip it. */
	while (len > 0)
	{
		int			chunk = len > KMS_EVP_CHUNK ? KMS_EVP_CHUNK : (int) len;

		if (!EVP_CipherUpdate(ctx, out, &outl, in, chunk) || outl != chunk)
			return -1;
		in += chunk;
		out += chunk;
		len -= chunk;
	}

	if (enc)
	{
		if (!EVP_EncryptFinal_ex(ctx, dummy, &outl))
			return -1;
		params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
													  tag, KMS_TAG_LEN);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_CIPHER_CTX_get_params(ctx, params))
			return -1;
	}
	else
	{
		/* The provider copies the tag; the cast only satisfies the API. */
		params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
													  (void *) tag, KMS_TAG_LEN);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_CIPHER_CTX_set_params(ctx, params))
			return -1;
		/* Final compares the tag in constant time. */
		if (!EVP_DecryptFinal_ex(ctx, dummy, &outl))
			return -1;
	}
	return 0;
}

/* Key a fresh context for one direction; NULL on failure. */
static EVP_CIPHER_CTX *
gcm_ctx_new(const uint8_t *key32, int enc)
{
	EVP_CIPHER *cipher = gcm_cipher();
	EVP_CIPHER_CTX *ctx;

	if (cipher == NULL || key32 == NULL)
		return NULL;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return NULL;
	if (enc ? !EVP_EncryptInit_ex2(ctx, cipher, key32, NULL, NULL)
		: !EVP_DecryptInit_ex2(ctx, cipher, key32, NULL, NULL))
	{
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* ---------------------------------------------------------------------
 * Blob header
 * ---------------------------------------------------------------------
 */

int
kms_blob_parse(const uint8_t *blob, size_t len, KmsBlobHeader *hdr)
{
	if (blob == NULL || hdr == NULL || len < KMS_BLOB_OVERHEAD)
		return -1;
	if (blob[0] != KMS_FORMAT_V1)
		return -1;
	if (get_u32(blob + 1 + KMS_KEY_ID_LEN) == 0)
		return -1;

	hdr->format = blob[0];
	memcpy(hdr->key_id, blob + 1, KMS_KEY_ID_LEN);
	hdr->version = get_u32(blob + 1 + KMS_KEY_ID_LEN);
	hdr->salt = blob + 21;
	hdr->nonce = blob + 33;
	hdr->ciphertext = blob + KMS_HEADER_LEN;
	hdr->ciphertext_len = len - KMS_BLOB_OVERHEAD;
	hdr->tag = blob + len - KMS_TAG_LEN;
	return 0;
}

void
kms_blob_write_header(uint8_t *out, const uint8_t *key_id, uint32_t version,
					  const uint8_t *salt, const uint8_t *nonce)
{
	if (out == NULL || key_id == NULL || salt == NULL || nonce == NULL)
		return;
	out[0] = KMS_FORMAT_V1;
	memcpy(out + 1, key_id, KMS_KEY_ID_LEN);
	put_u32(out + 17, version);
	memcpy(out + 21, salt, KMS_SALT_LEN);
	memcpy(out + 33, nonce, KMS_NONCE_LEN);
}

/* ---------------------------------------------------------------------
 * Canonical encryption context
 * ---------------------------------------------------------------------
 */

/* memcmp order over the common prefix, shorter first on a tie. */
static int
pair_cmp(const void *a, const void *b)
{
	const KmsContextPair *pa = (const KmsContextPair *) a;
	const KmsContextPair *pb = (const KmsContextPair *) b;
	size_t		n = pa->keylen < pb->keylen ? pa->keylen : pb->keylen;
	int			c = n > 0 ? memcmp(pa->key, pb->key, n) : 0;

	if (c != 0)
		return c;
	return (pa->keylen > pb->keylen) - (pa->keylen < pb->keylen);
}

/* Validate sizes and pointers; the encoding cannot express more. */
static int
context_valid(const KmsContextPair *pairs, int npairs)
{
	int			i;

	if (npairs < 0 || npairs > 65535 || (npairs > 0 && pairs == NULL))
		return 0;
	for (i = 0; i < npairs; i++)
	{
		if (pairs[i].keylen > 65535 || pairs[i].vallen > 65535)
			return 0;
		if ((pairs[i].keylen > 0 && pairs[i].key == NULL) ||
			(pairs[i].vallen > 0 && pairs[i].val == NULL))
			return 0;
	}
	return 1;
}

/*
 * Exact encoded size, or 0 (never a valid size: the minimum is 2) when the
 * pairs cannot be encoded at all.  Duplicates are only found by encoding.
 */
size_t
kms_context_encoded_len(const KmsContextPair *pairs, int npairs)
{
	size_t		len = 2;
	int			i;

	if (!context_valid(pairs, npairs))
		return 0;
	/* At most 2 + 65535 * (4 + 2 * 65535) bytes: no overflow in size_t. */
	for (i = 0; i < npairs; i++)
		len += 4 + pairs[i].keylen + pairs[i].vallen;
	return len;
}

int
kms_context_encode(KmsContextPair *pairs, int npairs,
				   uint8_t *out, size_t outcap, size_t *outlen)
{
	size_t		len;
	uint8_t    *p;
	int			i;

	if (outlen != NULL)
		*outlen = 0;
	if (out == NULL || !context_valid(pairs, npairs))
		return -1;

	if (npairs > 1)
		qsort(pairs, npairs, sizeof(KmsContextPair), pair_cmp);
	for (i = 1; i < npairs; i++)
		if (pair_cmp(&pairs[i - 1], &pairs[i]) == 0)
			return -1;

	len = kms_context_encoded_len(pairs, npairs);
	if (len == 0 || len > outcap)
		return -1;

	p = out;
	put_u16(p, (size_t) npairs);
	p += 2;
	for (i = 0; i < npairs; i++)
	{
		put_u16(p, pairs[i].keylen);
		p += 2;
		if (pairs[i].keylen > 0)
			memcpy(p, pairs[i].key, pairs[i].keylen);
		p += pairs[i].keylen;
		put_u16(p, pairs[i].vallen);
		p += 2;
		if (pairs[i].vallen > 0)
			memcpy(p, pairs[i].val, pairs[i].vallen);
		p += pairs[i].vallen;
	}
	if (outlen != NULL)
		*outlen = len;
	return 0;
}

/* ---------------------------------------------------------------------
 * AES-256-GCM with kept contexts
 * ---------------------------------------------------------------------
 */

/*
 * Key both directions once, so each message costs only a nonce reset.
 * The key is not copied: the contexts hold the only schedule.
 */
KmsAead *
kms_aead_new(const uint8_t *key32)
{
	KmsAead    *aead;

	if (key32 == NULL)
		return NULL;
	aead = (KmsAead *) malloc(sizeof(KmsAead));
	if (aead == NULL)
		return NULL;
	aead->enc = gcm_ctx_new(key32, 1);
	aead->dec = gcm_ctx_new(key32, 0);
	if (aead->enc == NULL || aead->dec == NULL)
	{
		kms_aead_free(aead);
		return NULL;
	}
	return aead;
}

/* EVP_CIPHER_CTX_free cleanses the key schedule before freeing. */
void
kms_aead_free(KmsAead *aead)
{
	if (aead == NULL)
		return;
	EVP_CIPHER_CTX_free(aead->enc);
	EVP_CIPHER_CTX_free(aead->dec);
	kms_cleanse(aead, sizeof(KmsAead));
	free(aead);
}

int
kms_aead_encrypt(KmsAead *aead, const uint8_t *nonce,
				 const uint8_t *aad1, size_t aad1len,
				 const uint8_t *aad2, size_t aad2len,
				 const uint8_t *pt, size_t ptlen,
				 uint8_t *ct, uint8_t *tag)
{
	if (aead == NULL)
		return -1;
	return gcm_run(aead->enc, 1, nonce, aad1, aad1len, aad2, aad2len,
				   pt, ptlen, ct, tag);
}

int
kms_aead_decrypt(KmsAead *aead, const uint8_t *nonce,
				 const uint8_t *aad1, size_t aad1len,
				 const uint8_t *aad2, size_t aad2len,
				 const uint8_t *ct, size_t ctlen,
				 const uint8_t *tag, uint8_t *pt)
{
	if (aead == NULL)
		return -1;
	if (gcm_run(aead->dec, 0, nonce, aad1, aad1len, aad2, aad2len,
				ct, ctlen, pt, (uint8_t *) tag) != 0)
	{
		/* Unauthenticated plaintext must not survive the failure. */
		if (pt != NULL && ctlen > 0)
			kms_cleanse(pt, ctlen);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * HKDF and HMAC
 * ---------------------------------------------------------------------
 */

/*
 * The KDF is fetched once.  Contexts are made per derivation: OpenSSL 3.0
 * cannot duplicate an HKDF context, and derivations happen once per epoch
 * or per decrypt-cache miss, not per message.
 */
static EVP_KDF *
hkdf_kdf(void)
{
	if (kms_hkdf == NULL)
		kms_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	return kms_hkdf;
}

int
kms_hkdf_sha256(const uint8_t *ikm, size_t ikmlen,
				const uint8_t *salt, size_t saltlen,
				const uint8_t *info, size_t infolen,
				uint8_t *out, size_t outlen)
{
	EVP_KDF    *kdf = hkdf_kdf();
	EVP_KDF_CTX *kctx;
	OSSL_PARAM	params[6];
	int			mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND;
	int			n = 0;
	int			rc;

	/* RFC 5869: 0 < L <= 255 * HashLen. */
	if (kdf == NULL || out == NULL || outlen == 0 || outlen > 255 * 32)
		return -1;
	if ((ikmlen > 0 && ikm == NULL) || (saltlen > 0 && salt == NULL) ||
		(infolen > 0 && info == NULL))
		return -1;

	params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
												   (char *) "SHA256", 0);
	/* OpenSSL rejects a NULL key even when empty; an empty salt means zeros. */
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
													(void *) (ikmlen > 0 ?
															  ikm : kms_empty),
													ikmlen);
	if (saltlen > 0)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
														(void *) salt, saltlen);
	if (infolen > 0)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
														(void *) info, infolen);
	params[n] = OSSL_PARAM_construct_end();

	kctx = EVP_KDF_CTX_new(kdf);
	if (kctx == NULL)
		return -1;
	rc = EVP_KDF_derive(kctx, out, outlen, params) > 0 ? 0 : -1;
	/* EVP_KDF_CTX_free clears the copied key material. */
	EVP_KDF_CTX_free(kctx);
	if (rc != 0)
		kms_cleanse(out, outlen);
	return rc;
}

int
kms_derive_data_key(const uint8_t *material, size_t materiallen,
					const uint8_t *salt, uint8_t *out32)
{
	if (material == NULL || materiallen == 0 || salt == NULL || out32 == NULL)
		return -1;
	return kms_hkdf_sha256(material, materiallen, salt, KMS_SALT_LEN,
						   (const uint8_t *) KMS_HKDF_INFO,
						   sizeof(KMS_HKDF_INFO) - 1,
						   out32, KMS_AES_KEY_LEN);
}

int
kms_hmac(const char *digest, const uint8_t *key, size_t keylen,
		 const uint8_t *msg, size_t msglen,
		 uint8_t *out, size_t *outlen)
{
	EVP_MAC_CTX *mctx;
	OSSL_PARAM	params[2];
	size_t		len = 0;
	int			rc = -1;

	if (outlen != NULL)
		*outlen = 0;
	if (digest == NULL || out == NULL || outlen == NULL)
		return -1;
	/* Only the SHA-2 digests the contract names. */
	if (strcmp(digest, "SHA224") != 0 && strcmp(digest, "SHA256") != 0 &&
		strcmp(digest, "SHA384") != 0 && strcmp(digest, "SHA512") != 0)
		return -1;
	if ((keylen > 0 && key == NULL) || (msglen > 0 && msg == NULL))
		return -1;

	if (kms_hmac_mac == NULL)
		kms_hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (kms_hmac_mac == NULL)
		return -1;
	mctx = EVP_MAC_CTX_new(kms_hmac_mac);
	if (mctx == NULL)
		return -1;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
												 (char *) digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	/* A NULL key means "reuse the previous one" to OpenSSL: pass a real one. */
	if (!EVP_MAC_init(mctx, keylen > 0 ? key : kms_empty, keylen, params))
		goto done;
	if (msglen > 0 && !EVP_MAC_update(mctx, msg, msglen))
		goto done;
	if (!EVP_MAC_final(mctx, out, &len, 64))
		goto done;
	*outlen = len;
	rc = 0;

done:
	EVP_MAC_CTX_free(mctx);
	return rc;
}

/* ---------------------------------------------------------------------
 * Small utilities
 * ---------------------------------------------------------------------
 */

int
kms_random_bytes(uint8_t *buf, size_t n)
{
	if (n > 0 && buf == NULL)
		return -1;
	while (n > 0)
	{
		int			chunk = n > KMS_EVP_CHUNK ? KMS_EVP_CHUNK : (int) n;

		if (RAND_bytes(buf, chunk) != 1)
			return -1;
		buf += chunk;
		n -= chunk;
	}
	return 0;
}

int
kms_const_time_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
	if (n == 0)
		return 1;
	if (a == NULL || b == NULL)
		return 0;
	return CRYPTO_memcmp(a, b, n) == 0;
}

void
kms_cleanse(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

/* ---------------------------------------------------------------------
 * Master-key wrapping
 * ---------------------------------------------------------------------
 */

/* "pg_kms wrap v1" || key id || version (BE): binds material to its slot. */
static void
wrap_aad(uint8_t *aad, const uint8_t *key_id, uint32_t version)
{
	size_t		plen = sizeof(KMS_WRAP_AAD_PREFIX) - 1;

	memcpy(aad, KMS_WRAP_AAD_PREFIX, plen);
	memcpy(aad + plen, key_id, KMS_KEY_ID_LEN);
	put_u32(aad + plen + KMS_KEY_ID_LEN, version);
}

int
kms_wrap(const uint8_t *master32, const uint8_t *key_id, uint32_t version,
		 const uint8_t *material, size_t materiallen, uint8_t *out)
{
	uint8_t		aad[KMS_WRAP_AAD_LEN];
	EVP_CIPHER_CTX *ctx;
	int			rc;

	if (master32 == NULL || key_id == NULL || out == NULL ||
		(materiallen > 0 && material == NULL))
		return -1;

	/* Wrapping is rare: a one-shot context rather than a KmsAead. */
	ctx = gcm_ctx_new(master32, 1);
	if (ctx == NULL)
		return -1;
	out[0] = KMS_WRAP_FORMAT_V1;
	wrap_aad(aad, key_id, version);
	rc = kms_random_bytes(out + 1, KMS_NONCE_LEN);
	if (rc == 0)
		rc = gcm_run(ctx, 1, out + 1, aad, sizeof(aad), NULL, 0,
					 material, materiallen, out + 1 + KMS_NONCE_LEN,
					 out + 1 + KMS_NONCE_LEN + materiallen);
	EVP_CIPHER_CTX_free(ctx);
	if (rc != 0)
		kms_cleanse(out, KMS_WRAP_OVERHEAD + materiallen);
	return rc;
}

int
kms_unwrap(const uint8_t *master32, const uint8_t *key_id, uint32_t version,
		   const uint8_t *wrapped, size_t wrappedlen,
		   uint8_t *out, size_t outcap, size_t *outlen)
{
	uint8_t		aad[KMS_WRAP_AAD_LEN];
	EVP_CIPHER_CTX *ctx;
	size_t		m;
	int			rc = -1;

	if (outlen != NULL)
		*outlen = 0;
	if (master32 == NULL || key_id == NULL || wrapped == NULL ||
		out == NULL || outlen == NULL)
		goto fail;
	if (wrappedlen < KMS_WRAP_OVERHEAD || wrapped[0] != KMS_WRAP_FORMAT_V1)
		goto fail;
	m = wrappedlen - KMS_WRAP_OVERHEAD;
	if (m > outcap)
		goto fail;

	ctx = gcm_ctx_new(master32, 0);
	if (ctx == NULL)
		goto fail;
	wrap_aad(aad, key_id, version);
	rc = gcm_run(ctx, 0, wrapped + 1, aad, sizeof(aad), NULL, 0,
				 wrapped + 1 + KMS_NONCE_LEN, m, out,
				 (uint8_t *) wrapped + 1 + KMS_NONCE_LEN + m);
	EVP_CIPHER_CTX_free(ctx);
	if (rc != 0)
		goto fail;
	*outlen = m;
	return 0;

fail:
	/* Never leave unauthenticated or partial material behind. */
	if (out != NULL && outcap > 0)
		kms_cleanse(out, outcap);
	return -1;
}

int
kms_master_kcv(const uint8_t *master32, uint8_t *out16)
{
	uint8_t		mac[64];
	size_t		maclen;
	int			rc;

	if (master32 == NULL || out16 == NULL)
		return -1;
	rc = kms_hmac("SHA256", master32, KMS_AES_KEY_LEN,
				  (const uint8_t *) KMS_KCV_LABEL, sizeof(KMS_KCV_LABEL) - 1,
				  mac, &maclen);
	if (rc == 0 && maclen >= KMS_KCV_LEN)
		memcpy(out16, mac, KMS_KCV_LEN);
	else
		rc = -1;
	kms_cleanse(mac, sizeof(mac));
	return rc;
}
