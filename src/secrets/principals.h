/*-------------------------------------------------------------------------
 *
 * principals.h
 *	  Roles and pg_kms's principals (secrets/principals.c): the utility
 *	  hook's part (DROP ROLE refused while keys, secrets or grants name
 *	  the role; REASSIGN OWNED and DROP OWNED extended to them; CREATE ROLE
 *	  and ALTER ROLE ... RENAME resolve principals kept by name), and the
 *	  worker's job that resolves them.
 *
 *	  May call: keystore/ (its principals writes), cache/, catalog/,
 *	  audit/, common/.
 *
 * IDENTIFICATION
 *	  src/secrets/principals.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_SECRETS_PRINCIPALS_H
#define PG_KMS_SECRETS_PRINCIPALS_H

#include "nodes/plannodes.h"

#include "common/kms_common.h"

/* From the module's utility hook, before and after the statement runs. */
extern void KmsPrincipalsUtilityBefore(PlannedStmt *pstmt);
extern void KmsPrincipalsUtilityAfter(PlannedStmt *pstmt);

/* Resolve principals kept by name, at most once a minute (a worker job). */
extern const KmsWorkerJob KmsPrincipalsWorkerJob;

#endif							/* PG_KMS_SECRETS_PRINCIPALS_H */
