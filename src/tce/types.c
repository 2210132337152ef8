/*-------------------------------------------------------------------------
 *
 * types.c
 *	  SQL entry points of encrypted_text and encrypted_bytea: input,
 *	  output, receive, send, the length coercion that seals a value for its
 *	  column, the casts from and to text / bytea, and inspection without
 *	  plaintext (kms_column_value_info, kms_column_ciphertext).
 *
 *	  Input with typmod -1 (every literal and parameter) returns a pending
 *	  value; input with a typmod (COPY, record_in, json populate, logical
 *	  replication) and the length coercion seal it.  The ciphertext form
 *	  ('pg_kms:v1:' || base64 of the stored value; binary: a 7-byte magic and
 *	  the stored bytes) is accepted back by input and receive without
 *	  Decrypt and without re-encrypting, checked against the column's key.
 *	  Output and send give plaintext or that form (pg_kms.column_output,
 *	  guard.c).
 *
 * Locking: none.
 *
 * IDENTIFICATION
 *	  src/tce/types.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "tce/tce_internal.h"

/* ----------------------------------------------------------------
 * Ciphertext forms
 * ----------------------------------------------------------------
 */
static char *
TceToTextForm(struct varlena *value)
{
	const char *p = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);
	int			enclen = pg_b64_enc_len(len);
	char	   *out = palloc(TCE_TEXT_PREFIX_LEN + enclen + 1);
	char	   *stored = palloc(len);
	int			n;
	KmsTceValueInfo info;

	TceParse((const uint8 *) p, len, &info);
	if (!info.sealed)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "an unsealed %s value has no ciphertext form",
				  "encrypted column");
	/* the imported flag is memory-only: print the stored format byte */
	memcpy(stored, p, len);
	stored[0] &= ~TCE_IMPORTED;
	memcpy(out, TCE_TEXT_PREFIX, TCE_TEXT_PREFIX_LEN);
	n = pg_b64_encode(stored, len, out + TCE_TEXT_PREFIX_LEN, enclen);
	if (n < 0)
		TceInvalidCiphertext();
	out[TCE_TEXT_PREFIX_LEN + n] = '\0';
	pfree(stored);
	return out;
}

static struct varlena *
TceFromTextForm(const char *str, int32 typmod, bool is_text)
{
	const char *b64 = str + TCE_TEXT_PREFIX_LEN;
	int			b64len = strlen(b64);
	int			cap = pg_b64_dec_len(b64len);
	char	   *buf = palloc(cap + 1);
	int			n = pg_b64_decode(b64, b64len, buf, cap);

	if (n <= 0)
		TceInvalidCiphertext();
	return TceImport((const uint8 *) buf, n, typmod, is_text);
}

static bool
TceIsTextForm(const char *str)
{
	return strncmp(str, TCE_TEXT_PREFIX, TCE_TEXT_PREFIX_LEN) == 0;
}

/* Seal a pending value for typmod (>= 0), wiping the pending copy. */
static struct varlena *
TceSealPending(struct varlena *pending, int32 typmod, bool is_text)
{
	struct varlena *out;

	if (typmod < 0)
		return pending;
	out = TceCoerce(pending, typmod, is_text);
	kms_cleanse(VARDATA(pending), VARSIZE(pending) - VARHDRSZ);
	pfree(pending);
	return out;
}

/* ----------------------------------------------------------------
 * Input and output
 * ----------------------------------------------------------------
 */
static Datum
TceIn(FunctionCallInfo fcinfo, bool is_text)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	struct varlena *pending;

	TceTouched();
	if (TceIsTextForm(str))
		PG_RETURN_POINTER(TceFromTextForm(str, typmod, is_text));
	if (is_text)
		pending = TceMakePending(str, strlen(str));
	else
	{
		bytea	   *b = DatumGetByteaPP(DirectFunctionCall1(byteain, CStringGetDatum(str)));

		pending = TceMakePending(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	}
	PG_RETURN_POINTER(TceSealPending(pending, typmod, is_text));
}

