/*-------------------------------------------------------------------------
 *
 * secrets.c
 *	  The secrets store: AWS Secrets Manager in SQL.  CreateSecret,
 *	  GetSecretValue (get_secret, get_secret_value, batch_get_secret_value),
 *	  PutSecretValue, UpdateSecret, UpdateSecretVersionStage,
 *	  DescribeSecret, ListSecrets, ListSecretVersionIds, DeleteSecret,
 *	  RestoreSecret, TagResource, UntagResource, GetRandomPassword, and
 *	  per-secret grants.
 *
 *	  A value is encrypted here, in C, under the secret's KMS key with the
 *	  encryption context {"SecretARN": arn, "SecretVersionId": version id}
 *	  (kms_data.c's envelope encryption) before any catalog statement runs;
 *	  only the ciphertext is ever a parameter of one.  Plaintext never
 *	  reaches a table, the WAL, a statement text or an error message, and is
 *	  wiped from this backend's memory once the result is built.
 *
 *	  Who may do what (docs/secrets.md):
 *	  - superuser, and the secret's owner (the creating role and its
 *		members): everything;
 *	  - members of kms_admin: create secrets; DescribeSecret, UpdateSecret
 *		(metadata), DeleteSecret, RestoreSecret, TagResource and grants on
 *		every secret, but not the value: they grant only those operations,
 *		never GetSecretValue, PutSecretValue, RotateSecret or
 *		UpdateSecretVersionStage (the owner does);
 *	  - a grantee: the operations of its grants.
 *	  A role that may do nothing with a secret gets AccessDeniedException
 *	  whether it exists or not; only kms_admin learns ResourceNotFound.
 *	  A secret under a customer key also needs Encrypt (writes) or Decrypt
 *	  (reads) on that key; the default key alias/pg_kms/secrets is usable
 *	  by whoever may use the secret, as AWS's aws/secretsmanager is.  Which
 *	  rule applies to a version is decided by the key its ciphertext names,
 *	  so a re-key (UpdateSecret with kms_key_id) neither locks readers out
 *	  of versions left under the old key nor opens them without its grant.
 *
 * Locking: every write locks the secret's row (SELECT ... FOR UPDATE)
 * before it reads or changes versions or labels, so writers of one secret
 * serialize and AWSCURRENT is on exactly one version.  Labels are rows keyed
 * by (secret, label), so a label cannot be on two versions.  Creating the
 * default key takes a transaction-level advisory lock.
 *
 * Caching: GetSecretValue keeps, per backend, the resolved version's
 * ciphertext and the secret's owner and grants (never plaintext), valid
 * while the shared generation (cache.c) stays put and no transaction of
 * this backend that could have filled it aborted.  Every write calls
 * KmsInvalidateAtCommit(), so all backends drop their caches after commit.
 *
 * IDENTIFICATION
 *	  src/secrets/secrets.c
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
#include "secrets/secrets.h"

#define SECRET_DEFAULT_ALIAS	"alias/pg_kms/secrets"
#define SECRET_MAX_VALUE		65536
#define SECRET_MAX_STAGES		20
#define SECRET_MAX_VERSIONS		100
#define SECRET_MAX_TAGS			50
#define SECRET_CACHE_KEYLEN		1200
#define SECRET_CACHE_MAX		1024

/* ----------------------------------------------------------------
 * Operations: grantable names, as AWS's IAM actions.
 * ----------------------------------------------------------------
 */
typedef enum SecretOp
{
	SEC_OP_GET_SECRET_VALUE = 0,
	SEC_OP_PUT_SECRET_VALUE,
	SEC_OP_DESCRIBE_SECRET,
	SEC_OP_UPDATE_SECRET,
	SEC_OP_UPDATE_SECRET_VERSION_STAGE,
	SEC_OP_DELETE_SECRET,
	SEC_OP_ROTATE_SECRET,
	SEC_OP_TAG_RESOURCE,
	SEC_NUM_GRANT_OPS,
	SEC_OP_MANAGE_GRANTS = SEC_NUM_GRANT_OPS	/* owner or kms_admin */
} SecretOp;

static const char *const SecretOpNames[] = {
	"GetSecretValue",
	"PutSecretValue",
	"DescribeSecret",
	"UpdateSecret",
	"UpdateSecretVersionStage",
	"DeleteSecret",
	"RotateSecret",
	"TagResource",
	"ManageGrants"
};

#define SEC_OPBIT(op)	((uint32) 1 << (op))
#define SEC_ADMIN_OPS	(SEC_OPBIT(SEC_OP_DESCRIBE_SECRET) | SEC_OPBIT(SEC_OP_UPDATE_SECRET) | \
						 SEC_OPBIT(SEC_OP_DELETE_SECRET) | SEC_OPBIT(SEC_OP_TAG_RESOURCE) | \
						 SEC_OPBIT(SEC_OP_MANAGE_GRANTS))
/*
 * Operations on a secret's value: reading it, writing it, having the worker
 * write it (RotateSecret), choosing which version is current.  Only the
 * owner or a superuser grants them, so kms_admin's management of a secret
 * never turns into use of it.
 */
#define SEC_VALUE_OPS	(SEC_OPBIT(SEC_OP_GET_SECRET_VALUE) | SEC_OPBIT(SEC_OP_PUT_SECRET_VALUE) | \
						 SEC_OPBIT(SEC_OP_ROTATE_SECRET) | \
						 SEC_OPBIT(SEC_OP_UPDATE_SECRET_VERSION_STAGE))

/* What we know about one secret; strings live in the caller's context. */
typedef struct SecretMeta
{
	uint8		id[16];
	char	   *arn;
	char	   *name;
	Oid			owner;
	bool		deleted;
	uint8		key_id[KMS_KEY_ID_LEN];
	bool		default_key;
	int			ngrants;
	Oid		   *grantees;
	uint32	   *grant_ops;
} SecretMeta;

/* One resolved version (for GetSecretValue); cached per backend. */
typedef struct SecretCacheEntry
{
	char		key[SECRET_CACHE_KEYLEN];	/* hash key: MUST BE FIRST */
	SecretMeta	meta;
	char		version_id[65];
	bool		binary;
	bytea	   *ciphertext;
	TimestampTz created;
	int			nstages;
	char	  **stages;
} SecretCacheEntry;

/* A value from the arguments; data points into the argument datum. */
typedef struct SecretValue
{
	bool		present;
	bool		binary;
	const char *data;
	Size		len;
} SecretValue;

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
static void
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
static void
SecretChanged(void)
{
	KmsInvalidateAtCommit();
}

/* ----------------------------------------------------------------
 * Arguments and validation
 * ----------------------------------------------------------------
 */
static char *
ArgSecretId(FunctionCallInfo fcinfo, int n)
{
	char	   *s = KmsArgText(fcinfo, n);

	if (s == NULL || s[0] == '\0')
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "secret_id must not be empty");
	if (strlen(s) > 2048)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "secret_id must be at most 2048 characters");
	return s;
}

/* The value from (secret_string, secret_binary) arguments; not copied. */
static void
ArgValue(FunctionCallInfo fcinfo, int nstring, int nbinary, SecretValue *v)
{
	v->present = false;
	v->binary = false;
	v->data = NULL;
	v->len = 0;
	if (!PG_ARGISNULL(nstring) && !PG_ARGISNULL(nbinary))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "give either secret_string or secret_binary, not both");
	if (!PG_ARGISNULL(nstring))
	{
		text	   *t = PG_GETARG_TEXT_PP(nstring);

		v->data = VARDATA_ANY(t);
		v->len = VARSIZE_ANY_EXHDR(t);
		v->present = true;
	}
	else if (!PG_ARGISNULL(nbinary))
	{
		bytea	   *b = PG_GETARG_BYTEA_PP(nbinary);

		v->data = VARDATA_ANY(b);
		v->len = VARSIZE_ANY_EXHDR(b);
		v->binary = true;
		v->present = true;
	}
	if (v->present && (v->len < 1 || v->len > SECRET_MAX_VALUE))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "%s must be 1 to %d bytes", v->binary ? "secret_binary" : "secret_string",
				  SECRET_MAX_VALUE);
}

static void
ValidateName(const char *name)
{
	size_t		len;

	if (name == NULL || name[0] == '\0')
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "name must not be empty");
	len = strlen(name);
	if (len > 512)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "name must be at most 512 characters");
	for (size_t i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("/_+=.@-", c) != NULL))
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "name \"%s\" may contain only ASCII letters, digits and \"/_+=.@-\"", name);
	}
}

static void
ValidateToken(const char *token, const char *what)
{
	size_t		len;

	if (token == NULL)
		return;
	len = strlen(token);
	if (len < 32 || len > 64)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "%s must be 32 to 64 characters", what);
}

static void
ValidateStage(const char *stage)
{
	if (stage == NULL || strlen(stage) < 1 || strlen(stage) > 256)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "a staging label must be 1 to 256 characters");
}

static void
ValidateDescription(const char *description)
{
	if (description && strlen(description) > 2048)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "description must be at most 2048 characters");
}

