/*-------------------------------------------------------------------------
 *
 * value.c
 *	  The values of encrypted_text and encrypted_bytea (layout in
 *	  tce_internal.h, docs/ciphertext-format.md section 8): parse, seal,
 *	  decrypt, coerce to a column's typmod, import the ciphertext form.
 *
 *	  Randomized values are envelope blobs made by envelope/ (the data
 *	  plane's own encryption, key cache and nonce budget) under the fixed
 *	  context {"pg_kms:column": "<type name>"}, so kms_decrypt() opens them.
 *	  Deterministic values are AES-256-SIV (siv.c) under
 *	  K_SIV = HKDF-SHA256(material of the version, salt = key id,
 *	  info = "pg_kms v1 column deterministic", L = 64); each backend keeps a
 *	  keyed SIV context per (key, version), dropped with the shared
 *	  generation or after pg_kms.key_cache_ttl.
 *
 *	  Privileges: sealing needs Encrypt on the column's key, reading
 *	  plaintext needs Decrypt on the value's own key, both through the key
 *	  store's checks and counted in the data-plane audit aggregate
 *	  (KmsAuditData: no per-row event).  Sealing a comparison's operand
 *	  (compare.c) needs Encrypt or Decrypt.
 *
 * Locking: none here; see cache/cache.c.
 *
 * IDENTIFICATION
 *	  src/tce/value.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "audit/audit.h"
#include "cache/cache.h"
#include "envelope/envelope.h"
#include "keystore/keystore.h"
#include "tce/siv.h"
#include "tce/tce_internal.h"

#define TCE_SIV_INFO "pg_kms v1 column deterministic"

typedef struct TceSivKey
{
	uint8		key_id[KMS_KEY_ID_LEN];
	uint32		version;
} TceSivKey;

typedef struct TceSivEntry
{
	TceSivKey	key;			/* hash key: MUST BE FIRST */
	KmsSiv	   *siv;
	TimestampTz expires_at;
} TceSivEntry;

static HTAB *siv_cache = NULL;
static uint64 siv_cache_gen = 0;
static bool siv_selftest_done = false;

void
TceInvalidCiphertext(void)
{
	kms_error(InvalidCiphertextException, KMS_SQLSTATE_INVALID_CIPHERTEXT,
			  "the encrypted column value is invalid or was altered");
}

/* ----------------------------------------------------------------
 * Layout
 * ----------------------------------------------------------------
 */
static uint32
TceGetU32(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

void
TceParse(const uint8 *p, Size len, KmsTceValueInfo *info)
{
	uint8		fmt;

	memset(info, 0, sizeof(*info));
	if (len < 1)
		TceInvalidCiphertext();
	if (p[0] == TCE_PENDING)
		return;
	fmt = p[0] & ~TCE_IMPORTED;
	if (fmt == TCE_RANDOMIZED && len >= KMS_BLOB_OVERHEAD)
		info->deterministic = false;
	else if (fmt == TCE_DETERMINISTIC && len >= TCE_DET_OVERHEAD)
		info->deterministic = true;
	else
		TceInvalidCiphertext();
	memcpy(info->key_id, p + 1, KMS_KEY_ID_LEN);
	info->version = TceGetU32(p + 1 + KMS_KEY_ID_LEN);
	if (info->version == 0)
		TceInvalidCiphertext();
	info->sealed = true;
}

void
KmsTceValueGetInfo(struct varlena *value, KmsTceValueInfo *info)
{
	TceParse((const uint8 *) VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), info);
}

struct varlena *
TceMakePending(const char *data, Size len)
{
	struct varlena *v = palloc(VARHDRSZ + 1 + len);

	SET_VARSIZE(v, VARHDRSZ + 1 + len);
	((uint8 *) VARDATA(v))[0] = TCE_PENDING;
	if (len > 0)
		memcpy(VARDATA(v) + 1, data, len);
	return v;
}

/* A copy of value with the imported flag cleared (the stored form). */
static struct varlena *
TceStoredCopy(struct varlena *value)
{
	Size		len = VARSIZE_ANY_EXHDR(value);
	struct varlena *v = palloc(VARHDRSZ + len);

	SET_VARSIZE(v, VARHDRSZ + len);
	memcpy(VARDATA(v), VARDATA_ANY(value), len);
	((uint8 *) VARDATA(v))[0] &= ~TCE_IMPORTED;
	return v;
}

