/*-------------------------------------------------------------------------
 *
 * read_sql.c
 *	  The reading SQL entry points: GetSecretValue (get_secret,
 *	  get_secret_value) with its per-backend cache, BatchGetSecretValue,
 *	  DescribeSecret.  The listings are in list_sql.c.
 *
 * IDENTIFICATION
 *	  src/secrets/read_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "cache/cache.h"
#include "envelope/envelope.h"
#include "keystore/keystore.h"

#include "secrets/secrets_internal.h"
#include "secrets/remote.h"

/* ----------------------------------------------------------------
 * The per-backend GetSecretValue cache
 * ----------------------------------------------------------------
 */
static MemoryContext SecretCacheContext = NULL;
static HTAB *secret_cache = NULL;
static uint64 secret_cache_gen = 0;

/* Start the cache over, empty, as of generation gen. */
static void
SecretCacheReset(uint64 gen)
{
	HASHCTL		ctl;

	if (SecretCacheContext)
		MemoryContextReset(SecretCacheContext);
	else
		SecretCacheContext = AllocSetContextCreate(TopMemoryContext,
												   "pg_kms secret cache",
												   ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = SECRET_CACHE_KEYLEN;
	ctl.entrysize = sizeof(SecretCacheEntry);
	ctl.hcxt = SecretCacheContext;
	secret_cache = hash_create("pg_kms secrets", 64, &ctl,
							   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	secret_cache_gen = gen;
}

/*
 * At every entry point: drop the cache if anything changed since it was
 * filled.  One atomic read when nothing did.  Entries are only freed here,
 * so a pointer into the cache stays valid until the next entry point.
 *
 * The key cache's generation (cache/cache.c) moves on every change
 * committed anywhere, and, in this backend, on its own writes
 * (SecretChanged), on abort and on subtransaction abort, so it is all the
 * staleness test this cache needs.
 */
void
SecretCacheCheck(void)
{
	uint64		gen;

	KmsCheckGeneration();
	gen = KmsCurrentGeneration();
	if (likely(gen == secret_cache_gen && secret_cache != NULL))
		return;
	SecretCacheReset(gen);
}

/* A write: this backend forgets at once, every backend after commit. */
void
SecretChanged(void)
{
	KmsInvalidateAtCommit();
}

/* ----------------------------------------------------------------
 * GetSecretValue
 * ----------------------------------------------------------------
 */

/* Load the version named by (version_id, stage) into e (strings in cxt). */
bool
LoadVersion(SecretMeta *m, const char *version_id, const char *stage,
			SecretCacheEntry *e, MemoryContext cxt)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bool		found = false;

	v[0] = KmsUuidDatum(m->id);
	KmsCatalogEnter(&st);
	if (version_id)
	{
		v[1] = CStringGetTextDatum(version_id);
		found = KmsExec("SELECT version_id, value_type = 'SecretBinary', ciphertext, created_date "
						"FROM kms.secret_version WHERE secret_id = $1 AND version_id = $2",
						2, t, v, NULL, false, SPI_OK_SELECT) == 1;
	}
	else
	{
		v[1] = CStringGetTextDatum(stage);
		found = KmsExec("SELECT v.version_id, v.value_type = 'SecretBinary', v.ciphertext, v.created_date "
						"FROM kms.secret_stage s JOIN kms.secret_version v USING (secret_id, version_id) "
						"WHERE s.secret_id = $1 AND s.stage = $2",
						2, t, v, NULL, false, SPI_OK_SELECT) == 1;
	}
	if (found)
	{
		bool		isnull;
		Datum		d;

		strlcpy(e->version_id, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
				sizeof(e->version_id));
		e->binary = DatumGetBool(SpiDatum(0, 2, &isnull));
		d = SpiDatum(0, 3, &isnull);
		{
			bytea	   *src = DatumGetByteaPP(d);
			Size		len = VARSIZE_ANY_EXHDR(src);

			e->ciphertext = MemoryContextAlloc(cxt, VARHDRSZ + len);
			SET_VARSIZE(e->ciphertext, VARHDRSZ + len);
			memcpy(VARDATA(e->ciphertext), VARDATA_ANY(src), len);
		}
		e->created = DatumGetTimestampTz(SpiDatum(0, 4, &isnull));
		e->nstages = VersionStages(v[0], e->version_id, &e->stages, cxt);
	}
	KmsCatalogExit(&st);
	return found;
}

/* AWS's text names the version id if one was given, else the label. */
static void
VersionNotFound(const char *ref, const char *version_id, const char *stage)
{
	KmsAudit("GetSecretValue", ref, 0, "ResourceNotFoundException");
	if (version_id && stage)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
				 errmsg("ResourceNotFoundException: Secrets Manager can't find the specified secret value for VersionId: %s", version_id),
				 errdetail("Secret \"%s\" has no version \"%s\" with staging label \"%s\".",
						   ref, version_id, stage)));
	if (version_id)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
				 errmsg("ResourceNotFoundException: Secrets Manager can't find the specified secret value for VersionId: %s", version_id),
				 errdetail("Secret \"%s\" has no version \"%s\" with a value.", ref, version_id)));
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
			 errmsg("ResourceNotFoundException: Secrets Manager can't find the specified secret value for staging label: %s", stage),
			 errdetail("Secret \"%s\" has no version with staging label \"%s\" and a value.", ref, stage)));
}

