/*-------------------------------------------------------------------------
 *
 * compare.c
 *	  Equality and the btree order of deterministic values, on ciphertext.
 *
 *	  Two sealed deterministic values compare by their bytes (key id,
 *	  version, SIV, ciphertext): equal plaintexts under one key and version
 *	  give equal bytes.  The right-hand side of WHERE col = 'x', IN (...) or
 *	  = $1 never gets the column's typmod, so it arrives pending: it is
 *	  sealed with the other operand's own key and version (Encrypt or
 *	  Decrypt on that key) and the result kept in fn_extra, so a scan seals
 *	  it once.  Two pending values compare by plaintext (btree sorts an IN
 *	  list that way; no merge join or hash join is offered, so the two
 *	  orders never meet).  The order is the ciphertext's, meaningless to a
 *	  reader: the operators are named ~<~ and so on.  Randomized values
 *	  cannot be compared.  = and <> between encrypted_text and text treat
 *	  the text as a pending value (drivers that type parameters as text).
 *
 * Locking: none.
 *
 * IDENTIFICATION
 *	  src/tce/compare.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "tce/tce_internal.h"

/* fn_extra: the last pending operand sealed, and what it was sealed for */
typedef struct TceCmpCache
{
	uint8		key_id[KMS_KEY_ID_LEN];
	uint32		version;
	Size		ptlen;
	char	   *pt;				/* copy of the pending value's plaintext */
	struct varlena *sealed;
} TceCmpCache;

static void
TceNotComparable(void)
{
	kms_error(UnsupportedOperationException, KMS_SQLSTATE_UNSUPPORTED,
			  "values of a randomized encrypted column cannot be compared; declare the column with 'deterministic'");
}

static int
TceBytesCmp(const uint8 *a, Size alen, const uint8 *b, Size blen)
{
	int			c;

	/* the format byte is equal (0x02, maybe with the imported flag) */
	c = memcmp(a + 1, b + 1, Min(alen, blen) - 1);
	if (c != 0)
		return c;
	return (alen < blen) ? -1 : (alen > blen) ? 1 : 0;
}

/* The sealed form of pending plaintext pt under det's key and version. */
static const uint8 *
TceSealOperand(FunctionCallInfo fcinfo, const char *pt, Size ptlen,
			   KmsTceValueInfo *det, bool is_text, Size *outlen)
{
	TceCmpCache *c = (TceCmpCache *) fcinfo->flinfo->fn_extra;
	MemoryContext old;

	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(TceCmpCache));
		fcinfo->flinfo->fn_extra = c;
	}
	if (c->sealed == NULL || c->version != det->version || c->ptlen != ptlen ||
		memcmp(c->key_id, det->key_id, KMS_KEY_ID_LEN) != 0 ||
		memcmp(c->pt, pt, ptlen) != 0)
	{
		struct varlena *s = TceSealWithKey(det->key_id, det->version, true, pt, ptlen,
										   is_text, true);

		if (c->pt)
		{
			kms_cleanse(c->pt, c->ptlen);
			pfree(c->pt);
			c->pt = NULL;
		}
		if (c->sealed)
			pfree(c->sealed);
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		c->pt = palloc(ptlen + 1);
		memcpy(c->pt, pt, ptlen);
		c->sealed = palloc(VARSIZE(s));
		memcpy(c->sealed, s, VARSIZE(s));
		MemoryContextSwitchTo(old);
		memcpy(c->key_id, det->key_id, KMS_KEY_ID_LEN);
		c->version = det->version;
		c->ptlen = ptlen;
	}
	*outlen = VARSIZE(c->sealed) - VARHDRSZ;
	return (const uint8 *) VARDATA(c->sealed);
}

