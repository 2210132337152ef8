/*-------------------------------------------------------------------------
 *
 * grants_sql.c
 *	  CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant
 *	  in SQL.  Grant constraints are validated and checked in keystore/
 *	  (constraints.c).
 *
 * IDENTIFICATION
 *	  src/kms/grants_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "cache/cache.h"
#include "catalog/principals.h"
#include "keystore/keystore.h"
#include "provider/provider.h"

#include "kms/kms_internal.h"

/* ----------------------------------------------------------------
 * Grants
 * ----------------------------------------------------------------
 */
static Oid
KmsRoleArg(const char *name, const char *what)
{
	Oid			role;

	if (name == NULL || name[0] == '\0')
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "%s must not be empty", what);
	role = get_role_oid(name, true);
	if (!OidIsValid(role))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "%s \"%s\" is not a role", what, name);
	return role;
}

/*
 * The operations argument of CreateGrant (argument n): each a grant
 * operation valid for the key's usage.  Returns them as a text[] of
 * distinct names in the order given, and their bits in *opbits.
 */
static Datum
GrantOperationsArg(FunctionCallInfo fcinfo, int n, KmsKeyInfo *key, uint32 *opbits)
{
	int			nelems;
	char	  **names = KmsArgOperations(fcinfo, n, false, &nelems);
	ArrayBuildState *astate = NULL;

	for (int i = 0; i < nelems; i++)
	{
		char	   *op;
		int			o;

		if (names[i] == NULL)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "operations must not contain null");
		op = names[i];
		o = KmsOpFromName(op);
		if (o < 0)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "operation \"%s\" is not a valid grant operation for this key", op);
		if ((key->usage == KMS_USAGE_GENERATE_VERIFY_MAC) !=
			(o == KMS_OP_GENERATE_MAC || o == KMS_OP_VERIFY_MAC) &&
			o != KMS_OP_DESCRIBE_KEY && o != KMS_OP_CREATE_GRANT && o != KMS_OP_RETIRE_GRANT)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "operation %s is not valid for a key with key usage %s", op,
					  key->usage == KMS_USAGE_GENERATE_VERIFY_MAC ? "GENERATE_VERIFY_MAC" : "ENCRYPT_DECRYPT");
		if (!(*opbits & KMS_OPBIT(o)))
			astate = accumArrayResult(astate, CStringGetTextDatum(KmsOpNames[o]), false,
									  TEXTOID, CurrentMemoryContext);
		*opbits |= KMS_OPBIT(o);
	}
	return makeArrayResult(astate, CurrentMemoryContext);
}

/* The audit event of a CreateGrant, with its (safe) parameters. */
static void
AuditCreateGrant(KmsKeyInfo *key, const char *grantee_name,
				 const char *retiring_name, const char *name, uint32 opbits)
{
	StringInfoData p;
	StringInfoData opsbuf;

	initStringInfo(&p);
	KmsAuditParamStr(&p, "granteePrincipal", grantee_name);
	KmsAuditParamStr(&p, "retiringPrincipal", retiring_name);
	KmsAuditParamStr(&p, "name", name);
	initStringInfo(&opsbuf);
	for (int o = 0; o < KMS_NUM_GRANT_OPS; o++)
		if (opbits & KMS_OPBIT(o))
			appendStringInfo(&opsbuf, "%s%s", opsbuf.len ? "," : "", KmsOpNames[o]);
	KmsAuditParamStr(&p, "operations", opsbuf.data);
	KmsAuditEx("CreateGrant", key->key_id_str, NULL, "success", KmsAuditParams(&p));
}