/* version_stages text[]: validated, duplicates dropped; NULL if absent. */
static List *
ArgStages(FunctionCallInfo fcinfo, int n)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	List	   *stages = NIL;

	if (PG_ARGISNULL(n))
		return NIL;
	arr = PG_GETARG_ARRAYTYPE_P(n);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	if (nelems == 0)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "version_stages must list at least one staging label, or be omitted");
	for (int i = 0; i < nelems; i++)
	{
		char	   *s;
		ListCell   *lc;
		bool		dup = false;

		if (nulls[i])
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "version_stages must not contain null");
		s = TextDatumGetCString(elems[i]);
		ValidateStage(s);
		foreach(lc, stages)
			if (strcmp(lfirst(lc), s) == 0)
				dup = true;
		if (!dup)
			stages = lappend(stages, s);
	}
	if (list_length(stages) > SECRET_MAX_STAGES)
		kms_error(LimitExceededException, KMS_SQLSTATE_LIMIT_EXCEEDED,
				  "a version can have at most %d staging labels", SECRET_MAX_STAGES);
	return stages;
}

/* Tags: AWS's list [{"Key":..,"Value":..}] or a plain object (tags.c). */
static Jsonb *
NormalizeTags(Jsonb *jb)
{
	return KmsParseTags(jb, &KmsSecretTagStyle);
}

/* ----------------------------------------------------------------
 * Small helpers: ids, JSON, SPI values
 * ----------------------------------------------------------------
 */
static void
RandomBytes(uint8 *buf, size_t n)
{
	if (kms_random_bytes(buf, n) != 0)
		kms_error(InternalServiceError, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
}

static char *
NewVersionId(void)
{
	uint8		u[16];
	char	   *out = palloc(37);

	RandomBytes(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;	/* RFC 4122 version 4 */
	u[8] = (u[8] & 0x3f) | 0x80;
	KmsUuidToString(u, out);
	return out;
}

/* n characters uniformly from set (rejection sampling on random bytes). */
static void
RandomChars(char *out, int n, const char *set, int setlen)
{
	int			limit = 256 - (256 % setlen);
	int			i = 0;

	while (i < n)
	{
		uint8		buf[64];

		RandomBytes(buf, sizeof(buf));
		for (int j = 0; j < (int) sizeof(buf) && i < n; j++)
			if (buf[j] < limit)
				out[i++] = set[buf[j] % setlen];
		kms_cleanse(buf, sizeof(buf));
	}
}

static char *
NewSecretArn(const char *name)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char		suffix[7];

	RandomChars(suffix, 6, alnum, 62);
	suffix[6] = '\0';
	return psprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s",
					kms_region, KmsAccountId(), name, suffix);
}

static Datum
UuidDatum(const uint8 *id)
{
	return KmsUuidDatum(id);
}

static Jsonb *
JsonbFromString(StringInfo buf)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf->data)));
}

static void
JsonKey(StringInfo buf, bool *first, const char *key)
{
	if (!*first)
		appendStringInfoChar(buf, ',');
	*first = false;
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
}

static void
JsonStr(StringInfo buf, bool *first, const char *key, const char *val)
{
	JsonKey(buf, first, key);
	escape_json(buf, val);
}

static void
JsonDate(StringInfo buf, bool *first, const char *key, TimestampTz ts)
{
	char		tbuf[MAXDATELEN + 1];

	JsonKey(buf, first, key);
	appendStringInfoChar(buf, '"');
	appendStringInfoString(buf, JsonEncodeDateTime(tbuf, TimestampTzGetDatum(ts),
												   TIMESTAMPTZOID, NULL));
	appendStringInfoChar(buf, '"');
}

static void
JsonStrArray(StringInfo buf, bool *first, const char *key, char **items, int n)
{
	JsonKey(buf, first, key);
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		escape_json(buf, items[i]);
	}
	appendStringInfoChar(buf, ']');
}

/* Column `col` of row `row` of the last SPI result, copied to cxt. */
static char *
SpiStr(uint64 row, int col, MemoryContext cxt)
{
	char	   *s = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

static Datum
SpiDatum(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* The owner of schema kms (the extension owner): it owns the default key. */
static Oid
ExtensionOwner(void)
{
	Oid			nsp = get_namespace_oid("kms", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/* ----------------------------------------------------------------
 * Secrets: lookup and privileges
 * ----------------------------------------------------------------
 */
static const char *const secret_columns =
"SELECT secret_id, arn, name, owner::oid, deleted_date IS NOT NULL, kms_key_id, "
"kms_key_ref IS NULL FROM kms.secret ";

/*
 * Fill m from a row whose first columns are secret_columns', and load the
 * grants (this runs a query: SPI_tuptable changes).
 */
static void
SecretFromTuple(HeapTuple tup, TupleDesc td, SecretMeta *m, MemoryContext cxt)
{
	bool		isnull;
	uint64		n;
	Oid			t = UUIDOID;
	Datum		v;

	memcpy(m->id, DatumGetUUIDP(heap_getattr(tup, 1, td, &isnull))->data, 16);
	m->arn = MemoryContextStrdup(cxt, SPI_getvalue(tup, td, 2));
	m->name = MemoryContextStrdup(cxt, SPI_getvalue(tup, td, 3));
	m->owner = DatumGetObjectId(heap_getattr(tup, 4, td, &isnull));
	m->deleted = DatumGetBool(heap_getattr(tup, 5, td, &isnull));
	memcpy(m->key_id, DatumGetUUIDP(heap_getattr(tup, 6, td, &isnull))->data, KMS_KEY_ID_LEN);
	m->default_key = DatumGetBool(heap_getattr(tup, 7, td, &isnull));

	v = UuidDatum(m->id);
	n = KmsExec("SELECT grantee::oid, operations FROM kms.secret_grant WHERE secret_id = $1",
				1, &t, &v, NULL, false, SPI_OK_SELECT);
	m->ngrants = (int) n;
	m->grantees = MemoryContextAllocZero(cxt, sizeof(Oid) * (n + 1));
	m->grant_ops = MemoryContextAllocZero(cxt, sizeof(uint32) * (n + 1));
	for (uint64 i = 0; i < n; i++)
	{
		ArrayType  *ops;
		Datum	   *elems;
		int			nelems;

		m->grantees[i] = DatumGetObjectId(SpiDatum(i, 1, &isnull));
		ops = DatumGetArrayTypeP(SpiDatum(i, 2, &isnull));
		deconstruct_array(ops, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
		for (int j = 0; j < nelems; j++)
		{
			char	   *op = TextDatumGetCString(elems[j]);

			for (int k = 0; k < SEC_NUM_GRANT_OPS; k++)
				if (strcmp(op, SecretOpNames[k]) == 0)
					m->grant_ops[i] |= SEC_OPBIT(k);
		}
	}
}

/*
 * Load a secret by name or ARN (fresh snapshot).  False if there is none.
 * Strings go to cxt.
 */
static bool
SecretLoad(const char *ref, SecretMeta *m, MemoryContext cxt)
{
	KmsCatalogState st;
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(ref);
	bool		found = false;
	char	   *sql;

	sql = psprintf("%s WHERE %s = $1", secret_columns,
				   strncmp(ref, "arn:", 4) == 0 ? "arn" : "name");
	KmsCatalogEnter(&st);
	if (KmsExec(sql, 1, &t, &v, NULL, false, SPI_OK_SELECT) == 1)
	{
		SecretFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, m, cxt);
		found = true;
	}
	KmsCatalogExit(&st);
	return found;
}

static bool
SecretLoadById(const uint8 *id, SecretMeta *m, bool for_update)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = UuidDatum(id);
	bool		found = false;
	MemoryContext cxt = CurrentMemoryContext;
	char	   *sql = psprintf("%s WHERE secret_id = $1%s", secret_columns,
							   for_update ? " FOR UPDATE" : "");

	KmsCatalogEnter(&st);
	if (KmsExec(sql, 1, &t, &v, NULL, false, SPI_OK_SELECT) == 1)
	{
		SecretFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, m, cxt);
		found = true;
	}
	KmsCatalogExit(&st);
	return found;
}

/* May the current role perform op on the secret? */
static bool
SecretAllowed(SecretMeta *m, SecretOp op)
{
	Oid			user = GetUserId();

	if (superuser() || has_privs_of_role(user, m->owner))
		return true;
	if ((SEC_ADMIN_OPS & SEC_OPBIT(op)) && KmsIsAdmin())
		return true;
	for (int i = 0; i < m->ngrants; i++)
		if ((m->grant_ops[i] & SEC_OPBIT(op)) && has_privs_of_role(user, m->grantees[i]))
			return true;
	return false;
}

/* May the current role do anything at all with it (ListSecrets)? */
static bool
SecretVisible(SecretMeta *m)
{
	Oid			user = GetUserId();

	if (superuser() || has_privs_of_role(user, m->owner) || KmsIsAdmin())
		return true;
	for (int i = 0; i < m->ngrants; i++)
		if (m->grant_ops[i] != 0 && has_privs_of_role(user, m->grantees[i]))
			return true;
	return false;
}

static void SecretDenied(SecretOp op, const char *ref) pg_attribute_noreturn();

static void
SecretDenied(SecretOp op, const char *ref)
{
	KmsAudit(SecretOpNames[op], ref, 0, "AccessDeniedException");
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_ACCESS_DENIED),
			 errhidestmt(true),
			 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform %s on secret \"%s\"",
					GetUserNameFromId(GetUserId(), false), SecretOpNames[op], ref)));
}

