/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Names of operations and key states, UUID text and Datum forms, and the
 *	  set-returning-function helper every SQL part uses.
 *
 * IDENTIFICATION
 *	  src/common/util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "common/kms_common.h"

const char *const KmsOpNames[] = {
	"Decrypt",
	"Encrypt",
	"GenerateDataKey",
	"GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom",
	"ReEncryptTo",
	"CreateGrant",
	"RetireGrant",
	"DescribeKey",
	"GenerateMac",
	"VerifyMac",
	"ManageKey"
};

const char *const KmsKeyStateNames[] = {
	"Enabled", "Disabled", "PendingDeletion", "Deleted"
};

int
KmsOpFromName(const char *name)
{
	for (int i = 0; i < KMS_NUM_GRANT_OPS; i++)
		if (strcmp(name, KmsOpNames[i]) == 0)
			return i;
	return -1;
}

/* Encode n bytes as 2n lower-case hex digits and a NUL (out: 2n + 1). */
void
KmsHexEncode(const uint8 *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int
KmsHexDigit(char c, bool upper_ok)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (upper_ok && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode 2n hex digits into n bytes (upper-case digits too if upper_ok).
 * False at the first character that is not one; out is then partly written.
 */
bool
KmsHexDecode(const char *in, size_t n, uint8 *out, bool upper_ok)
{
	for (size_t i = 0; i < n; i++)
	{
		int			hi = KmsHexDigit(in[2 * i], upper_ok);
		int			lo = KmsHexDigit(in[2 * i + 1], upper_ok);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8) ((hi << 4) | lo);
	}
	return true;
}

/* The byte groups of a UUID's text form: 8-4-4-4-12 digits. */
static const int uuid_groups[5] = {4, 2, 2, 2, 6};

void
KmsUuidToString(const uint8 *u, char *out)
{
	for (int g = 0; g < 5; g++)
	{
		KmsHexEncode(u, uuid_groups[g], out);
		u += uuid_groups[g];
		out += 2 * uuid_groups[g];
		if (g < 4)
			*out++ = '-';
	}
}

/* Accept exactly the canonical 8-4-4-4-12 form, either case. */
bool
KmsUuidFromString(const char *s, uint8 *out)
{
	if (strlen(s) != 36)
		return false;
	for (int g = 0; g < 5; g++)
	{
		if (!KmsHexDecode(s, uuid_groups[g], out, true))
			return false;
		s += 2 * uuid_groups[g];
		out += uuid_groups[g];
		if (g < 4 && *s++ != '-')
			return false;
	}
	return true;
}

/* A random (version 4) UUID; false if no random bytes could be had. */
bool
KmsRandomUuid(uint8 *out)
{
	if (kms_random_bytes(out, 16) != 0)
		return false;
	out[6] = (out[6] & 0x0f) | 0x40;	/* RFC 4122 version 4 */
	out[8] = (out[8] & 0x3f) | 0x80;
	return true;
}

/* nbytes (at most 64) random bytes as hex: grant tokens and ids, salts. */
char *
KmsRandomHex(int nbytes)
{
	uint8		buf[64];
	char	   *out = palloc(nbytes * 2 + 1);

	Assert(nbytes <= 64);
	if (kms_random_bytes(buf, nbytes) != 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
	KmsHexEncode(buf, nbytes, out);
	return out;
}

Datum
KmsUuidDatum(const uint8 *key_id)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	memcpy(u->data, key_id, KMS_KEY_ID_LEN);
	return UUIDPGetDatum(u);
}

/*
 * CreateGrant's operations argument (argument n, text[]): its elements as
 * C strings (NULL for a null element, which the caller refuses in its
 * turn), *count of them.  Refuses a null or empty array with the error of
 * the API's dialect: KMS's ValidationException, or Secrets Manager's
 * InvalidParameterException if secrets_api.
 */
char	  **
KmsArgOperations(FunctionCallInfo fcinfo, int n, bool secrets_api, int *count)
{
	Datum	   *elems;
	bool	   *elemnulls;
	char	  **names;

	if (PG_ARGISNULL(n))
	{
		if (secrets_api)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "operations must not be null");
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "operations must not be null");
	}
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(n), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &elemnulls, count);
	if (*count == 0)
	{
		if (secrets_api)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "operations must list at least one operation");
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "operations must list at least one operation");
	}
	names = palloc(*count * sizeof(char *));
	for (int i = 0; i < *count; i++)
		names[i] = elemnulls[i] ? NULL : TextDatumGetCString(elems[i]);
	return names;
}

/* Start a materialized set-returning function (works on PG 14 too). */
Tuplestorestate *
KmsStartSRF(FunctionCallInfo fcinfo, TupleDesc *tupdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Tuplestorestate *ts;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errhidestmt(true),
				 errmsg("set-valued function called in context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	*tupdesc = CreateTupleDescCopy(*tupdesc);
	ts = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = *tupdesc;
	MemoryContextSwitchTo(old);
	return ts;
}
