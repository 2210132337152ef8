/*-------------------------------------------------------------------------
 *
 * remote_link.c
 *	  Remote secrets, the SQL side: links (kms.remote_secret) and reads.
 *
 *	  The server's AWS credentials may read many secrets; a role may read
 *	  one of them only through a link: a local secret without a value of
 *	  its own, made by kms_link_remote_secret (superusers only, since the
 *	  link's owner reads the remote value), that names the remote ARN.  A
 *	  link is a secret like any other for privileges: its owner, grants
 *	  (secret_create_grant ... GetSecretValue), kms_admin's management
 *	  (describe, tag, delete), the deletion window.  get_secret() on a
 *	  remote ARN checks GetSecretValue on the link exactly as a local read
 *	  checks it on the secret (same errors, same audit), before any call to
 *	  AWS: without a link, or without the grant, AWS is never asked.
 *
 *	  Owns kms.remote_secret (written only here).  May call what the rest
 *	  of secrets/ may, and the aws client (through remote_fetch.c).
 *
 * Locking: none of its own; the link row is inserted in the transaction
 * that creates the link's secret.  The cache's locking: remote_cache.c.
 *
 * IDENTIFICATION
 *	  src/secrets/remote_link.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog/kms_catalog.h"
#include "secrets/secrets_internal.h"
#include "secrets/remote_internal.h"

/* create_secret's entry point (write_sql.c): the link is made by it */
extern Datum create_secret(PG_FUNCTION_ARGS);

/* ----------------------------------------------------------------
 * ARNs
 * ----------------------------------------------------------------
 */
typedef struct RemoteArn
{
	char	   *partition;
	char	   *region;
	char	   *account;
	char	   *name;			/* with the 6-character suffix */
} RemoteArn;

/* Split "arn:<partition>:secretsmanager:<region>:<account>:secret:<name>". */
static bool
ArnSplit(const char *ref, RemoteArn *a)
{
	char	   *s;
	char	   *parts[6];
	char	   *p;

	if (strncmp(ref, "arn:", 4) != 0)
		return false;
	s = pstrdup(ref + 4);
	p = s;
	for (int i = 0; i < 5; i++)
	{
		char	   *c = strchr(p, ':');

		if (c == NULL)
			return false;
		*c = '\0';
		parts[i] = p;
		p = c + 1;
	}
	parts[5] = p;
	if (strcmp(parts[1], "secretsmanager") != 0 || strcmp(parts[4], "secret") != 0)
		return false;
	a->partition = parts[0];
	a->region = parts[2];
	a->account = parts[3];
	a->name = parts[5];
	return true;
}

bool
KmsSecretIsRemoteArn(const char *ref)
{
	RemoteArn	a;

	if (!ArnSplit(ref, &a))
		return false;
	return strcmp(a.partition, "aws") != 0 ||
		strcmp(a.region, kms_region ? kms_region : "") != 0 ||
		strcmp(a.account, KmsAccountId()) != 0;
}

static bool
Chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char) *s) && (extra == NULL || strchr(extra, *s) == NULL))
			return false;
	return true;
}

/* A full Secrets Manager ARN of another account or region, or an error. */
static void
ValidateRemoteArn(const char *arn, RemoteArn *a)
{
	size_t		n;

	if (strlen(arn) > 2048 || !ArnSplit(arn, a))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "\"%s\" is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)",
				  arn);
	n = strlen(a->name);
	if (strncmp(a->partition, "aws", 3) != 0 || !Chars(a->partition, "-") ||
		a->region[0] == '\0' || !Chars(a->region, "-") ||
		strlen(a->account) != 12 || strspn(a->account, "0123456789") != 12 ||
		n < 8 || n > 512 + 7 || a->name[n - 7] != '-' || !Chars(a->name + n - 6, NULL) ||
		!Chars(a->name, "/_+=.@-"))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "\"%s\" is not a complete Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)",
				  arn);
	if (!KmsSecretIsRemoteArn(arn))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "\"%s\" is an ARN of this database's own secrets (pg_kms.region and account id); a remote secret is in another account or region",
				  arn);
}