/* A secret that does not exist: only kms_admin is told so. */
static void SecretNotFound(SecretOp op, const char *ref) pg_attribute_noreturn();

static void
SecretNotFound(SecretOp op, const char *ref)
{
	if (KmsIsAdmin())
	{
		KmsAudit(SecretOpNames[op], ref, 0, "ResourceNotFoundException");
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "Secrets Manager can't find the specified secret \"%s\"", ref);
	}
	SecretDenied(op, ref);
}

static void
SecretNotDeleted(SecretMeta *m)
{
	if (m->deleted)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_REQUEST),
				 errhidestmt(true),
				 errmsg("InvalidRequestException: secret \"%s\" is marked for deletion", m->name),
				 errhint("Restore it with restore_secret() first.")));
}

/* Resolve and check op; no lock. */
static void
SecretResolve(const char *ref, SecretOp op, SecretMeta *m)
{
	if (!SecretLoad(ref, m, CurrentMemoryContext))
		SecretNotFound(op, ref);
	if (!SecretAllowed(m, op))
		SecretDenied(op, ref);
}

/* Lock the secret's row for a write and re-read what may have changed. */
static void
SecretLock(SecretMeta *m, const char *ref, SecretOp op)
{
	SecretMeta	fresh;

	if (!SecretLoadById(m->id, &fresh, true))
		SecretNotFound(op, ref);
	m->deleted = fresh.deleted;
	memcpy(m->key_id, fresh.key_id, KMS_KEY_ID_LEN);
	m->default_key = fresh.default_key;
}

/* Resolve, check op, refuse on a standby, lock; optionally refuse if deleted. */
static void
SecretForWrite(const char *ref, SecretOp op, const char *operation,
			   bool refuse_deleted, SecretMeta *m)
{
	KmsCheckWritable(operation);
	SecretResolve(ref, op, m);
	SecretLock(m, ref, op);
	if (refuse_deleted)
		SecretNotDeleted(m);
}

static void
SecretTouch(SecretMeta *m)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = UuidDatum(m->id);

	KmsCatalogEnter(&st);
	KmsExec("UPDATE kms.secret SET last_changed_date = pg_catalog.now() WHERE secret_id = $1",
			1, &t, &v, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

/* ----------------------------------------------------------------
 * Keys
 * ----------------------------------------------------------------
 */
static bool
LookupDefaultKey(uint8 *key_id)
{
	KmsCatalogState st;
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(SECRET_DEFAULT_ALIAS);
	bool		found = false;

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT key_id FROM kms.alias WHERE alias_name = $1",
				1, &t, &v, NULL, false, SPI_OK_SELECT) == 1)
	{
		bool		isnull;

		memcpy(key_id, DatumGetUUIDP(SpiDatum(0, 1, &isnull))->data, KMS_KEY_ID_LEN);
		found = true;
	}
	KmsCatalogExit(&st);
	return found;
}

/*
 * Refuse a key that cannot encrypt (or decrypt) now.  The default key is
 * not named: its id is the extension owner's business, not every secret
 * reader's.
 */
static void
KeyUsableFor(KmsKeyInfo *key, bool encrypt, bool is_default)
{
	const char *name;

	if (key->state == KMS_STATE_ENABLED && key->usage == KMS_USAGE_ENCRYPT_DECRYPT)
		return;
	name = is_default ? "the default KMS key for secrets" :
		psprintf("the KMS key \"%s\"", KmsKeyArn(key->key_id_str));
	if (encrypt)
		kms_error(EncryptionFailure, KMS_SQLSTATE_ENCRYPTION_FAILURE,
				  "Secrets Manager can't encrypt with %s: it is %s", name,
				  key->usage != KMS_USAGE_ENCRYPT_DECRYPT ? "not a symmetric encryption key" :
				  KmsKeyStateNames[key->state]);
	kms_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE,
			  "Secrets Manager can't decrypt with %s: it is %s",
			  name, KmsKeyStateNames[key->state]);
}

/*
 * The default key alias/pg_kms/secrets, created on first use and owned by
 * the extension owner.  Concurrent first uses serialize on an advisory
 * lock, so only one key is made.
 */
static void
DefaultKey(KmsKeyInfo *out)
{
	uint8		key_id[KMS_KEY_ID_LEN];
	KmsKeyInfo *key;

	if (!LookupDefaultKey(key_id))
	{
		KmsCatalogState st;

		KmsCheckWritable("CreateSecret");
		KmsCatalogEnter(&st);
		KmsExec("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_kms: " SECRET_DEFAULT_ALIAS "'))",
				0, NULL, NULL, NULL, false, SPI_OK_SELECT);
		KmsCatalogExit(&st);
		if (!LookupDefaultKey(key_id))
		{
			char	   *kid = KmsCreateKeyInternal("Default key for pg_kms secrets",
												   KMS_USAGE_ENCRYPT_DECRYPT,
												   "SYMMETRIC_DEFAULT", NULL,
												   ExtensionOwner());

			KmsCreateAliasInternal(SECRET_DEFAULT_ALIAS, kid);
			if (!KmsUuidFromString(kid, key_id))
				elog(ERROR, "invalid key id \"%s\"", kid);
		}
	}
	/*
	 * The key store reads with the active snapshot: let it see a key made
	 * by this command, or committed by a session we waited for.
	 */
	CommandCounterIncrement();
	PushActiveSnapshot(GetLatestSnapshot());
	key = KmsLookupKeyById(key_id);
	PopActiveSnapshot();
	if (key == NULL)
		kms_error(EncryptionFailure, KMS_SQLSTATE_ENCRYPTION_FAILURE,
				  "the default KMS key for secrets does not exist");
	*out = *key;				/* copy: the local key cache may be reset */
}

static bool
IsDefaultKeyRef(const char *ref)
{
	return ref == NULL || ref[0] == '\0' || strcmp(ref, SECRET_DEFAULT_ALIAS) == 0;
}

/* A key named by kms_key_id for writing: Encrypt on it, and usable. */
static void
KeyForWrite(const char *ref, KmsKeyInfo *out)
{
	if (IsDefaultKeyRef(ref))
		DefaultKey(out);
	else
	{
		if (strlen(ref) > 2048)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "kms_key_id must be at most 2048 characters");
		*out = *KmsResolveKey(ref, KMS_OP_ENCRYPT);
	}
	KeyUsableFor(out, true, IsDefaultKeyRef(ref));
}

/* The secret's own key, for writing a new version. */
static void
SecretKeyForWrite(SecretMeta *m, KmsKeyInfo *out)
{
	KmsKeyInfo *key;

	if (m->default_key)
	{
		DefaultKey(out);
		KeyUsableFor(out, true, true);
		return;
	}
	key = KmsLookupKeyById(m->key_id);
	if (key == NULL)
		kms_error(EncryptionFailure, KMS_SQLSTATE_ENCRYPTION_FAILURE,
				  "the KMS key of secret \"%s\" does not exist", m->name);
	KmsCheckAccess(key, KMS_OP_ENCRYPT, NULL);
	*out = *key;
	KeyUsableFor(out, true, false);
}

/* ----------------------------------------------------------------
 * Encryption of values
 * ----------------------------------------------------------------
 */
static void
SecretContext(KmsContext *ctx, KmsContextPair *pairs, const char *arn,
			  const char *version_id)
{
	pairs[0].key = "SecretARN";
	pairs[0].keylen = strlen("SecretARN");
	pairs[0].val = arn;
	pairs[0].vallen = strlen(arn);
	pairs[1].key = "SecretVersionId";
	pairs[1].keylen = strlen("SecretVersionId");
	pairs[1].val = version_id;
	pairs[1].vallen = strlen(version_id);
	ctx->npairs = 2;
	ctx->pairs = pairs;
}

static bytea *
SecretEncrypt(KmsKeyInfo *key, const char *arn, const char *version_id,
			  const char *data, Size len)
{
	KmsContext	ctx;
	KmsContextPair pairs[2];

	bytea	   *blob;

	SecretContext(&ctx, pairs, arn, version_id);
	/* the latest snapshot, for the reason given in DefaultKey() */
	CommandCounterIncrement();
	PushActiveSnapshot(GetLatestSnapshot());
	blob = KmsEncryptData(key, data, len, &ctx);
	PopActiveSnapshot();
	return blob;
}

/*
 * Is key_id the default key, which needs no grant of its own?  Decided by
 * the key that encrypted a version (its ciphertext names it), not by the
 * secret's current key: after a re-key, versions left under the old key
 * keep the old key's rule.  No catalog query when the version is under the
 * secret's own key (every read of a labelled version).
 */
static bool
SecretKeyIsDefault(SecretMeta *m, const uint8 *key_id)
{
	uint8		def[KMS_KEY_ID_LEN];

	if (memcmp(key_id, m->key_id, KMS_KEY_ID_LEN) == 0)
		return m->default_key;
	return LookupDefaultKey(def) && memcmp(key_id, def, KMS_KEY_ID_LEN) == 0;
}

/*
 * Decrypt a version's ciphertext.  A customer key needs Decrypt on it; the
 * default key needs no grant of its own (SecretKeyIsDefault).  A key that
 * cannot decrypt, or a ciphertext that does not decrypt, is AWS's
 * DecryptionFailure.  The caller wipes the result when done.
 */