/* Copy everything but the hash key of src into dst, allocating in cxt. */
static void
CopyEntry(SecretCacheEntry *dst, SecretCacheEntry *src, MemoryContext cxt)
{
	SecretMeta *m = &dst->meta;

	memcpy(((char *) dst) + SECRET_CACHE_KEYLEN, ((char *) src) + SECRET_CACHE_KEYLEN,
		   sizeof(SecretCacheEntry) - SECRET_CACHE_KEYLEN);
	m->arn = MemoryContextStrdup(cxt, src->meta.arn);
	m->name = MemoryContextStrdup(cxt, src->meta.name);
	m->grantees = MemoryContextAlloc(cxt, sizeof(Oid) * (src->meta.ngrants + 1));
	memcpy(m->grantees, src->meta.grantees, sizeof(Oid) * src->meta.ngrants);
	m->grant_ops = MemoryContextAlloc(cxt, sizeof(uint32) * (src->meta.ngrants + 1));
	memcpy(m->grant_ops, src->meta.grant_ops, sizeof(uint32) * src->meta.ngrants);
	dst->ciphertext = MemoryContextAlloc(cxt, VARSIZE(src->ciphertext));
	memcpy(dst->ciphertext, src->ciphertext, VARSIZE(src->ciphertext));
	dst->stages = MemoryContextAlloc(cxt, sizeof(char *) * (src->nstages + 1));
	for (int i = 0; i < src->nstages; i++)
		dst->stages[i] = MemoryContextStrdup(cxt, src->stages[i]);
}

/*
 * Resolve (secret, version_id, stage) for GetSecretValue and check the
 * caller may read it.  The result is a cache entry (valid until the next
 * entry point) or a palloc'd one.
 */
/*
 * The entry a read of ref returns.  NULL with *remote set: ref names a link
 * (by its own name or ARN), whose versions are in AWS Secrets Manager
 * (found only on the way to "no such version": no cost on the hot path).
 */
