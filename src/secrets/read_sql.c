/*-------------------------------------------------------------------------
 *
 * read_sql.c
 *	  The reading SQL entry points: GetSecretValue (get_secret,
 *	  get_secret_value) with its per-backend cache, ListSecrets and its
 *	  filters, BatchGetSecretValue, DescribeSecret, ListSecretVersionIds.
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

static void
VersionNotFound(const char *ref, const char *version_id, const char *stage)
{
	KmsAudit("GetSecretValue", ref, 0, "ResourceNotFoundException");
	if (version_id && stage)
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "Secrets Manager can't find a version of secret \"%s\" with version id \"%s\" and staging label \"%s\"",
				  ref, version_id, stage);
	if (version_id)
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "Secrets Manager can't find version \"%s\" of secret \"%s\"", version_id, ref);
	kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
			  "Secrets Manager can't find a version of secret \"%s\" with staging label \"%s\"",
			  ref, stage);
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
static SecretCacheEntry *
FetchForRead(const char *ref, const char *version_id, const char *stage)
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
	if (!LoadVersion(&local.meta, version_id, stage, &local, cxt))
		VersionNotFound(ref, version_id, stage);
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

PG_FUNCTION_INFO_V1(get_secret);
Datum
get_secret(PG_FUNCTION_ARGS)
{
	char	   *ref;
	SecretCacheEntry *e;
	bytea	   *plain;

	SecretCacheCheck();
	ref = ArgSecretId(fcinfo, 0);
	if (KmsSecretIsRemoteArn(ref))	/* AWS Secrets Manager, through a link */
		return KmsRemoteGetSecret(fcinfo, ref, false);
	e = FetchForRead(ref, KmsArgText(fcinfo, 1), KmsArgText(fcinfo, 2));
	plain = DecryptEntry(e);
	KmsAudit("GetSecretValue", e->meta.arn, 0, "success");
	if (e->binary)
	{
		WipeBytea(plain);
		PG_RETURN_NULL();
	}
	/* text and bytea share a layout; the bytes are in the database encoding */
	if (!pg_verifymbstr(VARDATA(plain), VARSIZE(plain) - VARHDRSZ, true))
	{
		WipeBytea(plain);
		kms_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE,
				  "the SecretString of secret \"%s\" is not valid in the database encoding",
				  e->meta.name);
	}
	PG_RETURN_TEXT_P((text *) plain);
}

PG_FUNCTION_INFO_V1(get_secret_value);
Datum
get_secret_value(PG_FUNCTION_ARGS)
{
	char	   *ref;
	SecretCacheEntry *e;
	bytea	   *plain;
	StringInfoData buf;
	Jsonb	   *result;

	SecretCacheCheck();
	ref = ArgSecretId(fcinfo, 0);
	if (KmsSecretIsRemoteArn(ref))	/* AWS Secrets Manager, through a link */
		return KmsRemoteGetSecret(fcinfo, ref, true);
	e = FetchForRead(ref, KmsArgText(fcinfo, 1), KmsArgText(fcinfo, 2));
	plain = DecryptEntry(e);
	initStringInfo(&buf);
	AppendValueJson(&buf, e, plain);
	WipeBytea(plain);
	result = JsonbFromString(&buf);
	kms_cleanse(buf.data, buf.maxlen);
	KmsAudit("GetSecretValue", e->meta.arn, 0, "success");
	PG_RETURN_JSONB_P(result);
}

/* ----------------------------------------------------------------
 * ListSecrets filters (also BatchGetSecretValue's)
 * ----------------------------------------------------------------
 */
typedef struct SecretFilter
{
	char	   *key;			/* name, description, tag-key, tag-value, all, ... */
	List	   *values;			/* char *; a leading "!" negates */
} SecretFilter;

