/*-------------------------------------------------------------------------
 *
 * rotation.h
 *	  Rotation: RotateSecret / CancelRotateSecret, the four-step rotation
 *	  of secrets (createSecret, setSecret, testSecret, finishSecret) with
 *	  built-in strategies for PostgreSQL role credentials and custom SQL
 *	  strategies, automatic key rotation, and the expiry of deletion
 *	  windows (keys: crypto-shredding; secrets: purge).
 *
 *	  The jobs below are run by the rotation worker (worker/worker.c, which
 *	  gets them registered by _PG_init), each call one unit of work in the
 *	  transaction the worker opened; a job returns true if more work is due
 *	  right away.  State lives in the catalog (kms.secret.rotation_*,
 *	  written through secrets/: KmsSecretUpdateRotation), so a crash at
 *	  any point resumes at the step that was last committed.
 *	  docs/rotation.md.  Owns the pg_kms.rotation_* settings.
 *
 *	  May call: secrets/ (secrets.h only), keystore/, cache/, audit/,
 *	  catalog/, common/, crypto/.  The worker is woken through common/
 *	  (KmsWakeWorker).
 *
 * IDENTIFICATION
 *	  src/rotation/rotation.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_ROTATION_H
#define PG_KMS_ROTATION_H

#include "common/kms_common.h"
#include "access/xact.h"

/* pg_kms.rotation_test_crash_at (test-only; superuser) */
extern char *kms_rotation_test_crash_at;
/* pg_kms.rotation_local_hosts, _login_timeout (s), _step_timeout (s) */
extern char *kms_rotation_local_hosts;
extern int	kms_rotation_login_timeout;
extern int	kms_rotation_step_timeout;

/* pg_kms.rotation_jobs: off pauses the rotation worker's jobs */
extern bool kms_rotation_jobs;

/* Module setup, from _PG_init: the settings of this part. */
extern void KmsRotationDefineGucs(void);

/* From the module's transaction callback: wake the worker at commit. */
extern void KmsRotationXactCallback(XactEvent event);

/* The rotation worker's jobs, its due source and its switch (_PG_init) */
extern const KmsWorkerJob KmsRotationSecretsWorkerJob;
extern const KmsWorkerJob KmsRotationKeysWorkerJob;
extern const KmsWorkerJob KmsRotationDeletionWorkerJob;
extern bool KmsRotationJobsEnabled(void);

/* One unit of each job (also kms_rotation_run_job()) */
extern bool KmsRotationSecretsJob(void);	/* one step of one secret's rotation */
extern void KmsRotationSecretsCommitted(void);	/* test-only crash injection */
extern bool KmsRotationKeysJob(void);	/* one key whose rotation is due */
extern bool KmsRotationDeletionJob(void);	/* one expired key, or a batch of secrets */

/* Earliest time some rotation or deletion is due (0: none), for status. */
extern TimestampTz KmsRotationNextDue(void);

#endif							/* PG_KMS_ROTATION_H */
