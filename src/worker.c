/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The pg_kms background worker.
 *
 * One worker per cluster, registered in _PG_init when pg_kms is preloaded.
 * It starts once the server is consistent (so it also runs on a hot
 * standby), connects to pg_kms.database as the bootstrap superuser, and
 * loops: wake up (latch or pg_kms.worker_naptime), and if the server is a
 * primary and pg_kms is installed in that database, run each job of
 * kms_worker_jobs[] in its own transaction until none has more to do.  On a
 * standby it writes nothing and stays up; after promotion the next wake-up
 * finds RecoveryInProgress() false and starts writing.
 *
 * Errors: a job's error is recorded in shared memory (kms_worker_status()
 * shows it), then re-thrown, which ends the worker with exit code 1; the
 * postmaster starts it again after bgw_restart_time.  SIGTERM ends it
 * cleanly with exit code 0 (not restarted until the next server start, as
 * for any background worker).  SIGHUP reloads the configuration.
 *
 * Adding a job: write a bool run(void) doing one bounded unit of work with
 * SPI and add a line to kms_worker_jobs[].
 *
 * Locking: the status struct is guarded by its spinlock `mutex`.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit.h"
#include "rotation.h"
#include "worker.h"

char	   *kms_worker_database = NULL;
int			kms_worker_naptime = 10;
bool		kms_rotation_jobs = true;

/*
 * The rotation jobs can be paused (pg_kms.rotation_jobs = off) without
 * stopping the audit drain; kms_rotation_run_job() still runs them by hand.
 */
static bool
KmsWorkerSecretRotation(void)
{
	return kms_rotation_jobs && KmsRotationSecretsJob();
}

static bool
KmsWorkerKeyRotation(void)
{
	return kms_rotation_jobs && KmsRotationKeysJob();
}

static bool
KmsWorkerDeletion(void)
{
	return kms_rotation_jobs && KmsRotationDeletionJob();
}

static const KmsWorkerJob kms_worker_jobs[] = {
	{"audit drain", KmsAuditDrain, KmsAuditDrainCommitted, KmsAuditDrainAborted, true},
	{"audit retention", KmsAuditPurge, NULL, NULL, true},
	{"secret rotation", KmsWorkerSecretRotation, KmsRotationSecretsCommitted, NULL, true},
	{"key rotation", KmsWorkerKeyRotation, NULL, NULL, true},
	{"deletion", KmsWorkerDeletion, NULL, NULL, true},
};

typedef struct KmsWorkerStatus
{
	slock_t		mutex;
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
} KmsWorkerStatus;

static KmsWorkerStatus *kmsWorker = NULL;

static void KmsWorkerNoteNextDue(void);

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static volatile sig_atomic_t got_sigterm = false;

/* ----------------------------------------------------------------
 * Shared status
 * ----------------------------------------------------------------
 */
static void
kms_worker_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(KmsWorkerStatus)));
}