/* The column context {"pg_kms:column": type name}, and its encoding. */
static void
TceContext(bool is_text, KmsContext *ctx, KmsContextPair *pair)
{
	pair->key = TCE_CONTEXT_KEY;
	pair->keylen = strlen(TCE_CONTEXT_KEY);
	pair->val = TCE_TYPE_NAME(is_text);
	pair->vallen = strlen(pair->val);
	ctx->npairs = 1;
	ctx->pairs = pair;
}

/* AAD of a deterministic value: its 21-byte header || the context encoding. */
static size_t
TceDetAad(const uint8 *header, bool is_text, uint8 *aad)
{
	const char *tn = TCE_TYPE_NAME(is_text);
	size_t		kl = strlen(TCE_CONTEXT_KEY);
	size_t		vl = strlen(tn);
	uint8	   *p = aad;

	memcpy(p, header, TCE_DET_HEADER_LEN);
	p += TCE_DET_HEADER_LEN;
	*p++ = 0;
	*p++ = 1;
	*p++ = (uint8) (kl >> 8);
	*p++ = (uint8) kl;
	memcpy(p, TCE_CONTEXT_KEY, kl);
	p += kl;
	*p++ = (uint8) (vl >> 8);
	*p++ = (uint8) vl;
	memcpy(p, tn, vl);
	p += vl;
	return p - aad;
}

/* ----------------------------------------------------------------
 * Deterministic keys
 * ----------------------------------------------------------------
 */
static void
TceSivCacheCheck(void)
{
	uint64		gen = KmsCurrentGeneration();
	HASHCTL		ctl;

	if (siv_cache != NULL && gen == siv_cache_gen)
		return;
	if (siv_cache != NULL)
	{
		HASH_SEQ_STATUS seq;
		TceSivEntry *e;

		hash_seq_init(&seq, siv_cache);
		while ((e = hash_seq_search(&seq)) != NULL)
			kms_siv_free(e->siv);
		hash_destroy(siv_cache);
	}
	ctl.keysize = sizeof(TceSivKey);
	ctl.entrysize = sizeof(TceSivEntry);
	ctl.hcxt = TopMemoryContext;
	siv_cache = hash_create("pg_kms column SIV keys", 16, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	siv_cache_gen = gen;
}

static KmsSiv *
TceSivFor(const uint8 *key_id, uint32 version)
{
	TceSivKey	k;
	TceSivEntry *e;
	bool		found;
	TimestampTz now = GetCurrentStatementStartTimestamp();

	if (!siv_selftest_done)
	{
		if (kms_siv_selftest() != 0)
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "the AES-SIV self-test failed");
		siv_selftest_done = true;
	}
	TceSivCacheCheck();
	memset(&k, 0, sizeof(k));
	memcpy(k.key_id, key_id, KMS_KEY_ID_LEN);
	k.version = version;
	e = hash_search(siv_cache, &k, HASH_ENTER, &found);
	if (!found)
		e->siv = NULL;
	if (e->siv == NULL || e->expires_at <= now)
	{
		uint8		material[KMS_MAX_MATERIAL_LEN];
		uint8		sk[64];
		size_t		len;
		int			rc;

		kms_siv_free(e->siv);
		e->siv = NULL;
		KmsGetMaterial(key_id, version, material, sizeof(material), &len);
		rc = kms_hkdf_sha256(material, len, key_id, KMS_KEY_ID_LEN,
							 (const uint8 *) TCE_SIV_INFO, strlen(TCE_SIV_INFO),
							 sk, sizeof(sk));
		kms_cleanse(material, sizeof(material));
		if (rc == 0)
			e->siv = kms_siv_new(sk, sizeof(sk));
		kms_cleanse(sk, sizeof(sk));
		if (e->siv == NULL)
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "could not derive a deterministic column key");
		e->expires_at = kms_key_cache_ttl > 0 ?
			now + (TimestampTz) kms_key_cache_ttl * USECS_PER_SEC : DT_NOEND;
		KmsProtectProcessMemory();
	}
	return e->siv;
}

/* ----------------------------------------------------------------
 * Seal and decrypt
 * ----------------------------------------------------------------
 */
