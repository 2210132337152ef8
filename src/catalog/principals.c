/*-------------------------------------------------------------------------
 *
 * principals.c
 *	  Principals of keys, grants and secrets (owner, grantee, retiring
 *	  principal, issuing role, rotation role, rotation clone) are kept as
 *	  two columns: <column> (oid, the role in THIS cluster; NULL while no
 *	  role of that name exists) and <column>_name (text, the role's name).
 *
 *	  Why both (issue 11, findings 3 and 4): a regrole column is dumped as
 *	  a name and COPY fails when the restoring cluster lacks the role, so a
 *	  restore without roles lost every key.  A bare oid would restore, but
 *	  it belongs to the dumped cluster and could name an unrelated role
 *	  here.  The name is what travels; the oid is what the checks compare
 *	  (has_privs_of_role), so a rename keeps access and a dropped role's
 *	  oid is never looked up by name again.  The trigger below makes the
 *	  oid follow the name on INSERT (so the COPY of a restore, whose oids
 *	  belong to another cluster, takes the local role of that name, or
 *	  NULL: unresolved) and the name follow the oid when a writer changes
 *	  only the oid (the C code writes oids and never names).  Unresolved
 *	  principals match nobody; superuser and kms_admin still administer.
 *	  They are resolved when the role appears (keystore/principals.c and
 *	  secrets/principals.c: kms_resolve_principals(), the utility hook on
 *	  CREATE ROLE and ALTER ROLE ... RENAME, the worker).
 *
 *	  The .so also runs against a 1.1 catalog (regrole columns, no names)
 *	  until ALTER EXTENSION pg_kms UPDATE: KmsPrincipalNamesKept() tells.
 *
 * Locking: the trigger takes AccessShareLock on each role it writes (as
 * PostgreSQL does on the owner of a new object), so that a concurrent DROP
 * ROLE, which takes AccessExclusiveLock on the role before it counts what
 * names it, either waits for us and sees our row or drops it first and
 * makes us fail.
 *
 * IDENTIFICATION
 *	  src/catalog/principals.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "catalog/principals.h"

bool
KmsPrincipalsCatalogPresent(void)
{
	Oid			nsp;

	/* CREATE EXTENSION runs statements before its tables exist */
	if (creating_extension || !IsTransactionState())
		return false;
	if (!OidIsValid(get_extension_oid("pg_kms", true)))
		return false;
	nsp = get_namespace_oid("kms", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("key", nsp));
}

bool
KmsPrincipalNamesKept(void)
{
	return get_attnum(KmsKeyRelationId(), "owner_name") != InvalidAttrNumber;
}

char *
KmsPrincipalNameSql(const char *col)
{
	if (KmsPrincipalNamesKept())
		return psprintf("%s_name", col);
	return psprintf("%s::pg_catalog.regrole::pg_catalog.text", col);
}

char *
KmsPrincipalMatchSql(const char *col, int oidparam, int nameparam)
{
	if (!KmsPrincipalNamesKept())
		return psprintf("%s::pg_catalog.oid OPERATOR(pg_catalog.=) $%d", col, oidparam);
	return psprintf("(%s OPERATOR(pg_catalog.=) $%d OR (%s_name OPERATOR(pg_catalog.=) $%d "
					"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r "
					"WHERE r.oid OPERATOR(pg_catalog.=) %s)))",
					col, oidparam, col, nameparam, col);
}

/*
 * An oid that still names a role is trusted over the kept name (a rename
 * in another database); only an oid that names no role (NULL, or dropped
 * from another database) is looked up by name, so a dropped role's oid
 * never stays to match a later role that reuses it.
 */
uint64
KmsPrincipalResolve(const char *update, const char *const *cols, int ncols)
{
	uint64		changed = 0;

	for (int i = 0; i < ncols; i++)
	{
		const char *col = cols[i];

		changed += KmsExec(psprintf("%s SET %s_name = r.rolname "
									"FROM pg_catalog.pg_roles r "
									"WHERE r.oid OPERATOR(pg_catalog.=) t.%s "
									"AND t.%s_name IS DISTINCT FROM r.rolname::pg_catalog.text",
									update, col, col, col),
						   0, NULL, NULL, NULL, false, SPI_OK_UPDATE);
		changed += KmsExec(psprintf("%s SET %s = (SELECT r.oid FROM pg_catalog.pg_roles r "
									"WHERE r.rolname OPERATOR(pg_catalog.=) t.%s_name) "
									"WHERE t.%s_name IS NOT NULL "
									"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r "
									"WHERE r.oid OPERATOR(pg_catalog.=) t.%s) "
									"AND t.%s IS DISTINCT FROM (SELECT r.oid FROM pg_catalog.pg_roles r "
									"WHERE r.rolname OPERATOR(pg_catalog.=) t.%s_name)",
									update, col, col, col, col, col, col),
						   0, NULL, NULL, NULL, false, SPI_OK_UPDATE);
	}
	return changed;
}

void
KmsPrincipalArgs(Oid roleid, const char *old_name, Oid new_roleid,
				 Oid *types, Datum *values, char *nulls)
{
	types[0] = OIDOID;
	values[0] = ObjectIdGetDatum(roleid);
	nulls[0] = ' ';
	types[1] = TEXTOID;
	values[1] = old_name ? CStringGetTextDatum(old_name) : (Datum) 0;
	nulls[1] = old_name ? ' ' : 'n';
	types[2] = OIDOID;
	values[2] = ObjectIdGetDatum(new_roleid);
	nulls[2] = ' ';
}