/* ----------------------------------------------------------------
 * Links
 * ----------------------------------------------------------------
 */

/* Is kms.remote_secret there (not before ALTER EXTENSION pg_kms UPDATE)? */
static bool
LinksInstalled(void)
{
	Oid			nsp = get_namespace_oid("kms", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("remote_secret", nsp));
}

static bool
LinkByRemoteArn(const char *arn, uint8 *id)
{
	KmsCatalogState st;
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(arn);
	bool		found;

	if (!LinksInstalled())
		return false;
	KmsCatalogEnter(&st);
	found = KmsExec("SELECT secret_id::text FROM kms.remote_secret WHERE remote_arn = $1",
					1, &t, &v, NULL, true, SPI_OK_SELECT) == 1;
	if (found)
		KmsUuidFromString(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), id);
	KmsCatalogExit(&st);
	return found;
}

static char *
RemoteArnOfLink(const uint8 *id)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(id);
	char	   *arn = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	if (!LinksInstalled())
		return NULL;
	KmsCatalogEnter(&st);
	if (KmsExec("SELECT remote_arn FROM kms.remote_secret WHERE secret_id = $1",
				1, &t, &v, NULL, true, SPI_OK_SELECT) == 1)
		arn = SpiStr(0, 1, cxt);
	KmsCatalogExit(&st);
	return arn;
}

char *
KmsRemoteArnOfLink(const uint8 *id)
{
	return RemoteArnOfLink(id);
}

/*
 * A link's value lives in AWS: a local version would be read by nobody
 * (reads go to AWS) and would make the link look like a local secret.
 */
void
KmsRemoteRefuseWrite(const uint8 *id, const char *name, const char *operation)
{
	char	   *arn = RemoteArnOfLink(id);

	if (arn == NULL)
		return;
	KmsAudit(operation, name, 0, "InvalidRequestException");
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_INVALID_REQUEST), errhidestmt(true),
			 errmsg("InvalidRequestException: secret \"%s\" is a link to the AWS Secrets Manager secret %s; its value can only be changed there",
					name, arn),
			 errhint("Write the value in AWS Secrets Manager; kms_refresh_remote_secret() reads it again at once.")));
}

/*
 * Per backend: remote ARN -> the link's secret (or none), as the local read
 * cache keeps a secret's metadata: valid while the shared generation stays
 * put (every secret and grant change moves it at commit, and this backend's
 * own at once); the privilege check still runs on every call.
 */
#define LINK_CACHE_MAX	1024

typedef struct LinkCacheEntry
{
	char		arn[2049];		/* hash key: MUST BE FIRST */
	bool		linked;
	SecretMeta	meta;
} LinkCacheEntry;

static MemoryContext LinkCacheContext = NULL;
static HTAB *link_cache = NULL;
static uint64 link_cache_gen = 0;

