/*-------------------------------------------------------------------------
 *
 * secrets.h
 *	  A small C interface of the secrets store for the rotation part
 *	  (rotation/).  These calls do no privilege checks of their own unless
 *	  they say so: the caller is the worker (a superuser) or an entry point
 *	  that has checked RotateSecret.  Plaintext returned by them is
 *	  palloc'd; the caller wipes it with kms_cleanse() when done.
 *
 *	  Writes lock the secret's row first (as every writer in secrets/
 *	  does), so labels stay consistent: exactly one AWSCURRENT.
 *
 * IDENTIFICATION
 *	  src/secrets/secrets.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_SECRETS_H
#define PG_KMS_SECRETS_H

#include "common/kms_common.h"
#include "nodes/pg_list.h"

typedef struct KmsSecretInfo
{
	uint8		id[16];
	char	   *arn;
	char	   *name;
	Oid			owner;
	bool		deleted;
} KmsSecretInfo;

/*
 * Resolve ref (name or ARN), check that the current role may perform
 * RotateSecret on it (AccessDenied / ResourceNotFound as the API does),
 * refuse on a standby, and lock the row.  Deleted secrets are returned
 * with deleted set: the caller decides.
 */
extern void KmsSecretForRotation(const char *ref, KmsSecretInfo *info);


/*
 * The SecretString of a version named by version_id and/or stage (both
 * given: they must name the same version).  NULL if there is no such
 * version, or it holds a SecretBinary.  *version_out gets the version id.
 */
extern char *KmsSecretGetString(const uint8 *id, const char *version_id,
								const char *stage, char **version_out);

/*
 * Put a SecretString version with id version_id (a client request token)
 * and these labels, idempotently: an existing version with the same value
 * is left as it is (false returned); with another value,
 * ResourceExistsException.
 */
extern bool KmsSecretPutString(const uint8 *id, const char *version_id,
							   const char *value, List *stages);

/*
 * RotateSecret's AWSPENDING version, made before the function's
 * createSecret step: without a value, or with a copy of AWSCURRENT's
 * (copy_current).  False if version_id exists already.  And deleting a
 * version (the copy, once RotateImmediately = false's testSecret ran).
 */
extern bool KmsSecretCreatePending(const uint8 *id, const char *version_id,
								   bool copy_current);
extern void KmsSecretDeleteVersion(const uint8 *id, const char *version_id);

/* The version holding a label, or NULL. */
extern char *KmsSecretStageHolder(const uint8 *id, const char *stage);

/* Does the version exist?  Does it carry stage? */
extern bool KmsSecretVersionExists(const uint8 *id, const char *version_id);
extern bool KmsSecretVersionHasStage(const uint8 *id, const char *version_id,
									 const char *stage);

/*
 * Move a label to a version (AWSCURRENT drags AWSPREVIOUS along), or, with
 * move_to NULL, remove it from whatever version holds it.
 */
extern void KmsSecretMoveStage(const uint8 *id, const char *stage, const char *move_to);

/*
 * The rotation columns of kms.secret, written for rotation/: an UPDATE of
 * one secret, "SET <set> WHERE secret_id = $1" (parameters from $2), as the
 * catalog owner; and the start of a scheduled rotation (token, first step
 * createSecret), inside KmsCatalogEnter.
 */
extern void KmsSecretUpdateRotation(const uint8 *id, const char *set, int nargs,
									Oid *types, Datum *values, const char *nulls);
extern void KmsSecretStartRotation(const uint8 *id, const char *token);

/* Mark the secret changed: last_changed_date, caches of every backend. */
extern void KmsSecretChanged(const uint8 *id);

/*
 * GetRandomPassword's generator (excl: uppercase, lowercase, numbers,
 * punctuation); palloc'd, the caller wipes it.
 */
extern char *KmsRandomPassword(int64 length, const char *exclude, const bool excl[4],
							   bool include_space, bool require_each);

/* Purge secrets whose recovery window has passed; at most limit; count. */
extern int	KmsSecretsPurgeExpired(int limit);

#endif							/* PG_KMS_SECRETS_H */
