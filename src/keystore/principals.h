/*-------------------------------------------------------------------------
 *
 * principals.h
 *	  The key store's writes of the principals of kms.key (owner) and
 *	  kms.grants (grantee, retiring principal, issuing role) for DROP ROLE,
 *	  REASSIGN OWNED, DROP OWNED and their resolution
 *	  (keystore/principals.c).  No privilege checks here: the callers
 *	  (secrets/principals.c) check.
 *
 *	  May call: catalog/, common/.
 *
 * IDENTIFICATION
 *	  src/keystore/principals.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_KEYSTORE_PRINCIPALS_H
#define PG_KMS_KEYSTORE_PRINCIPALS_H

#include "catalog/principals.h"

/* What names a role, for the refusal of DROP ROLE. */
typedef struct KmsPrincipalCounts
{
	int64		keys;			/* keys it owns */
	int64		key_grants;		/* key grants naming it */
	int64		secrets;		/* secrets it owns */
	int64		secret_grants;	/* secret grants naming it */
	int64		rotations;		/* secrets whose rotation role or clone it is */
} KmsPrincipalCounts;

/* Count roleid's keys and key grants into counts. */
extern void KmsKeyPrincipalsCount(Oid roleid, KmsPrincipalCounts *counts);

/*
 * REASSIGN OWNED: keys owned by, and grants issued by, the role roleid (or
 * the unresolved principal old_name, may be NULL) pass to new_roleid;
 * counts get the keys and grants changed.
 */
extern void KmsKeyPrincipalsReassign(Oid roleid, const char *old_name, Oid new_roleid,
									 KmsPrincipalCounts *counts);

/*
 * DROP OWNED: key grants to the role are deleted, and it stops being a
 * retiring principal; keys stay.  counts->key_grants gets the grants.
 */
extern void KmsKeyPrincipalsDropOwned(Oid roleid, const char *old_name,
									  KmsPrincipalCounts *counts);

/* Resolve the principals of kms.key and kms.grants; rows changed. */
extern uint64 KmsKeyPrincipalsResolve(void);

#endif							/* PG_KMS_KEYSTORE_PRINCIPALS_H */
