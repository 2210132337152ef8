/*-------------------------------------------------------------------------
 *
 * principals.h
 *	  Principals kept by name and oid (catalog/principals.c): the trigger
 *	  that keeps the two in step, and the SQL the readers use to show a
 *	  principal whatever the catalog version (1.1: regrole columns; 1.2:
 *	  oid columns with a <column>_name beside each).
 *
 *	  May call: common/.
 *
 * IDENTIFICATION
 *	  src/catalog/principals.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_CATALOG_PRINCIPALS_H
#define PG_KMS_CATALOG_PRINCIPALS_H

#include "catalog/kms_catalog.h"

/* pg_kms is installed in this database and its catalog can be read. */
extern bool KmsPrincipalsCatalogPresent(void);

/* The catalog keeps principal names (1.2); false before the update. */
extern bool KmsPrincipalNamesKept(void);

/*
 * SQL for the name of the principal in column col (as written in the
 * query, e.g. "g.grantee"): its kept name, or on a 1.1 catalog the role
 * name of the regrole.  palloc'd.
 */
extern char *KmsPrincipalNameSql(const char *col);

/*
 * SQL true where column col names the role whose oid is parameter
 * $oidparam, or (names kept) an unresolved principal whose name is
 * parameter $nameparam (NULL: none).  palloc'd.
 */
extern char *KmsPrincipalMatchSql(const char *col, int oidparam, int nameparam);

/*
 * Resolve columns cols[ncols] of one table; update is the statement's
 * start, written by the caller, the one layer that writes the table
 * ("UPDATE kms.grants t"; the alias must be t): names follow the oids of
 * roles that still exist (renamed), and principals whose oid names no role
 * take the role of their name, or NULL.  Names kept only; inside
 * KmsCatalogEnter.  Returns the rows changed.
 */
extern uint64 KmsPrincipalResolve(const char *update, const char *const *cols, int ncols);

/*
 * The parameters of the principals statements: $1 the role (InvalidOid:
 * none), $2 its name (NULL: none), $3 the new role.
 */
extern void KmsPrincipalArgs(Oid roleid, const char *old_name, Oid new_roleid,
							 Oid *types, Datum *values, char *nulls);

/* Run a count(*) query with those parameters (inside KmsCatalogEnter). */
extern int64 KmsPrincipalCount(const char *sql, Oid *types, Datum *values, char *nulls);

#endif							/* PG_KMS_CATALOG_PRINCIPALS_H */