static List *
ParseFilters(Jsonb *jb)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *filters = NIL;
	SecretFilter *cur = NULL;
	char	   *member = NULL;
	int			depth = 0;

	if (jb == NULL)
		return NIL;
	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "filters must be a JSON array of {\"Key\", \"Values\"} objects");
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				depth++;
				if (depth > 3 || (depth == 3 && strcmp(member, "Values") != 0) || depth == 2)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "filters must be a JSON array of {\"Key\", \"Values\"} objects");
				break;
			case WJB_END_ARRAY:
				depth--;
				break;
			case WJB_BEGIN_OBJECT:
				depth++;
				if (depth != 2)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "filters must be a JSON array of {\"Key\", \"Values\"} objects");
				cur = palloc0(sizeof(SecretFilter));
				break;
			case WJB_END_OBJECT:
				depth--;
				if (cur->key == NULL || cur->values == NIL)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "each filter needs a Key and a non-empty list of Values");
				filters = lappend(filters, cur);
				break;
			case WJB_KEY:
				member = pnstrdup(v.val.string.val, v.val.string.len);
				if (strcmp(member, "Key") != 0 && strcmp(member, "Values") != 0)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "unknown filter member \"%s\"; use Key and Values", member);
				break;
			case WJB_VALUE:
				if (strcmp(member, "Key") != 0 || v.type != jbvString)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter's Key must be a string and its Values a list of strings");
				cur->key = pnstrdup(v.val.string.val, v.val.string.len);
				if (strcmp(cur->key, "name") != 0 && strcmp(cur->key, "description") != 0 &&
					strcmp(cur->key, "tag-key") != 0 && strcmp(cur->key, "tag-value") != 0 &&
					strcmp(cur->key, "primary-region") != 0 &&
					strcmp(cur->key, "owning-service") != 0 && strcmp(cur->key, "all") != 0)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "filter key \"%s\" is not valid; use name, description, tag-key, tag-value, primary-region, owning-service or all",
							  cur->key);
				break;
			case WJB_ELEM:
				if (depth != 3 || v.type != jbvString)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter's Key must be a string and its Values a list of strings");
				if (v.val.string.len < 1 || v.val.string.len > 512)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter value must be 1 to 512 characters");
				cur->values = lappend(cur->values, pnstrdup(v.val.string.val, v.val.string.len));
				if (list_length(cur->values) > 10)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter can have at most 10 values");
				break;
			default:
				break;
		}
	}
	if (list_length(filters) > 10)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "at most 10 filters are allowed");
	return filters;
}

static bool
PrefixMatch(const char *s, const char *prefix, bool nocase)
{
	size_t		n = strlen(prefix);

	if (s == NULL)
		return false;
	return nocase ? pg_strncasecmp(s, prefix, n) == 0 : strncmp(s, prefix, n) == 0;
}

/* Does one (non-negated) value match the secret under this filter key? */
static bool
FilterValueMatches(const char *fkey, const char *val, const char *name,
				   const char *description, Jsonb *tags)
{
	bool		all = strcmp(fkey, "all") == 0;

	if ((all || strcmp(fkey, "name") == 0) && PrefixMatch(name, val, all))
		return true;
	if ((all || strcmp(fkey, "description") == 0) && PrefixMatch(description, val, true))
		return true;
	if (all || strcmp(fkey, "tag-key") == 0 || strcmp(fkey, "tag-value") == 0)
	{
		JsonbIterator *it = JsonbIteratorInit(&tags->root);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *s;

			if (tok == WJB_KEY && !(all || strcmp(fkey, "tag-key") == 0))
				continue;
			if (tok == WJB_VALUE && !(all || strcmp(fkey, "tag-value") == 0))
				continue;
			if ((tok != WJB_KEY && tok != WJB_VALUE) || v.type != jbvString)
				continue;
			s = pnstrdup(v.val.string.val, v.val.string.len);
			if (PrefixMatch(s, val, all))
				return true;
		}
	}
	/* primary-region and owning-service: no secret here is replicated or managed */
	return false;
}

static bool
FiltersMatch(List *filters, const char *name, const char *description, Jsonb *tags)
{
	ListCell   *lc;

	foreach(lc, filters)
	{
		SecretFilter *f = lfirst(lc);
		ListCell   *vc;
		bool		any = false;
		bool		negated_fail = false;
		bool		has_positive = false;

		foreach(vc, f->values)
		{
			char	   *val = lfirst(vc);

			if (val[0] == '!')
			{
				if (FilterValueMatches(f->key, val + 1, name, description, tags))
					negated_fail = true;
			}
			else
			{
				has_positive = true;
				if (FilterValueMatches(f->key, val, name, description, tags))
					any = true;
			}
		}
		if (negated_fail || (has_positive && !any))
			return false;
	}
	return true;
}

/* One secret in a listing. */
typedef struct ListRow
{
	SecretMeta	meta;
	char	   *description;
	Jsonb	   *tags;
	Datum		values[12];
	bool		nulls[12];
} ListRow;

/*
 * The secrets the current role may see that match the filters, in
 * created-date order (then name).
 */