static SecretCacheEntry *
FetchForRead(const char *ref, const char *version_id, const char *stage,
			 char **remote)
{
	StringInfoData key;
	bool		use_cache = !IsolationUsesXactSnapshot();
	SecretCacheEntry *e = NULL;
	SecretCacheEntry local;
	MemoryContext cxt;
	bool		found = false;

	ValidateToken(version_id, "version_id");
	if (stage)
		ValidateStage(stage);
	if (version_id == NULL && stage == NULL)
		stage = "AWSCURRENT";

	initStringInfo(&key);
	appendStringInfo(&key, "%s\x01%s\x01%s", ref, version_id ? version_id : "",
					 stage ? stage : "");
	if (key.len >= SECRET_CACHE_KEYLEN)
		use_cache = false;

	if (use_cache)
	{
		e = hash_search(secret_cache, key.data, HASH_FIND, NULL);
		if (e != NULL)
		{
			/* the privilege check runs on every call; membership may change */
			if (!SecretAllowed(&e->meta, SEC_OP_GET_SECRET_VALUE))
				SecretDenied(SEC_OP_GET_SECRET_VALUE, ref);
			SecretNotDeleted(&e->meta);
			return e;
		}
	}

	cxt = CurrentMemoryContext;
	memset(&local, 0, sizeof(local));
	if (!SecretLoad(ref, &local.meta, cxt))
		SecretNotFound(SEC_OP_GET_SECRET_VALUE, ref);
	if (!SecretAllowed(&local.meta, SEC_OP_GET_SECRET_VALUE))
		SecretDenied(SEC_OP_GET_SECRET_VALUE, ref);
	SecretNotDeleted(&local.meta);
	if (!LoadVersion(&local.meta, version_id, stage, &local, cxt) ||
		VersionHasNoValue(local.ciphertext))
	{
		if ((*remote = KmsRemoteArnOfLink(local.meta.id)) != NULL)
			return NULL;
		VersionNotFound(ref, version_id, stage);
	}
	if (version_id && stage)
	{
		bool		has = false;

		for (int i = 0; i < local.nstages; i++)
			if (strcmp(local.stages[i], stage) == 0)
				has = true;
		if (!has)
			VersionNotFound(ref, version_id, stage);
	}

	if (use_cache)
	{
		if (hash_get_num_entries(secret_cache) >= SECRET_CACHE_MAX)
		{
			KmsCheckGeneration();
			SecretCacheReset(KmsCurrentGeneration());
		}
		e = hash_search(secret_cache, key.data, HASH_ENTER, &found);
		CopyEntry(e, &local, SecretCacheContext);
		return e;
	}
	e = palloc(sizeof(SecretCacheEntry));
	memcpy(e, &local, sizeof(SecretCacheEntry));
	return e;
}

/* The plaintext of an entry's version (palloc'd; the caller wipes it). */
static bytea *
DecryptEntry(SecretCacheEntry *e)
{
	return SecretDecrypt(e->ciphertext, &e->meta, e->version_id);
}

/* GetSecretValue's response object into buf. */
static void
AppendValueJson(StringInfo buf, SecretCacheEntry *e, bytea *plain)
{
	bool		first = true;
	Size		len = VARSIZE(plain) - VARHDRSZ;

	appendStringInfoChar(buf, '{');
	JsonStr(buf, &first, "ARN", e->meta.arn);
	JsonStr(buf, &first, "Name", e->meta.name);
	JsonStr(buf, &first, "VersionId", e->version_id);
	if (e->binary)
	{
		int			enclen = pg_b64_enc_len(len);
		char	   *enc = palloc(enclen + 1);
		int			n = pg_b64_encode(VARDATA(plain), len, enc, enclen);

		if (n < 0)
			elog(ERROR, "could not encode the secret binary");
		enc[n] = '\0';
		JsonStr(buf, &first, "SecretBinary", enc);
		kms_cleanse(enc, enclen);
	}
	else
	{
		char	   *s = palloc(len + 1);

		memcpy(s, VARDATA(plain), len);
		s[len] = '\0';
		JsonStr(buf, &first, "SecretString", s);
		kms_cleanse(s, len);
	}
	JsonStrArray(buf, &first, "VersionStages", e->stages, e->nstages);
	JsonDate(buf, &first, "CreatedDate", e->created);
	appendStringInfoChar(buf, '}');
}

/*
 * A successful GetSecretValue: the version read, and the request's
 * selectors (aggregated or one event each: pg_kms.audit_secret_reads).
 */
static void
AuditRead(SecretCacheEntry *e, const char *version_id, const char *stage)
{
	StringInfoData p;
	char	   *params = NULL;

	if (version_id || stage)
	{
		initStringInfo(&p);
		SecretAuditParam(&p, "versionId", version_id);
		SecretAuditParam(&p, "versionStage", stage);
		params = KmsAuditParams(&p);
	}
	KmsAuditRead("GetSecretValue", e->meta.arn, e->version_id, params);
}

