/*-------------------------------------------------------------------------
 *
 * data_sql.c
 *	  The KMS data plane in SQL: Encrypt, Decrypt, ReEncrypt,
 *	  GenerateDataKey*, GenerateRandom, GenerateMac, VerifyMac.  The
 *	  encryption itself is envelope/envelope.c's.
 *
 *	  May call: envelope/, keystore/, cache/, audit/, catalog/, common/,
 *	  crypto/.
 *
 * Locking: none here; see cache/cache.c.
 *
 * IDENTIFICATION
 *	  src/kms/data_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "audit/audit.h"
#include "cache/cache.h"
#include "envelope/envelope.h"
#include "keystore/keystore.h"

#include "kms/kms_internal.h"

/* ----------------------------------------------------------------
 * SQL: kms_encrypt, kms_decrypt, kms_decrypt_text, kms_re_encrypt
 * ----------------------------------------------------------------
 */
static char *
KmsArgKeyRef(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "key id must not be null");
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static void
KmsArgContext(FunctionCallInfo fcinfo, int argno, KmsContext *ctx)
{
	KmsContextFromJsonb(PG_ARGISNULL(argno) ? NULL : PG_GETARG_JSONB_P(argno), ctx);
}

KMS_AUDITED_ENTRY(kms_encrypt, "Encrypt", 0)
{
	char	   *keyref;
	bytea	   *pt;
	KmsKeyInfo *key;
	KmsContext	ctx;
	bytea	   *blob;

	keyref = KmsArgKeyRef(fcinfo, 0);
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	pt = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(pt) == 0)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "plaintext must be at least 1 byte");
	KmsArgContext(fcinfo, 2, &ctx);
	KmsCheckEncryptionAlgorithm(KmsArgTextOpt(fcinfo, 3), "encryptionAlgorithm");

	key = KmsResolveKeyCtx(keyref, KMS_OP_ENCRYPT, ctx.pairs, ctx.npairs);
	KmsCheckUsable(key);
	if (KmsArgDryRun(fcinfo, 4))
		KmsDryRunSucceeded("Encrypt");
	blob = KmsEncryptData(key, VARDATA_ANY(pt), VARSIZE_ANY_EXHDR(pt), &ctx);
	KmsAuditData(KMS_OP_ENCRYPT, key->key_id, key->key_id_str, key->current_version);
	PG_RETURN_BYTEA_P(blob);
}

static bytea *
KmsDecryptArgs(FunctionCallInfo fcinfo)
{
	KmsContext	ctx;
	char	   *keyref = NULL;
	KmsKeyInfo *key = NULL;
	bytea	   *pt;

	KmsArgContext(fcinfo, 1, &ctx);
	if (!PG_ARGISNULL(2))
		keyref = text_to_cstring(PG_GETARG_TEXT_PP(2));
	KmsCheckEncryptionAlgorithm(KmsArgTextOpt(fcinfo, 3), "encryptionAlgorithm");
	pt = KmsDecryptData(PG_GETARG_BYTEA_PP(0), &ctx, keyref,
						KMS_OP_DECRYPT, true, &key);
	if (KmsArgDryRun(fcinfo, 4))
	{
		kms_cleanse(VARDATA(pt), VARSIZE(pt) - VARHDRSZ);
		KmsDryRunSucceeded("Decrypt");
	}
	KmsAuditData(KMS_OP_DECRYPT, key->key_id, key->key_id_str, 0);
	return pt;
}

KMS_AUDITED_ENTRY(kms_decrypt, "Decrypt", KMS_AUDIT_BLOB_RESOURCE(0))
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(KmsDecryptArgs(fcinfo));
}

KMS_AUDITED_ENTRY(kms_decrypt_text, "Decrypt", KMS_AUDIT_BLOB_RESOURCE(0))
{
	bytea	   *pt;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pt = KmsDecryptArgs(fcinfo);
	/* PostgreSQL's own error would quote the offending plaintext bytes */
	if (!pg_verify_mbstr(GetDatabaseEncoding(), VARDATA(pt),
						 VARSIZE(pt) - VARHDRSZ, true))
	{
		kms_cleanse(VARDATA(pt), VARSIZE(pt) - VARHDRSZ);
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errhidestmt(true),
				 errmsg("ValidationException: the plaintext is not valid text in the database encoding %s",
						GetDatabaseEncodingName()),
				 errhint("Use kms_decrypt() for binary plaintext.")));
	}
	PG_RETURN_TEXT_P((text *) pt);
}