static bytea *
SecretDecrypt(bytea *blob, SecretMeta *m, const char *version_id)
{
	const char *arn = m->arn;
	bool		is_default;
	KmsContext	ctx;
	KmsContextPair pairs[2];
	KmsBlobHeader hdr;
	KmsKeyInfo *key;
	MemoryContext cxt = CurrentMemoryContext;
	bytea	   *volatile result = NULL;

	if (kms_blob_parse((const uint8 *) VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), &hdr) != 0)
		kms_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE,
				  "the stored ciphertext of version \"%s\" of secret \"%s\" is not valid",
				  version_id, arn);
	key = KmsLookupKeyById(hdr.key_id);
	if (key == NULL)
		kms_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE,
				  "the KMS key of version \"%s\" of secret \"%s\" does not exist",
				  version_id, arn);
	is_default = SecretKeyIsDefault(m, hdr.key_id);
	if (!is_default)
		KmsCheckAccess(key, KMS_OP_DECRYPT, NULL);
	KeyUsableFor(key, false, is_default);

	SecretContext(&ctx, pairs, arn, version_id);
	PG_TRY();
	{
		result = KmsDecryptData(blob, &ctx, NULL, KMS_OP_DECRYPT, false, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != KMS_SQLSTATE_INVALID_CIPHERTEXT)
			PG_RE_THROW();
		FlushErrorState();
		kms_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE,
				  "the ciphertext of version \"%s\" of secret \"%s\" does not decrypt under its KMS key and encryption context",
				  version_id, arn);
	}
	PG_END_TRY();
	return result;
}

static void
WipeBytea(bytea *b)
{
	if (b)
		kms_cleanse(VARDATA(b), VARSIZE(b) - VARHDRSZ);
}

/* ----------------------------------------------------------------
 * Versions and labels (inside KmsCatalogEnter, the secret row locked)
 * ----------------------------------------------------------------
 */
static char *
StageHolder(Datum sid, const char *stage)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = sid;
	v[1] = CStringGetTextDatum(stage);
	if (KmsExec("SELECT version_id FROM kms.secret_stage WHERE secret_id = $1 AND stage = $2",
				2, t, v, NULL, false, SPI_OK_SELECT) == 1)
		return SpiStr(0, 1, CurTransactionContext);
	return NULL;
}

static void
StageSet(Datum sid, const char *stage, const char *version_id)
{
	Oid			t[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		v[3];

	v[0] = sid;
	v[1] = CStringGetTextDatum(stage);
	v[2] = CStringGetTextDatum(version_id);
	KmsExec("INSERT INTO kms.secret_stage (secret_id, stage, version_id) VALUES ($1, $2, $3) "
			"ON CONFLICT (secret_id, stage) DO UPDATE SET version_id = EXCLUDED.version_id",
			3, t, v, NULL, false, SPI_OK_INSERT);
}

static void
StageRemove(Datum sid, const char *stage)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = sid;
	v[1] = CStringGetTextDatum(stage);
	KmsExec("DELETE FROM kms.secret_stage WHERE secret_id = $1 AND stage = $2",
			2, t, v, NULL, false, SPI_OK_DELETE);
}

/*
 * Put a label on a version, taking it from the version that had it; when
 * AWSCURRENT moves, AWSPREVIOUS goes to the version it left.
 */
static void
StageAttach(Datum sid, const char *stage, const char *version_id)
{
	char	   *holder = StageHolder(sid, stage);
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bool		isnull;

	if (holder && strcmp(holder, version_id) == 0)
		return;
	if (holder && strcmp(stage, "AWSCURRENT") == 0)
		StageSet(sid, "AWSPREVIOUS", holder);
	StageSet(sid, stage, version_id);

	v[0] = sid;
	v[1] = CStringGetTextDatum(version_id);
	KmsExec("SELECT count(*) FROM kms.secret_stage WHERE secret_id = $1 AND version_id = $2",
			2, t, v, NULL, false, SPI_OK_SELECT);
	if (DatumGetInt64(SpiDatum(0, 1, &isnull)) > SECRET_MAX_STAGES)
		kms_error(LimitExceededException, KMS_SQLSTATE_LIMIT_EXCEEDED,
				  "a version can have at most %d staging labels", SECRET_MAX_STAGES);
}

/*
 * Drop deprecated versions (no labels) beyond the 100 most recent, but
 * never one created in the last 24 hours: AWS's rule.
 */
static void
PruneVersions(Datum sid)
{
	Oid			t = UUIDOID;

	KmsExec("DELETE FROM kms.secret_version v WHERE v.secret_id = $1 "
			"AND v.created_date < pg_catalog.now() - interval '24 hours' "
			"AND NOT EXISTS (SELECT 1 FROM kms.secret_stage s "
			"                 WHERE s.secret_id = v.secret_id AND s.version_id = v.version_id) "
			"AND v.version_id NOT IN (SELECT r.version_id FROM kms.secret_version r "
			"                          WHERE r.secret_id = $1 "
			"                          ORDER BY r.created_date DESC, r.version_id DESC LIMIT "
			CppAsString2(SECRET_MAX_VERSIONS) ")",
			1, &t, &sid, NULL, false, SPI_OK_DELETE);
}

/* The labels of a version, in name order. */
static int
VersionStages(Datum sid, const char *version_id, char ***out, MemoryContext cxt)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	uint64		n;

	v[0] = sid;
	v[1] = CStringGetTextDatum(version_id);
	n = KmsExec("SELECT stage FROM kms.secret_stage WHERE secret_id = $1 AND version_id = $2 ORDER BY stage",
				2, t, v, NULL, false, SPI_OK_SELECT);
	*out = MemoryContextAlloc(cxt, sizeof(char *) * (n + 1));
	for (uint64 i = 0; i < n; i++)
		(*out)[i] = SpiStr(i, 1, cxt);
	return (int) n;
}

/* A version's stored value, or NULL (copied out of SPI). */
static bytea *
FetchVersion(SecretMeta *m, const char *version_id, bool *binary)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bytea	   *blob = NULL;

	v[0] = UuidDatum(m->id);
	v[1] = CStringGetTextDatum(version_id);
	KmsCatalogEnter(&st);
	if (KmsExec("SELECT value_type = 'SecretBinary', ciphertext FROM kms.secret_version "
				"WHERE secret_id = $1 AND version_id = $2",
				2, t, v, NULL, false, SPI_OK_SELECT) == 1)
	{
		bool		isnull;

		*binary = DatumGetBool(SpiDatum(0, 1, &isnull));
		blob = (bytea *) SPI_datumTransfer(SpiDatum(0, 2, &isnull), false, -1);
	}
	KmsCatalogExit(&st);
	return blob;
}

/*
 * Add a version with value val under key, or, if version_id (a client
 * request token) already names a version with the same value, nothing.
 * stages NIL: AWSCURRENT.  The first version always gets AWSCURRENT.
 * Returns true if a version was created.
 */
static bool
PutVersion(SecretMeta *m, KmsKeyInfo *key, SecretValue *val,
		   const char *version_id, List *stages)
{
	bool		old_binary = false;
	bytea	   *old = FetchVersion(m, version_id, &old_binary);
	bytea	   *blob;
	KmsCatalogState st;
	Datum		sid = UuidDatum(m->id);
	ListCell   *lc;
	bool		has_current = false;

	if (old != NULL)
	{
		/* idempotent retry, or an attempt to change a version */
		bytea	   *plain = SecretDecrypt(old, m, version_id);
		bool		same = old_binary == val->binary &&
			VARSIZE(plain) - VARHDRSZ == val->len &&
			kms_const_time_eq((const uint8 *) VARDATA(plain),
							  (const uint8 *) val->data, val->len);

		WipeBytea(plain);
		if (!same)
			kms_error(ResourceExistsException, KMS_SQLSTATE_ALREADY_EXISTS,
					  "a version with client request token \"%s\" already exists with a different value; you can't modify an existing version, you can only create a new version",
					  version_id);
		return false;
	}

	blob = SecretEncrypt(key, m->arn, version_id, val->data, val->len);

	KmsCatalogEnter(&st);
	{
		Oid			t[4] = {UUIDOID, TEXTOID, TEXTOID, BYTEAOID};
		Datum		v[4];

		v[0] = sid;
		v[1] = CStringGetTextDatum(version_id);
		v[2] = CStringGetTextDatum(val->binary ? "SecretBinary" : "SecretString");
		v[3] = PointerGetDatum(blob);
		KmsExec("INSERT INTO kms.secret_version (secret_id, version_id, value_type, ciphertext, created_date) "
				"VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp())",
				4, t, v, NULL, false, SPI_OK_INSERT);
	}
	if (stages == NIL)
		stages = list_make1("AWSCURRENT");
	foreach(lc, stages)
		if (strcmp(lfirst(lc), "AWSCURRENT") == 0)
			has_current = true;
	if (!has_current && StageHolder(sid, "AWSCURRENT") == NULL)
		stages = lappend(list_copy(stages), "AWSCURRENT");
	foreach(lc, stages)
		StageAttach(sid, lfirst(lc), version_id);
	PruneVersions(sid);
	KmsCatalogExit(&st);
	return true;
}

