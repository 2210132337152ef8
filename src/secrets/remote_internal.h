/*-------------------------------------------------------------------------
 *
 * remote_internal.h
 *	  Between the files of remote secrets (src/secrets/remote*.c): the
 *	  shared cache (remote_cache.c) and the fetch over the aws client
 *	  (remote_fetch.c).  remote.h says what the parts are.
 *
 * IDENTIFICATION
 *	  src/secrets/remote_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_SECRETS_REMOTE_INTERNAL_H
#define PG_KMS_SECRETS_REMOTE_INTERNAL_H

#include "secrets/remote.h"

/* cache key: arn \x01 version id \x01 stage (ARN <= 2048, id <= 64, stage <= 256) */
#define REMOTE_KEY_MAX		2400

/*
 * A failed GetSecretValue: enough to raise the mapped error again (the
 * callers that wait for a fetch in flight, or come within its backoff) and
 * to name it in a WARNING.  Never holds any part of a value.
 */
typedef struct RemoteFailure
{
	int			kind;			/* KmsAwsErrorKind */
	long		status;
	char		aws_code[128];
	char		aws_message[256];
	char		request_id[128];
} RemoteFailure;

/*
 * GetSecretValue (arn, version_id, stage: either may be NULL) against AWS.
 * True: *json is our result object (get_secret_value's shape), palloc'd;
 * the caller wipes it.  False: *fail says why.  Raises only for an
 * interrupt, out of memory or a settings error (see aws_client.h).
 */
extern bool RemoteFetch(const char *arn, const char *version_id, const char *stage,
						char **json, RemoteFailure *fail);

/* Raise the mapped error of a failure: AWS code and request id in DETAIL. */
extern void RemoteRaise(const char *arn, const RemoteFailure *fail) pg_attribute_noreturn();

/* A short name of the failure for a WARNING (the AWS code, or the kind). */
extern const char *RemoteFailureName(const RemoteFailure *fail);

/* How a read was served (for the audit event) */
typedef enum RemoteOutcome
{
	REMOTE_HIT,					/* from the cache, fresh */
	REMOTE_FETCHED,				/* this call fetched it from AWS */
	REMOTE_STALE				/* refresh failed, the old value served */
} RemoteOutcome;

/*
 * The value of (arn, version_id, stage) through the shared cache: our
 * result object as JSON text (palloc'd; the caller wipes it).  One AWS call
 * per miss or expiry across all backends: the others wait for it.  force:
 * fetch now even if fresh (kms_refresh_remote_secret), and raise if that
 * fails instead of serving the old value.
 */
extern char *RemoteCacheGet(const char *arn, const char *version_id, const char *stage,
							bool force, RemoteOutcome *how);

/* The (version_id, stage) pairs cached for an ARN (for refresh). */
extern List *RemoteCacheKeysOf(const char *arn);

#endif							/* PG_KMS_SECRETS_REMOTE_INTERNAL_H */