KMS_AUDITED_ENTRY(get_secret, "GetSecretValue", 0)
{
	char	   *ref;
	char	   *remote = NULL;
	SecretCacheEntry *e;
	bytea	   *plain;

	SecretCacheCheck();
	ref = ArgSecretId(fcinfo, 0);
	if (KmsSecretIsRemoteArn(ref))	/* AWS Secrets Manager, through a link */
		return KmsRemoteGetSecret(fcinfo, ref, false);
	e = FetchForRead(ref, KmsArgText(fcinfo, 1), KmsArgText(fcinfo, 2), &remote);
	if (e == NULL)				/* a link, named by its own name or ARN */
		return KmsRemoteGetSecret(fcinfo, remote, false);
	plain = DecryptEntry(e);
	AuditRead(e, KmsArgText(fcinfo, 1), KmsArgText(fcinfo, 2));
	if (e->binary)
	{
		WipeBytea(plain);
		PG_RETURN_NULL();
	}
	/* text and bytea share a layout; the bytes are in the database encoding */
	if (!pg_verifymbstr(VARDATA(plain), VARSIZE(plain) - VARHDRSZ, true))
	{
		WipeBytea(plain);
		secret_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE, SECRET_DECRYPT_TEXT,
					 "The SecretString of secret \"%s\" is not valid in the database encoding.",
					 e->meta.name);
	}
	PG_RETURN_TEXT_P((text *) plain);
}

KMS_AUDITED_ENTRY(get_secret_value, "GetSecretValue", 0)
{
	char	   *ref;
	char	   *remote = NULL;
	SecretCacheEntry *e;
	bytea	   *plain;
	StringInfoData buf;
	Jsonb	   *result;

	SecretCacheCheck();
	ref = ArgSecretId(fcinfo, 0);
	if (KmsSecretIsRemoteArn(ref))	/* AWS Secrets Manager, through a link */
		return KmsRemoteGetSecret(fcinfo, ref, true);
	e = FetchForRead(ref, KmsArgText(fcinfo, 1), KmsArgText(fcinfo, 2), &remote);
	if (e == NULL)				/* a link, named by its own name or ARN */
		return KmsRemoteGetSecret(fcinfo, remote, true);
	plain = DecryptEntry(e);
	initStringInfo(&buf);
	AppendValueJson(&buf, e, plain);
	WipeBytea(plain);
	result = JsonbFromString(&buf);
	kms_cleanse(buf.data, buf.maxlen);
	AuditRead(e, KmsArgText(fcinfo, 1), KmsArgText(fcinfo, 2));
	PG_RETURN_JSONB_P(result);
}

/* ----------------------------------------------------------------
 * BatchGetSecretValue
 * ----------------------------------------------------------------
 */

/* The AWS exception name at the start of an error message. */
static char *
ErrorName(const char *message)
{
	const char *colon = strchr(message, ':');

	const char *space = strchr(message, ' ');

	if (colon == NULL || colon == message || colon - message > 64 ||
		(space != NULL && space < colon))
		return pstrdup("InternalServiceError");
	return pnstrdup(message, colon - message);
}

/* The message after "<ExceptionName>: ". */
static const char *
ErrorText(const char *message)
{
	const char *colon = strchr(message, ':');
	const char *space = strchr(message, ' ');

	if (colon == NULL || colon == message || colon - message > 64 ||
		(space != NULL && space < colon))
		return message;
	colon++;
	while (*colon == ' ')
		colon++;
	return colon;
}

typedef struct BatchRead
{
	const char *ref;
	StringInfo	values;
	int		   *nvalues;
} BatchRead;

/* One secret's value appended to SecretValues (in a subtransaction). */
static void
BatchRead1(void *arg)
{
	BatchRead  *b = (BatchRead *) arg;
	SecretCacheEntry *e = NULL;
	char	   *remote = NULL;
	bytea	   *plain;

	SecretCacheCheck();
	if (KmsSecretIsRemoteArn(b->ref))
		remote = (char *) b->ref;
	else
		e = FetchForRead(b->ref, NULL, NULL, &remote);
	if (e == NULL)
	{
		/* AWS Secrets Manager, through a link: its GetSecretValue answer */
		Jsonb	   *jb = KmsRemoteSecretValue(remote, NULL, NULL);
		char	   *json = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

		if ((*b->nvalues)++ > 0)
			appendStringInfoChar(b->values, ',');
		appendStringInfoString(b->values, json);
		kms_cleanse(json, strlen(json));
		kms_cleanse(VARDATA(jb), VARSIZE(jb) - VARHDRSZ);
		return;
	}
	plain = DecryptEntry(e);
	if ((*b->nvalues)++ > 0)
		appendStringInfoChar(b->values, ',');
	AppendValueJson(b->values, e, plain);
	WipeBytea(plain);
	AuditRead(e, NULL, NULL);
}