/* {"ARN","Name"[,"VersionId"][,"VersionStages"]} */
static Jsonb *
WriteResult(SecretMeta *m, const char *version_id, bool with_stages)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	JsonStr(&buf, &first, "ARN", m->arn);
	JsonStr(&buf, &first, "Name", m->name);
	if (version_id)
		JsonStr(&buf, &first, "VersionId", version_id);
	if (version_id && with_stages)
	{
		KmsCatalogState st;
		char	  **stages;
		int			n;
		MemoryContext cxt = CurrentMemoryContext;

		KmsCatalogEnter(&st);
		n = VersionStages(UuidDatum(m->id), version_id, &stages, cxt);
		KmsCatalogExit(&st);
		JsonStrArray(&buf, &first, "VersionStages", stages, n);
	}
	appendStringInfoChar(&buf, '}');
	return JsonbFromString(&buf);
}

/* ----------------------------------------------------------------
 * CreateSecret
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(create_secret);
Datum
create_secret(PG_FUNCTION_ARGS)
{
	char	   *name = KmsArgText(fcinfo, 0);
	char	   *description = KmsArgText(fcinfo, 3);
	char	   *key_ref = KmsArgText(fcinfo, 4);
	Jsonb	   *tags = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);
	char	   *token = KmsArgText(fcinfo, 6);
	SecretValue val;
	KmsKeyInfo	key;
	SecretMeta	m;
	KmsCatalogState st;
	Oid			owner = GetUserId();
	char	   *version_id = NULL;
	uint8		sid[16];
	bool		inserted;

	SecretCacheCheck();
	if (!KmsIsAdmin())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED),
				 errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform CreateSecret",
						GetUserNameFromId(owner, false)),
				 errhint("Members of kms_admin may create secrets.")));
	KmsCheckWritable("CreateSecret");
	ValidateName(name);
	ValidateDescription(description);
	ArgValue(fcinfo, 1, 2, &val);
	ValidateToken(token, "client_request_token");
	tags = NormalizeTags(tags);

	/* A name is free again once its deletion window has passed. */
	KmsCatalogEnter(&st);
	if (KmsExec("DELETE FROM kms.secret WHERE deletion_date <= pg_catalog.now()",
				0, NULL, NULL, NULL, false, SPI_OK_DELETE) > 0)
		SecretChanged();
	KmsCatalogExit(&st);

	/* An existing name: an idempotent retry, or ResourceExistsException. */
	if (SecretLoad(name, &m, CurrentMemoryContext))
	{
		bool		binary;
		bytea	   *old;

		if (token && val.present && SecretAllowed(&m, SEC_OP_PUT_SECRET_VALUE) &&
			!m.deleted && (old = FetchVersion(&m, token, &binary)) != NULL)
		{
			bytea	   *plain = SecretDecrypt(old, &m, token);
			bool		same = binary == val.binary &&
				VARSIZE(plain) - VARHDRSZ == val.len &&
				kms_const_time_eq((const uint8 *) VARDATA(plain),
								  (const uint8 *) val.data, val.len);

			WipeBytea(plain);
			if (same)
				PG_RETURN_JSONB_P(WriteResult(&m, token, false));
		}
		kms_error(ResourceExistsException, KMS_SQLSTATE_ALREADY_EXISTS,
				  "the secret \"%s\" already exists%s", name,
				  m.deleted ? " (it is scheduled for deletion)" : "");
	}

	KeyForWrite(key_ref, &key);

	RandomBytes(sid, sizeof(sid));
	sid[6] = (sid[6] & 0x0f) | 0x40;
	sid[8] = (sid[8] & 0x3f) | 0x80;
	memset(&m, 0, sizeof(m));
	memcpy(m.id, sid, 16);
	m.name = name;
	m.arn = NewSecretArn(name);
	m.owner = owner;
	memcpy(m.key_id, key.key_id, KMS_KEY_ID_LEN);
	m.default_key = IsDefaultKeyRef(key_ref);

	KmsCatalogEnter(&st);
	{
		Oid			t[8] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID, TEXTOID, OIDOID, JSONBOID};
		Datum		v[8];
		char		n[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		v[0] = UuidDatum(sid);
		v[1] = CStringGetTextDatum(m.name);
		v[2] = CStringGetTextDatum(m.arn);
		if (description)
			v[3] = CStringGetTextDatum(description);
		else
			n[3] = 'n';
		v[4] = UuidDatum(key.key_id);
		if (!m.default_key)
			v[5] = CStringGetTextDatum(key_ref);
		else
			n[5] = 'n';
		v[6] = ObjectIdGetDatum(owner);
		v[7] = tags ? JsonbPGetDatum(tags) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
		inserted = KmsExec("INSERT INTO kms.secret (secret_id, name, arn, description, kms_key_id, kms_key_ref, "
						   "owner, tags, created_date, last_changed_date) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7::regrole, $8, pg_catalog.now(), pg_catalog.now()) "
						   "ON CONFLICT (name) DO NOTHING",
						   8, t, v, n, false, SPI_OK_INSERT) == 1;
	}
	KmsCatalogExit(&st);
	if (!inserted)
		kms_error(ResourceExistsException, KMS_SQLSTATE_ALREADY_EXISTS,
				  "the secret \"%s\" already exists", name);

	if (val.present)
	{
		version_id = token ? token : NewVersionId();
		PutVersion(&m, &key, &val, version_id, NIL);
	}
	SecretChanged();
	KmsAudit("CreateSecret", m.arn, 0, "success");
	PG_RETURN_JSONB_P(WriteResult(&m, version_id, false));
}

/* ----------------------------------------------------------------
 * GetSecretValue
 * ----------------------------------------------------------------
 */

/* Load the version named by (version_id, stage) into e (strings in cxt). */
static bool
LoadVersion(SecretMeta *m, const char *version_id, const char *stage,
			SecretCacheEntry *e, MemoryContext cxt)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bool		found = false;

	v[0] = UuidDatum(m->id);
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
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *fj = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	bool		include_deleted = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	char	   *order = KmsArgText(fcinfo, 2);
	List	   *filters;
	List	   *rows;
	ListCell   *lc;
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	MemoryContext old;

	SecretCacheCheck();
	if (order == NULL)
		order = "asc";
	if (strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "sort_order must be asc or desc");
	filters = ParseFilters(fj);

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errhidestmt(true),
				 errmsg("set-valued function called in context that cannot accept a set")));
	rows = ListVisible(filters, include_deleted, strcmp(order, "desc") == 0);

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = CreateTupleDescCopy(tupdesc);
	ts = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = tupdesc;
	MemoryContextSwitchTo(old);

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

/* Read one secret into SecretValues, or its error into Errors. */
static void
BatchOne(const char *ref, StringInfo values, int *nvalues, StringInfo errors,
		 int *nerrors)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		SecretCacheEntry *e;
		bytea	   *plain;

		SecretCacheCheck();
		e = FetchForRead(ref, NULL, NULL);
		plain = DecryptEntry(e);
		if ((*nvalues)++ > 0)
			appendStringInfoChar(values, ',');
		AppendValueJson(values, e, plain);
		WipeBytea(plain);
		KmsAudit("GetSecretValue", e->meta.arn, 0, "success");
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		first = true;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
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
	PG_END_TRY();
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
 * PutSecretValue, UpdateSecret, UpdateSecretVersionStage
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(put_secret_value);
Datum
put_secret_value(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *token = KmsArgText(fcinfo, 4);
	List	   *stages;
	SecretValue val;
	SecretMeta	m;
	KmsKeyInfo	key;
	char	   *version_id;

	SecretCacheCheck();
	ArgValue(fcinfo, 1, 2, &val);
	if (!val.present)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "give secret_string or secret_binary");
	stages = ArgStages(fcinfo, 3);
	ValidateToken(token, "client_request_token");

	SecretForWrite(ref, SEC_OP_PUT_SECRET_VALUE, "PutSecretValue", true, &m);
	SecretKeyForWrite(&m, &key);
	version_id = token ? token : NewVersionId();
	if (PutVersion(&m, &key, &val, version_id, stages))
	{
		SecretTouch(&m);
		SecretChanged();
	}
	KmsAudit("PutSecretValue", m.arn, 0, "success");
	PG_RETURN_JSONB_P(WriteResult(&m, version_id, true));
}

/*
 * Re-encrypt every version that has a label under a new key.  AWS
 * re-encrypts only AWSCURRENT, AWSPENDING and AWSPREVIOUS; a custom label
 * left under the old key would then need a grant on that key (or, for the
 * default key, be readable only by the rule of a key the secret no longer
 * uses), so every labelled version moves.  Versions without labels stay
 * under the key that wrote them and are read through it.
 */