static List *
ListVisible(List *filters, bool include_deleted, bool desc)
{
	KmsCatalogState st;
	uint64		n;
	List	   *rows = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	SPITupleTable *rowtable;
	char	   *sql;

	sql = psprintf("SELECT secret_id, arn, name, owner::oid, deleted_date IS NOT NULL, kms_key_id, "
				   "kms_key_ref IS NULL, description, tags, "
				   "arn, name, description, kms_key_ref, rotation_enabled, created_date, "
				   "last_changed_date, last_rotated_date, next_rotation_date, deleted_date, "
				   "(SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('Key', t.key, 'Value', t.value) ORDER BY t.key) "
				   "   FROM pg_catalog.jsonb_each_text(s.tags) t), "
				   "(SELECT pg_catalog.jsonb_object_agg(x.version_id, x.stages) FROM "
				   "   (SELECT st.version_id, pg_catalog.jsonb_agg(st.stage ORDER BY st.stage) AS stages "
				   "      FROM kms.secret_stage st WHERE st.secret_id = s.secret_id GROUP BY st.version_id) x) "
				   "FROM kms.secret s %s ORDER BY created_date %s, name %s",
				   include_deleted ? "" : "WHERE deleted_date IS NULL",
				   desc ? "DESC" : "ASC", desc ? "DESC" : "ASC");
	KmsCatalogEnter(&st);
	n = KmsExec(sql, 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	rowtable = SPI_tuptable;	/* stays valid until KmsCatalogExit */
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = rowtable->vals[i];
		TupleDesc	td = rowtable->tupdesc;
		MemoryContext spicxt = MemoryContextSwitchTo(cxt);
		ListRow    *r = palloc0(sizeof(ListRow));
		bool		isnull;

		for (int j = 0; j < 12; j++)
		{
			Form_pg_attribute att = TupleDescAttr(td, j + 9);
			Datum		d = heap_getattr(tup, j + 10, td, &r->nulls[j]);

			r->values[j] = r->nulls[j] ? (Datum) 0 :
				datumCopy(d, att->attbyval, att->attlen);
		}
		r->description = SPI_getvalue(tup, td, 8);
		r->tags = DatumGetJsonbPCopy(heap_getattr(tup, 9, td, &isnull));
		rows = lappend(rows, r);
		MemoryContextSwitchTo(spicxt);
		/* runs the grants query, which replaces SPI_tuptable */
		SecretFromTuple(tup, td, &r->meta, cxt);
	}
	KmsCatalogExit(&st);

	{
		List	   *out = NIL;
		ListCell   *lc;

		foreach(lc, rows)
		{
			ListRow    *r = lfirst(lc);

			if (!SecretVisible(&r->meta))
				continue;
			if (!FiltersMatch(filters, r->meta.name, r->description, r->tags))
				continue;
			out = lappend(out, r);
		}
		return out;
	}
}

PG_FUNCTION_INFO_V1(list_secrets);
Datum
list_secrets(PG_FUNCTION_ARGS)
{
	Jsonb	   *fj = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	bool		include_deleted = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	char	   *order = KmsArgText(fcinfo, 2);
	List	   *filters;
	List	   *rows;
	ListCell   *lc;
	TupleDesc	tupdesc;
	Tuplestorestate *ts;

	SecretCacheCheck();
	if (order == NULL)
		order = "asc";
	if (strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "sort_order must be asc or desc");
	filters = ParseFilters(fj);

	ts = KmsStartSRF(fcinfo, &tupdesc);
	rows = ListVisible(filters, include_deleted, strcmp(order, "desc") == 0);

	foreach(lc, rows)
	{
		ListRow    *r = lfirst(lc);

		tuplestore_putvalues(ts, tupdesc, r->values, r->nulls);
	}
	KmsAudit("ListSecrets", "*", 0, "success");
	return (Datum) 0;
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
	SecretCacheEntry *e;
	bytea	   *plain;

	SecretCacheCheck();
	e = FetchForRead(b->ref, NULL, NULL);
	plain = DecryptEntry(e);
	if ((*b->nvalues)++ > 0)
		appendStringInfoChar(b->values, ',');
	AppendValueJson(b->values, e, plain);
	WipeBytea(plain);
	KmsAudit("GetSecretValue", e->meta.arn, 0, "success");
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
	JsonStr(errors, &first, "Message", edata->message);
	appendStringInfoChar(errors, '}');
	FreeErrorData(edata);
}