static KmsKeyInfo *
TceKeyFor(const uint8 *key_id, KmsOp op)
{
	KmsKeyInfo *key = KmsLookupKeyById(key_id);

	if (key == NULL || key->state == KMS_STATE_DELETED)
	{
		char		kid[37];

		KmsUuidToString(key_id, kid);
		KmsKeyNotFound(kid, op);
	}
	return key;
}

/*
 * Seal data under (key_id, version) -- version only for deterministic
 * values; randomized ones take the key's current version.  A write needs
 * Encrypt; a comparison's operand (for_lookup) Encrypt or Decrypt.
 */
struct varlena *
TceSealWithKey(const uint8 *key_id, uint32 version, bool deterministic,
			   const char *data, Size len, bool is_text, bool for_lookup)
{
	KmsKeyInfo *key = TceKeyFor(key_id, KMS_OP_ENCRYPT);
	struct varlena *out;
	KmsContext	cctx;
	KmsContextPair cpair;

	/* the column context: a grant constrained to it allows the write */
	TceContext(is_text, &cctx, &cpair);
	if (!for_lookup ||
		(key->allowed_ops & (KMS_OPBIT(KMS_OP_ENCRYPT) | KMS_OPBIT(KMS_OP_DECRYPT))) == 0)
		KmsCheckAccessCtx(key, KMS_OP_ENCRYPT, NULL, cctx.pairs, cctx.npairs);
	KmsCheckUsable(key);
	if (key->usage != KMS_USAGE_ENCRYPT_DECRYPT)
		kms_error(InvalidKeyUsageException, KMS_SQLSTATE_INVALID_KEY_USAGE,
				  "key \"%s\" has key usage GENERATE_VERIFY_MAC, which does not allow encryption",
				  KmsKeyArn(key->key_id_str));

	if (!deterministic)
	{
		KmsContext	ctx;
		KmsContextPair pair;

		TceContext(is_text, &ctx, &pair);
		out = (struct varlena *) KmsEncryptData(key, data, len, &ctx);
		version = key->current_version;
	}
	else
	{
		uint8	   *p;
		uint8		aad[TCE_DET_HEADER_LEN + 64];
		size_t		aadlen;

		if (version < 1 || version > (uint32) key->current_version)
			TceInvalidCiphertext();
		if (len > MaxAllocSize - VARHDRSZ - TCE_DET_OVERHEAD)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "plaintext is too large");
		out = palloc(VARHDRSZ + TCE_DET_OVERHEAD + len);
		SET_VARSIZE(out, VARHDRSZ + TCE_DET_OVERHEAD + len);
		p = (uint8 *) VARDATA(out);
		p[0] = TCE_DETERMINISTIC;
		memcpy(p + 1, key_id, KMS_KEY_ID_LEN);
		p[17] = (uint8) (version >> 24);
		p[18] = (uint8) (version >> 16);
		p[19] = (uint8) (version >> 8);
		p[20] = (uint8) version;
		aadlen = TceDetAad(p, is_text, aad);
		if (kms_siv_encrypt(TceSivFor(key_id, version), aad, aadlen,
							(const uint8 *) data, len,
							p + TCE_DET_HEADER_LEN, p + TCE_DET_OVERHEAD) != 0)
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "encryption failed");
	}
	KmsAuditData(KMS_OP_ENCRYPT, key->key_id, key->key_id_str, (int32) version);
	return out;
}

struct varlena *
TceSealPlain(TceColumnKey *ck, const char *data, Size len, bool is_text)
{
	return TceSealWithKey(ck->key_id, (uint32) ck->det_version, ck->deterministic,
						  data, len, is_text, false);
}

/*
 * Open a sealed deterministic value (p, vlen; the imported flag may be set):
 * op checked on its key when check_access.  Returns the plaintext
 * (palloc'd, *len bytes, followed by a NUL) and its key in *key_out.
 */
