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

void
KmsUuidToString(const uint8 *u, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int			j = 0;

	for (int i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 0xf];
	}
	out[j] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Accept exactly the canonical 8-4-4-4-12 form, either case. */
bool
KmsUuidFromString(const char *s, uint8 *out)
{
	int			j = 0;

	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36;)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[j++] = (uint8) ((hi << 4) | lo);
		i += 2;
	}
	return j == 16;
}

Datum
KmsUuidDatum(const uint8 *key_id)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	memcpy(u->data, key_id, KMS_KEY_ID_LEN);
	return UUIDPGetDatum(u);
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
