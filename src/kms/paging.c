/*-------------------------------------------------------------------------
 *
 * paging.c
 *	  What the KMS entry points share for AWS fidelity (issue 15): paging
 *	  of the list operations (Limit / Marker in, NextMarker out), the
 *	  EncryptionAlgorithm parameter and DryRun.
 *
 *	  Paging: a list is produced in a fixed order, each row with a position
 *	  string that grows strictly along that order (KmsPagePos*).  A marker is
 *	  the base64 of "<list>:<position of the last row returned>", so a page
 *	  resumes after that row even if it was deleted meanwhile.  The SQL
 *	  functions return the rows of the page; the last row of a truncated
 *	  page carries the marker of the next page in its column next_marker
 *	  (NULL everywhere else).  Without limit and marker every row comes back
 *	  at once, as before.
 *
 * Locking: none.
 *
 * IDENTIFICATION
 *	  src/kms/paging.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "kms/kms_internal.h"

/*
 * Start paging a list: limit and marker are the arguments limit_arg and
 * limit_arg + 1 (either may be NULL or absent); max_limit and default_limit
 * are the operation's (ListAliases: 100 and 50); a row has ncols columns,
 * then next_marker (absent from a 1.1 catalog's definition).
 */
void
KmsPagerInit(KmsPager *pg, FunctionCallInfo fcinfo, int limit_arg,
			 const char *list, int max_limit, int default_limit,
			 Tuplestorestate *ts, TupleDesc tupdesc, int ncols)
{
	char	   *marker = KmsArgTextOpt(fcinfo, limit_arg + 1);

	memset(pg, 0, sizeof(*pg));
	pg->list = list;
	pg->ts = ts;
	pg->tupdesc = tupdesc;
	pg->ncols = ncols;
	pg->has_marker = tupdesc->natts > ncols;
	pg->limit = -1;
	if (KmsArgGiven(fcinfo, limit_arg))
	{
		int32		limit = PG_GETARG_INT32(limit_arg);

		/* AWS API reference, e.g. ListAliases, Limit: "it must be between 1 and 100, inclusive" */
		if (limit < 1 || limit > max_limit)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "limit must be between 1 and %d, inclusive", max_limit);
		pg->limit = limit;
	}
	if (marker != NULL)
	{
		int			len = strlen(marker);
		int			declen;
		char	   *dec;
		size_t		plen = strlen(list);

		/* the model: Marker string[1..1024] */
		if (len < 1 || len > 1024)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "1 validation error detected: Value at 'marker' failed to satisfy constraint: Member must have length between 1 and 1024");
		dec = palloc(pg_b64_dec_len(len) + 1);
		declen = pg_b64_decode(marker, len, dec, pg_b64_dec_len(len));
		if (declen < 0 || (size_t) declen <= plen || strncmp(dec, list, plen) != 0 ||
			dec[plen] != ':')
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_INVALID_MARKER), errhidestmt(true),
					 errmsg("InvalidMarkerException: Invalid marker"),
					 errdetail("The marker was not returned by %s.", list)));
		dec[declen] = '\0';
		pg->after = pstrdup(dec + plen + 1);
		if (pg->limit < 0)
			pg->limit = default_limit;
	}
}

/* The position of a row ordered by (timestamp, id). */
char *
KmsPagePosTime(TimestampTz t, const char *id)
{
	/* biased so that the hex digits sort as the signed times do */
	return psprintf("%016llx%s", (unsigned long long) ((uint64) t ^ (UINT64CONST(1) << 63)), id);
}

/* The position of a row ordered by an integer. */
char *
KmsPagePosInt(int64 n)
{
	return psprintf("%016llx", (unsigned long long) ((uint64) n ^ (UINT64CONST(1) << 63)));
}

/*
 * Does a row at position pos belong on this page?  Rows before the marker
 * are skipped; the row after a full page marks the page truncated.  Once
 * this returns false with pg->done set, the caller may stop.
 */