static char *
TceOpenDeterministic(const uint8 *p, Size vlen, const KmsTceValueInfo *info,
					 bool is_text, KmsOp op, bool check_access, Size *len,
					 KmsKeyInfo **key_out, void (*invalid) (void))
{
	KmsKeyInfo *key = KmsLookupKeyById(info->key_id);
	uint8		header[TCE_DET_HEADER_LEN];
	uint8		aad[TCE_DET_HEADER_LEN + 64];
	size_t		aadlen;
	Size		ctlen = vlen - TCE_DET_OVERHEAD;
	char	   *out;

	if (key == NULL)
	{
		char		kid[37];

		/* a foreign value: only those who could see every key learn that */
		if (!check_access || KmsIsAdmin())
			invalid();
		KmsUuidToString(info->key_id, kid);
		KmsKeyNotFound(kid, op);
	}
	if (check_access)
	{
		KmsContext	cctx;
		KmsContextPair cpair;

		TceContext(is_text, &cctx, &cpair);
		KmsCheckAccessCtx(key, op, NULL, cctx.pairs, cctx.npairs);
	}
	KmsCheckUsable(key);
	if (key->usage != KMS_USAGE_ENCRYPT_DECRYPT ||
		info->version > (uint32) key->current_version)
		invalid();
	memcpy(header, p, TCE_DET_HEADER_LEN);
	header[0] &= ~TCE_IMPORTED;
	aadlen = TceDetAad(header, is_text, aad);
	out = palloc(ctlen + 1);
	if (kms_siv_decrypt(TceSivFor(info->key_id, info->version), aad, aadlen,
						p + TCE_DET_HEADER_LEN, p + TCE_DET_OVERHEAD, ctlen,
						(uint8 *) out) != 0)
		invalid();
	out[ctlen] = '\0';
	*len = ctlen;
	*key_out = key;
	return out;
}

/*
 * The plaintext of a value (palloc'd, *len bytes, followed by a NUL), with
 * Decrypt on its key checked.  A pending value is its own plaintext.
 */
char *
TceDecrypt(struct varlena *value, bool is_text, Size *len)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(value);
	Size		vlen = VARSIZE_ANY_EXHDR(value);
	KmsTceValueInfo info;
	char	   *out;

	TceParse(p, vlen, &info);
	if (!info.sealed)
	{
		out = palloc(vlen);
		memcpy(out, p + 1, vlen - 1);
		out[vlen - 1] = '\0';
		*len = vlen - 1;
		return out;
	}
	if (!info.deterministic)
	{
		KmsContext	ctx;
		KmsContextPair pair;
		KmsKeyInfo *key = NULL;
		bytea	   *blob = (bytea *) value;
		bytea	   *pt;

		if (p[0] & TCE_IMPORTED)
			blob = (bytea *) TceStoredCopy(value);
		TceContext(is_text, &ctx, &pair);
		pt = KmsDecryptData(blob, &ctx, NULL, KMS_OP_DECRYPT, true, &key);
		KmsAuditData(KMS_OP_DECRYPT, key->key_id, key->key_id_str, (int32) info.version);
		*len = VARSIZE(pt) - VARHDRSZ;
		/* room for the NUL: the blob is at least 61 bytes longer */
		out = (char *) pt;
		memmove(out, VARDATA(pt), *len);
		out[*len] = '\0';
		return out;
	}
	else
	{
		KmsKeyInfo *key;

		out = TceOpenDeterministic(p, vlen, &info, is_text, KMS_OP_DECRYPT, true, len, &key,
								   TceInvalidCiphertext);
		KmsAuditData(KMS_OP_DECRYPT, key->key_id, key->key_id_str, (int32) info.version);
		return out;
	}
}

/* kms_decrypt()'s wording: the blob need not come from a column */
static void
TceInvalidBlob(void)
{
	kms_error(InvalidCiphertextException, KMS_SQLSTATE_INVALID_CIPHERTEXT,
			  "the ciphertext is invalid, was altered, or does not match the encryption context");
}

/*
 * kms_decrypt() (and kms_re_encrypt()) of a deterministic value, the stored
 * form kms_column_ciphertext() gives: envelope/ hands blobs of format 0x02
 * here (KmsSetFormatDecryptor, from src/pg_kms.c).  The context must be the
 * one the value was sealed under, {"pg_kms:column": "<type name>"}, as for
 * randomized values.  No audit here: the caller counts the call.
 */
