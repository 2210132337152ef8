/*-------------------------------------------------------------------------
 *
 * principals.c
 *	  Roles and the principals of keys, grants and secrets (issue 11,
 *	  findings 3 and 4; catalog/principals.c says how they are kept):
 *
 *	  - DROP ROLE of a role that owns a key or secret, or that a grant or a
 *		secret's rotation names, is refused in this database (2BP01), as
 *		PostgreSQL refuses to drop a role that owns objects;
 *	  - REASSIGN OWNED BY a TO b also passes a's keys and secrets (and the
 *		grants it issued, the rotations it configured) to b; DROP OWNED BY
 *		a also deletes the key and secret grants to a (keys and secrets
 *		stay: only REASSIGN OWNED moves them); kms_reassign_owned() and
 *		kms_drop_owned() do the same by name, also for a principal whose
 *		role is gone;
 *	  - CREATE ROLE and ALTER ROLE ... RENAME in this database resolve the
 *		principals kept by name at once; kms_resolve_principals() and the
 *		worker's job (once a minute) do it for roles created, renamed or
 *		dropped from another database, where this database's hook does
 *		not run; kms_unresolved_principals() lists what names no role.
 *
 *	  This is the secrets layer's part (it writes kms.secret and
 *	  kms.secret_grant) and the dispatcher, since it may call the key
 *	  store's part (keystore/principals.c), which writes kms.key and
 *	  kms.grants.
 *
 * Locking: the DROP ROLE check takes AccessExclusiveLock on the role (as
 * DropRole does next) before counting, against writers, whose principals
 * trigger holds AccessShareLock on each role it writes
 * (catalog/principals.c).
 *
 * IDENTIFICATION
 *	  src/secrets/principals.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit/audit.h"
#include "cache/cache.h"
#include "keystore/principals.h"
#include "secrets/principals.h"

static int64
counts_total(const KmsPrincipalCounts *c)
{
	return c->keys + c->key_grants + c->secrets + c->secret_grants + c->rotations;
}

static void
SecretPrincipalsCount(Oid roleid, KmsPrincipalCounts *c)
{
	KmsCatalogState st;
	Oid			t[3];
	Datum		v[3];
	char		n[3];

	KmsPrincipalArgs(roleid, NULL, InvalidOid, t, v, n);
	KmsCatalogEnter(&st);
	c->secrets += KmsPrincipalCount("SELECT count(*) FROM kms.secret "
						   "WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1", t, v, n);
	c->rotations += KmsPrincipalCount("SELECT count(*) FROM kms.secret "
							 "WHERE rotation_role::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
							 "OR rotation_clone::pg_catalog.oid OPERATOR(pg_catalog.=) $1", t, v, n);
	c->secret_grants += KmsPrincipalCount("SELECT count(*) FROM kms.secret_grant "
								 "WHERE grantee::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
								 "OR issuing_role::pg_catalog.oid OPERATOR(pg_catalog.=) $1", t, v, n);
	KmsCatalogExit(&st);
}

static void
SecretPrincipalsReassign(Oid roleid, const char *old_name, Oid new_roleid,
						 KmsPrincipalCounts *c)
{
	KmsCatalogState st;
	Oid			t[3];
	Datum		v[3];
	char		n[3];

	KmsPrincipalArgs(roleid, old_name, new_roleid, t, v, n);
	KmsCatalogEnter(&st);
	c->secrets += KmsExec(psprintf("UPDATE kms.secret t SET owner = $3 WHERE %s",
								   KmsPrincipalMatchSql("t.owner", 1, 2)),
						  3, t, v, n, false, SPI_OK_UPDATE);
	c->rotations += KmsExec(psprintf("UPDATE kms.secret t SET rotation_role = $3 WHERE %s",
									 KmsPrincipalMatchSql("t.rotation_role", 1, 2)),
							3, t, v, n, false, SPI_OK_UPDATE);
	c->secret_grants += KmsExec(psprintf("UPDATE kms.secret_grant t SET issuing_role = $3 WHERE %s",
										 KmsPrincipalMatchSql("t.issuing_role", 1, 2)),
								3, t, v, n, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

static void
SecretPrincipalsDropOwned(Oid roleid, const char *old_name, KmsPrincipalCounts *c)
{
	KmsCatalogState st;
	Oid			t[3];
	Datum		v[3];
	char		n[3];

	KmsPrincipalArgs(roleid, old_name, InvalidOid, t, v, n);
	KmsCatalogEnter(&st);
	c->secret_grants += KmsExec(psprintf("DELETE FROM kms.secret_grant t WHERE %s",
										 KmsPrincipalMatchSql("t.grantee", 1, 2)),
								3, t, v, n, false, SPI_OK_DELETE);
	/* the clone a rotation made is forgotten: never taken for ours again */
	c->rotations += KmsExec("UPDATE kms.secret t SET rotation_clone = NULL "
							"WHERE t.rotation_clone::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							3, t, v, n, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

static uint64
SecretPrincipalsResolve(void)
{
	static const char *const secret_cols[] = {"owner", "rotation_role"};
	static const char *const grant_cols[] = {"grantee", "issuing_role"};
	KmsCatalogState st;
	uint64		changed;

	if (!KmsPrincipalNamesKept())
		return 0;
	KmsCatalogEnter(&st);
	changed = KmsPrincipalResolve("UPDATE kms.secret t", secret_cols, lengthof(secret_cols));
	/* the clone is pinned by oid alone: forgotten once its role is gone */
	changed += KmsExec("UPDATE kms.secret t SET rotation_clone = NULL "
					   "WHERE t.rotation_clone IS NOT NULL AND NOT EXISTS "
					   "(SELECT 1 FROM pg_catalog.pg_roles r "
					   "WHERE r.oid OPERATOR(pg_catalog.=) t.rotation_clone)",
					   0, NULL, NULL, NULL, false, SPI_OK_UPDATE);
	changed += KmsPrincipalResolve("UPDATE kms.secret_grant t", grant_cols, lengthof(grant_cols));
	KmsCatalogExit(&st);
	return changed;
}

/* Resolve every principal of this database; rows changed. */
static uint64
ResolveAll(void)
{
	uint64		n;

	n = KmsKeyPrincipalsResolve() + SecretPrincipalsResolve();
	if (n > 0)
	{
		StringInfoData p;

		initStringInfo(&p);
		KmsAuditParamInt(&p, "principals", (int64) n);
		KmsAuditEx("ResolvePrincipals", NULL, NULL, "success", KmsAuditParams(&p));
		KmsInvalidateAtCommit();
	}
	return n;
}

static void
AuditChange(const char *operation, const char *role, const char *new_role,
			const KmsPrincipalCounts *c)
{
	StringInfoData p;

	initStringInfo(&p);
	if (new_role)
		KmsAuditParamStr(&p, "newRole", new_role);
	KmsAuditParamInt(&p, "keys", c->keys);
	KmsAuditParamInt(&p, "keyGrants", c->key_grants);
	KmsAuditParamInt(&p, "secrets", c->secrets);
	KmsAuditParamInt(&p, "secretGrants", c->secret_grants);
	KmsAuditParamInt(&p, "rotations", c->rotations);
	KmsAuditEx(operation, role, NULL, "success", KmsAuditParams(&p));
}

static int64
DoReassign(Oid roleid, const char *old_name, Oid new_roleid, const char *new_name)
{
	KmsPrincipalCounts c = {0};

	KmsKeyPrincipalsReassign(roleid, old_name, new_roleid, &c);
	SecretPrincipalsReassign(roleid, old_name, new_roleid, &c);
	if (counts_total(&c) > 0)
	{
		KmsInvalidateAtCommit();
		AuditChange("ReassignOwned", old_name, new_name, &c);
	}
	return counts_total(&c);
}

static int64
DoDropOwned(Oid roleid, const char *old_name)
{
	KmsPrincipalCounts c = {0};

	KmsKeyPrincipalsDropOwned(roleid, old_name, &c);
	SecretPrincipalsDropOwned(roleid, old_name, &c);
	if (counts_total(&c) > 0)
	{
		KmsInvalidateAtCommit();
		AuditChange("DropOwned", old_name, NULL, &c);
	}
	return counts_total(&c);
}

/* DROP ROLE: refuse while anything here names the role. */
static void
CheckDropRole(DropRoleStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->roles)
	{
		RoleSpec   *rs = lfirst(lc);
		Oid			roleid;
		KmsPrincipalCounts c = {0};
		StringInfoData d;

		if (rs->roletype != ROLESPEC_CSTRING)
			continue;			/* PostgreSQL refuses it */
		roleid = get_role_oid(rs->rolename, true);
		if (!OidIsValid(roleid))
			continue;
		/* as DropRole will: a writer naming the role commits first, or fails */
		LockSharedObject(AuthIdRelationId, roleid, 0, AccessExclusiveLock);
		/* count what committed while we waited, whatever the isolation level */
		PushActiveSnapshot(GetLatestSnapshot());
		KmsKeyPrincipalsCount(roleid, &c);
		SecretPrincipalsCount(roleid, &c);
		PopActiveSnapshot();
		if (counts_total(&c) == 0)
			continue;

		initStringInfo(&d);
		if (c.keys)
			appendStringInfo(&d, "%sowner of " INT64_FORMAT " key(s)", d.len ? "\n" : "", c.keys);
		if (c.secrets)
			appendStringInfo(&d, "%sowner of " INT64_FORMAT " secret(s)", d.len ? "\n" : "", c.secrets);
		if (c.key_grants)
			appendStringInfo(&d, "%sprincipal of " INT64_FORMAT " key grant(s)", d.len ? "\n" : "", c.key_grants);
		if (c.secret_grants)
			appendStringInfo(&d, "%sprincipal of " INT64_FORMAT " secret grant(s)", d.len ? "\n" : "", c.secret_grants);
		if (c.rotations)
			appendStringInfo(&d, "%srotation role of " INT64_FORMAT " secret(s)", d.len ? "\n" : "", c.rotations);
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("role \"%s\" cannot be dropped because some pg_kms objects depend on it",
						rs->rolename),
				 errdetail("In database \"%s\":\n%s",
						   get_database_name(MyDatabaseId), d.data),
				 errhint("Move its keys and secrets to another role with REASSIGN OWNED BY %s TO another_role, then remove its grants with DROP OWNED BY %s, in each database where pg_kms names it.",
						 quote_identifier(rs->rolename), quote_identifier(rs->rolename))));
	}
}

