/*-------------------------------------------------------------------------
 *
 * envelope.c
 *	  Envelope encryption, the C interface of the KMS data plane (kms/) and
 *	  of the secrets store (secrets/): the encryption context, and
 *	  encrypting and decrypting data under a key of the key store.
 *
 *	  Decrypt is the hot path: it parses the blob header, finds the key's
 *	  info and an AES context in this backend's cache (cache/cache.c),
 *	  checks privilege and key state from that cached info, and decrypts.
 *	  No catalog query, no provider call, no lock, and no allocation beyond
 *	  the result once the cache is warm.
 *
 *	  May call: keystore/, cache/, audit/, catalog/, common/, crypto/.
 *
 * Locking: none here; see cache/cache.c.
 *
 * IDENTIFICATION
 *	  src/envelope/envelope.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "cache/cache.h"
#include "envelope/envelope.h"
#include "keystore/keystore.h"

static const uint8 empty_context[2] = {0, 0};

/* ----------------------------------------------------------------
 * Encryption context
 * ----------------------------------------------------------------
 */
void
KmsContextFromJsonb(Jsonb *jb, KmsContext *ctx)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;

	ctx->npairs = 0;
	ctx->pairs = NULL;
	if (jb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(jb))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "encryption context must be a JSON object of string values");
	if (JB_ROOT_COUNT(jb) == 0)
		return;
	ctx->pairs = palloc(sizeof(KmsContextPair) * JB_ROOT_COUNT(jb));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			ctx->pairs[n].key = v.val.string.val;
			ctx->pairs[n].keylen = v.val.string.len;
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvString)
				kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
						  "encryption context values must be strings");
			ctx->pairs[n].val = v.val.string.val;
			ctx->pairs[n].vallen = v.val.string.len;
			n++;
		}
	}
	ctx->npairs = n;
}

/* Canonical encoding of a context (the empty one is a constant). */
static const uint8 *
KmsEncodeContext(KmsContext *ctx, size_t *len)
{
	uint8	   *buf;
	size_t		need;

	if (ctx == NULL || ctx->npairs == 0)
	{
		*len = sizeof(empty_context);
		return empty_context;
	}
	need = kms_context_encoded_len(ctx->pairs, ctx->npairs);
	buf = palloc(need);
	if (kms_context_encode(ctx->pairs, ctx->npairs, buf, need, len) != 0)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "encryption context keys and values must be at most 65535 bytes each");
	return buf;
}

/* ----------------------------------------------------------------
 * Envelope encryption, for SQL and for the secrets store
 * ----------------------------------------------------------------
 */
bytea *
KmsEncryptData(KmsKeyInfo *key, const char *data, Size len, KmsContext *ctx)
{
	uint8		salt[KMS_SALT_LEN];
	uint8		nonce[KMS_NONCE_LEN];
	uint64		counter;
	KmsAead    *aead;
	bytea	   *out;
	uint8	   *p;
	const uint8 *aad2;
	size_t		aad2len;

	if (key->usage != KMS_USAGE_ENCRYPT_DECRYPT)
		kms_error(InvalidKeyUsageException, KMS_SQLSTATE_INVALID_KEY_USAGE,
				  "key \"%s\" has key usage GENERATE_VERIFY_MAC, which does not allow encryption",
				  KmsKeyArn(key->key_id_str));
	if (len > MaxAllocSize - VARHDRSZ - KMS_BLOB_OVERHEAD)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "plaintext is too large");

	aad2 = KmsEncodeContext(ctx, &aad2len);
	aead = KmsEncryptContext(key->key_id, (uint32) key->current_version,
							 salt, &counter);

	/* The nonce is this encryption's unique number in its epoch. */
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8) (counter >> (56 - 8 * i));

	out = palloc(VARHDRSZ + KMS_BLOB_OVERHEAD + len);
	SET_VARSIZE(out, VARHDRSZ + KMS_BLOB_OVERHEAD + len);
	p = (uint8 *) VARDATA(out);
	kms_blob_write_header(p, key->key_id, (uint32) key->current_version, salt, nonce);
	if (kms_aead_encrypt(aead, nonce, p, KMS_HEADER_LEN, aad2, aad2len,
						 (const uint8 *) data, len,
						 p + KMS_HEADER_LEN, p + KMS_HEADER_LEN + len) != 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "encryption failed");
	return out;
}