static int
TceCompareValues(FunctionCallInfo fcinfo, struct varlena *a, struct varlena *b,
				 bool is_text)
{
	const uint8 *ap = (const uint8 *) VARDATA_ANY(a);
	const uint8 *bp = (const uint8 *) VARDATA_ANY(b);
	Size		alen = VARSIZE_ANY_EXHDR(a);
	Size		blen = VARSIZE_ANY_EXHDR(b);
	KmsTceValueInfo ai;
	KmsTceValueInfo bi;

	TceTouched();
	TceParse(ap, alen, &ai);
	TceParse(bp, blen, &bi);
	if ((ai.sealed && !ai.deterministic) || (bi.sealed && !bi.deterministic))
		TceNotComparable();

	if (!ai.sealed && !bi.sealed)
	{
		int			c = memcmp(ap + 1, bp + 1, Min(alen, blen) - 1);

		if (c != 0)
			return c;
		return (alen < blen) ? -1 : (alen > blen) ? 1 : 0;
	}
	if (!ai.sealed)
	{
		Size		slen;
		const uint8 *s = TceSealOperand(fcinfo, (const char *) ap + 1, alen - 1,
										&bi, is_text, &slen);

		return TceBytesCmp(s, slen, bp, blen);
	}
	if (!bi.sealed)
	{
		Size		slen;
		const uint8 *s = TceSealOperand(fcinfo, (const char *) bp + 1, blen - 1,
										&ai, is_text, &slen);

		return TceBytesCmp(ap, alen, s, slen);
	}
	return TceBytesCmp(ap, alen, bp, blen);
}

static int
TceCompare(FunctionCallInfo fcinfo, bool is_text)
{
	return TceCompareValues(fcinfo, PG_GETARG_VARLENA_PP(0), PG_GETARG_VARLENA_PP(1),
							is_text);
}

/*
 * encrypted_text against text (a driver that types its parameters as text,
 * a text column): the text is a pending value.
 */
static int
TceCompareText(FunctionCallInfo fcinfo, int encarg)
{
	text	   *t = PG_GETARG_TEXT_PP(1 - encarg);
	struct varlena *pending = TceMakePending(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	struct varlena *e = PG_GETARG_VARLENA_PP(encarg);
	int			c;

	c = encarg == 0 ? TceCompareValues(fcinfo, e, pending, true) :
		TceCompareValues(fcinfo, pending, e, true);
	kms_cleanse(VARDATA(pending), VARSIZE(pending) - VARHDRSZ);
	pfree(pending);
	return c;
}

PG_FUNCTION_INFO_V1(encrypted_text_cmp_text);
Datum
encrypted_text_cmp_text(PG_FUNCTION_ARGS)
{
	int			c = TceCompareText(fcinfo, 0);

	PG_RETURN_INT32(c < 0 ? -1 : c > 0 ? 1 : 0);
}

PG_FUNCTION_INFO_V1(encrypted_text_eq_text);
Datum
encrypted_text_eq_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TceCompareText(fcinfo, 0) == 0);
}

PG_FUNCTION_INFO_V1(encrypted_text_ne_text);
Datum
encrypted_text_ne_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TceCompareText(fcinfo, 0) != 0);
}

PG_FUNCTION_INFO_V1(text_eq_encrypted_text);
Datum
text_eq_encrypted_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TceCompareText(fcinfo, 1) == 0);
}

PG_FUNCTION_INFO_V1(text_ne_encrypted_text);
Datum
text_ne_encrypted_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TceCompareText(fcinfo, 1) != 0);
}

#define TCE_CMP_FUNCS(prefix, is_text) \
PG_FUNCTION_INFO_V1(prefix##_cmp); \
Datum prefix##_cmp(PG_FUNCTION_ARGS) \
{ int c = TceCompare(fcinfo, is_text); PG_RETURN_INT32(c < 0 ? -1 : c > 0 ? 1 : 0); } \
PG_FUNCTION_INFO_V1(prefix##_eq); \
Datum prefix##_eq(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(TceCompare(fcinfo, is_text) == 0); } \
PG_FUNCTION_INFO_V1(prefix##_ne); \
Datum prefix##_ne(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(TceCompare(fcinfo, is_text) != 0); } \
PG_FUNCTION_INFO_V1(prefix##_lt); \
Datum prefix##_lt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(TceCompare(fcinfo, is_text) < 0); } \
PG_FUNCTION_INFO_V1(prefix##_le); \
Datum prefix##_le(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(TceCompare(fcinfo, is_text) <= 0); } \
PG_FUNCTION_INFO_V1(prefix##_gt); \
Datum prefix##_gt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(TceCompare(fcinfo, is_text) > 0); } \
PG_FUNCTION_INFO_V1(prefix##_ge); \
Datum prefix##_ge(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(TceCompare(fcinfo, is_text) >= 0); }

TCE_CMP_FUNCS(encrypted_text, true)
TCE_CMP_FUNCS(encrypted_bytea, false)
