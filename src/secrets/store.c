/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The secrets store's core: argument validation, ids and JSON helpers,
 *	  secret lookup and privileges, the secret's KMS key, and encryption of
 *	  values (envelope/).
 *
 * IDENTIFICATION
 *	  src/secrets/store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

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
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "cache/cache.h"
#include "envelope/envelope.h"
#include "keystore/keystore.h"

#include "secrets/secrets_internal.h"

/* indexed by SecretOp */
const char *const SecretOpNames[] = {
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

/* ----------------------------------------------------------------
 * Arguments and validation
 * ----------------------------------------------------------------
 */

/*
 * A text argument that a 1.2 signature added: absent (NULL) when the SQL
 * function is still 1.1's, before ALTER EXTENSION pg_kms UPDATE.
 */
char *
ArgTextOpt(FunctionCallInfo fcinfo, int n)
{
	return n < PG_NARGS() ? KmsArgText(fcinfo, n) : NULL;
}

/*
 * Does the catalog have 1.2's columns (kms.secret.secret_type and tagged,
 * kms.secret_stage.attached, all added by one update step)?  Until ALTER
 * EXTENSION pg_kms UPDATE runs, the 1.1 catalog is used without them.
 */
bool
SecretCatalogHas12(void)
{
	Oid			nsp = get_namespace_oid("kms", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("secret", nsp) : InvalidOid;

	return OidIsValid(rel) && get_attnum(rel, "tagged") != InvalidAttrNumber;
}

/*
 * A request member that breaks the API model's pattern or enum: AWS's
 * framework answers ValidationException before the service sees the call.
 * what: "Value 'x' at 'member'", constraint: the model's rule.
 */
void
SecretValidationError(const char *value, const char *member, const char *constraint)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
			 errmsg("ValidationException: 1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s",
					value, member, constraint)));
}

/*
 * A request member outside the model's length limits (min, max; -1: none):
 * also AWS's framework's ValidationException.  member is our parameter
 * name (snake_case), quoted as AWS's member (camelCase); value is NULL for
 * a sensitive member (a secret value), which AWS never quotes either.
 */
void
SecretLengthError(const char *value, const char *member, size_t len, int min, int max)
{
	StringInfoData m;
	char	   *constraint;
	bool		up = false;

	initStringInfo(&m);
	for (const char *c = member; *c; c++)
	{
		if (*c == '_')
			up = true;
		else
		{
			appendStringInfoChar(&m, up ? pg_toupper((unsigned char) *c) : *c);
			up = false;
		}
	}
	if (min >= 0 && len < (size_t) min)
		constraint = psprintf("Member must have length greater than or equal to %d", min);
	else
		constraint = psprintf("Member must have length less than or equal to %d", max);
	if (value != NULL)
		SecretValidationError(value, m.data, constraint);
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
			 errmsg("ValidationException: 1 validation error detected: Value at '%s' failed to satisfy constraint: %s",
					m.data, constraint)));
}

char *
ArgSecretId(FunctionCallInfo fcinfo, int n)
{
	char	   *s = KmsArgText(fcinfo, n);

	if (s == NULL || s[0] == '\0' || strlen(s) > 2048)
		SecretLengthError(s ? s : "", "secret_id", s ? strlen(s) : 0, 1, 2048);
	return s;
}

/* The value from (secret_string, secret_binary) arguments; not copied. */
void
ArgValue(FunctionCallInfo fcinfo, int nstring, int nbinary, SecretValue *v)
{
	v->present = false;
	v->binary = false;
	v->data = NULL;
	v->len = 0;
	if (!PG_ARGISNULL(nstring) && !PG_ARGISNULL(nbinary))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("InvalidParameterException: You can't specify both a binary secret value and a string secret value in the same secret."),
				 errhint("Give either secret_string or secret_binary.")));
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
	if (v->present && v->len > SECRET_MAX_VALUE)
		SecretLengthError(NULL, v->binary ? "secret_binary" : "secret_string",
						  v->len, 0, SECRET_MAX_VALUE);
	if (v->present && v->len < 1)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "%s must be 1 to %d bytes", v->binary ? "secret_binary" : "secret_string",
				  SECRET_MAX_VALUE);
}

void
ValidateName(const char *name)
{
	size_t		len;

	len = name ? strlen(name) : 0;
	if (len < 1 || len > 512)
		SecretLengthError(name ? name : "", "name", len, 1, 512);
	for (size_t i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("/_+=.@-", c) != NULL))
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "name \"%s\" may contain only ASCII letters, digits and \"/_+=.@-\"", name);
	}
}