KMS_AUDITED_ENTRY(kms_create_grant, "CreateGrant", 0)
{
	char	   *keyref = ArgKeyRef(fcinfo, 0);
	char	   *grantee_name = KmsArgText(fcinfo, 1);
	char	   *name = KmsArgText(fcinfo, 3);
	char	   *retiring_name = KmsArgText(fcinfo, 4);
	Jsonb	   *constraints = KmsValidateConstraints(KmsArgGiven(fcinfo, 5) ? PG_GETARG_JSONB_P(5) : NULL);
	uint32		opbits = 0;
	uint32		held;
	KmsKeyInfo *key;
	Oid			grantee;
	Oid			retiring = InvalidOid;
	char	   *grant_id = NULL;
	char	   *token = KmsRandomHex(48);
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {0};
	Datum		oparray;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	KmsCheckGeneration();
	/* CreateGrant held through a grant with constraints needs stricter ones */
	key = KmsResolveKeyForGrant(keyref, constraints);
	KmsCheckWritable("CreateGrant");
	{
		bool		aws_managed = false;

		/* the state after the row lock: not a key deleted meanwhile */
		key = KmsLockKey(key, &aws_managed, NULL);
		KmsCheckManagedKey(key, aws_managed, "CreateGrant");
	}
	KmsCheckUsable(key);
	grantee = KmsRoleArg(grantee_name, "grantee principal");
	if (retiring_name)
		retiring = KmsRoleArg(retiring_name, "retiring principal");
	if (name && (strlen(name) < 1 || strlen(name) > 256))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "grant name must be 1 to 256 characters");

	oparray = GrantOperationsArg(fcinfo, 2, key, &opbits);
	/*
	 * AWS API reference, CreateGrant, Constraints: "You cannot use an
	 * encryption context grant constraint for cryptographic operations with
	 * asymmetric KMS keys or HMAC KMS keys."
	 */
	if (constraints && key->usage == KMS_USAGE_GENERATE_VERIFY_MAC)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "grant constraints are not valid for key \"%s\" with key usage GENERATE_VERIFY_MAC: HMAC keys do not support an encryption context",
				  KmsKeyArn(key->key_id_str));
	/*
	 * Only the owner (or a member of it) and superusers grant what they
	 * like.  Anyone else holding CreateGrant passes on only operations it
	 * holds through grants itself: managing keys (kms_admin) is not using
	 * them, so it never lets a role grant itself, or anyone, data
	 * operations on a key it does not own.
	 */
	held = (superuser() || has_privs_of_role(GetUserId(), key->owner)) ?
		KMS_ALL_GRANT_OPS : KmsGrantedOps(key->key_id);
	/* an operation held under constraints is passed on under stricter ones */
	for (int o = 0; o < KMS_NUM_GRANT_OPS; o++)
		if ((opbits & ~held & KMS_OPBIT(o)) && (held & KMS_CONSTRAINED_OPBIT(o)) &&
			KmsConstrainedAllows(key->key_id, (KmsOp) o, NULL, -1, constraints, true))
			held |= KMS_OPBIT(o);
	if ((opbits & ~held) != 0)
	{
		KmsAudit("CreateGrant", key->key_id_str, 0, "AccessDeniedException");
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED),
				 errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" cannot grant operations it does not hold on key \"%s\"",
						GetUserNameFromId(GetUserId(), false), keyref),
				 errdetail("Only the key's owner or a superuser may grant operations the granter does not hold through a grant (held under grant constraints: only with equally strict or stricter constraints).")));
	}
	if (KmsArgDryRun(fcinfo, 6))
		KmsDryRunSucceeded("CreateGrant");

	KmsStoreGrant(key, name, grantee, retiring, oparray, constraints, &grant_id, &token);
	KmsInvalidateAtCommit();
	AuditCreateGrant(key, grantee_name, retiring_name, name, opbits);

	values[0] = CStringGetTextDatum(token);
	values[1] = CStringGetTextDatum(grant_id);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

static void
KmsCheckGrantId(const char *grant_id)
{
	if (grant_id == NULL || strlen(grant_id) < 1 || strlen(grant_id) > 128)
		kms_error(InvalidGrantIdException, KMS_SQLSTATE_INVALID_GRANT_ID,
				  "grant id must be 1 to 128 characters");
}

static void KmsGrantNotFound(KmsKeyInfo *key, const char *grant_id) pg_attribute_noreturn();

static void
KmsGrantNotFound(KmsKeyInfo *key, const char *grant_id)
{
	kms_error(NotFoundException, KMS_SQLSTATE_NOT_FOUND,
			  "grant \"%s\" does not exist on key \"%s\"", grant_id, KmsKeyArn(key->key_id_str));
}

static bool
KmsGrantExists(const uint8 *key_id, const char *grant_id)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bool		found;

	v[0] = KmsUuidDatum(key_id);
	v[1] = CStringGetTextDatum(grant_id);
	KmsCatalogEnter(&st);
	found = KmsExec("SELECT 1 FROM kms.grants WHERE key_id = $1 AND grant_id = $2",
					2, t, v, NULL, false, SPI_OK_SELECT) == 1;
	KmsCatalogExit(&st);
	return found;
}

static void
KmsDeleteGrant(KmsKeyInfo *key, const char *grant_id)
{
	if (KmsDeleteGrantRow(key->key_id, grant_id) != 1)
		KmsGrantNotFound(key, grant_id);
	KmsInvalidateAtCommit();
}

