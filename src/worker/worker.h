/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The pg_kms background workers: a launcher (one static worker,
 *	  connected to no database) starts, for every database where pg_kms is
 *	  installed, an audit worker (audit drain, audit retention) and a
 *	  rotation worker (secret rotation, key rotation, deletion windows), so
 *	  that rotation work never holds up the audit drain of its database.
 *	  Each per-database worker runs the jobs registered for its kind (by the
 *	  module entry, in a fixed order) once per wake-up, each unit of work in
 *	  its own transaction.  Owns pg_kms.worker_naptime, pg_kms.max_workers
 *	  and the deprecated pg_kms.database.
 *
 *	  May call: audit/ (the queue's consumer and figures), catalog/,
 *	  common/.  It knows nothing of rotation: its jobs, when they are due
 *	  and whether they are paused are registered from _PG_init.
 *
 * IDENTIFICATION
 *	  src/worker/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_WORKER_H
#define PG_KMS_WORKER_H

#include "common/kms_common.h"
#include "nodes/plannodes.h"

extern char *kms_worker_database;	/* pg_kms.database, deprecated */
extern int	kms_worker_naptime;		/* pg_kms.worker_naptime, seconds */

/* The kinds of per-database worker (also the rows of kms_worker_status()). */
#define KMS_WORKER_AUDIT	0
#define KMS_WORKER_ROTATION 1
#define KMS_NWORKERS		2

/*
 * Wake the rotation worker of the caller's database now (or, if it has
 * none yet, have the launcher look at that database).  Installed as the
 * common wake function (KmsSetWorkerWake) by _PG_init.
 */
extern void KmsWorkerWake(void);

/*
 * From the module's utility hook, before the command runs: CREATE
 * DATABASE ... TEMPLATE d, DROP DATABASE d, ALTER DATABASE d RENAME or SET
 * TABLESPACE stop d's workers (and wait for them, bounded) so that the
 * command finds d free; the launcher starts them again once the command's
 * transaction ended.  CREATE or DROP EXTENSION pg_kms wakes the launcher.
 */
extern void KmsWorkerUtility(PlannedStmt *pstmt);

/* Module setup, from _PG_init */
extern void KmsWorkerDefineGucs(void);
extern void KmsWorkerShmemRequest(void);
extern void KmsWorkerShmemStartup(void);
extern void KmsWorkerRegisterBgworkers(void);	/* not under binary upgrade */

/* Add a job to a worker's list (KMS_WORKER_AUDIT, KMS_WORKER_ROTATION). */
extern void KmsWorkerRegisterJob(int worker, const KmsWorkerJob *job);

/*
 * The rotation worker's sleep and status: when work is next due (0: none;
 * runs in a transaction), and whether that work is switched on.
 */
extern void KmsWorkerSetDueSource(TimestampTz (*next_due) (void),
								  bool (*enabled) (void));

extern PGDLLEXPORT void KmsWorkerMain(Datum main_arg);
extern PGDLLEXPORT void KmsLauncherMain(Datum main_arg);

#endif							/* PG_KMS_WORKER_H */