void
KmsPrincipalsUtilityBefore(PlannedStmt *pstmt)
{
	if (!IsA(pstmt->utilityStmt, DropRoleStmt))
		return;
	if (RecoveryInProgress() || !KmsPrincipalsCatalogPresent())
		return;
	CheckDropRole((DropRoleStmt *) pstmt->utilityStmt);
}

void
KmsPrincipalsUtilityAfter(PlannedStmt *pstmt)
{
	Node	   *stmt = pstmt->utilityStmt;
	ListCell   *lc;

	if (!IsA(stmt, ReassignOwnedStmt) && !IsA(stmt, DropOwnedStmt) &&
		!IsA(stmt, CreateRoleStmt) &&
		!(IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_ROLE))
		return;
	if (RecoveryInProgress() || !KmsPrincipalsCatalogPresent())
		return;

	if (IsA(stmt, ReassignOwnedStmt))
	{
		ReassignOwnedStmt *r = (ReassignOwnedStmt *) stmt;
		Oid			new_roleid = get_rolespec_oid(r->newrole, false);
		char	   *new_name = GetUserNameFromId(new_roleid, false);

		foreach(lc, r->roles)
		{
			Oid			roleid = get_rolespec_oid(lfirst(lc), false);

			DoReassign(roleid, GetUserNameFromId(roleid, false), new_roleid, new_name);
		}
	}
	else if (IsA(stmt, DropOwnedStmt))
	{
		foreach(lc, ((DropOwnedStmt *) stmt)->roles)
		{
			Oid			roleid = get_rolespec_oid(lfirst(lc), false);

			DoDropOwned(roleid, GetUserNameFromId(roleid, false));
		}
	}
	else
		(void) ResolveAll();	/* a role appeared or was renamed */
}