KMS_AUDITED_ENTRY(kms_re_encrypt, "ReEncrypt", KMS_AUDIT_BLOB_RESOURCE(0))
{
	KmsContext	src_ctx,
				dst_ctx;
	char	   *dst_ref;
	char	   *src_ref = NULL;
	KmsKeyInfo *dst;
	KmsKeyInfo *src = NULL;
	bytea	   *pt;
	bytea	   *volatile result = NULL;

	if (PG_ARGISNULL(0))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "ciphertext blob must not be null");
	dst_ref = KmsArgKeyRef(fcinfo, 1);
	KmsArgContext(fcinfo, 2, &src_ctx);
	KmsArgContext(fcinfo, 3, &dst_ctx);
	if (!PG_ARGISNULL(4))
		src_ref = text_to_cstring(PG_GETARG_TEXT_PP(4));
	KmsCheckEncryptionAlgorithm(KmsArgTextOpt(fcinfo, 5), "sourceEncryptionAlgorithm");
	KmsCheckEncryptionAlgorithm(KmsArgTextOpt(fcinfo, 6), "destinationEncryptionAlgorithm");

	/* KmsDecryptData checks the shared generation when it looks the key up */
	pt = KmsDecryptData(PG_GETARG_BYTEA_PP(0), &src_ctx, src_ref,
						KMS_OP_REENCRYPT_FROM, true, &src);
	PG_TRY();
	{
		dst = KmsResolveKeyCtx(dst_ref, KMS_OP_REENCRYPT_TO, dst_ctx.pairs, dst_ctx.npairs);
		KmsCheckUsable(dst);
		if (KmsArgDryRun(fcinfo, 7))
			KmsDryRunSucceeded("ReEncrypt");
		KmsAuditData(KMS_OP_REENCRYPT_FROM, src->key_id, src->key_id_str, 0);
		result = KmsEncryptData(dst, VARDATA(pt), VARSIZE(pt) - VARHDRSZ, &dst_ctx);
		KmsAuditData(KMS_OP_REENCRYPT_TO, dst->key_id, dst->key_id_str,
					 dst->current_version);
	}
	PG_FINALLY();
	{
		/* the plaintext never leaves this function */
		kms_cleanse(VARDATA(pt), VARSIZE(pt) - VARHDRSZ);
	}
	PG_END_TRY();
	PG_RETURN_BYTEA_P(result);
}

/* ----------------------------------------------------------------
 * GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateRandom
 * ----------------------------------------------------------------
 */
static int
KmsDataKeyLength(FunctionCallInfo fcinfo)
{
	bool		has_spec = !PG_ARGISNULL(1);
	bool		has_n = !PG_ARGISNULL(2);

	if (has_spec == has_n)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "specify either key_spec or number_of_bytes, but not both");
	if (has_spec)
	{
		char	   *spec = text_to_cstring(PG_GETARG_TEXT_PP(1));

		if (strcmp(spec, "AES_256") == 0)
			return 32;
		if (strcmp(spec, "AES_128") == 0)
			return 16;
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "key_spec \"%s\" is not valid; use AES_256 or AES_128", spec);
	}
	if (PG_GETARG_INT32(2) < 1 || PG_GETARG_INT32(2) > 1024)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "number_of_bytes must be between 1 and 1024");
	return PG_GETARG_INT32(2);
}