bool
KmsPagerWant(KmsPager *pg, const char *pos)
{
	if (pg->done)
		return false;
	/* positions compare bytewise: the lists order by "C" collation */
	if (pg->after != NULL && strcmp(pos, pg->after) <= 0)
		return false;
	if (pg->limit >= 0 && pg->emitted >= pg->limit)
	{
		pg->truncated = true;
		pg->done = true;
		return false;
	}
	return true;
}

static void
KmsPagerFlush(KmsPager *pg, const char *next_marker)
{
	if (pg->held_values == NULL || !pg->holding)
		return;
	if (pg->has_marker)
	{
		pg->held_values[pg->ncols] = next_marker ? CStringGetTextDatum(next_marker) : (Datum) 0;
		pg->held_nulls[pg->ncols] = next_marker == NULL;
	}
	tuplestore_putvalues(pg->ts, pg->tupdesc, pg->held_values, pg->held_nulls);
	pg->holding = false;
}

/*
 * Put a row (ncols values: next_marker follows) at position pos.  It is held back until the next row or KmsPagerFinish, which knows
 * whether a marker goes with it.
 */
void
KmsPagerPut(KmsPager *pg, Datum *values, bool *nulls, const char *pos)
{
	KmsPagerFlush(pg, NULL);
	if (pg->held_values == NULL)
	{
		pg->held_values = palloc0(sizeof(Datum) * (pg->ncols + 1));
		pg->held_nulls = palloc0(sizeof(bool) * (pg->ncols + 1));
	}
	memcpy(pg->held_values, values, sizeof(Datum) * pg->ncols);
	memcpy(pg->held_nulls, nulls, sizeof(bool) * pg->ncols);
	pg->held_pos = pstrdup(pos);
	pg->holding = true;
	pg->emitted++;
}

/* Emit the last row, with the next page's marker if the page is truncated. */
void
KmsPagerFinish(KmsPager *pg)
{
	char	   *marker = NULL;

	if (pg->truncated && pg->holding)
	{
		char	   *raw = psprintf("%s:%s", pg->list, pg->held_pos);
		int			rawlen = strlen(raw);
		int			enclen = pg_b64_enc_len(rawlen);

		marker = palloc(enclen + 1);
		enclen = pg_b64_encode(raw, rawlen, marker, enclen);
		if (enclen < 0)
			elog(ERROR, "could not encode a marker");
		marker[enclen] = '\0';
	}
	KmsPagerFlush(pg, marker);
}

/* ----------------------------------------------------------------
 * EncryptionAlgorithm and DryRun
 * ----------------------------------------------------------------
 */

/*
 * The EncryptionAlgorithm of Encrypt, Decrypt and ReEncrypt (argument
 * name for messages).  The model's enum: SYMMETRIC_DEFAULT,
 * RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE; the default, and the only
 * one of a symmetric key, is SYMMETRIC_DEFAULT.
 */
void
KmsCheckEncryptionAlgorithm(const char *alg, const char *name)
{
	if (alg == NULL || strcmp(alg, "SYMMETRIC_DEFAULT") == 0)
		return;
	if (strcmp(alg, "RSAES_OAEP_SHA_1") == 0 || strcmp(alg, "RSAES_OAEP_SHA_256") == 0 ||
		strcmp(alg, "SM2PKE") == 0)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_KEY_USAGE), errhidestmt(true),
				 errmsg("InvalidKeyUsageException: The encryption algorithm %s is not compatible with the key spec SYMMETRIC_DEFAULT.", alg),
				 errdetail("pg_kms keys are symmetric: %s must be SYMMETRIC_DEFAULT.", name)));
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
			 errmsg("ValidationException: 1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]",
					alg, name)));
}

/* DryRun: the call would have succeeded (AWS raises, rather than returning). */
void
KmsDryRunSucceeded(const char *operation)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_DRY_RUN), errhidestmt(true),
			 errmsg("DryRunOperationException: The request would have succeeded, but the DryRun option is set."),
			 errdetail("%s was checked and not performed.", operation)));
}