static void
LinkCacheReset(uint64 gen)
{
	HASHCTL		ctl;

	if (LinkCacheContext)
		MemoryContextReset(LinkCacheContext);
	else
		LinkCacheContext = AllocSetContextCreate(TopMemoryContext,
												 "pg_kms remote secret links",
												 ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(((LinkCacheEntry *) 0)->arn);
	ctl.entrysize = sizeof(LinkCacheEntry);
	ctl.hcxt = LinkCacheContext;
	link_cache = hash_create("pg_kms remote secret links", 64, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	link_cache_gen = gen;
}

/* Copy what m points to into cxt. */
static void
MetaCopy(SecretMeta *dst, const SecretMeta *src, MemoryContext cxt)
{
	*dst = *src;
	dst->arn = MemoryContextStrdup(cxt, src->arn);
	dst->name = MemoryContextStrdup(cxt, src->name);
	dst->grantees = MemoryContextAlloc(cxt, sizeof(Oid) * (src->ngrants + 1));
	memcpy(dst->grantees, src->grantees, sizeof(Oid) * src->ngrants);
	dst->grant_ops = MemoryContextAlloc(cxt, sizeof(uint32) * (src->ngrants + 1));
	memcpy(dst->grant_ops, src->grant_ops, sizeof(uint32) * src->ngrants);
}

/* The link of a remote ARN (false: none), through the per-backend cache. */
static bool
LinkLookup(const char *arn, SecretMeta *m)
{
	bool		use_cache = !IsolationUsesXactSnapshot() && strlen(arn) <= 2048;
	LinkCacheEntry *e;
	uint8		id[16];
	bool		linked;

	if (use_cache)
	{
		uint64		gen;

		KmsCheckGeneration();
		gen = KmsCurrentGeneration();
		if (gen != link_cache_gen || link_cache == NULL)
			LinkCacheReset(gen);
		e = hash_search(link_cache, arn, HASH_FIND, NULL);
		if (e != NULL)
		{
			if (e->linked)
				MetaCopy(m, &e->meta, CurrentMemoryContext);
			return e->linked;
		}
	}
	linked = LinkByRemoteArn(arn, id) && SecretLoadById(id, m, false);
	if (use_cache)
	{
		if (hash_get_num_entries(link_cache) >= LINK_CACHE_MAX)
			LinkCacheReset(link_cache_gen);
		e = hash_search(link_cache, arn, HASH_ENTER, NULL);
		e->linked = linked;
		if (linked)
			MetaCopy(&e->meta, m, LinkCacheContext);
	}
	return linked;
}

/*
 * The link of a remote ARN, checked for op as a local secret is: without a
 * link the caller gets what it gets for a secret it may not see.
 */
static void
LinkForRead(const char *arn, SecretOp op, SecretMeta *m)
{
	if (!LinkLookup(arn, m))
		SecretNotFound(op, arn);
	if (!SecretAllowed(m, op))
		SecretDenied(op, arn);
	SecretNotDeleted(m);
}

PG_FUNCTION_INFO_V1(kms_link_remote_secret);
Datum
kms_link_remote_secret(PG_FUNCTION_ARGS)
{
	char	   *arn = KmsArgText(fcinfo, 0);
	char	   *name = KmsArgText(fcinfo, 1);
	char	   *description = KmsArgText(fcinfo, 2);
	RemoteArn	a;
	SecretMeta	m;
	uint8		existing[16];
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	StringInfoData buf;
	bool		first = true;

	if (arn == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "secret_arn must not be null");
	if (!superuser())
	{
		KmsAudit("LinkRemoteSecret", arn, 0, "AccessDeniedException");
		kms_error(AccessDeniedException, KMS_SQLSTATE_ACCESS_DENIED,
				  "only a superuser may link a remote secret: its owner reads the value with the server's AWS credentials");
	}
	KmsCheckWritable("LinkRemoteSecret");
	ValidateRemoteArn(arn, &a);
	if (!LinksInstalled())
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "remote secrets need pg_kms 1.2 in this database; run ALTER EXTENSION pg_kms UPDATE");
	if (LinkByRemoteArn(arn, existing))
		kms_error(ResourceExistsException, KMS_SQLSTATE_ALREADY_EXISTS,
				  "remote secret \"%s\" is already linked", arn);
	if (name == NULL)
		name = pnstrdup(a.name, strlen(a.name) - 7);
	if (description == NULL)
		description = psprintf("Link to the AWS Secrets Manager secret %s", arn);

	/* the link's secret: CreateSecret without a value */
	{
		LOCAL_FCINFO(cfc, 7);

		InitFunctionCallInfoData(*cfc, fcinfo->flinfo, 7, InvalidOid, NULL, NULL);
		for (int i = 0; i < 7; i++)
		{
			cfc->args[i].value = (Datum) 0;
			cfc->args[i].isnull = true;
		}
		cfc->args[0].value = CStringGetTextDatum(name);
		cfc->args[0].isnull = false;
		cfc->args[3].value = CStringGetTextDatum(description);
		cfc->args[3].isnull = false;
		(void) create_secret(cfc);
	}
	if (!SecretLoad(name, &m, CurrentMemoryContext))
		elog(ERROR, "the link's secret \"%s\" was not created", name);

	v[0] = KmsUuidDatum(m.id);
	v[1] = CStringGetTextDatum(arn);
	KmsCatalogEnter(&st);
	KmsExec("INSERT INTO kms.remote_secret (secret_id, remote_arn, created_date) "
			"VALUES ($1, $2, pg_catalog.now())",
			2, t, v, NULL, false, SPI_OK_INSERT);
	KmsCatalogExit(&st);
	SecretChanged();
	KmsAudit("LinkRemoteSecret", arn, 0, "success");

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	JsonStr(&buf, &first, "ARN", m.arn);
	JsonStr(&buf, &first, "Name", m.name);
	JsonStr(&buf, &first, "RemoteARN", arn);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_JSONB_P(JsonbFromString(&buf));
}

/*
 * kms_remote_secrets(): the links the caller may see (as list_secrets
 * decides), with their remote ARNs.
 */
PG_FUNCTION_INFO_V1(kms_remote_secrets);
Datum
kms_remote_secrets(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	KmsCatalogState st;
	uint64		n;
	List	   *ids = NIL;
	List	   *remotes = NIL;
	List	   *dates = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	ListCell   *a,
			   *b,
			   *c;

	ts = KmsStartSRF(fcinfo, &tupdesc);
	if (!LinksInstalled())
		return (Datum) 0;
	KmsCatalogEnter(&st);
	n = KmsExec("SELECT secret_id::text, remote_arn, created_date FROM kms.remote_secret "
				"ORDER BY remote_arn", 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		TimestampTz *ts_copy = palloc(sizeof(TimestampTz));

		/* the lists outlive the catalog's SPI context */
		*ts_copy = DatumGetTimestampTz(SpiDatum(i, 3, &isnull));
		ids = lappend(ids, SpiStr(i, 1, cxt));
		remotes = lappend(remotes, SpiStr(i, 2, cxt));
		dates = lappend(dates, ts_copy);
		MemoryContextSwitchTo(old);
	}
	KmsCatalogExit(&st);

	forthree(a, ids, b, remotes, c, dates)
	{
		uint8		id[16];
		SecretMeta	m;
		Datum		vals[5];
		bool		nulls[5] = {0};

		KmsUuidFromString(lfirst(a), id);
		if (!SecretLoadById(id, &m, false) || !SecretVisible(&m))
			continue;
		vals[0] = CStringGetTextDatum(m.name);
		vals[1] = CStringGetTextDatum(m.arn);
		vals[2] = CStringGetTextDatum(lfirst(b));
		vals[3] = TimestampTzGetDatum(*(TimestampTz *) lfirst(c));
		vals[4] = BoolGetDatum(m.deleted);
		tuplestore_putvalues(ts, tupdesc, vals, nulls);
	}
	KmsAudit("ListRemoteSecrets", "*", 0, "success");
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Reads
 * ----------------------------------------------------------------
 */
static const char *
OutcomeName(RemoteOutcome how)
{
	switch (how)
	{
		case REMOTE_HIT:
			return "hit";
		case REMOTE_FETCHED:
			return "fetched";
		case REMOTE_STALE:
			return "stale";
	}
	return "?";
}

static void
AuditRead(const char *operation, const char *arn, SecretMeta *m, RemoteOutcome how)
{
	StringInfoData p;

	initStringInfo(&p);
	KmsAuditParamStr(&p, "Link", m->name);
	KmsAuditParamStr(&p, "Cache", OutcomeName(how));
	/* a read: aggregated or one event each (pg_kms.audit_secret_reads) */
	if (strcmp(operation, "GetSecretValue") == 0)
		KmsAuditRead(operation, arn, NULL, KmsAuditParams(&p));
	else
		KmsAuditEx(operation, arn, NULL, "success", KmsAuditParams(&p));
}

Jsonb *
KmsRemoteSecretValue(const char *ref, char *version_id, char *stage)
{
	SecretMeta	m;
	RemoteOutcome how;
	char	   *json;
	StringInfoData buf;
	Jsonb	   *jb;

	ValidateToken(version_id, "version_id");
	if (stage)
		ValidateStage(stage);
	if (version_id == NULL && stage == NULL)
		stage = "AWSCURRENT";
	LinkForRead(ref, SEC_OP_GET_SECRET_VALUE, &m);

	/* AWS's refusals and failures are audited where raised (RemoteRaise) */
	json = RemoteCacheGet(ref, version_id, stage, false, &how);
	buf.data = json;
	buf.len = strlen(json);
	buf.maxlen = buf.len + 1;
	jb = JsonbFromString(&buf);
	kms_cleanse(json, buf.len);
	AuditRead("GetSecretValue", ref, &m, how);
	return jb;
}

Datum
KmsRemoteGetSecret(FunctionCallInfo fcinfo, const char *ref, bool as_json)
{
	Jsonb	   *jb = KmsRemoteSecretValue(ref, KmsArgText(fcinfo, 1), KmsArgText(fcinfo, 2));

	if (as_json)
		PG_RETURN_JSONB_P(jb);
	else
	{
		JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, "SecretString",
													 strlen("SecretString"), NULL);
		text	   *result = NULL;

		if (v != NULL && v->type == jbvString)
			result = cstring_to_text_with_len(v->val.string.val, v->val.string.len);
		kms_cleanse(VARDATA(jb), VARSIZE(jb) - VARHDRSZ);
		if (result == NULL)
			PG_RETURN_NULL();
		PG_RETURN_TEXT_P(result);
	}
}

/*
 * kms_refresh_remote_secret(secret_id): fetch again now every cached
 * version of a remote secret (its AWSCURRENT if none is cached), as the
 * caching clients' refresh_secret_now.  secret_id: the remote ARN, or the
 * link's name or ARN.  Needs GetSecretValue on the link.  A failure is
 * raised (the old value stays cached and served, with a WARNING).
 */
PG_FUNCTION_INFO_V1(kms_refresh_remote_secret);
Datum
kms_refresh_remote_secret(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *arn = ref;
	SecretMeta	m;
	List	   *keys;
	ListCell   *lc;
	int			n = 0;

	if (!KmsSecretIsRemoteArn(ref))
	{
		/* a link, by its name or local ARN: checked by it first */
		SecretResolve(ref, SEC_OP_GET_SECRET_VALUE, &m);
		if ((arn = RemoteArnOfLink(m.id)) == NULL)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "secret \"%s\" is not a link to a remote secret", ref);
	}
	LinkForRead(arn, SEC_OP_GET_SECRET_VALUE, &m);

	keys = RemoteCacheKeysOf(arn);
	if (keys == NIL)
		keys = list_make1(pstrdup("\x01" "AWSCURRENT"));
	foreach(lc, keys)
	{
		char	   *k = lfirst(lc);
		char	   *sep = strchr(k, '\x01');
		RemoteOutcome how;
		char	   *json;

		*sep = '\0';
		json = RemoteCacheGet(arn, k[0] ? k : NULL, sep[1] ? sep + 1 : NULL, true, &how);
		kms_cleanse(json, strlen(json));
		n++;
	}
	AuditRead("RefreshRemoteSecret", arn, &m, REMOTE_FETCHED);
	PG_RETURN_INT32(n);
}
