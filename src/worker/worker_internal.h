/*-------------------------------------------------------------------------
 *
 * worker_internal.h
 *	  Shared by the files of src/worker/ only: launcher.c (the launcher,
 *	  the slot table in shared memory, the utility-hook part, the
 *	  cluster-wide status) and worker.c (the per-database workers, their
 *	  jobs, kms_worker_status()).
 *
 * Shared memory holds one KmsWorkerSlot per worker process pg_kms may run
 * for a database (pg_kms.max_workers of them).  A served database has two
 * slots, one of each kind (audit, rotation), assigned by the launcher.
 *
 * Locking: the named LWLock "pg_kms launcher" guards the assignment fields
 * of every slot (in_use, dboid, dbname, kind, launched, release_requested),
 * the holds, the nudges and the list of databases not served; each slot's
 * spinlock `mutex` guards its status fields (what the worker reports:
 * pid, state, times, errors, exit_reason, found_extension).  Take the
 * LWLock first when both are needed.
 *
 * IDENTIFICATION
 *	  src/worker/worker_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_WORKER_INTERNAL_H
#define PG_KMS_WORKER_INTERNAL_H

#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "worker/worker.h"

/* Why a worker exited (set by the worker, read by the launcher) */
typedef enum KmsWorkerExit
{
	KMS_EXIT_NONE = 0,			/* running, or died without saying */
	KMS_EXIT_STOPPED,			/* SIGTERM (pg_terminate_backend, shutdown) */
	KMS_EXIT_ABSENT,			/* pg_kms is not installed in its database */
	KMS_EXIT_RELEASED,			/* asked to leave its database for a while */
	KMS_EXIT_ERROR				/* a job failed (exit code 1) */
} KmsWorkerExit;

typedef struct KmsWorkerSlot
{
	slock_t		mutex;
	/* assignment: the launcher lock */
	bool		in_use;
	Oid			dboid;
	char		dbname[NAMEDATALEN];
	int			kind;			/* KMS_WORKER_AUDIT, KMS_WORKER_ROTATION */
	bool		launched;		/* registered, not yet seen stopped */
	bool		release_requested;	/* a command needs the database alone */
	/* status: mutex */
	int			pid;
	char		state[32];
	TimestampTz started;
	TimestampTz last_wake;
	TimestampTz next_wake;
	TimestampTz last_error_time;
	char		last_error[256];
	uint64		restarts;
	Latch	   *latch;			/* the worker's latch, to wake it */
	TimestampTz next_due;		/* earliest rotation or deletion due */
	char		job[32];		/* the job running now, "" when none */
	TimestampTz job_started;
	KmsWorkerExit exit_reason;
	bool		found_extension;	/* a round found pg_kms installed */
} KmsWorkerSlot;

/* A database a command needs alone (CREATE DATABASE ... TEMPLATE, DROP) */
#define KMS_MAX_HOLDS	16
typedef struct KmsWorkerHold
{
	Oid			dboid;			/* InvalidOid: free */
	int			holder_pid;
	uint32		holder_lxid;	/* held until this transaction ends */
} KmsWorkerHold;

#define KMS_MAX_NUDGES	16

/* A database not served for lack of slots (for kms_worker_status()) */
#define KMS_MAX_UNSERVED	64
typedef struct KmsWorkerUnserved
{
	Oid			dboid;
	int			kinds;			/* 1 << kind of each worker it lacks */
} KmsWorkerUnserved;

typedef struct KmsLauncherShared
{
	LWLock	   *lock;
	int			nslots;
	/* the launcher (lock) */
	int			launcher_pid;
	Latch	   *launcher_latch;
	TimestampTz launcher_started;
	TimestampTz launcher_last_wake;
	char		launcher_state[32];
	/* requests (lock) */
	KmsWorkerHold holds[KMS_MAX_HOLDS];
	Oid			nudges[KMS_MAX_NUDGES];
	int			nnudges;
	bool		nudge_all;
	/* databases not served, as of the launcher's last pass (lock) */
	int			nunserved;
	KmsWorkerUnserved unserved[KMS_MAX_UNSERVED];
	KmsWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} KmsLauncherShared;

extern KmsLauncherShared *kmsLauncher;
extern int	kms_max_workers;		/* pg_kms.max_workers */
extern bool kms_database_set;		/* pg_kms.database given (deprecated) */

/* launcher.c */
extern void KmsWorkerNudge(Oid dboid);	/* have the launcher look at dboid now */
extern KmsWorkerSlot *KmsWorkerFindSlot(Oid dboid, int kind);	/* lock held */
extern const char *KmsWorkerKindName(int kind);
extern const char *KmsWorkerKindBgwName(int kind);
extern void KmsWorkerWakeLauncher(void);
extern bool KmsWorkerNotServed(Oid dboid, int kind);	/* lock held */

/* worker.c */
extern void KmsWorkerSnapshot(Oid dboid, int kind, KmsWorkerSlot *out);

#endif							/* PG_KMS_WORKER_INTERNAL_H */
