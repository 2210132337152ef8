/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The pg_kms background workers, both connected to the database named
 *	  by pg_kms.database: the audit worker (audit drain, audit retention)
 *	  and the rotation worker (secret rotation, key rotation, deletion
 *	  windows), so that rotation work never holds up the audit drain.
 *	  Each runs its fixed list of jobs once per wake-up, each unit of work
 *	  in its own transaction.
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
extern bool kms_rotation_jobs;		/* pg_kms.rotation_jobs */

/* Wake the rotation worker now; a no-op if it is not running. */
extern void KmsWorkerWake(void);

/*
 * A job: run() does one unit of work inside a transaction the worker has
 * started (SPI connected, snapshot pushed) and returns true if more work is
 * due right away.  committed(), if set, runs after that transaction
 * committed; aborted(), if set, when it failed.  Jobs with primary_only
 * are skipped on a standby.
 */
typedef struct KmsWorkerJob
{
	const char *name;
	bool		(*run) (void);
	void		(*committed) (void);
	void		(*aborted) (void);
	bool		primary_only;
} KmsWorkerJob;

/* Module setup, from _PG_init: GUCs, shared memory, registration. */
extern void KmsWorkerInit(void);

extern PGDLLEXPORT void KmsWorkerMain(Datum main_arg);

#endif							/* PG_KMS_WORKER_H */