static void
kms_worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	kmsWorker = ShmemInitStruct("pg_kms worker status", sizeof(KmsWorkerStatus), &found);
	if (!found)
	{
		memset(kmsWorker, 0, sizeof(KmsWorkerStatus));
		SpinLockInit(&kmsWorker->mutex);
		strlcpy(kmsWorker->state, "not started", sizeof(kmsWorker->state));
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
KmsWorkerSetState(const char *state)
{
	SpinLockAcquire(&kmsWorker->mutex);
	strlcpy(kmsWorker->state, state, sizeof(kmsWorker->state));
	SpinLockRelease(&kmsWorker->mutex);
	pgstat_report_activity(STATE_IDLE, state);
}

/* ----------------------------------------------------------------
 * Setup, from _PG_init
 * ----------------------------------------------------------------
 */
void
KmsWorkerInit(void)
{
	BackgroundWorker bgw;

	DefineCustomStringVariable("pg_kms.database",
							   "Sets the database the pg_kms worker connects to.",
							   "The audit trail of the whole cluster is kept in kms.audit of this database.",
							   &kms_worker_database,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_kms.rotation_jobs",
							 "Runs due secret rotations, key rotations and deletions in the pg_kms worker.",
							 "Off pauses them cluster-wide (the audit drain goes on); kms_rotation_run_job() still runs them by hand.",
							 &kms_rotation_jobs,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.worker_naptime",
							"Sets how long the pg_kms worker sleeps between rounds.",
							"The worker also wakes up when the audit queue is half full.",
							&kms_worker_naptime,
							10, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kms_worker_shmem_request;
#else
	kms_worker_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kms_worker_shmem_startup;

	if (IsBinaryUpgrade)
		return;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_ConsistentState;
	bgw.bgw_restart_time = 5;
	strlcpy(bgw.bgw_library_name, "pg_kms", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "KmsWorkerMain", BGW_MAXLEN);
	strlcpy(bgw.bgw_name, "pg_kms worker", BGW_MAXLEN);
	strlcpy(bgw.bgw_type, "pg_kms worker", BGW_MAXLEN);
	bgw.bgw_main_arg = (Datum) 0;
	bgw.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&bgw);
}

/* ----------------------------------------------------------------
 * The worker
 * ----------------------------------------------------------------
 */
static void
KmsWorkerSigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
KmsWorkerAtExit(int code, Datum arg)
{
	KmsAuditSetConsumer(NULL, false);
	SpinLockAcquire(&kmsWorker->mutex);
	kmsWorker->pid = 0;
	kmsWorker->latch = NULL;
	if (code == 0)
		strlcpy(kmsWorker->state, "stopped", sizeof(kmsWorker->state));
	else
		strlcpy(kmsWorker->state, "restarting after error", sizeof(kmsWorker->state));
	SpinLockRelease(&kmsWorker->mutex);
}

/*
 * Run one job in its own transaction.  An error is recorded and re-thrown:
 * with no handler above, it ends the worker with exit code 1.
 */
static bool
KmsWorkerRunJob(const KmsWorkerJob *job)
{
	bool		more = false;
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, job->name);

		more = job->run();

		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (job->committed)
			job->committed();
		pgstat_report_stat(false);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (job->aborted)
			job->aborted();
		SpinLockAcquire(&kmsWorker->mutex);
		snprintf(kmsWorker->last_error, sizeof(kmsWorker->last_error), "%s: %s",
				 job->name, edata->message ? edata->message : "unknown error");
		kmsWorker->last_error_time = GetCurrentTimestamp();
		SpinLockRelease(&kmsWorker->mutex);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return more;
}

/* Is pg_kms installed in our database?  (Its own short transaction.) */
static bool
KmsWorkerExtensionInstalled(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("pg_kms", true));
	CommitTransactionCommand();
	return installed;
}

/* One round: every job until none has more to do. */
static void
KmsWorkerRound(void)
{
	static bool said_missing = false;
	bool		standby = RecoveryInProgress();
	bool		more;

	if (!standby && !KmsWorkerExtensionInstalled())
	{
		if (!said_missing)
			ereport(LOG,
					(errmsg("pg_kms worker: extension pg_kms is not installed in database \"%s\"; waiting",
							kms_worker_database),
					 errhint("Run CREATE EXTENSION pg_kms in database \"%s\", or set pg_kms.database.",
							 kms_worker_database)));
		said_missing = true;
		KmsAuditSetConsumer(MyLatch, false);
		KmsWorkerSetState("waiting for extension");
		return;
	}
	said_missing = false;
	if (standby)
	{
		/* no writes here; the queue waits for a promotion */
		KmsAuditSetConsumer(MyLatch, false);
		KmsWorkerSetState("standby");
		return;
	}
	KmsAuditSetConsumer(MyLatch, true);
	KmsWorkerSetState("running");
	do
	{
		more = false;
		for (int i = 0; i < lengthof(kms_worker_jobs); i++)
		{
			const KmsWorkerJob *job = &kms_worker_jobs[i];

			if (got_sigterm)
				return;
			CHECK_FOR_INTERRUPTS();
			if (job->primary_only && RecoveryInProgress())
				continue;
			if (KmsWorkerRunJob(job))
				more = true;
		}
	} while (more);
	KmsWorkerNoteNextDue();
}

/* Record when the next rotation or deletion is due (for the sleep and status). */
static void
KmsWorkerNoteNextDue(void)
{
	TimestampTz due;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	due = KmsRotationNextDue();
	PopActiveSnapshot();
	CommitTransactionCommand();
	SpinLockAcquire(&kmsWorker->mutex);
	kmsWorker->next_due = due;
	SpinLockRelease(&kmsWorker->mutex);
}

