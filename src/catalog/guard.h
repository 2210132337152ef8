/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  Custody guards (src/catalog/guard.c): what keeps ordinary SQL from
 *	  destroying keys outside the deletion window (DROP EXTENSION, DROP
 *	  SCHEMA kms, DROP/TRUNCATE/DELETE on kms tables), the account id kept
 *	  with the data (kms.account), and the checks of a restore into a
 *	  database that already uses pg_kms.
 *
 *	  Owns: pg_kms.allow_unsafe_drop, and the internal marker of pg_kms's
 *	  own catalog writes.  May call: common/ and catalog.c.
 *
 * IDENTIFICATION
 *	  src/catalog/guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_GUARD_H
#define PG_KMS_GUARD_H

#include "nodes/plannodes.h"

extern bool kms_allow_unsafe_drop;

extern void KmsGuardDefineGucs(void);

/*
 * Mark the current GUC nest level (KmsCatalogEnter's) as pg_kms's own
 * catalog work: undone with that level, at KmsCatalogExit or at abort.
 */
extern void KmsGuardMarkInternal(void);

/* Before a utility statement runs: refuse destroying live keys. */
extern void KmsGuardUtility(PlannedStmt *pstmt);

/* The account id stored in kms.account (NULL: none), for common/arn.c. */
extern const char *KmsGuardStoredAccountId(void);

/* Relcache callback: a change of kms.account makes the cached id stale. */
extern void KmsGuardRelcacheCallback(Oid relid);

#endif							/* PG_KMS_GUARD_H */