static void
Reencrypt(SecretMeta *m, KmsKeyInfo *newkey)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	uint64		n;
	List	   *ids = NIL;
	ListCell   *lc;
	MemoryContext cxt = CurrentMemoryContext;

	v[0] = UuidDatum(m->id);
	KmsCatalogEnter(&st);
	n = KmsExec("SELECT DISTINCT version_id FROM kms.secret_stage WHERE secret_id = $1 ORDER BY 1",
				1, t, v, NULL, false, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		ids = lappend(ids, SpiStr(i, 1, cxt));
		MemoryContextSwitchTo(old);
	}
	KmsCatalogExit(&st);

	foreach(lc, ids)
	{
		char	   *vid = lfirst(lc);
		bool		binary;
		bytea	   *old = FetchVersion(m, vid, &binary);
		bytea	   *plain;
		bytea	   *blob;

		if (old == NULL)
			continue;
		plain = SecretDecrypt(old, m, vid);
		blob = SecretEncrypt(newkey, m->arn, vid, VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
		WipeBytea(plain);
		v[1] = CStringGetTextDatum(vid);
		{
			Oid			t3[3] = {UUIDOID, TEXTOID, BYTEAOID};
			Datum		v3[3];

			v3[0] = v[0];
			v3[1] = v[1];
			v3[2] = PointerGetDatum(blob);
			KmsCatalogEnter(&st);
			KmsExec("UPDATE kms.secret_version SET ciphertext = $3 WHERE secret_id = $1 AND version_id = $2",
					3, t3, v3, NULL, false, SPI_OK_UPDATE);
			KmsCatalogExit(&st);
		}
	}
}

PG_FUNCTION_INFO_V1(update_secret);
Datum
update_secret(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *description = KmsArgText(fcinfo, 3);
	char	   *key_ref = KmsArgText(fcinfo, 4);
	char	   *token = KmsArgText(fcinfo, 5);
	SecretValue val;
	SecretMeta	m;
	KmsKeyInfo	key;
	char	   *version_id = NULL;
	KmsCatalogState st;
	bool		changed = false;

	SecretCacheCheck();
	ArgValue(fcinfo, 1, 2, &val);
	ValidateDescription(description);
	ValidateToken(token, "client_request_token");
	if (token && !val.present)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "client_request_token applies only with a new secret_string or secret_binary");

	SecretForWrite(ref, SEC_OP_UPDATE_SECRET, "UpdateSecret", true, &m);
	/* a new value is a new version: that needs PutSecretValue too */
	if (val.present && !SecretAllowed(&m, SEC_OP_PUT_SECRET_VALUE))
		SecretDenied(SEC_OP_PUT_SECRET_VALUE, ref);

	if (key_ref != NULL)
	{
		KeyForWrite(key_ref, &key);
		if (memcmp(key.key_id, m.key_id, KMS_KEY_ID_LEN) != 0 ||
			m.default_key != IsDefaultKeyRef(key_ref))
		{
			Oid			t[3] = {UUIDOID, UUIDOID, TEXTOID};
			Datum		v[3];
			char		n[3] = {' ', ' ', ' '};

			Reencrypt(&m, &key);
			v[0] = UuidDatum(m.id);
			v[1] = UuidDatum(key.key_id);
			if (IsDefaultKeyRef(key_ref))
				n[2] = 'n';
			else
				v[2] = CStringGetTextDatum(key_ref);
			KmsCatalogEnter(&st);
			KmsExec("UPDATE kms.secret SET kms_key_id = $2, kms_key_ref = $3 WHERE secret_id = $1",
					3, t, v, n, false, SPI_OK_UPDATE);
			KmsCatalogExit(&st);
			memcpy(m.key_id, key.key_id, KMS_KEY_ID_LEN);
			m.default_key = IsDefaultKeyRef(key_ref);
			changed = true;
		}
	}
	if (description != NULL)
	{
		Oid			t[2] = {UUIDOID, TEXTOID};
		Datum		v[2];

		v[0] = UuidDatum(m.id);
		v[1] = CStringGetTextDatum(description);
		KmsCatalogEnter(&st);
		KmsExec("UPDATE kms.secret SET description = $2 WHERE secret_id = $1",
				2, t, v, NULL, false, SPI_OK_UPDATE);
		KmsCatalogExit(&st);
		changed = true;
	}
	if (val.present)
	{
		if (key_ref == NULL)
			SecretKeyForWrite(&m, &key);
		version_id = token ? token : NewVersionId();
		if (PutVersion(&m, &key, &val, version_id, NIL))
			changed = true;
	}
	if (changed)
	{
		SecretTouch(&m);
		SecretChanged();
	}
	KmsAudit("UpdateSecret", m.arn, 0, "success");
	PG_RETURN_JSONB_P(WriteResult(&m, version_id, false));
}

static bool
VersionExists(Datum sid, const char *version_id)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = sid;
	v[1] = CStringGetTextDatum(version_id);
	return KmsExec("SELECT 1 FROM kms.secret_version WHERE secret_id = $1 AND version_id = $2",
				   2, t, v, NULL, false, SPI_OK_SELECT) == 1;
}

PG_FUNCTION_INFO_V1(update_secret_version_stage);
Datum
update_secret_version_stage(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *stage = KmsArgText(fcinfo, 1);
	char	   *remove_from = KmsArgText(fcinfo, 2);
	char	   *move_to = KmsArgText(fcinfo, 3);
	SecretMeta	m;
	KmsCatalogState st;
	Datum		sid;
	char	   *holder;

	SecretCacheCheck();
	ValidateStage(stage);
	ValidateToken(remove_from, "remove_from_version_id");
	ValidateToken(move_to, "move_to_version_id");
	if (remove_from == NULL && move_to == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "give move_to_version_id, remove_from_version_id, or both");

	SecretForWrite(ref, SEC_OP_UPDATE_SECRET_VERSION_STAGE, "UpdateSecretVersionStage", true, &m);
	sid = UuidDatum(m.id);
	KmsCatalogEnter(&st);
	holder = StageHolder(sid, stage);
	if (move_to)
	{
		if (!VersionExists(sid, move_to))
			kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
					  "Secrets Manager can't find version \"%s\" of secret \"%s\"", move_to, m.name);
		if (holder && strcmp(holder, move_to) != 0 &&
			(remove_from == NULL || strcmp(remove_from, holder) != 0))
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "staging label %s is attached to version \"%s\"; pass that version as remove_from_version_id to move it",
					  stage, holder);
		if (remove_from && (holder == NULL || strcmp(remove_from, holder) != 0) &&
			strcmp(remove_from, move_to) != 0)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "staging label %s is not attached to version \"%s\"", stage, remove_from);
		StageAttach(sid, stage, move_to);
	}
	else
	{
		if (holder == NULL || strcmp(holder, remove_from) != 0)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "staging label %s is not attached to version \"%s\"", stage, remove_from);
		if (strcmp(stage, "AWSCURRENT") == 0)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "AWSCURRENT cannot be removed, only moved: give move_to_version_id");
		StageRemove(sid, stage);
	}
	KmsCatalogExit(&st);
	SecretTouch(&m);
	SecretChanged();
	KmsAudit("UpdateSecretVersionStage", m.arn, 0, "success");
	PG_RETURN_JSONB_P(WriteResult(&m, NULL, false));
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
	v = UuidDatum(m.id);
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
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;
	uint64		n;

	SecretCacheCheck();
	SecretResolve(ref, SEC_OP_DESCRIBE_SECRET, &m);
	ts = KmsStartSRF(fcinfo, &tupdesc);
	v = UuidDatum(m.id);
	KmsCatalogEnter(&st);
	n = KmsExec(psprintf("SELECT v.version_id, "
						 "COALESCE(pg_catalog.array_agg(s.stage ORDER BY s.stage) FILTER (WHERE s.stage IS NOT NULL), '{}'), "
						 "v.created_date "
						 "FROM kms.secret_version v LEFT JOIN kms.secret_stage s USING (secret_id, version_id) "
						 "WHERE v.secret_id = $1 GROUP BY v.version_id, v.created_date %s "
						 "ORDER BY v.created_date DESC, v.version_id",
						 include_deprecated ? "" : "HAVING count(s.stage) > 0"),
				1, &t, &v, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3];

		for (int j = 0; j < 3; j++)
			values[j] = SpiDatum(i, j + 1, &nulls[j]);
		tuplestore_putvalues(ts, tupdesc, values, nulls);
	}
	KmsCatalogExit(&st);
	KmsAudit("ListSecretVersionIds", m.arn, 0, "success");
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * DeleteSecret, RestoreSecret
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(delete_secret);
Datum
delete_secret(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	bool		force = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	int32		days = PG_ARGISNULL(1) ? 30 : PG_GETARG_INT32(1);
	SecretMeta	m;
	KmsCatalogState st;
	StringInfoData buf;
	bool		first = true;
	TimestampTz deletion;

	SecretCacheCheck();
	if (force && !PG_ARGISNULL(1))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "give either recovery_window_in_days or force_delete_without_recovery, not both");
	if (days < 7 || days > 30)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "recovery_window_in_days must be 7 to 30");
	KmsCheckWritable("DeleteSecret");

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (!SecretLoad(ref, &m, CurrentMemoryContext))
	{
		/* AWS: a forced delete of a missing secret is not an error */
		if (force && KmsIsAdmin())
		{
			JsonStr(&buf, &first, "Name", ref);
			JsonDate(&buf, &first, "DeletionDate", GetCurrentTransactionStartTimestamp());
			appendStringInfoChar(&buf, '}');
			PG_RETURN_JSONB_P(JsonbFromString(&buf));
		}
		SecretNotFound(SEC_OP_DELETE_SECRET, ref);
	}
	if (!SecretAllowed(&m, SEC_OP_DELETE_SECRET))
		SecretDenied(SEC_OP_DELETE_SECRET, ref);
	SecretLock(&m, ref, SEC_OP_DELETE_SECRET);

	if (force)
	{
		Oid			t = UUIDOID;
		Datum		v = UuidDatum(m.id);

		KmsCatalogEnter(&st);
		KmsExec("DELETE FROM kms.secret WHERE secret_id = $1", 1, &t, &v, NULL, false, SPI_OK_DELETE);
		KmsCatalogExit(&st);
		deletion = GetCurrentTransactionStartTimestamp();
	}
	else
	{
		Oid			t[2] = {UUIDOID, INT4OID};
		Datum		v[2];
		bool		isnull;

		if (m.deleted)
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_INVALID_REQUEST),
					 errhidestmt(true),
					 errmsg("InvalidRequestException: secret \"%s\" is already scheduled for deletion", m.name),
					 errhint("Restore it with restore_secret(), or delete it at once with force_delete_without_recovery.")));
		v[0] = UuidDatum(m.id);
		v[1] = Int32GetDatum(days);
		KmsCatalogEnter(&st);
		KmsExec("UPDATE kms.secret SET deleted_date = pg_catalog.now(), "
				"deletion_date = pg_catalog.now() + pg_catalog.make_interval(days => $2) "
				"WHERE secret_id = $1 RETURNING deletion_date",
				2, t, v, NULL, false, SPI_OK_UPDATE_RETURNING);
		deletion = DatumGetTimestampTz(SpiDatum(0, 1, &isnull));
		KmsCatalogExit(&st);
	}
	SecretChanged();
	KmsAudit("DeleteSecret", m.arn, 0, "success");
	JsonStr(&buf, &first, "ARN", m.arn);
	JsonStr(&buf, &first, "Name", m.name);
	JsonDate(&buf, &first, "DeletionDate", deletion);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_JSONB_P(JsonbFromString(&buf));
}