int64
KmsPrincipalCount(const char *sql, Oid *types, Datum *values, char *nulls)
{
	bool		isnull;

	KmsExec(sql, 3, types, values, nulls, true, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static Oid
principal_oid(HeapTuple tup, TupleDesc td, int oatt)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, oatt, td, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/* The oid (InvalidOid: NULL) and name (NULL) of a principal in tup. */
static void
principal_get(HeapTuple tup, TupleDesc td, int oatt, int natt,
			  Oid *roleid, char **name)
{
	bool		isnull;
	Datum		d;

	d = heap_getattr(tup, oatt, td, &isnull);
	*roleid = isnull ? InvalidOid : DatumGetObjectId(d);
	d = heap_getattr(tup, natt, td, &isnull);
	*name = isnull ? NULL : TextDatumGetCString(d);
}

/*
 * kms.principals_sync(column, ...): BEFORE INSERT OR UPDATE row trigger of
 * the tables that hold principals; each argument names an oid column whose
 * name column is <column>_name; "-column" names an oid pinned without a
 * name (kms.secret.rotation_clone: the role pg_kms made, which a role of
 * the same name elsewhere must never be taken for), cleared on INSERT.
 *
 *	INSERT: a name given wins: the oid becomes the local role of that name,
 *		or NULL (a restore; the dumped oid is another cluster's).  No
 *		name: it is filled in from the oid (the C code's inserts).
 *	UPDATE: only the oid changed: the name follows (unless the oid was
 *		cleared: the name stays, unresolved); only the name changed: the
 *		oid follows the name; both or neither: kept as written.
 */
PG_FUNCTION_INFO_V1(kms_principals_sync);
Datum
kms_principals_sync(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	TupleDesc	td;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	int			natts;
	int		   *cols;
	Datum	   *vals;
	bool	   *nulls;
	int			nrepl = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "kms.principals_sync() must be a BEFORE ROW trigger");
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtup = trigdata->tg_newtuple;
		oldtup = trigdata->tg_trigtuple;
	}
	else if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		newtup = trigdata->tg_trigtuple;
	else
		elog(ERROR, "kms.principals_sync() fires on INSERT or UPDATE only");

	trigger = trigdata->tg_trigger;
	td = RelationGetDescr(trigdata->tg_relation);
	natts = 2 * trigger->tgnargs;
	cols = palloc(sizeof(int) * natts);
	vals = palloc(sizeof(Datum) * natts);
	nulls = palloc(sizeof(bool) * natts);

	for (int i = 0; i < trigger->tgnargs; i++)
	{
		const char *col = trigger->tgargs[i];
		char	   *namecol;
		int			oatt;
		int			natt;
		Oid			roleid;
		char	   *name;
		Oid			new_roleid;
		char	   *new_name;

		if (col[0] == '-')
		{
			/* pinned by oid, no name: an inserted oid is another cluster's */
			oatt = SPI_fnumber(td, col + 1);
			if (oatt <= 0)
				elog(ERROR, "kms.principals_sync(): no column \"%s\"", col + 1);
			if (oldtup == NULL)
			{
				cols[nrepl] = oatt;
				vals[nrepl] = (Datum) 0;
				nulls[nrepl++] = true;
			}
			continue;
		}
		namecol = psprintf("%s_name", col);
		oatt = SPI_fnumber(td, col);
		natt = SPI_fnumber(td, namecol);
		if (oatt <= 0 || natt <= 0)
			elog(ERROR, "kms.principals_sync(): no columns \"%s\" and \"%s\" in \"%s\"",
				 col, namecol, RelationGetRelationName(trigdata->tg_relation));
		principal_get(newtup, td, oatt, natt, &roleid, &name);
		new_roleid = roleid;
		new_name = name;

		if (oldtup == NULL)
		{
			if (name != NULL)
				new_roleid = get_role_oid(name, true);
			else if (OidIsValid(roleid))
				new_name = GetUserNameFromId(roleid, false);
		}
		else
		{
			Oid			old_roleid;
			char	   *old_name;
			bool		oid_changed,
						name_changed;

			principal_get(oldtup, td, oatt, natt, &old_roleid, &old_name);
			oid_changed = (roleid != old_roleid);
			name_changed = (name == NULL) != (old_name == NULL) ||
				(name != NULL && strcmp(name, old_name) != 0);
			if (oid_changed && !name_changed)
			{
				if (OidIsValid(roleid))
					new_name = GetUserNameFromId(roleid, false);
			}
			else if (name_changed && !oid_changed)
				new_roleid = name ? get_role_oid(name, true) : InvalidOid;
		}

		/*
		 * A role written here may not be dropped before we commit: lock it
		 * as PostgreSQL locks the owner of a new object, against DROP ROLE,
		 * which locks it exclusively before counting what names it
		 * (secrets/principals.c); dropped meanwhile, refuse.
		 */
		if (OidIsValid(new_roleid) &&
			(oldtup == NULL || new_roleid != principal_oid(oldtup, td, oatt)))
		{
			LockSharedObject(AuthIdRelationId, new_roleid, 0, AccessShareLock);
			if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(new_roleid)))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("role \"%s\" was dropped concurrently",
								new_name ? new_name : "?")));
		}

		cols[nrepl] = oatt;
		vals[nrepl] = ObjectIdGetDatum(new_roleid);
		nulls[nrepl++] = !OidIsValid(new_roleid);
		cols[nrepl] = natt;
		vals[nrepl] = new_name ? CStringGetTextDatum(new_name) : (Datum) 0;
		nulls[nrepl++] = (new_name == NULL);
	}

	if (nrepl > 0)
		newtup = heap_modify_tuple_by_cols(newtup, td, nrepl, cols, vals, nulls);
	return PointerGetDatum(newtup);
}