static Datum
KmsGenerateDataKey(FunctionCallInfo fcinfo, bool with_plaintext)
{
	char	   *keyref = KmsArgKeyRef(fcinfo, 0);
	int			n = KmsDataKeyLength(fcinfo);
	KmsContext	ctx;
	KmsKeyInfo *key;
	bytea	   *pt;
	bytea	   *blob;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {0};
	int			i = 0;

	KmsArgContext(fcinfo, 3, &ctx);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	key = KmsResolveKeyCtx(keyref, with_plaintext ? KMS_OP_GENERATE_DATA_KEY :
						   KMS_OP_GENERATE_DATA_KEY_WITHOUT_PLAINTEXT, ctx.pairs, ctx.npairs);
	KmsCheckUsable(key);
	if (KmsArgDryRun(fcinfo, 4))
		KmsDryRunSucceeded(with_plaintext ? "GenerateDataKey" : "GenerateDataKeyWithoutPlaintext");

	pt = palloc(VARHDRSZ + n);
	SET_VARSIZE(pt, VARHDRSZ + n);
	if (kms_random_bytes((uint8 *) VARDATA(pt), n) != 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
	blob = KmsEncryptData(key, VARDATA(pt), n, &ctx);
	KmsAuditData(with_plaintext ? KMS_OP_GENERATE_DATA_KEY :
				 KMS_OP_GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
				 key->key_id, key->key_id_str, key->current_version);
	if (with_plaintext)
		values[i++] = PointerGetDatum(pt);
	else
		kms_cleanse(VARDATA(pt), n);
	values[i++] = PointerGetDatum(blob);
	values[i++] = CStringGetTextDatum(KmsKeyArn(key->key_id_str));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

KMS_AUDITED_ENTRY(kms_generate_data_key, "GenerateDataKey", 0)
{
	return KmsGenerateDataKey(fcinfo, true);
}

KMS_AUDITED_ENTRY(kms_generate_data_key_without_plaintext, "GenerateDataKeyWithoutPlaintext", 0)
{
	return KmsGenerateDataKey(fcinfo, false);
}

KMS_AUDITED_ENTRY(kms_generate_random, "GenerateRandom", KMS_AUDIT_NO_RESOURCE)
{
	int			n;
	bytea	   *out;

	if (PG_ARGISNULL(0))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "number_of_bytes is required");
	n = PG_GETARG_INT32(0);
	if (n < 1 || n > 1024)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "number_of_bytes must be between 1 and 1024");
	out = palloc(VARHDRSZ + n);
	SET_VARSIZE(out, VARHDRSZ + n);
	if (kms_random_bytes((uint8 *) VARDATA(out), n) != 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
	PG_RETURN_BYTEA_P(out);
}

/* ----------------------------------------------------------------
 * GenerateMac, VerifyMac
 * ----------------------------------------------------------------
 */
static KmsKeyInfo *
KmsComputeMac(FunctionCallInfo fcinfo, KmsOp op, uint8 *mac, size_t *maclen)
{
	char	   *keyref = KmsArgKeyRef(fcinfo, 0);
	bytea	   *msg;
	char	   *alg;
	int			algarg = (op == KMS_OP_GENERATE_MAC) ? 2 : 3;
	KmsKeyInfo *key;
	const char *digest;
	uint8		material[KMS_MAX_MATERIAL_LEN];
	size_t		len;
	int			rc;

	if (PG_ARGISNULL(1))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "message must not be null");
	msg = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(msg) < 1 || VARSIZE_ANY_EXHDR(msg) > 4096)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "message must be 1 to 4096 bytes");
	if (PG_ARGISNULL(algarg))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "mac_algorithm must not be null");
	alg = text_to_cstring(PG_GETARG_TEXT_PP(algarg));
	if (strcmp(alg, "HMAC_SHA_224") == 0)
		digest = "SHA224";
	else if (strcmp(alg, "HMAC_SHA_256") == 0)
		digest = "SHA256";
	else if (strcmp(alg, "HMAC_SHA_384") == 0)
		digest = "SHA384";
	else if (strcmp(alg, "HMAC_SHA_512") == 0)
		digest = "SHA512";
	else
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "mac_algorithm \"%s\" is not valid; use HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384 or HMAC_SHA_512", alg);

	key = KmsResolveKey(keyref, op);
	KmsCheckUsable(key);
	if (key->usage != KMS_USAGE_GENERATE_VERIFY_MAC)
		kms_error(InvalidKeyUsageException, KMS_SQLSTATE_INVALID_KEY_USAGE,
				  "key \"%s\" has key usage ENCRYPT_DECRYPT, which does not allow %s",
				  KmsKeyArn(key->key_id_str), KmsOpNames[op]);
	/* HMAC_256 keys take HMAC_SHA_256, and so on */
	if (strcmp(key->key_spec + 5, alg + 9) != 0)
		kms_error(InvalidKeyUsageException, KMS_SQLSTATE_INVALID_KEY_USAGE,
				  "mac_algorithm %s is not valid for key \"%s\" with key spec %s",
				  alg, KmsKeyArn(key->key_id_str), key->key_spec);

	KmsGetMaterial(key->key_id, (uint32) key->current_version,
				   material, sizeof(material), &len);
	rc = kms_hmac(digest, material, len, (const uint8 *) VARDATA_ANY(msg),
				  VARSIZE_ANY_EXHDR(msg), mac, maclen);
	kms_cleanse(material, sizeof(material));
	if (rc != 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL, "HMAC failed");
	return key;
}

KMS_AUDITED_ENTRY(kms_generate_mac, "GenerateMac", 0)
{
	uint8		mac[64];
	size_t		len;
	bytea	   *out;

	KmsKeyInfo *key;

	key = KmsComputeMac(fcinfo, KMS_OP_GENERATE_MAC, mac, &len);
	if (KmsArgDryRun(fcinfo, 3))
		KmsDryRunSucceeded("GenerateMac");
	KmsAuditData(KMS_OP_GENERATE_MAC, key->key_id, key->key_id_str, key->current_version);
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), mac, len);
	PG_RETURN_BYTEA_P(out);
}

KMS_AUDITED_ENTRY(kms_verify_mac, "VerifyMac", 0)
{
	uint8		mac[64];
	size_t		len;
	bytea	   *given;
	KmsKeyInfo *key;

	if (PG_ARGISNULL(2))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "mac must not be null");
	given = PG_GETARG_BYTEA_PP(2);
	if (VARSIZE_ANY_EXHDR(given) < 1 || VARSIZE_ANY_EXHDR(given) > 6144)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "mac must be 1 to 6144 bytes");
	key = KmsComputeMac(fcinfo, KMS_OP_VERIFY_MAC, mac, &len);
	if (VARSIZE_ANY_EXHDR(given) != len ||
		!kms_const_time_eq(mac, (const uint8 *) VARDATA_ANY(given), len))
	{
		/* a failed verification is an event of its own, like a denial */
		KmsAudit("VerifyMac", key->key_id_str, key->current_version,
				 "KMSInvalidMacException");
		kms_error(KMSInvalidMacException, KMS_SQLSTATE_INVALID_MAC,
				  "the MAC does not verify for this message and key");
	}
	if (KmsArgDryRun(fcinfo, 4))
		KmsDryRunSucceeded("VerifyMac");
	KmsAuditData(KMS_OP_VERIFY_MAC, key->key_id, key->key_id_str, key->current_version);
	PG_RETURN_BOOL(true);
}