static Datum
TceOut(FunctionCallInfo fcinfo, bool is_text)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	Size		len;
	char	   *pt;

	TceTouched();
	if (TceOutputCiphertext())
		PG_RETURN_CSTRING(TceToTextForm(v));
	/* the DETAIL of a violation by a writer without Decrypt (guard.c) */
	if (TceDescribingWrite(fcinfo) && !TceMayDecrypt(v))
		PG_RETURN_CSTRING(TceToTextForm(v));
	pt = TceDecrypt(v, is_text, &len);
	if (is_text)
		PG_RETURN_CSTRING(pt);
	else
	{
		bytea	   *b = palloc(VARHDRSZ + len);
		char	   *out;

		SET_VARSIZE(b, VARHDRSZ + len);
		memcpy(VARDATA(b), pt, len);
		kms_cleanse(pt, len);
		out = DatumGetCString(DirectFunctionCall1(byteaout, PointerGetDatum(b)));
		kms_cleanse(VARDATA(b), len);
		PG_RETURN_CSTRING(out);
	}
}

static Datum
TceRecv(FunctionCallInfo fcinfo, bool is_text)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			avail = buf->len - buf->cursor;
	struct varlena *pending;

	TceTouched();
	if (avail >= TCE_BINARY_MAGIC_LEN &&
		memcmp(buf->data + buf->cursor, TCE_BINARY_MAGIC, TCE_BINARY_MAGIC_LEN) == 0)
	{
		const char *p;

		(void) pq_getmsgbytes(buf, TCE_BINARY_MAGIC_LEN);
		avail -= TCE_BINARY_MAGIC_LEN;
		p = pq_getmsgbytes(buf, avail);
		PG_RETURN_POINTER(TceImport((const uint8 *) p, avail, typmod, is_text));
	}
	if (is_text)
	{
		int			nbytes;
		char	   *str = pq_getmsgtext(buf, avail, &nbytes);

		pending = TceMakePending(str, nbytes);
		kms_cleanse(str, nbytes);
	}
	else
		pending = TceMakePending(pq_getmsgbytes(buf, avail), avail);
	PG_RETURN_POINTER(TceSealPending(pending, typmod, is_text));
}

static Datum
TceSend(FunctionCallInfo fcinfo, bool is_text)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	StringInfoData buf;

	TceTouched();
	pq_begintypsend(&buf);
	if (TceOutputCiphertext())
	{
		const uint8 *p = (const uint8 *) VARDATA_ANY(v);
		Size		len = VARSIZE_ANY_EXHDR(v);
		KmsTceValueInfo info;
		uint8		fmt;

		TceParse(p, len, &info);
		if (!info.sealed)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "an unsealed %s value has no ciphertext form",
					  "encrypted column");
		pq_sendbytes(&buf, TCE_BINARY_MAGIC, TCE_BINARY_MAGIC_LEN);
		fmt = p[0] & ~TCE_IMPORTED;
		pq_sendbyte(&buf, fmt);
		pq_sendbytes(&buf, (const char *) p + 1, len - 1);
	}
	else
	{
		Size		len;
		char	   *pt = TceDecrypt(v, is_text, &len);

		if (is_text)
			pq_sendtext(&buf, pt, len);
		else
			pq_sendbytes(&buf, pt, len);
		kms_cleanse(pt, len);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(encrypted_text_in);
Datum
encrypted_text_in(PG_FUNCTION_ARGS)
{
	return TceIn(fcinfo, true);
}

PG_FUNCTION_INFO_V1(encrypted_bytea_in);
Datum
encrypted_bytea_in(PG_FUNCTION_ARGS)
{
	return TceIn(fcinfo, false);
}

PG_FUNCTION_INFO_V1(encrypted_text_out);
Datum
encrypted_text_out(PG_FUNCTION_ARGS)
{
	return TceOut(fcinfo, true);
}

PG_FUNCTION_INFO_V1(encrypted_bytea_out);
Datum
encrypted_bytea_out(PG_FUNCTION_ARGS)
{
	return TceOut(fcinfo, false);
}

PG_FUNCTION_INFO_V1(encrypted_text_recv);
Datum
encrypted_text_recv(PG_FUNCTION_ARGS)
{
	return TceRecv(fcinfo, true);
}

PG_FUNCTION_INFO_V1(encrypted_bytea_recv);
Datum
encrypted_bytea_recv(PG_FUNCTION_ARGS)
{
	return TceRecv(fcinfo, false);
}

PG_FUNCTION_INFO_V1(encrypted_text_send);
Datum
encrypted_text_send(PG_FUNCTION_ARGS)
{
	return TceSend(fcinfo, true);
}

PG_FUNCTION_INFO_V1(encrypted_bytea_send);
Datum
encrypted_bytea_send(PG_FUNCTION_ARGS)
{
	return TceSend(fcinfo, false);
}

/* ----------------------------------------------------------------
 * Casts
 * ----------------------------------------------------------------
 */

/* encrypted_text(encrypted_text, int4, bool): the length coercion */
PG_FUNCTION_INFO_V1(encrypted_text_coerce);
Datum
encrypted_text_coerce(PG_FUNCTION_ARGS)
{
	TceTouched();
	PG_RETURN_POINTER(TceCoerce(PG_GETARG_VARLENA_PP(0), PG_GETARG_INT32(1), true));
}

PG_FUNCTION_INFO_V1(encrypted_bytea_coerce);
Datum
encrypted_bytea_coerce(PG_FUNCTION_ARGS)
{
	TceTouched();
	PG_RETURN_POINTER(TceCoerce(PG_GETARG_VARLENA_PP(0), PG_GETARG_INT32(1), false));
}

/* text -> encrypted_text, bytea -> encrypted_bytea (assignment): plaintext */
static Datum
TceFromPlain(FunctionCallInfo fcinfo, bool is_text)
{
	struct varlena *src = PG_GETARG_VARLENA_PP(0);

	TceTouched();
	PG_RETURN_POINTER(TceSealPending(TceMakePending(VARDATA_ANY(src), VARSIZE_ANY_EXHDR(src)),
									 PG_GETARG_INT32(1), is_text));
}

PG_FUNCTION_INFO_V1(encrypted_text_from_text);
Datum
encrypted_text_from_text(PG_FUNCTION_ARGS)
{
	return TceFromPlain(fcinfo, true);
}

PG_FUNCTION_INFO_V1(encrypted_bytea_from_bytea);
Datum
encrypted_bytea_from_bytea(PG_FUNCTION_ARGS)
{
	return TceFromPlain(fcinfo, false);
}

/* encrypted_text -> text, encrypted_bytea -> bytea (explicit): Decrypt */
static Datum
TceToPlain(FunctionCallInfo fcinfo, bool is_text)
{
	Size		len;
	char	   *pt;
	struct varlena *out;

	TceTouched();
	pt = TceDecrypt(PG_GETARG_VARLENA_PP(0), is_text, &len);
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), pt, len);
	kms_cleanse(pt, len);
	PG_RETURN_POINTER(out);
}