/* ----------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------
 */

static void
RequireAdmin(const char *what)
{
	if (!KmsIsAdmin())
		kms_error(AccessDeniedException, KMS_SQLSTATE_ACCESS_DENIED,
				  "only a superuser or a member of kms_admin may call %s", what);
}

static char *
RoleNameArg(FunctionCallInfo fcinfo, int n, const char *what)
{
	char	   *name = KmsArgText(fcinfo, n);

	if (name == NULL || name[0] == '\0')
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION, "%s must not be empty", what);
	return name;
}

/*
 * kms_reassign_owned(old_role, new_role): REASSIGN OWNED for pg_kms in this
 * database, also for an old role that no longer exists (an unresolved
 * principal of that name).  Owning a key means using it, which kms_admin
 * alone does not give: a superuser, or a kms_admin member with the
 * privileges of both roles (as REASSIGN OWNED asks) may.
 */
PG_FUNCTION_INFO_V1(kms_reassign_owned);
Datum
kms_reassign_owned(PG_FUNCTION_ARGS)
{
	char	   *old_name = RoleNameArg(fcinfo, 0, "old_role");
	char	   *new_name = RoleNameArg(fcinfo, 1, "new_role");
	Oid			roleid = get_role_oid(old_name, true);
	Oid			new_roleid = get_role_oid(new_name, true);

	KmsCheckPreloaded(true);
	if (!OidIsValid(new_roleid))
		kms_error(NotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "role \"%s\" does not exist", new_name);
	if (!superuser() &&
		!(KmsIsAdmin() && OidIsValid(roleid) &&
		  has_privs_of_role(GetUserId(), roleid) &&
		  has_privs_of_role(GetUserId(), new_roleid)))
		kms_error_detail(AccessDeniedException, KMS_SQLSTATE_ACCESS_DENIED,
						 "A superuser, or a member of kms_admin with the privileges of both roles, may; a principal whose role no longer exists only a superuser.",
						 "not allowed to reassign the pg_kms objects of \"%s\"", old_name);
	KmsCheckWritable("kms_reassign_owned");
	PG_RETURN_INT64(DoReassign(roleid, old_name, new_roleid, new_name));
}