bytea *
KmsTceDecryptBlob(bytea *blob, KmsContext *ctx, const char *expected_keyref,
				  KmsOp op, bool check_access, KmsKeyInfo **key_out)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(blob);
	Size		vlen = VARSIZE_ANY_EXHDR(blob);
	KmsTceValueInfo info;
	KmsKeyInfo *key;
	bool		is_text;
	char	   *pt;
	Size		len;
	bytea	   *out;

	/* TceParse's own error speaks of a column value: not here */
	if (vlen < TCE_DET_OVERHEAD ||
		(p[1 + KMS_KEY_ID_LEN] | p[2 + KMS_KEY_ID_LEN] |
		 p[3 + KMS_KEY_ID_LEN] | p[4 + KMS_KEY_ID_LEN]) == 0)
		TceInvalidBlob();
	TceParse(p, vlen, &info);
	if (!info.sealed || !info.deterministic || (p[0] & TCE_IMPORTED))
		TceInvalidBlob();
	if (ctx == NULL || ctx->npairs != 1 ||
		ctx->pairs[0].keylen != strlen(TCE_CONTEXT_KEY) ||
		memcmp(ctx->pairs[0].key, TCE_CONTEXT_KEY, ctx->pairs[0].keylen) != 0)
		TceInvalidBlob();
	if (ctx->pairs[0].vallen == strlen(TCE_TYPE_NAME(true)) &&
		memcmp(ctx->pairs[0].val, TCE_TYPE_NAME(true), ctx->pairs[0].vallen) == 0)
		is_text = true;
	else if (ctx->pairs[0].vallen == strlen(TCE_TYPE_NAME(false)) &&
			 memcmp(ctx->pairs[0].val, TCE_TYPE_NAME(false), ctx->pairs[0].vallen) == 0)
		is_text = false;
	else
		TceInvalidBlob();

	if (expected_keyref != NULL)
	{
		KmsKeyInfo *expected = KmsResolveKeyCtx(expected_keyref, op,
												ctx->pairs, ctx->npairs);

		if (memcmp(expected->key_id, info.key_id, KMS_KEY_ID_LEN) != 0)
			kms_error(IncorrectKeyException, KMS_SQLSTATE_INCORRECT_KEY,
					  "the key \"%s\" is not the key that encrypted this ciphertext",
					  expected_keyref);
	}
	pt = TceOpenDeterministic(p, vlen, &info, is_text, op, check_access, &len, &key,
							  TceInvalidBlob);
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), pt, len);
	kms_cleanse(pt, len);
	pfree(pt);
	if (key_out)
		*key_out = key;
	return out;
}

/* May the current role decrypt this sealed value (no error, no audit)? */
bool
TceMayDecrypt(struct varlena *value)
{
	KmsTceValueInfo info;
	KmsKeyInfo *key;

	KmsTceValueGetInfo(value, &info);
	if (!info.sealed)
		return true;
	key = KmsLookupKeyById(info.key_id);
	return key != NULL && (key->allowed_ops & KMS_OPBIT(KMS_OP_DECRYPT)) != 0;
}

/* ----------------------------------------------------------------
 * Coercion to a column
 * ----------------------------------------------------------------
 */

/* Does a sealed value already satisfy column ck?  (to_current: see tce.h) */
static bool
TceMatches(TceColumnKey *ck, KmsTceValueInfo *info, bool to_current)
{
	if (memcmp(info->key_id, ck->key_id, KMS_KEY_ID_LEN) != 0 ||
		info->deterministic != ck->deterministic)
		return false;
	if (info->deterministic)
		return info->version == (uint32) ck->det_version;
	if (to_current)
	{
		KmsKeyInfo *key = TceKeyFor(ck->key_id, KMS_OP_ENCRYPT);

		return info->version == (uint32) key->current_version;
	}
	return true;
}

static struct varlena *
TceReseal(struct varlena *value, TceColumnKey *ck, bool is_text)
{
	Size		len;
	char	   *pt = TceDecrypt(value, is_text, &len);
	struct varlena *volatile out = NULL;

	PG_TRY();
	{
		out = TceSealPlain(ck, pt, len, is_text);
	}
	PG_FINALLY();
	{
		kms_cleanse(pt, len);
	}
	PG_END_TRY();
	return out;
}