static void
KmsInvalidCiphertext(void)
{
	kms_error(InvalidCiphertextException, KMS_SQLSTATE_INVALID_CIPHERTEXT,
			  "the ciphertext is invalid, was altered, or does not match the encryption context");
}

/* Decryptors of other formats, by first byte (KmsSetFormatDecryptor) */
static KmsFormatDecryptor format_decryptors[256];

void
KmsSetFormatDecryptor(uint8 format, KmsFormatDecryptor fn)
{
	format_decryptors[format] = fn;
}

bytea *
KmsDecryptData(bytea *blob, KmsContext *ctx, const char *expected_keyref,
			   KmsOp op, bool check_access, KmsKeyInfo **key_out)
{
	KmsBlobHeader hdr;
	KmsKeyInfo *key;
	KmsAead    *aead;
	bytea	   *out;
	const uint8 *aad2;
	size_t		aad2len;

	if (VARSIZE_ANY_EXHDR(blob) > 0)
	{
		KmsFormatDecryptor fn = format_decryptors[*(const uint8 *) VARDATA_ANY(blob)];

		if (fn != NULL)
			return fn(blob, ctx, expected_keyref, op, check_access, key_out);
	}
	if (kms_blob_parse((const uint8 *) VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), &hdr) != 0)
		KmsInvalidCiphertext();

	key = KmsLookupKeyById(hdr.key_id);
	if (key == NULL)
	{
		char		kid[37];

		/* A foreign blob: only those who could see every key learn that. */
		if (!check_access || KmsIsAdmin())
			KmsInvalidCiphertext();
		KmsUuidToString(hdr.key_id, kid);
		KmsKeyNotFound(kid, op);
	}

	if (expected_keyref != NULL)
	{
		KmsKeyInfo *expected = KmsResolveKeyCtx(expected_keyref, op,
												ctx ? ctx->pairs : NULL,
												ctx ? ctx->npairs : -1);

		if (memcmp(expected->key_id, hdr.key_id, KMS_KEY_ID_LEN) != 0)
			kms_error(IncorrectKeyException, KMS_SQLSTATE_INCORRECT_KEY,
					  "the key \"%s\" is not the key that encrypted this ciphertext",
					  expected_keyref);
		/* the lookup above may have replaced cached entries */
		key = expected;
	}

	/* a grant with constraints is checked against the request's context */
	if (check_access)
		KmsCheckAccessCtx(key, op, NULL, ctx ? ctx->pairs : NULL, ctx ? ctx->npairs : -1);
	KmsCheckUsable(key);
	if (key->usage != KMS_USAGE_ENCRYPT_DECRYPT ||
		hdr.version > (uint32) key->current_version)
		KmsInvalidCiphertext();

	aead = KmsDecryptContext(hdr.key_id, hdr.version, hdr.salt);
	aad2 = KmsEncodeContext(ctx, &aad2len);

	out = palloc(VARHDRSZ + hdr.ciphertext_len);
	SET_VARSIZE(out, VARHDRSZ + hdr.ciphertext_len);
	if (kms_aead_decrypt(aead, hdr.nonce,
						 (const uint8 *) VARDATA_ANY(blob), KMS_HEADER_LEN,
						 aad2, aad2len,
						 hdr.ciphertext, hdr.ciphertext_len, hdr.tag,
						 (uint8 *) VARDATA(out)) != 0)
	{
		kms_cleanse(VARDATA(out), hdr.ciphertext_len);
		KmsInvalidCiphertext();
	}
	if (key_out)
		*key_out = key;
	return out;
}

