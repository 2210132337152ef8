/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database pg_kms workers: in each database where pg_kms is
 *	  installed, one drains and retains that database's audit trail, one
 *	  runs its secret rotations, key rotations and deletion windows.
 *
 * Two workers per database, started by the launcher (launcher.c), so that
 * rotation work, which runs code and logins a secret chooses, can never
 * hold up the audit drain (a full queue makes every audited call wait);
 * two processes per served database is the price, counted against
 * pg_kms.max_workers.  Each connects to its database (bgw_main_arg is its
 * slot in the launcher's table) as the bootstrap superuser, and loops:
 * wake up (its own latch, or pg_kms.worker_naptime), and if the server is
 * a primary, run each of its jobs in its own transaction until none has
 * more to do.  If pg_kms is not installed in its database (never was, or
 * DROP EXTENSION), it exits cleanly saying so, and the launcher looks at
 * that database again later (at once after CREATE EXTENSION pg_kms).  On
 * a standby it writes nothing and stays up; after promotion the next
 * wake-up finds RecoveryInProgress() false and starts writing.  Producers
 * wake the audit worker of their database when the queue passes half
 * full; KmsWorkerWake() wakes the rotation worker of the caller's
 * database.
 *
 * Errors: a job's error is recorded in the slot (kms_worker_status() shows
 * it), then re-thrown, which ends that worker with exit code 1; the
 * launcher starts it again after a backoff (5 s, doubling up to 5 min).
 * SIGTERM ends it cleanly (exit code 0): between jobs at once, and during a
 * job by cancelling the job (its transaction aborts; a second SIGTERM ends
 * the process at the next interrupt check).  A worker stopped so is not
 * started again until the next server start or CREATE/DROP EXTENSION in its
 * database, unless a command asked for its database (release_requested:
 * CREATE DATABASE ... TEMPLATE, DROP DATABASE), in which case the launcher
 * starts it again once that command is over.  SIGHUP reloads the
 * configuration.
 *
 * Adding a job: write a bool run(void) doing one bounded unit of work with
 * SPI and add a line to the job table of the worker that should run it.
 *
 * Locking: see worker_internal.h (the slot's spinlock for its status).
 *
 * IDENTIFICATION
 *	  src/worker/worker.c
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
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "audit/audit.h"
#include "worker/worker_internal.h"

char	   *kms_worker_database = NULL;
int			kms_worker_naptime = 10;
int			kms_max_workers = 6;
bool		kms_database_set = false;

/* The kinds of worker (also the rows of kms_worker_status()). */
typedef struct KmsWorkerKind
{
	const char *name;			/* kms_worker_status().worker */
	const char *bgw_name;		/* bgw_name, bgw_type, application_name */
	bool		drains_audit;	/* the audit queue's consumer */
	bool		wakes_for_due;	/* sleeps no longer than next_due */
} KmsWorkerKind;

static const KmsWorkerKind kms_worker_kinds[KMS_NWORKERS] = {
	{"audit", "pg_kms audit worker", true, false},
	{"rotation", "pg_kms rotation worker", false, true},
};

/*
 * The jobs of each worker, registered by _PG_init (KmsWorkerRegisterJob),
 * run in registration order; and where the rotation worker learns when work
 * is due and whether it is paused (KmsWorkerSetDueSource).
 */
#define KMS_WORKER_MAX_JOBS 8
static const KmsWorkerJob *kms_worker_jobs[KMS_NWORKERS][KMS_WORKER_MAX_JOBS];
static int	kms_worker_njobs[KMS_NWORKERS];
static TimestampTz (*kms_due_next) (void) = NULL;
static bool (*kms_due_enabled) (void) = NULL;

void
KmsWorkerRegisterJob(int worker, const KmsWorkerJob *job)
{
	Assert(worker >= 0 && worker < KMS_NWORKERS);
	Assert(kms_worker_njobs[worker] < KMS_WORKER_MAX_JOBS);
	kms_worker_jobs[worker][kms_worker_njobs[worker]++] = job;
}

void
KmsWorkerSetDueSource(TimestampTz (*next_due) (void), bool (*enabled) (void))
{
	kms_due_next = next_due;
	kms_due_enabled = enabled;
}

/* Is the due work (rotation) switched on?  pg_kms.rotation_jobs */
static bool
KmsWorkerDueEnabled(void)
{
	return kms_due_enabled == NULL || kms_due_enabled();
}

/* In a worker: which one this process is, and its status. */
static int	MyKmsWhich = -1;		/* the kind */
static const KmsWorkerKind *MyKmsKind = NULL;
static KmsWorkerSlot *MyKmsStatus = NULL;
static char MyKmsDbName[NAMEDATALEN];

static void KmsWorkerNoteNextDue(void);

static volatile sig_atomic_t got_sigterm = false;
static volatile sig_atomic_t in_job = false;

/*
 * A job that ignores the cancel SIGTERM asks for (a custom rotation
 * strategy can catch query_canceled) would keep the worker, and a fast
 * shutdown, waiting: while a job runs a timer ticks every second, and once
 * KMS_WORKER_STOP_GRACE ticks have passed since SIGTERM the process ends at
 * its next interrupt check, as die() would.
 */
#define KMS_WORKER_STOP_GRACE 5
static TimeoutId kms_job_tick_timeout;
static volatile sig_atomic_t ticks_since_sigterm = 0;

const char *
KmsWorkerKindName(int kind)
{
	return kms_worker_kinds[kind].name;
}

const char *
KmsWorkerKindBgwName(int kind)
{
	return kms_worker_kinds[kind].bgw_name;
}

static void
KmsWorkerSetState(const char *state)
{
	SpinLockAcquire(&MyKmsStatus->mutex);
	strlcpy(MyKmsStatus->state, state, sizeof(MyKmsStatus->state));
	SpinLockRelease(&MyKmsStatus->mutex);
	pgstat_report_activity(STATE_IDLE, state);
}

static void
KmsWorkerSetJob(const char *job)
{
	SpinLockAcquire(&MyKmsStatus->mutex);
	strlcpy(MyKmsStatus->job, job ? job : "", sizeof(MyKmsStatus->job));
	MyKmsStatus->job_started = job ? GetCurrentTimestamp() : 0;
	SpinLockRelease(&MyKmsStatus->mutex);
}

/* ----------------------------------------------------------------
 * Setup, from _PG_init
 * ----------------------------------------------------------------
 */
/* pg_kms.database is deprecated: note whether a configuration sets it. */
static bool
KmsWorkerCheckDatabase(char **newval, void **extra, GucSource source)
{
	if (source > PGC_S_DEFAULT)
		kms_database_set = true;
	return true;
}

void
KmsWorkerDefineGucs(void)
{
	DefineCustomStringVariable("pg_kms.database",
							   "Deprecated: pg_kms serves every database where it is installed.",
							   "Ignored since pg_kms 1.2 (a WARNING at start says so); each database keeps its own audit trail in kms.audit.",
							   &kms_worker_database,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   KmsWorkerCheckDatabase, NULL, NULL);

	DefineCustomIntVariable("pg_kms.worker_naptime",
							"Sets how long the pg_kms workers sleep between rounds.",
							"The audit worker also wakes up when the audit queue is half full; the rotation worker when a rotation is requested or due.",
							&kms_worker_naptime,
							10, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.max_workers",
							"Sets the most per-database pg_kms workers that run at once.",
							"Each database where pg_kms is installed uses two (audit and rotation); the launcher is one more background worker.",
							&kms_max_workers,
							6, 2, 1024,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	/* each database's audit worker consumes that database's events */
	KmsAuditSetMaxConsumers(kms_max_workers);

	if (kms_max_workers + 1 > max_worker_processes)
		ereport(WARNING,
				(errmsg("pg_kms.max_workers (%d) and the pg_kms launcher need more background workers than max_worker_processes (%d) allows",
						kms_max_workers, max_worker_processes),
				 errdetail("pg_kms serves at most %d databases until max_worker_processes is raised (two workers each, and the launcher).",
						   Max(max_worker_processes - 1, 0) / 2),
				 errhint("Set max_worker_processes to at least %d (plus what parallel query and other extensions need), or lower pg_kms.max_workers.",
						 kms_max_workers + 1)));
}

/* ----------------------------------------------------------------
 * The workers
 * ----------------------------------------------------------------
 */

/* The timer of a running job (see KMS_WORKER_STOP_GRACE). */
static void
KmsWorkerJobTick(void)
{
	if (in_job && got_sigterm && !proc_exit_inprogress &&
		++ticks_since_sigterm >= KMS_WORKER_STOP_GRACE)
	{
		ProcDiePending = true;
		InterruptPending = true;
		SetLatch(MyLatch);
	}
}

/*
 * SIGTERM: stop after the current job.  A job may wait on something that
 * never ends (a custom rotation strategy can sleep), so a job in progress
 * is cancelled as a query cancel would (its transaction aborts and the
 * worker exits cleanly); if a job ignores that, a second SIGTERM or
 * KMS_WORKER_STOP_GRACE seconds end the process at its next interrupt
 * check, as die() would (exit code 1).
 */
static void
KmsWorkerSigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	if (in_job && !proc_exit_inprogress)
	{
		if (got_sigterm)
			ProcDiePending = true;
		else
			QueryCancelPending = true;
		InterruptPending = true;
	}
	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * Say why we stop, for the launcher and kms_worker_status().  Exit code 0
 * after SIGTERM: "released" if a command asked for our database (the
 * launcher starts us again once it is over), else "stopped".
 */
static void
KmsWorkerAtExit(int code, Datum arg)
{
	bool		released;

	if (MyKmsKind->drains_audit)
		KmsAuditSetConsumer(NULL, false);
	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	released = MyKmsStatus->release_requested;
	LWLockRelease(kmsLauncher->lock);
	SpinLockAcquire(&MyKmsStatus->mutex);
	MyKmsStatus->pid = 0;
	MyKmsStatus->latch = NULL;
	MyKmsStatus->job[0] = '\0';
	MyKmsStatus->job_started = 0;
	if (code != 0)
	{
		MyKmsStatus->exit_reason = KMS_EXIT_ERROR;
		strlcpy(MyKmsStatus->state, "restarting after error", sizeof(MyKmsStatus->state));
	}
	else if (MyKmsStatus->exit_reason == KMS_EXIT_ABSENT)
		strlcpy(MyKmsStatus->state, "not installed", sizeof(MyKmsStatus->state));
	else if (released)
	{
		MyKmsStatus->exit_reason = KMS_EXIT_RELEASED;
		strlcpy(MyKmsStatus->state, "released", sizeof(MyKmsStatus->state));
	}
	else
	{
		MyKmsStatus->exit_reason = KMS_EXIT_STOPPED;
		strlcpy(MyKmsStatus->state, "stopped", sizeof(MyKmsStatus->state));
	}
	SpinLockRelease(&MyKmsStatus->mutex);
	KmsWorkerWakeLauncher();
}

/*
 * Run one job in its own transaction.  An error is recorded and re-thrown:
 * with no handler above, it ends the worker with exit code 1.  An error
 * after SIGTERM (the cancel KmsWorkerSigterm asked for) aborts the
 * transaction and returns, so that the worker exits cleanly.
 */
static bool
KmsWorkerRunJob(const KmsWorkerJob *job)
{
	volatile bool more = false;
	MemoryContext oldcxt = CurrentMemoryContext;

	KmsWorkerSetJob(job->name);
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, job->name);

		/* only the job itself is cancelled by SIGTERM, not the commit */
		enable_timeout_every(kms_job_tick_timeout,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000), 1000);
		in_job = true;
		if (!got_sigterm)
			more = job->run();
		in_job = false;
		disable_timeout(kms_job_tick_timeout, false);
		QueryCancelPending = false;

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

		in_job = false;
		disable_timeout(kms_job_tick_timeout, false);
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (job->aborted)
			job->aborted();
		if (got_sigterm && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		{
			FlushErrorState();
			AbortCurrentTransaction();
			KmsWorkerSetJob(NULL);
			ereport(LOG,
					(errmsg("%s: job \"%s\" cancelled by SIGTERM", MyKmsKind->bgw_name, job->name)));
			pgstat_report_activity(STATE_IDLE, NULL);
			return false;
		}
		SpinLockAcquire(&MyKmsStatus->mutex);
		snprintf(MyKmsStatus->last_error, sizeof(MyKmsStatus->last_error), "%s: %s",
				 job->name, edata->message ? edata->message : "unknown error");
		MyKmsStatus->last_error_time = GetCurrentTimestamp();
		SpinLockRelease(&MyKmsStatus->mutex);
		PG_RE_THROW();
	}
	PG_END_TRY();
	KmsWorkerSetJob(NULL);
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

/*
 * pg_kms is not installed in our database (never was, or DROP EXTENSION):
 * say so and exit cleanly; the launcher looks at the database again later,
 * at once after CREATE EXTENSION pg_kms.  The audit worker first discards
 * the events of this database queued before it looked (their rows have no
 * table to go to; they are in the server log).
 */
static void
KmsWorkerNotInstalled(uint64 queued_before)
{
	if (MyKmsKind->drains_audit)
	{
		uint32		n = KmsAuditDiscardDatabase(MyDatabaseId, queued_before);

		if (n > 0)
			ereport(LOG,
					(errmsg("%s: pg_kms is not installed in database \"%s\"; %u queued audit events of that database are in the server log only",
							MyKmsKind->bgw_name, MyKmsDbName, n)));
	}
	ereport(DEBUG1,
			(errmsg("%s: pg_kms is not installed in database \"%s\"; exiting",
					MyKmsKind->bgw_name, MyKmsDbName)));
	SpinLockAcquire(&MyKmsStatus->mutex);
	MyKmsStatus->exit_reason = KMS_EXIT_ABSENT;
	SpinLockRelease(&MyKmsStatus->mutex);
	proc_exit(0);
}

/* One round: every job of this worker until none has more to do. */
static void
KmsWorkerRound(void)
{
	bool		standby = RecoveryInProgress();
	bool		more;
	uint64		queued_before = KmsAuditQueueHead();

	if (!KmsWorkerExtensionInstalled())
		KmsWorkerNotInstalled(queued_before);
	SpinLockAcquire(&MyKmsStatus->mutex);
	more = !MyKmsStatus->found_extension;
	MyKmsStatus->found_extension = true;
	SpinLockRelease(&MyKmsStatus->mutex);
	if (more)
	{
		ereport(LOG,
				(errmsg("%s started in database \"%s\"", MyKmsKind->bgw_name, MyKmsDbName)));
		KmsWorkerWakeLauncher();	/* the audit worker found it: start the other */
	}
	if (standby)
	{
		/* no writes here; the queue and the rotations wait for a promotion */
		if (MyKmsKind->drains_audit)
			KmsAuditSetConsumer(MyLatch, false);
		KmsWorkerSetState("standby");
		return;
	}
	if (MyKmsKind->drains_audit)
		KmsAuditSetConsumer(MyLatch, true);
	if (MyKmsKind->wakes_for_due && !KmsWorkerDueEnabled())
	{
		/* paused: nothing to run, but next_due stays true for the status */
		KmsWorkerSetState("paused");
		KmsWorkerNoteNextDue();
		return;
	}
	KmsWorkerSetState("running");
	do
	{
		more = false;
		for (int i = 0; i < kms_worker_njobs[MyKmsWhich]; i++)
		{
			const KmsWorkerJob *job = kms_worker_jobs[MyKmsWhich][i];

			if (got_sigterm)
				return;
			CHECK_FOR_INTERRUPTS();
			if (job->primary_only && RecoveryInProgress())
				continue;
			if (KmsWorkerRunJob(job))
				more = true;
		}
		if (ConfigReloadPending)
		{
			/* a long round still sees pg_kms.rotation_jobs = off soon */
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	} while (more && !got_sigterm);
	if (MyKmsKind->wakes_for_due && !got_sigterm)
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
	due = kms_due_next ? kms_due_next() : 0;
	PopActiveSnapshot();
	CommitTransactionCommand();
	SpinLockAcquire(&MyKmsStatus->mutex);
	MyKmsStatus->next_due = due;
	SpinLockRelease(&MyKmsStatus->mutex);
}

/*
 * Wake the rotation worker of the caller's database now (a rotation was
 * requested).  Safe from any backend; if that database has no rotation
 * worker yet, the launcher is asked to look at it.
 */
void
KmsWorkerWake(void)
{
	KmsWorkerSlot *st;
	Latch	   *latch = NULL;

	if (kmsLauncher == NULL || !OidIsValid(MyDatabaseId))
		return;
	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	st = KmsWorkerFindSlot(MyDatabaseId, KMS_WORKER_ROTATION);
	if (st != NULL)
	{
		SpinLockAcquire(&st->mutex);
		latch = st->latch;
		SpinLockRelease(&st->mutex);
	}
	LWLockRelease(kmsLauncher->lock);
	if (latch)
		SetLatch(latch);
	else
		KmsWorkerNudge(MyDatabaseId);
}

void
KmsWorkerMain(Datum main_arg)
{
	int			slot = DatumGetInt32(main_arg);
	Oid			dboid;

	if (kmsLauncher == NULL || slot < 0 || slot >= kmsLauncher->nslots)
		elog(FATAL, "pg_kms worker: unknown slot %d", slot);
	MyKmsStatus = &kmsLauncher->slots[slot];
	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	dboid = MyKmsStatus->dboid;
	MyKmsWhich = MyKmsStatus->kind;
	strlcpy(MyKmsDbName, MyKmsStatus->dbname, sizeof(MyKmsDbName));
	LWLockRelease(kmsLauncher->lock);
	if (MyKmsWhich < 0 || MyKmsWhich >= KMS_NWORKERS || !OidIsValid(dboid))
		elog(FATAL, "pg_kms worker: slot %d is not assigned", slot);
	MyKmsKind = &kms_worker_kinds[MyKmsWhich];

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, KmsWorkerSigterm);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&MyKmsStatus->mutex);
	MyKmsStatus->pid = MyProcPid;
	MyKmsStatus->started = GetCurrentTimestamp();
	MyKmsStatus->last_wake = 0;
	MyKmsStatus->next_wake = 0;
	MyKmsStatus->restarts++;
	MyKmsStatus->latch = MyLatch;
	MyKmsStatus->next_due = 0;
	MyKmsStatus->job[0] = '\0';
	MyKmsStatus->job_started = 0;
	MyKmsStatus->exit_reason = KMS_EXIT_NONE;
	MyKmsStatus->found_extension = false;
	strlcpy(MyKmsStatus->state, "starting", sizeof(MyKmsStatus->state));
	SpinLockRelease(&MyKmsStatus->mutex);
	before_shmem_exit(KmsWorkerAtExit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	kms_job_tick_timeout = RegisterTimeout(USER_TIMEOUT, KmsWorkerJobTick);
	pgstat_report_appname(MyKmsKind->bgw_name);
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", MyKmsKind->bgw_name, PGC_SUSET, PGC_S_OVERRIDE);

	for (;;)
	{
		TimestampTz now;
		long		sleep_ms;

		if (got_sigterm)
			break;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		SpinLockAcquire(&MyKmsStatus->mutex);
		MyKmsStatus->last_wake = now;
		SpinLockRelease(&MyKmsStatus->mutex);

		KmsWorkerRound();
		if (got_sigterm)
			break;

		now = GetCurrentTimestamp();
		sleep_ms = kms_worker_naptime * 1000L;
		SpinLockAcquire(&MyKmsStatus->mutex);
		if (MyKmsKind->wakes_for_due)
		{
			TimestampTz due = MyKmsStatus->next_due;

			/* wake for what is due before the naptime ends (but not in a loop) */
			if (due != 0 && KmsWorkerDueEnabled() && due > now &&
				due < TimestampTzPlusMilliseconds(now, sleep_ms))
				sleep_ms = Max(TimestampDifferenceMilliseconds(now, due), 100);
		}
		MyKmsStatus->next_wake = TimestampTzPlusMilliseconds(now, sleep_ms);
		SpinLockRelease(&MyKmsStatus->mutex);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	ereport(LOG, (errmsg("%s stopping", MyKmsKind->bgw_name)));
	proc_exit(0);
}

/* ----------------------------------------------------------------
 * SQL: kms_worker_status()
 * ----------------------------------------------------------------
 */

/* Columns of pg_kms 1.0's kms_worker_status(), one row. */
#define KMS_STATUS_COLS_1_0 10
#define KMS_STATUS_COLS		13

/*
 * A copy of the status of dboid's worker of this kind; a row saying "not
 * started" if the launcher has not (or not yet) given it a slot.
 */
void
KmsWorkerSnapshot(Oid dboid, int kind, KmsWorkerSlot *out)
{
	KmsWorkerSlot *st;

	memset(out, 0, sizeof(*out));
	strlcpy(out->state, "not started", sizeof(out->state));
	out->kind = kind;
	out->dboid = dboid;
	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	st = KmsWorkerFindSlot(dboid, kind);
	if (st != NULL)
	{
		SpinLockAcquire(&st->mutex);
		memcpy(out, st, sizeof(*out));
		SpinLockRelease(&st->mutex);
	}
	else if (KmsWorkerNotServed(dboid, kind))
		strlcpy(out->state, "not served", sizeof(out->state));	/* all slots in use */
	LWLockRelease(kmsLauncher->lock);
}

static void
KmsWorkerStatusRow(int which, bool legacy, Datum *values, bool *nulls)
{
	KmsWorkerSlot st;

	KmsWorkerSnapshot(MyDatabaseId, which, &st);

	memset(nulls, 0, KMS_STATUS_COLS * sizeof(bool));
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
	/* the (shared) audit queue's figures on the row of the worker that drains */
	if (kms_worker_kinds[which].drains_audit || legacy)
	{
		values[6] = Int32GetDatum((int32) KmsAuditQueueLength());
		values[7] = Int64GetDatum((int64) KmsAuditWritten());
		values[8] = Int64GetDatum((int64) KmsAuditOnlyLogged());
	}
	else
		nulls[6] = nulls[7] = nulls[8] = true;
	if (legacy)
	{
		KmsWorkerSlot rot;

		/* 1.0's one row: the audit worker, and when rotation work is due */
		KmsWorkerSnapshot(MyDatabaseId, KMS_WORKER_ROTATION, &rot);
		TS_OR_NULL(9, rot.next_due);
		return;
	}
	if (kms_worker_kinds[which].wakes_for_due)
		TS_OR_NULL(9, st.next_due);
	else
		nulls[9] = true;
	values[10] = CStringGetTextDatum(kms_worker_kinds[which].name);
	if (st.job[0])
		values[11] = CStringGetTextDatum(st.job);
	else
		nulls[11] = true;
	TS_OR_NULL(12, st.job_started);
#undef TS_OR_NULL
}

/*
 * The workers of the caller's database, one row each (kms_worker_status_all()
 * in launcher.c lists every database's).  A database still at pg_kms 1.0
 * declares the function with one row of 10 columns: it gets the audit
 * worker's row, as before the split, until ALTER EXTENSION pg_kms UPDATE.
 */
PG_FUNCTION_INFO_V1(kms_worker_status);
Datum
kms_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[KMS_STATUS_COLS];
	bool		nulls[KMS_STATUS_COLS];
	ReturnSetInfo *rsinfo;

	KmsCheckPreloaded(kmsLauncher != NULL);
	if (!KmsIsAdmin())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: only kms_admin members may read the worker status")));

	if (!fcinfo->flinfo->fn_retset)
	{
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		if (tupdesc->natts != KMS_STATUS_COLS_1_0)
			elog(ERROR, "kms_worker_status: unexpected result type (%d columns)", tupdesc->natts);
		KmsWorkerStatusRow(KMS_WORKER_AUDIT, true, values, nulls);
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (rsinfo->setDesc->natts != KMS_STATUS_COLS)
		elog(ERROR, "kms_worker_status: unexpected result type (%d columns)", rsinfo->setDesc->natts);
	for (int i = 0; i < KMS_NWORKERS; i++)
	{
		KmsWorkerStatusRow(i, false, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * SQL: kms_worker_status_all()
 * ----------------------------------------------------------------
 */
#define KMS_STATUS_ALL_COLS 12

/*
 * Every pg_kms background process of the cluster, for superusers: the
 * launcher (database NULL), then each per-database worker.
 */
PG_FUNCTION_INFO_V1(kms_worker_status_all);
Datum
kms_worker_status_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	Datum		values[KMS_STATUS_ALL_COLS];
	bool		nulls[KMS_STATUS_ALL_COLS];
	KmsWorkerSlot *copy;
	int			n = 0;
	int			lpid;
	TimestampTz lstarted,
				lwake;
	char		lstate[32];

	KmsCheckPreloaded(kmsLauncher != NULL);
	if (!superuser())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: only superusers may read the status of every database's workers"),
				 errhint("Use kms_worker_status() for the workers of the current database.")));

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (rsinfo->setDesc->natts != KMS_STATUS_ALL_COLS)
		elog(ERROR, "kms_worker_status_all: unexpected result type (%d columns)", rsinfo->setDesc->natts);

	copy = palloc(sizeof(KmsWorkerSlot) * kmsLauncher->nslots);
	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	lpid = kmsLauncher->launcher_pid;
	lstarted = kmsLauncher->launcher_started;
	lwake = kmsLauncher->launcher_last_wake;
	strlcpy(lstate, kmsLauncher->launcher_state, sizeof(lstate));
	for (int i = 0; i < kmsLauncher->nslots; i++)
	{
		KmsWorkerSlot *s = &kmsLauncher->slots[i];

		if (!s->in_use)
			continue;
		SpinLockAcquire(&s->mutex);
		memcpy(&copy[n++], s, sizeof(*s));
		SpinLockRelease(&s->mutex);
	}
	LWLockRelease(kmsLauncher->lock);

#define TS_OR_NULL(i, t) do { if ((t) != 0) values[i] = TimestampTzGetDatum(t); else nulls[i] = true; } while (0)
	memset(nulls, 0, sizeof(nulls));
	nulls[0] = true;
	values[1] = CStringGetTextDatum("launcher");
	values[2] = CStringGetTextDatum(lstate);
	if (lpid != 0)
		values[3] = Int32GetDatum(lpid);
	else
		nulls[3] = true;
	TS_OR_NULL(4, lstarted);
	TS_OR_NULL(5, lwake);
	nulls[6] = nulls[7] = nulls[8] = nulls[9] = nulls[10] = nulls[11] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	for (int i = 0; i < n; i++)
	{
		KmsWorkerSlot *s = &copy[i];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(s->dbname);
		values[1] = CStringGetTextDatum(KmsWorkerKindName(s->kind));
		values[2] = CStringGetTextDatum(s->state);
		if (s->pid != 0)
			values[3] = Int32GetDatum(s->pid);
		else
			nulls[3] = true;
		TS_OR_NULL(4, s->started);
		TS_OR_NULL(5, s->last_wake);
		TS_OR_NULL(6, s->next_wake);
		if (s->last_error[0])
			values[7] = CStringGetTextDatum(s->last_error);
		else
			nulls[7] = true;
		TS_OR_NULL(8, s->next_due);
		if (s->job[0])
			values[9] = CStringGetTextDatum(s->job);
		else
			nulls[9] = true;
		TS_OR_NULL(10, s->job_started);
		values[11] = Int64GetDatum((int64) s->restarts);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
#undef TS_OR_NULL
	return (Datum) 0;
}