PG_FUNCTION_INFO_V1(encrypted_text_to_text);
Datum
encrypted_text_to_text(PG_FUNCTION_ARGS)
{
	return TceToPlain(fcinfo, true);
}

PG_FUNCTION_INFO_V1(encrypted_bytea_to_bytea);
Datum
encrypted_bytea_to_bytea(PG_FUNCTION_ARGS)
{
	return TceToPlain(fcinfo, false);
}

/* ----------------------------------------------------------------
 * Inspection without plaintext
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(kms_column_value_info);
Datum
kms_column_value_info(PG_FUNCTION_ARGS)
{
	KmsTceValueInfo info;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	KmsTceValueGetInfo(PG_GETARG_VARLENA_PP(0), &info);
	values[0] = BoolGetDatum(info.sealed);
	if (info.sealed)
	{
		values[1] = KmsUuidDatum(info.key_id);
		values[2] = Int32GetDatum((int32) info.version);
		values[3] = BoolGetDatum(info.deterministic);
	}
	else
		nulls[1] = nulls[2] = nulls[3] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(kms_column_ciphertext);
Datum
kms_column_ciphertext(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(v);
	KmsTceValueInfo info;
	bytea	   *out;

	KmsTceValueGetInfo(v, &info);
	if (!info.sealed)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "an unsealed %s value has no ciphertext form",
				  "encrypted column");
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), VARDATA_ANY(v), len);
	((uint8 *) VARDATA(out))[0] &= ~TCE_IMPORTED;
	PG_RETURN_BYTEA_P(out);
}

/*
 * || between an encrypted value and text: refused.  Without it, anynonarray
 * || text would print the value through its output function and make
 * plaintext that an INSERT ... SELECT stores in a text column.
 */
PG_FUNCTION_INFO_V1(encrypted_column_concat);
Datum
encrypted_column_concat(PG_FUNCTION_ARGS)
{
	kms_error(UnsupportedOperationException, KMS_SQLSTATE_UNSUPPORTED,
			  "an encrypted value cannot be concatenated; cast it to text or bytea explicitly first");
	PG_RETURN_NULL();
}