PG_FUNCTION_INFO_V1(batch_get_secret_value);
Datum
batch_get_secret_value(PG_FUNCTION_ARGS)
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

	SecretCacheCheck();
	if (!PG_ARGISNULL(0) && fj != NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "give either secret_id_list or filters, not both");
	if (PG_ARGISNULL(0) && fj == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "give either secret_id_list or filters");
	initStringInfo(&values);
	initStringInfo(&errors);

	if (!PG_ARGISNULL(0))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		if (!PG_ARGISNULL(2))
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "max_results applies only with filters");
		if (next_token)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "next_token applies only with filters");
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
		}
	}
	else
	{
		int			max = PG_ARGISNULL(2) ? 20 : PG_GETARG_INT32(2);
		long		offset = 0;
		List	   *rows;
		int			i = 0;
		ListCell   *lc;

		if (max < 1 || max > 20)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "max_results must be 1 to 20");
		if (next_token)
		{
			char	   *end;

			if (strncmp(next_token, "pgkms1:", 7) != 0)
				kms_error(InvalidNextTokenException, KMS_SQLSTATE_INVALID_NEXT_TOKEN,
						  "the next_token is not valid");
			errno = 0;
			offset = strtol(next_token + 7, &end, 10);
			if (errno != 0 || *end != '\0' || end == next_token + 7 || offset < 0)
				kms_error(InvalidNextTokenException, KMS_SQLSTATE_INVALID_NEXT_TOKEN,
						  "the next_token is not valid");
		}
		rows = ListVisible(ParseFilters(fj), false, false);
		foreach(lc, rows)
		{
			ListRow    *r = lfirst(lc);

			if (i >= offset && i < offset + max)
				BatchOne(r->meta.arn, &values, &nvalues, &errors, &nerrors);
			i++;
		}
		if (offset + max < list_length(rows))
			next = psprintf("pgkms1:%ld", offset + max);
	}

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
 * DescribeSecret, ListSecretVersionIds
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(describe_secret);
Datum
describe_secret(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;
	Datum		d = (Datum) 0;
	bool		isnull = true;

	SecretCacheCheck();
	SecretResolve(ref, SEC_OP_DESCRIBE_SECRET, &m);
	v = KmsUuidDatum(m.id);
	KmsCatalogEnter(&st);
	if (KmsExec("SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
				"'ARN', s.arn, 'Name', s.name, 'Description', s.description, "
				"'KmsKeyId', s.kms_key_ref, 'RotationEnabled', s.rotation_enabled, "
				"'RotationLambdaARN', s.rotation_lambda_arn, 'RotationRules', s.rotation_rules, "
				"'LastRotatedDate', s.last_rotated_date, 'LastChangedDate', s.last_changed_date, "
				"'DeletedDate', s.deleted_date, "
				"'NextRotationDate', CASE WHEN s.rotation_enabled THEN s.next_rotation_date END, "
				"'LastRotationError', s.rotation_last_error, "
				"'Tags', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('Key', t.key, 'Value', t.value) ORDER BY t.key) "
				"         FROM pg_catalog.jsonb_each_text(s.tags) t), "
				"'VersionIdsToStages', (SELECT pg_catalog.jsonb_object_agg(x.version_id, x.stages) FROM "
				"   (SELECT st.version_id, pg_catalog.jsonb_agg(st.stage ORDER BY st.stage) AS stages "
				"      FROM kms.secret_stage st WHERE st.secret_id = s.secret_id GROUP BY st.version_id) x), "
				"'CreatedDate', s.created_date)) "
				"FROM kms.secret s WHERE s.secret_id = $1",
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

PG_FUNCTION_INFO_V1(list_secret_version_ids);
Datum
list_secret_version_ids(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	bool		include_deprecated = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	SecretMeta	m;

	SecretCacheCheck();
	SecretResolve(ref, SEC_OP_DESCRIBE_SECRET, &m);
	SecretRowsToSRF(fcinfo, m.id,
					psprintf("SELECT v.version_id, "
							 "COALESCE(pg_catalog.array_agg(s.stage ORDER BY s.stage) FILTER (WHERE s.stage IS NOT NULL), '{}'), "
							 "v.created_date "
							 "FROM kms.secret_version v LEFT JOIN kms.secret_stage s USING (secret_id, version_id) "
							 "WHERE v.secret_id = $1 GROUP BY v.version_id, v.created_date %s "
							 "ORDER BY v.created_date DESC, v.version_id",
							 include_deprecated ? "" : "HAVING count(s.stage) > 0"),
					3);
	KmsAudit("ListSecretVersionIds", m.arn, 0, "success");
	return (Datum) 0;
}