/* Read one secret into SecretValues, or its error into Errors. */
static void
BatchOne(const char *ref, StringInfo values, int *nvalues, StringInfo errors,
		 int *nerrors)
{
	BatchRead	b = {ref, values, nvalues};
	ErrorData  *edata = KmsRunInSubTransaction(BatchRead1, NULL, &b);
	bool		first = true;

	if (edata == NULL)
		return;
	/* only the errors a caller may see for one secret; others abort */
	if (edata->sqlerrcode != KMS_SQLSTATE_ACCESS_DENIED &&
		edata->sqlerrcode != KMS_SQLSTATE_NOT_FOUND &&
		edata->sqlerrcode != KMS_SQLSTATE_INVALID_REQUEST &&
		edata->sqlerrcode != KMS_SQLSTATE_DECRYPTION_FAILURE &&
		edata->sqlerrcode != KMS_SQLSTATE_DISABLED &&
		edata->sqlerrcode != KMS_SQLSTATE_INVALID_STATE)
		ReThrowError(edata);
	if ((*nerrors)++ > 0)
		appendStringInfoChar(errors, ',');
	appendStringInfoChar(errors, '{');
	JsonStr(errors, &first, "SecretId", ref);
	JsonStr(errors, &first, "ErrorCode", ErrorName(edata->message));
	/* AWS's APIErrorType.Message is the message alone, without the name */
	JsonStr(errors, &first, "Message", ErrorText(edata->message));
	appendStringInfoChar(errors, '}');
	FreeErrorData(edata);
}

KMS_AUDITED_ENTRY(batch_get_secret_value, "BatchGetSecretValue", KMS_AUDIT_NO_RESOURCE)
{
	Jsonb	   *fj = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	char	   *next_token = KmsArgText(fcinfo, 3);
	StringInfoData values;
	StringInfoData errors;
	StringInfoData out;
	int			nvalues = 0;
	int			nerrors = 0;
	char	   *next = NULL;
	Jsonb	   *result;
	StringInfoData p;

	SecretCacheCheck();
	initStringInfo(&p);
	if (!PG_ARGISNULL(0) && fj != NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "Either 'SecretIdList' or 'Filters' must be provided, but not both.");
	if (PG_ARGISNULL(0) && fj == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "Either 'SecretIdList' or 'Filters' must be provided.");
	initStringInfo(&values);
	initStringInfo(&errors);

	if (!PG_ARGISNULL(0))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		StringInfoData ids;

		if (!PG_ARGISNULL(2))
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "max_results applies only with filters");
		if (next_token)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "next_token applies only with filters");
		initStringInfo(&ids);
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
		if (nelems < 1 || nelems > 20)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "secret_id_list must name 1 to 20 secrets");
		for (int i = 0; i < nelems; i++)
		{
			char	   *ref;

			if (nulls[i])
				kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
						  "secret_id_list must not contain null");
			ref = TextDatumGetCString(elems[i]);
			if (ref[0] == '\0' || strlen(ref) > 2048)
				kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
						  "each secret id must be 1 to 2048 characters");
			BatchOne(ref, &values, &nvalues, &errors, &nerrors);
			appendStringInfo(&ids, "%s%s", i ? "," : "", ref);
		}
		SecretAuditParam(&p, "secretIdList", ids.data);
	}
	else
	{
		int			max = PG_ARGISNULL(2) ? 20 : ArgMaxResults(fcinfo, 2, 20);
		long		offset = ParseNextToken(next_token);
		List	   *rows;
		int			i = 0;
		ListCell   *lc;

		rows = ListVisible(ParseFilters(fj), false, false, "created_date");
		foreach(lc, rows)
		{
			ListRow    *r = lfirst(lc);

			if (i >= offset && i < offset + max)
				BatchOne(r->meta.arn, &values, &nvalues, &errors, &nerrors);
			i++;
		}
		if (offset + max < list_length(rows))
			next = psprintf("pgkms1:%ld", offset + max);
		SecretAuditParam(&p, "filters", JsonbToCString(NULL, &fj->root, VARSIZE(fj)));
		if (!PG_ARGISNULL(2))
			KmsAuditParamInt(&p, "maxResults", max);
		SecretAuditParam(&p, "nextToken", next_token);
	}
	/* the call, beside the GetSecretValue event of each secret read */
	KmsAuditEx("BatchGetSecretValue", "*", NULL, "success", KmsAuditParams(&p));

	initStringInfo(&out);
	appendStringInfo(&out, "{\"SecretValues\":[%s],\"Errors\":[%s]", values.data, errors.data);
	if (next)
		appendStringInfo(&out, ",\"NextToken\":\"%s\"", next);
	appendStringInfoChar(&out, '}');
	kms_cleanse(values.data, values.maxlen);
	result = JsonbFromString(&out);
	kms_cleanse(out.data, out.maxlen);
	PG_RETURN_JSONB_P(result);
}