/* An imported value must be for the column as it is: no re-encryption. */
static void
TceCheckImport(TceColumnKey *ck, KmsTceValueInfo *info)
{
	char		want[37];
	char		got[37];

	if (!ck->key_known)
		return;					/* restore before the keys: see columnkey.c */
	KmsUuidToString(ck->key_id, want);
	KmsUuidToString(info->key_id, got);
	if (memcmp(info->key_id, ck->key_id, KMS_KEY_ID_LEN) != 0)
		kms_error(IncorrectKeyException, KMS_SQLSTATE_INCORRECT_KEY,
				  "the ciphertext was encrypted under key \"%s\", not under the column's key \"%s\"",
				  got, want);
	if (info->deterministic != ck->deterministic)
		kms_error(IncorrectKeyException, KMS_SQLSTATE_INCORRECT_KEY,
				  "the ciphertext is %s, but the column is %s",
				  info->deterministic ? "deterministic" : "randomized",
				  ck->deterministic ? "deterministic" : "randomized");
	if (info->deterministic && ck->det_version > 0 &&
		info->version != (uint32) ck->det_version)
		kms_error(IncorrectKeyException, KMS_SQLSTATE_INCORRECT_KEY,
				  "the deterministic ciphertext is under version %u of key \"%s\", but the column uses version %d",
				  info->version, want, ck->det_version);
}

/* The column key for an import: the key if it can be known now. */
static TceColumnKey *
TceImportColumnKey(int32 typmod)
{
	TceColumnKey *ck = TceGetColumnKey(typmod, false);

	if (!ck->key_known)
		TceTryResolve(ck);
	return ck;
}

struct varlena *
TceCoerce(struct varlena *value, int32 typmod, bool is_text)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(value);
	Size		len = VARSIZE_ANY_EXHDR(value);
	KmsTceValueInfo info;
	TceColumnKey *ck;

	if (typmod < 0)
		return value;
	TceWriting();
	TceParse(p, len, &info);
	if (info.sealed && (p[0] & TCE_IMPORTED))
	{
		ck = TceImportColumnKey(typmod);
		TceCheckImport(ck, &info);
		return TceStoredCopy(value);
	}
	ck = TceGetColumnKey(typmod, true);
	if (!info.sealed)
		return TceSealPlain(ck, (const char *) p + 1, len - 1, is_text);
	if (TceMatches(ck, &info, false))
		return value;
	return TceReseal(value, ck, is_text);
}

struct varlena *
TceImport(const uint8 *p, Size len, int32 typmod, bool is_text)
{
	KmsTceValueInfo info;
	struct varlena *v;

	TceParse(p, len, &info);
	if (!info.sealed)
		TceInvalidCiphertext();
	v = palloc(VARHDRSZ + len);
	SET_VARSIZE(v, VARHDRSZ + len);
	memcpy(VARDATA(v), p, len);
	((uint8 *) VARDATA(v))[0] &= ~TCE_IMPORTED;
	if (typmod < 0)
	{
		((uint8 *) VARDATA(v))[0] |= TCE_IMPORTED;
		return v;
	}
	TceWriting();
	TceCheckImport(TceImportColumnKey(typmod), &info);
	return v;
}

/* ----------------------------------------------------------------
 * For kms_reencrypt_column (tce.h)
 * ----------------------------------------------------------------
 */
struct varlena *
KmsTceSeal(struct varlena *value, int32 typmod, bool is_text, bool to_current)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(value);
	Size		len = VARSIZE_ANY_EXHDR(value);
	KmsTceValueInfo info;
	TceColumnKey *ck;

	if (typmod < 0)
		elog(ERROR, "KmsTceSeal needs a column typmod");
	TceParse(p, len, &info);
	ck = TceGetColumnKey(typmod, true);
	if (!info.sealed)
		return TceSealPlain(ck, (const char *) p + 1, len - 1, is_text);
	if (TceMatches(ck, &info, to_current))
		return (p[0] & TCE_IMPORTED) ? TceStoredCopy(value) : value;
	return TceReseal(value, ck, is_text);
}

bool
KmsTceNeedsReseal(struct varlena *value, int32 typmod)
{
	KmsTceValueInfo info;

	KmsTceValueGetInfo(value, &info);
	if (!info.sealed)
		return true;
	return !TceMatches(TceGetColumnKey(typmod, true), &info, true);
}