PG_FUNCTION_INFO_V1(restore_secret);
Datum
restore_secret(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;

	SecretCacheCheck();
	SecretForWrite(ref, SEC_OP_DELETE_SECRET, "RestoreSecret", false, &m);
	if (m.deleted)
	{
		v = UuidDatum(m.id);
		KmsCatalogEnter(&st);
		KmsExec("UPDATE kms.secret SET deleted_date = NULL, deletion_date = NULL WHERE secret_id = $1",
				1, &t, &v, NULL, false, SPI_OK_UPDATE);
		KmsCatalogExit(&st);
		SecretChanged();
	}
	KmsAudit("RestoreSecret", m.arn, 0, "success");
	PG_RETURN_JSONB_P(WriteResult(&m, NULL, false));
}

/* ----------------------------------------------------------------
 * TagResource, UntagResource
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(tag_resource);
Datum
tag_resource(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	Jsonb	   *tags;
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, JSONBOID};
	Datum		v[2];
	bool		isnull;
	int64		count;

	SecretCacheCheck();
	if (PG_ARGISNULL(1))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "tags must not be null");
	tags = NormalizeTags(PG_GETARG_JSONB_P(1));
	SecretForWrite(ref, SEC_OP_TAG_RESOURCE, "TagResource", true, &m);
	v[0] = UuidDatum(m.id);
	v[1] = JsonbPGetDatum(tags);
	KmsCatalogEnter(&st);
	KmsExec("UPDATE kms.secret SET tags = tags || $2 WHERE secret_id = $1 "
			"RETURNING (SELECT count(*) FROM pg_catalog.jsonb_object_keys(tags))",
			2, t, v, NULL, false, SPI_OK_UPDATE_RETURNING);
	count = DatumGetInt64(SpiDatum(0, 1, &isnull));
	KmsCatalogExit(&st);
	if (count > SECRET_MAX_TAGS)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "a secret can have at most %d tags", SECRET_MAX_TAGS);
	SecretChanged();
	KmsAudit("TagResource", m.arn, 0, "success");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(untag_resource);
Datum
untag_resource(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	ArrayType  *keys;
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTARRAYOID};
	Datum		v[2];

	SecretCacheCheck();
	if (PG_ARGISNULL(1))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "tag_keys must not be null");
	keys = PG_GETARG_ARRAYTYPE_P(1);
	if (array_contains_nulls(keys))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "tag_keys must not contain null");
	SecretForWrite(ref, SEC_OP_TAG_RESOURCE, "UntagResource", true, &m);
	v[0] = UuidDatum(m.id);
	v[1] = PointerGetDatum(keys);
	KmsCatalogEnter(&st);
	KmsExec("UPDATE kms.secret SET tags = tags - $2 WHERE secret_id = $1",
			2, t, v, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
	SecretChanged();
	KmsAudit("UntagResource", m.arn, 0, "success");
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * GetRandomPassword
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(get_random_password);
Datum
get_random_password(PG_FUNCTION_ARGS)
{
	static const char *const classes[4] = {
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"abcdefghijklmnopqrstuvwxyz",
		"0123456789",
		"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	};
	int64		length = PG_ARGISNULL(0) ? 32 : PG_GETARG_INT64(0);
	char	   *exclude = KmsArgText(fcinfo, 1);
	bool		excl[4];
	bool		include_space = PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6);
	bool		require_each = PG_ARGISNULL(7) ? true : PG_GETARG_BOOL(7);
	char		set[128];
	int			setlen = 0;
	char		cls[4][64];
	int			clslen[4] = {0, 0, 0, 0};
	int			nclasses = 0;
	char	   *pw;
	text	   *result;

	excl[0] = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);	/* uppercase */
	excl[1] = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);	/* lowercase */
	excl[2] = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);	/* numbers */
	excl[3] = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);	/* punctuation */

	if (length < 1 || length > 4096)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "password_length must be 1 to 4096");
	if (exclude && strlen(exclude) > 4096)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "exclude_characters must be at most 4096 characters");

	for (int c = 0; c < 4; c++)
	{
		if (excl[c])
			continue;
		for (const char *p = classes[c]; *p; p++)
			if (exclude == NULL || strchr(exclude, *p) == NULL)
			{
				cls[c][clslen[c]++] = *p;
				set[setlen++] = *p;
			}
		if (clslen[c] > 0)
			nclasses++;
	}
	if (include_space && (exclude == NULL || strchr(exclude, ' ') == NULL))
		set[setlen++] = ' ';
	if (setlen == 0)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "the parameters exclude every character: no password can be made");
	if (require_each && length < nclasses)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "password_length %lld is too short to include each of the %d included character types",
				  (long long) length, nclasses);

	pw = palloc(length + 1);
	/* uniform over all passwords that meet the rules: draw until one does */
	for (;;)
	{
		bool		ok = true;

		RandomChars(pw, (int) length, set, setlen);
		if (require_each)
			for (int c = 0; c < 4 && ok; c++)
			{
				bool		has = clslen[c] == 0;

				for (int i = 0; i < length && !has; i++)
					if (memchr(cls[c], pw[i], clslen[c]) != NULL)
						has = true;
				ok = has;
			}
		if (ok)
			break;
	}
	pw[length] = '\0';
	result = cstring_to_text_with_len(pw, (int) length);
	kms_cleanse(pw, length);
	PG_RETURN_TEXT_P(result);
}

/* ----------------------------------------------------------------
 * Per-secret grants
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(secret_create_grant);
Datum
secret_create_grant(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *grantee_name = KmsArgText(fcinfo, 1);
	ArrayType  *ops;
	Datum	   *elems;
	bool	   *elemnulls;
	int			nelems;
	uint32		bits = 0;
	ArrayBuildState *astate = NULL;
	Oid			grantee;
	SecretMeta	m;
	KmsCatalogState st;
	char	   *grant_id;
	Oid			issuer = GetUserId();

	SecretCacheCheck();
	if (grantee_name == NULL || grantee_name[0] == '\0')
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "grantee_principal must not be empty");
	if (PG_ARGISNULL(2))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "operations must not be null");
	ops = PG_GETARG_ARRAYTYPE_P(2);
	deconstruct_array(ops, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elemnulls, &nelems);
	if (nelems == 0)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "operations must list at least one operation");
	for (int i = 0; i < nelems; i++)
	{
		char	   *op;
		int			o = -1;

		if (elemnulls[i])
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "operations must not contain null");
		op = TextDatumGetCString(elems[i]);
		for (int k = 0; k < SEC_NUM_GRANT_OPS; k++)
			if (strcmp(op, SecretOpNames[k]) == 0)
				o = k;
		if (o < 0)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "operation \"%s\" is not a valid secret grant operation", op);
		if (!(bits & SEC_OPBIT(o)))
			astate = accumArrayResult(astate, CStringGetTextDatum(SecretOpNames[o]), false,
									  TEXTOID, CurrentMemoryContext);
		bits |= SEC_OPBIT(o);
	}

	SecretForWrite(ref, SEC_OP_MANAGE_GRANTS, "CreateGrant", false, &m);

	/*
	 * Whoever is not the owner (kms_admin) grants only what it holds itself,
	 * and never an operation on the value: not to another role, nor to
	 * itself or a role it belongs to.
	 */
	if (!superuser() && !has_privs_of_role(issuer, m.owner))
	{
		for (int o = 0; o < SEC_NUM_GRANT_OPS; o++)
		{
			if (!(bits & SEC_OPBIT(o)))
				continue;
			if ((SEC_VALUE_OPS & SEC_OPBIT(o)) || !SecretAllowed(&m, o))
			{
				KmsAudit("CreateGrant", ref, 0, "AccessDeniedException");
				ereport(ERROR,
						(errcode(KMS_SQLSTATE_ACCESS_DENIED),
						 errhidestmt(true),
						 errmsg("AccessDeniedException: role \"%s\" is not authorized to grant %s on secret \"%s\"",
								GetUserNameFromId(issuer, false), SecretOpNames[o], ref),
						 (SEC_VALUE_OPS & SEC_OPBIT(o)) ?
						 errdetail("Only the secret's owner or a superuser grants GetSecretValue, PutSecretValue, RotateSecret and UpdateSecretVersionStage.") :
						 errdetail("A role other than the secret's owner grants only operations it may perform itself.")));
			}
		}
	}

	grantee = get_role_oid(grantee_name, true);
	if (!OidIsValid(grantee))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "grantee principal \"%s\" is not a role", grantee_name);

	grant_id = KmsNewToken(32);
	KmsCatalogEnter(&st);
	{
		Oid			t[5] = {TEXTOID, UUIDOID, OIDOID, TEXTARRAYOID, OIDOID};
		Datum		v[5];

		v[0] = CStringGetTextDatum(grant_id);
		v[1] = UuidDatum(m.id);
		v[2] = ObjectIdGetDatum(grantee);
		v[3] = makeArrayResult(astate, CurrentMemoryContext);
		v[4] = ObjectIdGetDatum(issuer);
		KmsExec("INSERT INTO kms.secret_grant (grant_id, secret_id, grantee, operations, issuing_role, creation_date) "
				"VALUES ($1, $2, $3::regrole, $4, $5::regrole, pg_catalog.now())",
				5, t, v, NULL, false, SPI_OK_INSERT);
	}
	KmsCatalogExit(&st);
	SecretChanged();
	KmsAudit("CreateGrant", m.arn, 0, "success");
	PG_RETURN_TEXT_P(cstring_to_text(grant_id));
}