void
ValidateToken(const char *token, const char *what)
{
	size_t		len;

	if (token == NULL)
		return;
	len = strlen(token);
	if (len < 32 || len > 64)
		SecretLengthError(token, what, len, 32, 64);
}

void
ValidateStage(const char *stage)
{
	if (stage == NULL || strlen(stage) < 1 || strlen(stage) > 256)
		SecretLengthError(stage ? stage : "", "version_stage", stage ? strlen(stage) : 0, 1, 256);
}

/* Type: up to 256 characters (CreateSecret/UpdateSecret's Type member). */
void
ValidateType(const char *type)
{
	if (type && strlen(type) > 256)
		SecretLengthError(type, "type", strlen(type), -1, 256);
}

/*
 * PutSecretValue's RotationToken (36 to 256 characters, ^[a-zA-Z0-9\-]+$):
 * AWS uses it for rotations run across accounts; here it is checked and
 * otherwise ignored.
 */
void
ValidateRotationToken(const char *token)
{
	if (token == NULL)
		return;
	if (strlen(token) < 36 || strlen(token) > 256)
		SecretValidationError(token, "rotationToken",
							  "Member must have length between 36 and 256");
	for (const char *c = token; *c; c++)
		if (!isalnum((unsigned char) *c) && *c != '-')
			SecretValidationError(token, "rotationToken",
								  "Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$");
}

/* CreateSecret of a name in use: AWS's text. */
void
SecretExists(const char *name, bool deleted)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_ALREADY_EXISTS), errhidestmt(true),
			 errmsg("ResourceExistsException: The operation failed because the secret %s already exists.", name),
			 deleted ? errdetail("It is scheduled for deletion; restore_secret() restores it.") : 0));
}

/* A request parameter for the audit event; absent ones are left out. */
void
SecretAuditParam(StringInfo p, const char *name, const char *value)
{
	if (value)
		KmsAuditParamStr(p, name, value);
}

/* version_stages as "A,B" for the audit event (NULL if none were given). */
char *
StagesText(List *stages)
{
	StringInfoData buf;
	ListCell   *lc;

	if (stages == NIL)
		return NULL;
	initStringInfo(&buf);
	foreach(lc, stages)
		appendStringInfo(&buf, "%s%s", buf.len ? "," : "", (char *) lfirst(lc));
	return buf.data;
}

void
ValidateDescription(const char *description)
{
	if (description && strlen(description) > 2048)
		SecretLengthError(description, "description", strlen(description), -1, 2048);
}

/* version_stages text[]: validated, duplicates dropped; NULL if absent. */
List *
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
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("ValidationException: 1 validation error detected: Value '[]' at 'versionStages' failed to satisfy constraint: Member must have length greater than or equal to 1"),
				 errhint("List at least one staging label, or omit version_stages.")));
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
		secret_error(LimitExceededException, KMS_SQLSTATE_LIMIT_EXCEEDED, SECRET_LIMIT_TEXT,
					 "A version can have at most %d staging labels.", SECRET_MAX_STAGES);
	return stages;
}

/* Tags: AWS's list [{"Key":..,"Value":..}] or a plain object (tags.c). */
Jsonb *
NormalizeTags(Jsonb *jb)
{
	return KmsParseTags(jb, &KmsSecretTagStyle);
}

/* ----------------------------------------------------------------
 * Small helpers: ids, JSON, SPI values
 * ----------------------------------------------------------------
 */
void
RandomBytes(uint8 *buf, size_t n)
{
	if (kms_random_bytes(buf, n) != 0)
		kms_error(InternalServiceError, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
}

/* A new random (version 4) UUID: secret ids and version ids. */
void
RandomUuid(uint8 *u)
{
	if (!KmsRandomUuid(u))
		kms_error(InternalServiceError, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
}

char *
NewVersionId(void)
{
	uint8		u[16];
	char	   *out = palloc(37);

	RandomUuid(u);
	KmsUuidToString(u, out);
	return out;
}

/* n characters uniformly from set (rejection sampling on random bytes). */
void
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

char *
NewSecretArn(const char *name)
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char		suffix[7];

	RandomChars(suffix, 6, alnum, 62);
	suffix[6] = '\0';
	return psprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s",
					kms_region, KmsAccountId(), name, suffix);
}

/*
 * The rows of a catalog query about one secret ($1: its id), of ncols
 * columns, as the materialized result of a set-returning function.
 */
