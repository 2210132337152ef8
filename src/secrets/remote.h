/*-------------------------------------------------------------------------
 *
 * remote.h
 *	  Remote secrets: get_secret() / get_secret_value() on the ARN of a
 *	  secret in AWS Secrets Manager (another account or region than this
 *	  database's own ARNs), read through a shared cache like AWS's caching
 *	  clients, and only through a local link (docs/providers.md, "Remote
 *	  secrets (AWS Secrets Manager)").
 *
 *	  remote_link.c: the link objects (kms.remote_secret, a local secret
 *	  that carries the grants), the access check and the SQL entry points;
 *	  remote_cache.c: the shared cache (settings, shared memory);
 *	  remote_fetch.c: GetSecretValue over the aws client (src/aws/).
 *
 * IDENTIFICATION
 *	  src/secrets/remote.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_SECRETS_REMOTE_H
#define PG_KMS_SECRETS_REMOTE_H

#include "fmgr.h"
#include "utils/jsonb.h"

/* pg_kms.remote_secret_cache_ttl (s), pg_kms.remote_secret_cache_size */
extern int	kms_remote_secret_cache_ttl;
extern int	kms_remote_secret_cache_size;

/* From _PG_init and the shared-memory hooks (src/pg_kms.c) */
extern void KmsRemoteSecretDefineGucs(void);
extern void KmsRemoteSecretShmemRequest(void);
extern void KmsRemoteSecretShmemStartup(void);

/*
 * Is ref a Secrets Manager ARN that is not one of this database's own
 * (another partition, region or account than pg_kms.region and the account
 * id)?  Then get_secret / get_secret_value hand it to KmsRemoteGetSecret.
 */
extern bool KmsSecretIsRemoteArn(const char *ref);

/*
 * GetSecretValue on a remote secret, for the SQL entry point whose
 * arguments are (secret_id, version_id, version_stage): get_secret (as_json
 * false: the SecretString as text, NULL for a SecretBinary) or
 * get_secret_value (as_json true: the jsonb object of a local read).
 * Checks the caller may read the link first (no AWS call otherwise), and
 * audits the read.
 */
extern Datum KmsRemoteGetSecret(FunctionCallInfo fcinfo, const char *ref, bool as_json);

/*
 * The same read for batch_get_secret_value: the GetSecretValue answer
 * (ARN, Name, VersionId, SecretString or SecretBinary, VersionStages,
 * CreatedDate) as a jsonb object the caller wipes after use.
 */
extern Jsonb *KmsRemoteSecretValue(const char *ref, char *version_id, char *stage);

/*
 * The remote ARN a local secret links to (its id), or NULL: reads of a
 * link by its own name or ARN go to AWS; writes of a value to it, and its
 * rotation, are refused (KmsRemoteRefuseWrite).
 */
extern char *KmsRemoteArnOfLink(const uint8 *id);
extern void KmsRemoteRefuseWrite(const uint8 *id, const char *name, const char *operation);

#endif							/* PG_KMS_SECRETS_REMOTE_H */
