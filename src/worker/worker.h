/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The pg_kms background workers, both connected to the database named
 *	  by pg_kms.database: the audit worker (audit drain, audit retention)
 *	  and the rotation worker (secret rotation, key rotation, deletion
 *	  windows), so that rotation work never holds up the audit drain.
 *	  Each runs the jobs registered for it (by the module entry, in a fixed
 *	  order) once per wake-up, each unit of work in its own transaction.
 *	  Owns pg_kms.database and pg_kms.worker_naptime.
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

extern char *kms_worker_database;	/* pg_kms.database */
extern int	kms_worker_naptime;		/* pg_kms.worker_naptime, seconds */

/* The workers, in bgw_main_arg order (also the rows of kms_worker_status()). */
#define KMS_WORKER_AUDIT	0
#define KMS_WORKER_ROTATION 1
#define KMS_NWORKERS		2

/*
 * Wake the rotation worker now; a no-op if it is not running.  Installed as
 * the common wake function (KmsSetWorkerWake) by _PG_init.
 */
extern void KmsWorkerWake(void);

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

#endif							/* PG_KMS_WORKER_H */