/* ----------------------------------------------------------------
 * DescribeSecret
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(describe_secret, "DescribeSecret", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;
	Datum		d = (Datum) 0;
	bool		isnull = true;

	bool		has12;

	SecretCacheCheck();
	SecretResolve(ref, SEC_OP_DESCRIBE_SECRET, &m);
	v = KmsUuidDatum(m.id);
	has12 = SecretCatalogHas12();
	KmsCatalogEnter(&st);

	/*
	 * As AWS: members without a value are left out.  RotationEnabled (and
	 * the other rotation members) only once rotation was ever configured
	 * (RotateSecret sets rotation_lambda_arn, CancelRotateSecret keeps it);
	 * Tags only once the secret was ever tagged, then [] when the last tag
	 * is gone.
	 */
	if (KmsExec(psprintf("SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
				"'ARN', s.arn, 'Name', s.name, 'Type', %s, 'Description', s.description, "
				"'KmsKeyId', s.kms_key_ref, "
				"'RotationEnabled', CASE WHEN s.rotation_lambda_arn IS NOT NULL THEN s.rotation_enabled END, "
				"'RotationLambdaARN', s.rotation_lambda_arn, 'RotationRules', s.rotation_rules, "
				"'LastRotatedDate', s.last_rotated_date, 'LastChangedDate', s.last_changed_date, "
				"'DeletedDate', s.deleted_date, "
				"'NextRotationDate', CASE WHEN s.rotation_enabled THEN s.next_rotation_date END, "
				"'LastRotationError', s.rotation_last_error, "
				"'Tags', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('Key', t.key, 'Value', t.value) ORDER BY t.key) "
				"         FROM pg_catalog.jsonb_each_text(s.tags) t), CASE WHEN %s THEN '[]'::jsonb END), "
				"'VersionIdsToStages', (SELECT pg_catalog.jsonb_object_agg(x.version_id, x.stages) FROM "
				"   (SELECT st.version_id, pg_catalog.jsonb_agg(st.stage ORDER BY %s) AS stages "
				"      FROM kms.secret_stage st WHERE st.secret_id = s.secret_id GROUP BY st.version_id) x), "
				"'CreatedDate', s.created_date)) "
				"FROM kms.secret s WHERE s.secret_id = $1",
				has12 ? "s.secret_type" : "NULL::text", has12 ? "s.tagged" : "false",
				StageOrderSql("st")),
				1, &t, &v, NULL, true, SPI_OK_SELECT) == 1)
	{
		d = SpiDatum(0, 1, &isnull);
		if (!isnull)
			d = SPI_datumTransfer(d, false, -1);
	}
	KmsCatalogExit(&st);
	if (isnull)
		SecretNotFound(SEC_OP_DESCRIBE_SECRET, ref);
	KmsAudit("DescribeSecret", m.arn, 0, "success");
	PG_RETURN_DATUM(d);
}