PG_FUNCTION_INFO_V1(secret_revoke_grant);
Datum
secret_revoke_grant(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *grant_id = KmsArgText(fcinfo, 1);
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	uint64		n;

	SecretCacheCheck();
	if (grant_id == NULL || grant_id[0] == '\0' || strlen(grant_id) > 128)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "grant id must be 1 to 128 characters");
	SecretForWrite(ref, SEC_OP_MANAGE_GRANTS, "RevokeGrant", false, &m);
	v[0] = UuidDatum(m.id);
	v[1] = CStringGetTextDatum(grant_id);
	KmsCatalogEnter(&st);
	n = KmsExec("DELETE FROM kms.secret_grant WHERE secret_id = $1 AND grant_id = $2",
				2, t, v, NULL, false, SPI_OK_DELETE);
	KmsCatalogExit(&st);
	if (n != 1)
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "grant \"%s\" does not exist on secret \"%s\"", grant_id, m.name);
	SecretChanged();
	KmsAudit("RevokeGrant", m.arn, 0, "success");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(secret_list_grants);
Datum
secret_list_grants(PG_FUNCTION_ARGS)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	SecretMeta	m;
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;
	uint64		n;

	SecretCacheCheck();
	SecretResolve(ref, SEC_OP_MANAGE_GRANTS, &m);
	ts = KmsStartSRF(fcinfo, &tupdesc);
	v = UuidDatum(m.id);
	KmsCatalogEnter(&st);
	n = KmsExec("SELECT grant_id, grantee::text, operations, issuing_role::text, creation_date "
				"FROM kms.secret_grant WHERE secret_id = $1 ORDER BY creation_date, grant_id",
				1, &t, &v, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[5];
		bool		nulls[5];

		for (int j = 0; j < 5; j++)
			values[j] = SpiDatum(i, j + 1, &nulls[j]);
		tuplestore_putvalues(ts, tupdesc, values, nulls);
	}
	KmsCatalogExit(&st);
	return (Datum) 0;
}

/* kms_secret_visible(uuid): for the kms.secrets view */
PG_FUNCTION_INFO_V1(kms_secret_visible);
Datum
kms_secret_visible(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = PG_GETARG_UUID_P(0);
	SecretMeta	m;

	if (!SecretLoadById(u->data, &m, false))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(SecretVisible(&m));
}

/* ----------------------------------------------------------------
 * The interface for rotation (secrets.h): thin wrappers over the helpers
 * above.
 * ----------------------------------------------------------------
 */
static void
InfoFromMeta(SecretMeta *m, KmsSecretInfo *info)
{
	memcpy(info->id, m->id, 16);
	info->arn = m->arn;
	info->name = m->name;
	info->owner = m->owner;
	info->deleted = m->deleted;
}

void
KmsSecretForRotation(const char *ref, KmsSecretInfo *info)
{
	SecretMeta	m;

	SecretCacheCheck();
	SecretForWrite(ref, SEC_OP_ROTATE_SECRET, "RotateSecret", false, &m);
	InfoFromMeta(&m, info);
}

bool
KmsSecretLoadInfo(const uint8 *id, KmsSecretInfo *info, bool for_update)
{
	SecretMeta	m;

	if (!SecretLoadById(id, &m, for_update))
		return false;
	InfoFromMeta(&m, info);
	return true;
}

char *
KmsSecretGetString(const uint8 *id, const char *version_id, const char *stage,
				   char **version_out)
{
	SecretMeta	m;
	SecretCacheEntry e;
	bytea	   *plain;
	char	   *s;

	if (!SecretLoadById(id, &m, false))
		return NULL;
	memset(&e, 0, sizeof(e));
	if (!LoadVersion(&m, version_id, version_id ? NULL : stage, &e, CurrentMemoryContext))
		return NULL;
	if (version_id && stage)
	{
		bool		has = false;

		for (int i = 0; i < e.nstages; i++)
			if (strcmp(e.stages[i], stage) == 0)
				has = true;
		if (!has)
			return NULL;
	}
	if (e.binary)
		return NULL;
	plain = SecretDecrypt(e.ciphertext, &m, e.version_id);
	s = text_to_cstring((text *) plain);
	WipeBytea(plain);
	if (version_out)
		*version_out = pstrdup(e.version_id);
	return s;
}

bool
KmsSecretPutString(const uint8 *id, const char *version_id, const char *value,
				   List *stages)
{
	SecretMeta	m;
	KmsKeyInfo	key;
	SecretValue val;
	bool		created;

	if (!SecretLoadById(id, &m, true))
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "Secrets Manager can't find the secret being rotated");
	SecretKeyForWrite(&m, &key);
	val.present = true;
	val.binary = false;
	val.data = value;
	val.len = strlen(value);
	created = PutVersion(&m, &key, &val, version_id, stages);
	if (created)
	{
		SecretTouch(&m);
		SecretChanged();
	}
	return created;
}

char *
KmsSecretStageHolder(const uint8 *id, const char *stage)
{
	KmsCatalogState st;
	char	   *holder;

	KmsCatalogEnter(&st);
	holder = StageHolder(UuidDatum(id), stage);
	KmsCatalogExit(&st);
	return holder ? pstrdup(holder) : NULL;
}

bool
KmsSecretVersionExists(const uint8 *id, const char *version_id)
{
	KmsCatalogState st;
	bool		found;

	KmsCatalogEnter(&st);
	found = VersionExists(UuidDatum(id), version_id);
	KmsCatalogExit(&st);
	return found;
}

bool
KmsSecretVersionHasStage(const uint8 *id, const char *version_id, const char *stage)
{
	char	   *holder = KmsSecretStageHolder(id, stage);

	return holder != NULL && strcmp(holder, version_id) == 0;
}

void
KmsSecretMoveStage(const uint8 *id, const char *stage, const char *move_to)
{
	KmsCatalogState st;
	Datum		sid = UuidDatum(id);

	KmsCatalogEnter(&st);
	if (move_to)
	{
		if (!VersionExists(sid, move_to))
			kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
					  "Secrets Manager can't find version \"%s\"", move_to);
		StageAttach(sid, stage, move_to);
	}
	else
	{
		if (strcmp(stage, "AWSCURRENT") == 0)
			elog(ERROR, "AWSCURRENT cannot be removed, only moved");
		StageRemove(sid, stage);
	}
	KmsCatalogExit(&st);
	SecretChanged();
}

void
KmsSecretChanged(const uint8 *id)
{
	SecretMeta	m;

	memcpy(m.id, id, 16);
	SecretTouch(&m);
	SecretChanged();
}

int
KmsSecretsPurgeExpired(int limit)
{
	KmsCatalogState st;
	Oid			t = INT4OID;
	Datum		v = Int32GetDatum(limit);
	uint64		n;

	KmsCatalogEnter(&st);
	n = KmsExec("DELETE FROM kms.secret WHERE secret_id IN "
				"(SELECT secret_id FROM kms.secret WHERE deletion_date <= pg_catalog.now() "
				" ORDER BY deletion_date LIMIT $1 FOR UPDATE SKIP LOCKED)",
				1, &t, &v, NULL, false, SPI_OK_DELETE);
	KmsCatalogExit(&st);
	if (n > 0)
		SecretChanged();
	return (int) n;
}