void
SecretRowsToSRF(FunctionCallInfo fcinfo, const uint8 *id, const char *sql,
				int ncols)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts = KmsStartSRF(fcinfo, &tupdesc);
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(id);
	uint64		n;

	KmsCatalogEnter(&st);
	n = KmsExec(sql, 1, &t, &v, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[8];
		bool		nulls[8];

		Assert(ncols <= 8);
		for (int j = 0; j < ncols; j++)
			values[j] = SpiDatum(i, j + 1, &nulls[j]);
		tuplestore_putvalues(ts, tupdesc, values, nulls);
	}
	KmsCatalogExit(&st);
}

Jsonb *
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

void
JsonStr(StringInfo buf, bool *first, const char *key, const char *val)
{
	JsonKey(buf, first, key);
	escape_json(buf, val);
}

void
JsonDate(StringInfo buf, bool *first, const char *key, TimestampTz ts)
{
	char		tbuf[MAXDATELEN + 1];

	JsonKey(buf, first, key);
	appendStringInfoChar(buf, '"');
	appendStringInfoString(buf, JsonEncodeDateTime(tbuf, TimestampTzGetDatum(ts),
												   TIMESTAMPTZOID, NULL));
	appendStringInfoChar(buf, '"');
}

void
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
char *
SpiStr(uint64 row, int col, MemoryContext cxt)
{
	char	   *s = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

Datum
SpiDatum(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
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
void
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

	v = KmsUuidDatum(m->id);
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

/* The secret of a query on secret_columns with one argument; false if none. */
static bool
SecretLoadWhere(const char *sql, Oid argtype, Datum arg, SecretMeta *m,
				MemoryContext cxt)
{
	KmsCatalogState st;
	bool		found = false;

	KmsCatalogEnter(&st);
	if (KmsExec(sql, 1, &argtype, &arg, NULL, false, SPI_OK_SELECT) == 1)
	{
		SecretFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, m, cxt);
		found = true;
	}
	KmsCatalogExit(&st);
	return found;
}

/*
 * Load a secret by name or ARN (fresh snapshot).  False if there is none.
 * Strings go to cxt.
 */
bool
SecretLoad(const char *ref, SecretMeta *m, MemoryContext cxt)
{
	if (strncmp(ref, "arn:", 4) != 0)
		return SecretLoadWhere(psprintf("%s WHERE name = $1", secret_columns),
							   TEXTOID, CStringGetTextDatum(ref), m, cxt);
	if (SecretLoadWhere(psprintf("%s WHERE arn = $1", secret_columns),
						TEXTOID, CStringGetTextDatum(ref), m, cxt))
		return true;

	/*
	 * A partial ARN, without the "-" and six random characters AWS appends
	 * to the name: AWS accepts it (and discourages it).  Names are unique,
	 * so it names at most one secret.
	 */
	return SecretLoadWhere(psprintf("%s WHERE pg_catalog.length(arn) > 7 AND "
									"pg_catalog.left(arn, -7) = $1", secret_columns),
						   TEXTOID, CStringGetTextDatum(ref), m, cxt);
}

bool
SecretLoadById(const uint8 *id, SecretMeta *m, bool for_update)
{
	return SecretLoadWhere(psprintf("%s WHERE secret_id = $1%s", secret_columns,
									for_update ? " FOR UPDATE" : ""),
						   UUIDOID, KmsUuidDatum(id), m, CurrentMemoryContext);
}

/* May the current role perform op on the secret? */
bool
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
bool
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


void
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

void
SecretNotFound(SecretOp op, const char *ref)
{
	if (KmsIsAdmin())
	{
		KmsAudit(SecretOpNames[op], ref, 0, "ResourceNotFoundException");
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
				 errmsg("ResourceNotFoundException: Secrets Manager can't find the specified secret."),
				 errdetail("There is no secret \"%s\".", ref)));
	}
	SecretDenied(op, ref);
}

void
SecretNotDeleted(SecretMeta *m)
{
	if (m->deleted)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_REQUEST),
				 errhidestmt(true),
				 errmsg("InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion."),
				 errdetail("Secret \"%s\" is scheduled for deletion.", m->name),
				 errhint("Restore it with restore_secret() first.")));
}

/* Resolve and check op; no lock. */
void
SecretResolve(const char *ref, SecretOp op, SecretMeta *m)
{
	if (!SecretLoad(ref, m, CurrentMemoryContext))
		SecretNotFound(op, ref);
	if (!SecretAllowed(m, op))
		SecretDenied(op, ref);
}