KMS_AUDITED_ENTRY(kms_revoke_grant, "RevokeGrant", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "RevokeGrant");
	char	   *grant_id = KmsArgText(fcinfo, 1);

	KmsCheckGrantId(grant_id);
	if (KmsArgDryRun(fcinfo, 2))
	{
		if (!KmsGrantExists(key->key_id, grant_id))
			KmsGrantNotFound(key, grant_id);
		KmsDryRunSucceeded("RevokeGrant");
	}
	KmsDeleteGrant(key, grant_id);
	KmsAudit("RevokeGrant", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_retire_grant, "RetireGrant", 1)
{
	char	   *token = KmsArgText(fcinfo, 0);
	char	   *keyref = KmsArgText(fcinfo, 1);
	char	   *grant_id = KmsArgText(fcinfo, 2);
	KmsCatalogState st;
	uint8		key_id[KMS_KEY_ID_LEN];
	Oid			grantee = InvalidOid;
	Oid			retiring = InvalidOid;
	bool		has_retire_op = false;
	bool		found = false;
	KmsKeyInfo *key;
	Oid			user = GetUserId();

	KmsCheckGeneration();
	KmsCheckWritable("RetireGrant");
	if (token == NULL && (keyref == NULL || grant_id == NULL))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "give either grant_token, or key_id and grant_id");
	if (token == NULL)
	{
		key = KmsResolveKey(keyref, KMS_OP_RETIRE_GRANT);
		KmsCheckGrantId(grant_id);
		memcpy(key_id, key->key_id, KMS_KEY_ID_LEN);
	}

	KmsCatalogEnter(&st);
	{
		Oid			t[2] = {TEXTOID, UUIDOID};
		Datum		v[2];
		uint64		n;

		if (token)
		{
			v[0] = CStringGetTextDatum(token);
			n = KmsExec("SELECT key_id, grant_id, grantee::oid, retiring_principal::oid, "
						"'RetireGrant' = ANY (operations) FROM kms.grants WHERE grant_token = $1",
						1, t, v, NULL, true, SPI_OK_SELECT);
		}
		else
		{
			v[0] = CStringGetTextDatum(grant_id);
			v[1] = KmsUuidDatum(key_id);
			n = KmsExec("SELECT key_id, grant_id, grantee::oid, retiring_principal::oid, "
						"'RetireGrant' = ANY (operations) FROM kms.grants WHERE grant_id = $1 AND key_id = $2",
						2, t, v, NULL, true, SPI_OK_SELECT);
		}
		if (n == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;

			found = true;
			memcpy(key_id, DatumGetUUIDP(SPI_getbinval(tup, td, 1, &isnull))->data, KMS_KEY_ID_LEN);
			grant_id = MemoryContextStrdup(CurTransactionContext, SPI_getvalue(tup, td, 2));
			grantee = DatumGetObjectId(SPI_getbinval(tup, td, 3, &isnull));
			retiring = DatumGetObjectId(SPI_getbinval(tup, td, 4, &isnull));
			if (isnull)
				retiring = InvalidOid;
			has_retire_op = DatumGetBool(SPI_getbinval(tup, td, 5, &isnull));
		}
	}
	KmsCatalogExit(&st);

	if (!found)
	{
		if (token)
			kms_error(InvalidGrantTokenException, KMS_SQLSTATE_INVALID_GRANT_TOKEN,
					  "the grant token is not valid");
		kms_error(NotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "grant \"%s\" does not exist", grant_id);
	}
	key = KmsLookupKeyById(key_id);
	if (key == NULL)
		kms_error(NotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "grant \"%s\" does not exist", grant_id);
	/* the retiring principal, a grantee allowed RetireGrant, or a manager */
	if (!(key->may_manage ||
		  (OidIsValid(retiring) && has_privs_of_role(user, retiring)) ||
		  (has_retire_op && has_privs_of_role(user, grantee))))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform RetireGrant on grant \"%s\"",
						GetUserNameFromId(user, false), grant_id)));
	if (KmsArgDryRun(fcinfo, 3))
		KmsDryRunSucceeded("RetireGrant");
	KmsDeleteGrant(key, grant_id);
	KmsAudit("RetireGrant", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

/*
 * The rows of ListGrants and ListRetirableGrants (GrantListEntry): KeyId as
 * the key ARN, IssuingAccount as arn:aws:iam::<account>:root (AWS's
 * example), Constraints; where_sql selects kms.grants rows by $1 (and
 * $4, $5 if given).  The last column is next_marker (paging.c).
 */
static void
KmsListGrantRows(KmsPager *pg, const char *where_sql, Datum param1, Oid type1,
				 const char *grant_id, const char *grantee_name)
{
	KmsCatalogState st;
	Oid			t[5] = {type1, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		v[5];
	char		n[5] = {' ', ' ', ' ', ' ', ' '};
	uint64		rows;

	v[0] = param1;
	v[1] = CStringGetTextDatum(KmsKeyArn(""));
	v[2] = CStringGetTextDatum(psprintf("arn:aws:iam::%s:root", KmsAccountId()));
	if (grant_id)
		v[3] = CStringGetTextDatum(grant_id);
	else
		n[3] = 'n';
	if (grantee_name)
		v[4] = CStringGetTextDatum(grantee_name);
	else
		n[4] = 'n';
	KmsCatalogEnter(&st);
	/* principals by name: kept in the catalog (catalog/principals.c) */
	rows = KmsExec(psprintf("SELECT $2 || g.key_id::text, g.grant_id, g.name, %s, %s, $3, "
							"g.operations, g.creation_date, g.constraints FROM kms.grants g "
							"WHERE %s AND ($4::text IS NULL OR g.grant_id = $4) "
							"AND ($5::text IS NULL OR %s = $5) "
							"ORDER BY g.creation_date, g.grant_id COLLATE \"C\"",
							KmsPrincipalNameSql("g.grantee"), KmsPrincipalNameSql("g.retiring_principal"),
							where_sql, KmsPrincipalNameSql("g.grantee")),
				   5, t, v, n, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < rows; i++)
	{
		Datum		values[10];
		bool		nulls[10];
		HeapTuple	tup = SPI_tuptable->vals[i];
		char	   *pos;

		for (int j = 0; j < 9; j++)
			values[j] = SPI_getbinval(tup, SPI_tuptable->tupdesc, j + 1, &nulls[j]);
		pos = KmsPagePosTime(DatumGetTimestampTz(values[7]), SPI_getvalue(tup, SPI_tuptable->tupdesc, 2));
		if (!KmsPagerWant(pg, pos))
		{
			if (pg->done)
				break;
			continue;
		}
		KmsPagerPut(pg, values, nulls, pos);
	}
	KmsPagerFinish(pg);
	KmsCatalogExit(&st);
}

KMS_AUDITED_ENTRY(kms_list_grants, "ListGrants", 0)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts = KmsStartSRF(fcinfo, &tupdesc);
	KmsKeyInfo *key = KmsResolveKeyForManagement(ArgKeyRef(fcinfo, 0), "ListGrants");
	char	   *kid = pstrdup(key->key_id_str);
	char	   *grant_id = KmsArgTextOpt(fcinfo, 1);
	char	   *grantee = KmsArgTextOpt(fcinfo, 2);
	KmsPager	pg;

	/* AWS API reference, ListGrants, Limit: "between 1 and 100, inclusive ... defaults to 50" */
	KmsPagerInit(&pg, fcinfo, 3, "ListGrants", 100, 50, ts, tupdesc, Min(tupdesc->natts, 9));
	if (grant_id)
		KmsCheckGrantId(grant_id);
	KmsListGrantRows(&pg, "g.key_id = $1", KmsUuidDatum(key->key_id), UUIDOID,
					 grant_id, grantee);
	KmsAudit("ListGrants", kid, 0, "success");
	return (Datum) 0;
}

/*
 * ListRetirableGrants: the grants whose retiring principal is the role
 * (default: the current role), on every key.  Only that role (and its
 * members), kms_admin and superusers may list them.
 */
KMS_AUDITED_ENTRY(kms_list_retirable_grants, "ListRetirableGrants", 0)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts = KmsStartSRF(fcinfo, &tupdesc);
	char	   *name = KmsArgText(fcinfo, 0);
	Oid			role;
	KmsPager	pg;

	KmsCheckGeneration();
	/* AWS API reference, ListRetirableGrants, Limit: "between 1 and 100, inclusive ... defaults to 50" */
	KmsPagerInit(&pg, fcinfo, 1, "ListRetirableGrants", 100, 50, ts, tupdesc, 9);
	role = name ? KmsRoleArg(name, "retiring principal") : GetUserId();
	if (!has_privs_of_role(GetUserId(), role) && !KmsIsAdmin())
	{
		KmsAudit("ListRetirableGrants", name, 0, "AccessDeniedException");
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform ListRetirableGrants for principal \"%s\"",
						GetUserNameFromId(GetUserId(), false), name)));
	}
	KmsListGrantRows(&pg, "g.retiring_principal::pg_catalog.oid = $1", ObjectIdGetDatum(role), OIDOID,
					 NULL, NULL);
	KmsAudit("ListRetirableGrants", GetUserNameFromId(role, false), 0, "success");
	return (Datum) 0;
}