/*
 * Wake the worker now (a rotation was requested).  Safe from any backend;
 * a no-op when the worker is not running.
 */
void
KmsWorkerWake(void)
{
	Latch	   *latch;

	if (kmsWorker == NULL)
		return;
	SpinLockAcquire(&kmsWorker->mutex);
	latch = kmsWorker->latch;
	SpinLockRelease(&kmsWorker->mutex);
	if (latch)
		SetLatch(latch);
}

void
KmsWorkerMain(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, KmsWorkerSigterm);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&kmsWorker->mutex);
	kmsWorker->pid = MyProcPid;
	kmsWorker->started = GetCurrentTimestamp();
	kmsWorker->last_wake = 0;
	kmsWorker->next_wake = 0;
	kmsWorker->restarts++;
	kmsWorker->latch = MyLatch;
	kmsWorker->next_due = 0;
	strlcpy(kmsWorker->state, "starting", sizeof(kmsWorker->state));
	SpinLockRelease(&kmsWorker->mutex);
	before_shmem_exit(KmsWorkerAtExit, (Datum) 0);

	BackgroundWorkerInitializeConnection(kms_worker_database, NULL, 0);
	pgstat_report_appname("pg_kms worker");
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "pg_kms worker", PGC_SUSET, PGC_S_OVERRIDE);

	ereport(LOG,
			(errmsg("pg_kms worker started in database \"%s\"", kms_worker_database)));

	for (;;)
	{
		TimestampTz now;

		if (got_sigterm)
			break;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		SpinLockAcquire(&kmsWorker->mutex);
		kmsWorker->last_wake = now;
		SpinLockRelease(&kmsWorker->mutex);

		KmsWorkerRound();
		if (got_sigterm)
			break;

		now = GetCurrentTimestamp();
		{
			long		sleep_ms = kms_worker_naptime * 1000L;
			TimestampTz due;

			SpinLockAcquire(&kmsWorker->mutex);
			due = kmsWorker->next_due;
			/* wake for what is due before the naptime ends (but not in a loop) */
			if (due != 0 && kms_rotation_jobs && due > now &&
				due < TimestampTzPlusMilliseconds(now, sleep_ms))
				sleep_ms = Max(TimestampDifferenceMilliseconds(now, due), 100);
			kmsWorker->next_wake = TimestampTzPlusMilliseconds(now, sleep_ms);
			SpinLockRelease(&kmsWorker->mutex);

			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
		}
		ResetLatch(MyLatch);
	}

	ereport(LOG, (errmsg("pg_kms worker stopping")));
	proc_exit(0);
}

/* ----------------------------------------------------------------
 * SQL: kms_worker_status()
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(kms_worker_status);
Datum
kms_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[10];
	bool		nulls[10] = {0};
	KmsWorkerStatus st;

	if (kmsWorker == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("KMSInternalException: pg_kms is not loaded via shared_preload_libraries"),
				 errhint("Add pg_kms to shared_preload_libraries and restart the server.")));
	if (!KmsIsAdmin())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED),
				 errmsg("AccessDeniedException: only kms_admin members may read the worker status")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	SpinLockAcquire(&kmsWorker->mutex);
	memcpy(&st, kmsWorker, sizeof(st));
	SpinLockRelease(&kmsWorker->mutex);

	values[0] = CStringGetTextDatum(st.state);
	if (st.pid != 0)
		values[1] = Int32GetDatum(st.pid);
	else
		nulls[1] = true;
#define TS_OR_NULL(i, t) do { if ((t) != 0) values[i] = TimestampTzGetDatum(t); else nulls[i] = true; } while (0)
	TS_OR_NULL(2, st.started);
	TS_OR_NULL(3, st.last_wake);
	TS_OR_NULL(4, st.next_wake);
	if (st.last_error[0])
		values[5] = CStringGetTextDatum(st.last_error);
	else
		nulls[5] = true;
	values[6] = Int32GetDatum((int32) KmsAuditQueueLength());
	values[7] = Int64GetDatum((int64) KmsAuditWritten());
	values[8] = Int64GetDatum((int64) KmsAuditOnlyLogged());
	TS_OR_NULL(9, st.next_due);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
