/*-------------------------------------------------------------------------
 *
 * principals.c
 *	  The key store's writes of principals (issue 11, findings 3 and 4):
 *	  kms.key.owner and kms.grants.grantee, retiring_principal and
 *	  issuing_role, for the refusal of DROP ROLE, REASSIGN OWNED, DROP
 *	  OWNED and the resolution of principals kept by name
 *	  (catalog/principals.c says why both a name and an oid are kept).
 *	  The key store is the one layer that writes kms.key and kms.grants.
 *	  Statements run as the catalog owner; the principals trigger keeps
 *	  each name in step with the oid written here.  Works on a 1.1
 *	  catalog too (regrole columns): only the resolution needs 1.2.
 *
 *	  May call: catalog/, common/.
 *
 * Locking: row locks of the statements only.
 *
 * IDENTIFICATION
 *	  src/keystore/principals.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "keystore/principals.h"

void
KmsKeyPrincipalsCount(Oid roleid, KmsPrincipalCounts *counts)
{
	KmsCatalogState st;
	Oid			t[3];
	Datum		v[3];
	char		n[3];

	KmsPrincipalArgs(roleid, NULL, InvalidOid, t, v, n);
	KmsCatalogEnter(&st);
	counts->keys += KmsPrincipalCount("SELECT count(*) FROM kms.key "
							 "WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							 t, v, n);
	counts->key_grants += KmsPrincipalCount("SELECT count(*) FROM kms.grants "
								   "WHERE grantee::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
								   "OR retiring_principal::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
								   "OR issuing_role::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
								   t, v, n);
	KmsCatalogExit(&st);
}

void
KmsKeyPrincipalsReassign(Oid roleid, const char *old_name, Oid new_roleid,
						 KmsPrincipalCounts *counts)
{
	KmsCatalogState st;
	Oid			t[3];
	Datum		v[3];
	char		n[3];

	KmsPrincipalArgs(roleid, old_name, new_roleid, t, v, n);
	KmsCatalogEnter(&st);
	counts->keys += KmsExec(psprintf("UPDATE kms.key t SET owner = $3 WHERE %s",
									 KmsPrincipalMatchSql("t.owner", 1, 2)),
							3, t, v, n, false, SPI_OK_UPDATE);
	counts->key_grants += KmsExec(psprintf("UPDATE kms.grants t SET issuing_role = $3 WHERE %s",
										   KmsPrincipalMatchSql("t.issuing_role", 1, 2)),
								  3, t, v, n, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

void
KmsKeyPrincipalsDropOwned(Oid roleid, const char *old_name, KmsPrincipalCounts *counts)
{
	KmsCatalogState st;
	Oid			t[3];
	Datum		v[3];
	char		n[3];

	KmsPrincipalArgs(roleid, old_name, InvalidOid, t, v, n);
	KmsCatalogEnter(&st);
	counts->key_grants += KmsExec(psprintf("DELETE FROM kms.grants t WHERE %s",
										   KmsPrincipalMatchSql("t.grantee", 1, 2)),
								  3, t, v, n, false, SPI_OK_DELETE);
	/* a grant to another role stays; only its retiring principal goes */
	counts->key_grants += KmsExec(psprintf("UPDATE kms.grants t SET retiring_principal = NULL%s WHERE %s",
										   KmsPrincipalNamesKept() ? ", retiring_principal_name = NULL" : "",
										   KmsPrincipalMatchSql("t.retiring_principal", 1, 2)),
								  3, t, v, n, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

uint64
KmsKeyPrincipalsResolve(void)
{
	static const char *const key_cols[] = {"owner"};
	static const char *const grant_cols[] = {"grantee", "retiring_principal", "issuing_role"};
	KmsCatalogState st;
	uint64		changed;

	if (!KmsPrincipalNamesKept())
		return 0;
	KmsCatalogEnter(&st);
	changed = KmsPrincipalResolve("UPDATE kms.key t", key_cols, lengthof(key_cols));
	changed += KmsPrincipalResolve("UPDATE kms.grants t", grant_cols, lengthof(grant_cols));
	KmsCatalogExit(&st);
	return changed;
}