/* Lock the secret's row for a write and re-read what may have changed. */
void
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
void
SecretForWrite(const char *ref, SecretOp op, const char *operation,
			   bool refuse_deleted, SecretMeta *m)
{
	KmsCheckWritable(operation);
	SecretResolve(ref, op, m);
	SecretLock(m, ref, op);
	if (refuse_deleted)
		SecretNotDeleted(m);
}

void
SecretTouch(SecretMeta *m)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(m->id);

	KmsCatalogEnter(&st);
	KmsExec("UPDATE kms.secret SET last_changed_date = pg_catalog.now() WHERE secret_id = $1",
			1, &t, &v, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

/*
 * Rotation's writes of kms.secret (rotation/ calls these, so that secrets/
 * is the one layer that writes the table): an UPDATE for one secret,
 * "SET <set> WHERE secret_id = $1", its parameters from $2.
 */
void
KmsSecretUpdateRotation(const uint8 *id, const char *set, int nargs, Oid *types,
						Datum *values, const char *nulls)
{
	KmsCatalogState st;
	Oid			t[8];
	Datum		v[8];
	char		n[9];

	t[0] = UUIDOID;
	v[0] = KmsUuidDatum(id);
	n[0] = ' ';
	for (int i = 0; i < nargs; i++)
	{
		t[i + 1] = types[i];
		v[i + 1] = values[i];
		n[i + 1] = nulls ? nulls[i] : ' ';
	}
	n[nargs + 1] = '\0';
	KmsCatalogEnter(&st);
	KmsExec(psprintf("UPDATE kms.secret SET %s WHERE secret_id = $1", set),
			nargs + 1, t, v, n, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

/*
 * Start a scheduled rotation: token (the AWSPENDING version id to be), first
 * step createSecret.  Inside KmsCatalogEnter (the caller holds the row).
 */
void
KmsSecretStartRotation(const uint8 *id, const char *token)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = KmsUuidDatum(id);
	v[1] = CStringGetTextDatum(token);
	KmsExec("UPDATE kms.secret SET rotation_token = $2, rotation_step = 'createSecret', "
			"rotation_attempts = 0, rotation_next_attempt = NULL, rotation_started = pg_catalog.now() "
			"WHERE secret_id = $1",
			2, t, v, NULL, false, SPI_OK_UPDATE);
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
		secret_error(EncryptionFailure, KMS_SQLSTATE_ENCRYPTION_FAILURE, SECRET_ENCRYPT_TEXT,
					 "Secrets Manager can't encrypt with %s: it is %s.", name,
					 key->usage != KMS_USAGE_ENCRYPT_DECRYPT ? "not a symmetric encryption key" :
					 KmsKeyStateNames[key->state]);
	secret_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE, SECRET_DECRYPT_TEXT,
				 "Secrets Manager can't decrypt with %s: it is %s.",
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
												   KmsCatalogOwner());

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
		secret_error(EncryptionFailure, KMS_SQLSTATE_ENCRYPTION_FAILURE, SECRET_ENCRYPT_TEXT,
					 "The default KMS key for secrets does not exist.");
	*out = *key;				/* copy: the local key cache may be reset */
}

bool
IsDefaultKeyRef(const char *ref)
{
	return ref == NULL || ref[0] == '\0' || strcmp(ref, SECRET_DEFAULT_ALIAS) == 0;
}

/* A key named by kms_key_id for writing: Encrypt on it, and usable. */
void
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
void
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
		secret_error(EncryptionFailure, KMS_SQLSTATE_ENCRYPTION_FAILURE, SECRET_ENCRYPT_TEXT,
					 "The KMS key of secret \"%s\" does not exist.", m->name);
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

bytea *
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
bytea *
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
		secret_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE, SECRET_DECRYPT_TEXT,
					 "The stored ciphertext of version \"%s\" of secret \"%s\" is not valid.",
					 version_id, arn);
	key = KmsLookupKeyById(hdr.key_id);
	if (key == NULL)
		secret_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE, SECRET_DECRYPT_TEXT,
					 "The KMS key of version \"%s\" of secret \"%s\" does not exist.",
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
		secret_error(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE, SECRET_DECRYPT_TEXT,
					 "The ciphertext of version \"%s\" of secret \"%s\" does not decrypt under its KMS key and encryption context.",
					 version_id, arn);
	}
	PG_END_TRY();
	return result;
}

void
WipeBytea(bytea *b)
{
	if (b)
		kms_cleanse(VARDATA(b), VARSIZE(b) - VARHDRSZ);
}