/* kms_drop_owned(role): DROP OWNED for pg_kms (its grants), kms_admin. */
PG_FUNCTION_INFO_V1(kms_drop_owned);
Datum
kms_drop_owned(PG_FUNCTION_ARGS)
{
	char	   *name = RoleNameArg(fcinfo, 0, "role");

	KmsCheckPreloaded(true);
	RequireAdmin("kms_drop_owned");
	KmsCheckWritable("kms_drop_owned");
	PG_RETURN_INT64(DoDropOwned(get_role_oid(name, true), name));
}

PG_FUNCTION_INFO_V1(kms_resolve_principals);
Datum
kms_resolve_principals(PG_FUNCTION_ARGS)
{
	KmsCheckPreloaded(true);
	RequireAdmin("kms_resolve_principals");
	KmsCheckWritable("kms_resolve_principals");
	PG_RETURN_INT64((int64) ResolveAll());
}

/*
 * kms_unresolved_principals(): every principal that names no role of this
 * cluster (restored without its role, or its role dropped from another
 * database), with its kept name.  They match nobody until resolved.
 */
PG_FUNCTION_INFO_V1(kms_unresolved_principals);
Datum
kms_unresolved_principals(PG_FUNCTION_ARGS)
{
	static const struct
	{
		const char *type;
		const char *id;
		const char *table;
		const char *col;
	}			cols[] = {
		{"key", "key_id::pg_catalog.text", "kms.key", "owner"},
		{"key grant", "grant_id", "kms.grants", "grantee"},
		{"key grant", "grant_id", "kms.grants", "retiring_principal"},
		{"key grant", "grant_id", "kms.grants", "issuing_role"},
		{"secret", "name", "kms.secret", "owner"},
		{"secret", "name", "kms.secret", "rotation_role"},
		{"secret grant", "grant_id", "kms.secret_grant", "grantee"},
		{"secret grant", "grant_id", "kms.secret_grant", "issuing_role"},
	};
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	StringInfoData sql;
	KmsCatalogState st;
	uint64		n;

	KmsCheckPreloaded(true);
	RequireAdmin("kms_unresolved_principals");
	ts = KmsStartSRF(fcinfo, &tupdesc);
	initStringInfo(&sql);
	for (int i = 0; i < lengthof(cols); i++)
	{
		char	   *name = KmsPrincipalNameSql(cols[i].col);

		appendStringInfo(&sql, "%sSELECT '%s'::pg_catalog.text, %s, '%s'::pg_catalog.text, %s "
						 "FROM %s WHERE %s IS NOT NULL AND NOT EXISTS "
						 "(SELECT 1 FROM pg_catalog.pg_roles r "
						 "WHERE r.oid OPERATOR(pg_catalog.=) %s::pg_catalog.oid)",
						 i ? " UNION ALL " : "", cols[i].type, cols[i].id, cols[i].col,
						 name, cols[i].table, name, cols[i].col);
	}
	appendStringInfoString(&sql, " ORDER BY 1, 3, 4, 2");
	KmsCatalogEnter(&st);
	n = KmsExec(sql.data, 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4];

		for (int j = 0; j < 4; j++)
			values[j] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, j + 1, &nulls[j]);
		tuplestore_putvalues(ts, tupdesc, values, nulls);
	}
	KmsCatalogExit(&st);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * The worker's job: roles created, renamed or dropped elsewhere
 * ----------------------------------------------------------------
 */
#define PRINCIPALS_JOB_INTERVAL_MS 60000

static bool
PrincipalsJobRun(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (last != 0 && !TimestampDifferenceExceeds(last, now, PRINCIPALS_JOB_INTERVAL_MS))
		return false;
	last = now;
	if (KmsPrincipalsCatalogPresent() && KmsPrincipalNamesKept())
		(void) ResolveAll();
	return false;
}

const KmsWorkerJob KmsPrincipalsWorkerJob =
{"principals", PrincipalsJobRun, NULL, NULL, true};
