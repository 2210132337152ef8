/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The pg_kms launcher: one static background worker, connected to no
 *	  database (it reads only the shared catalog pg_database), that starts
 *	  and stops the per-database workers (worker.c) as TimescaleDB's
 *	  launcher does its schedulers; the slot table in shared memory.  The
 *	  utility-hook part that frees a database for CREATE DATABASE ...
 *	  TEMPLATE and DROP DATABASE is in release.c, the status functions in
 *	  worker.c.
 *
 * Every pg_kms.worker_naptime (sooner when asked) the launcher lists the
 * databases that allow connections.  A database it knows nothing about is
 * probed: its audit worker is started, and exits at once, saying so, if
 * pg_kms is not installed there (the launcher then looks again after 10 s,
 * doubling up to 5 min); if pg_kms is installed the audit worker stays and
 * the launcher starts the database's rotation worker.  CREATE EXTENSION
 * pg_kms and DROP EXTENSION pg_kms (the module's utility hook, and any
 * rotation request in a database without a worker) nudge the launcher:
 * that database is looked at at once and again after 0.25, 0.5, 1, 2, 4,
 * 8 and 16 s, so the command is seen within a second or so of its commit.
 * A database that is gone (DROP DATABASE) loses its slots, and its queued
 * audit events, which are in the server log, are discarded.
 *
 * The audit queue: on a primary, once the shared queue is half full, the
 * launcher discards the queued events of databases that no audit worker
 * will drain soon (not served for lack of slots, worker stopped; at three
 * quarters full also a worker restarting after an error), so that they do
 * not hold the space every other database needs (KmsLauncherUnblockQueue).
 * Producers wake it when the queue fills behind such a database.
 *
 * Restarts: a worker that fails (exit code 1, or no word) is started again
 * after 5 s, doubling up to 5 min while it keeps failing.  A worker ended
 * by SIGTERM is left stopped (as PostgreSQL leaves a static background
 * worker) until the next server start.  A worker asked to leave its
 * database (below) is started again once the command that asked is over.
 *
 * Freeing a database (release.c): a command that needs database d alone
 * records a hold on d until its transaction ends; the launcher starts no
 * worker for a held database, terminates one it registered that has not
 * started yet, and starts d's workers again when the hold ends (the
 * holder's transaction is over: another local transaction id, or the
 * holder gone).
 *
 * The launcher keeps what it knows of each database in local memory; what
 * other processes need (the slots, holds, nudges) is in shared memory.  If
 * the launcher itself fails, the postmaster starts it again after 5 s and
 * it adopts the workers still running.
 *
 * Locking: see worker_internal.h.
 *
 * IDENTIFICATION
 *	  src/worker/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit/audit.h"
#include "worker/worker_internal.h"

KmsLauncherShared *kmsLauncher = NULL;

#define KMS_RESTART_MIN_MS		5000	/* a failed worker: first restart */
#define KMS_RESTART_MAX_MS		300000
#define KMS_PROBE_MIN_MS		10000	/* not installed: look again */
#define KMS_PROBE_MAX_MS		300000
#define KMS_EAGER_FIRST_MS		250		/* after a nudge */
#define KMS_EAGER_FOR_MS		30000
#define KMS_HEALTHY_MS			60000	/* running this long: failures forgotten */
#define KMS_STOPPED_GRACE_MS	1000	/* a stopped worker: its events kept this long */
#define KMS_UNSERVED_GRACE_MS	5000	/* no slot: its events kept this long */

/* ----------------------------------------------------------------
 * Shared memory
 * ----------------------------------------------------------------
 */
static Size
KmsLauncherShmemSize(void)
{
	return add_size(offsetof(KmsLauncherShared, slots),
					mul_size(sizeof(KmsWorkerSlot), kms_max_workers));
}

void
KmsWorkerShmemRequest(void)
{
	RequestAddinShmemSpace(KmsLauncherShmemSize());
	RequestNamedLWLockTranche("pg_kms launcher", 1);
}

void
KmsWorkerShmemStartup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	kmsLauncher = ShmemInitStruct("pg_kms worker status", KmsLauncherShmemSize(), &found);
	if (!found)
	{
		memset(kmsLauncher, 0, KmsLauncherShmemSize());
		kmsLauncher->lock = &(GetNamedLWLockTranche("pg_kms launcher"))->lock;
		kmsLauncher->nslots = kms_max_workers;
		strlcpy(kmsLauncher->launcher_state, "not started", sizeof(kmsLauncher->launcher_state));
		for (int i = 0; i < kmsLauncher->nslots; i++)
			SpinLockInit(&kmsLauncher->slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
KmsWorkerRegisterBgworkers(void)
{
	BackgroundWorker bgw;

	if (IsBinaryUpgrade)
		return;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_ConsistentState;
	bgw.bgw_restart_time = 5;
	strlcpy(bgw.bgw_library_name, "pg_kms", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "KmsLauncherMain", BGW_MAXLEN);
	strlcpy(bgw.bgw_name, "pg_kms launcher", BGW_MAXLEN);
	strlcpy(bgw.bgw_type, "pg_kms launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&bgw);
}

/* The slot of dboid's worker of this kind, or NULL; the lock held. */
KmsWorkerSlot *
KmsWorkerFindSlot(Oid dboid, int kind)
{
	for (int i = 0; i < kmsLauncher->nslots; i++)
	{
		KmsWorkerSlot *s = &kmsLauncher->slots[i];

		if (s->in_use && s->dboid == dboid && s->kind == kind)
			return s;
	}
	return NULL;
}

void
KmsWorkerWakeLauncher(void)
{
	Latch	   *latch;

	if (kmsLauncher == NULL)
		return;
	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	latch = kmsLauncher->launcher_latch;
	LWLockRelease(kmsLauncher->lock);
	if (latch)
		SetLatch(latch);
}

/* ----------------------------------------------------------------
 * The launcher
 * ----------------------------------------------------------------
 */

/* What the launcher knows of a database (local memory). */
typedef struct KmsDbEntry
{
	Oid			dboid;			/* hash key */
	char		name[NAMEDATALEN];
	bool		seen;			/* in the last list of databases */
	TimestampTz next_probe;		/* unserved: when to look again */
	int			probe_backoff_ms;
	TimestampTz eager_until;	/* nudged: look often until then */
	TimestampTz next_eager;
	int			eager_step_ms;
	bool		warned_full;	/* not served: all slots were in use */
	TimestampTz known_since;	/* first listed */
	TimestampTz unserved_since; /* warned_full since */
} KmsDbEntry;

static HTAB *kms_dbs = NULL;
static BackgroundWorkerHandle **kms_handles = NULL;	/* [nslots] */
static int *kms_fails = NULL;
static TimestampTz *kms_restart_at = NULL;
static TimestampTz *kms_stopped_at = NULL;	/* seen stopped by SIGTERM */
static bool kms_warned_register = false;

static volatile sig_atomic_t launcher_sigterm = false;

static void
KmsLauncherSigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	launcher_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
KmsLauncherSetState(const char *state)
{
	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	strlcpy(kmsLauncher->launcher_state, state, sizeof(kmsLauncher->launcher_state));
	LWLockRelease(kmsLauncher->lock);
}

static void
KmsLauncherAtExit(int code, Datum arg)
{
	KmsAuditSetJanitor(NULL);
	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	kmsLauncher->launcher_pid = 0;
	kmsLauncher->launcher_latch = NULL;
	strlcpy(kmsLauncher->launcher_state, code == 0 ? "stopped" : "restarting after error",
			sizeof(kmsLauncher->launcher_state));
	LWLockRelease(kmsLauncher->lock);
}

static bool
KmsLauncherHeld(Oid dboid)
{
	for (int i = 0; i < KMS_MAX_HOLDS; i++)
		if (kmsLauncher->holds[i].dboid == dboid)
			return true;
	return false;
}

/* List the databases that allow connections (the shared catalog). */
static void
KmsLauncherScan(TimestampTz now)
{
	HASH_SEQ_STATUS hs;
	KmsDbEntry *e;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	hash_seq_init(&hs, kms_dbs);
	while ((e = hash_seq_search(&hs)) != NULL)
		e->seen = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		bool		found;

		if (!db->datallowconn)
			continue;
#ifdef DATCONNLIMIT_INVALID_DB
		if (database_is_invalid_form(db))
			continue;			/* partway through DROP DATABASE */
#endif
		e = hash_search(kms_dbs, &db->oid, HASH_ENTER, &found);
		if (!found)
		{
			memset(((char *) e) + sizeof(Oid), 0, sizeof(*e) - sizeof(Oid));
			e->next_probe = now;
			e->probe_backoff_ms = KMS_PROBE_MIN_MS;
			e->known_since = now;
		}
		strlcpy(e->name, NameStr(db->datname), sizeof(e->name));
		e->seen = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
}

/* Free slot i (its worker is not running); lock held exclusively. */
static void
KmsLauncherFreeSlot(int i)
{
	KmsWorkerSlot *s = &kmsLauncher->slots[i];

	s->in_use = false;
	s->launched = false;
	s->release_requested = false;
	s->dboid = InvalidOid;
	kms_fails[i] = 0;
	kms_restart_at[i] = 0;
	kms_stopped_at[i] = 0;
}

static void
KmsLauncherWakeDatabase(Oid dboid)
{
	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	for (int i = 0; i < kmsLauncher->nslots; i++)
	{
		KmsWorkerSlot *s = &kmsLauncher->slots[i];
		Latch	   *latch = NULL;

		if (!s->in_use || s->dboid != dboid)
			continue;
		SpinLockAcquire(&s->mutex);
		latch = s->latch;
		SpinLockRelease(&s->mutex);
		if (latch)
			SetLatch(latch);
	}
	LWLockRelease(kmsLauncher->lock);
}

/* Notice the workers that stopped, and why. */
static void
KmsLauncherReap(TimestampTz now)
{
	for (int i = 0; i < kmsLauncher->nslots; i++)
	{
		KmsWorkerSlot *s = &kmsLauncher->slots[i];
		bool		stopped = false;
		KmsWorkerExit reason;
		int			pid;
		TimestampTz started;
		Oid			dboid;

		if (!s->in_use || !s->launched)
			continue;
		SpinLockAcquire(&s->mutex);
		reason = s->exit_reason;
		pid = s->pid;
		started = s->started;
		SpinLockRelease(&s->mutex);
		if (kms_handles[i] != NULL)
		{
			pid_t		p;

			stopped = GetBackgroundWorkerPid(kms_handles[i], &p) == BGWH_STOPPED;
		}
		else
		{
			/* adopted from an earlier launcher: trust the slot */
			stopped = pid == 0 || kill(pid, 0) != 0;
			if (stopped && reason == KMS_EXIT_NONE && pid == 0 && started == 0)
				stopped = false;	/* never started yet */
		}
		if (!stopped)
		{
			if (pid != 0 && started != 0 &&
				TimestampDifferenceExceeds(started, now, KMS_HEALTHY_MS))
				kms_fails[i] = 0;
			continue;
		}
		if (kms_handles[i] != NULL)
		{
			pfree(kms_handles[i]);
			kms_handles[i] = NULL;
		}
		dboid = s->dboid;
		LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
		s->launched = false;
		kms_stopped_at[i] = reason == KMS_EXIT_STOPPED ? now : 0;
		if (reason == KMS_EXIT_ABSENT)
		{
			KmsDbEntry *e = hash_search(kms_dbs, &dboid, HASH_FIND, NULL);

			KmsLauncherFreeSlot(i);
			if (e != NULL)
			{
				e->next_probe = TimestampTzPlusMilliseconds(now, e->probe_backoff_ms);
				e->probe_backoff_ms = Min(e->probe_backoff_ms * 2, KMS_PROBE_MAX_MS);
			}
		}
		else if (reason == KMS_EXIT_NONE || reason == KMS_EXIT_ERROR)
		{
			int			delay = KMS_RESTART_MIN_MS;

			for (int f = 0; f < kms_fails[i] && delay < KMS_RESTART_MAX_MS; f++)
				delay *= 2;
			kms_fails[i]++;
			kms_restart_at[i] = TimestampTzPlusMilliseconds(now, Min(delay, KMS_RESTART_MAX_MS));
			if (reason == KMS_EXIT_NONE)
			{
				SpinLockAcquire(&s->mutex);
				s->pid = 0;
				s->latch = NULL;
				strlcpy(s->state, "restarting after error", sizeof(s->state));
				SpinLockRelease(&s->mutex);
			}
		}
		LWLockRelease(kmsLauncher->lock);
		if (reason == KMS_EXIT_ABSENT)
			KmsLauncherWakeDatabase(dboid); /* the other worker looks too */
	}
}

/* Holds whose command is over (the holder's transaction ended) go. */
static bool
KmsLauncherExpireHolds(void)
{
	bool		any = false;

	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	for (int i = 0; i < KMS_MAX_HOLDS; i++)
	{
		KmsWorkerHold *h = &kmsLauncher->holds[i];
		PGPROC	   *proc;

		if (!OidIsValid(h->dboid))
			continue;
		proc = BackendPidGetProc(h->holder_pid);
		if (proc == NULL || proc->lxid != h->holder_lxid)
			memset(h, 0, sizeof(*h));
		else
			any = true;
	}
	LWLockRelease(kmsLauncher->lock);
	return any;
}

/* Start the worker of slot i, unless its database is held. */
static bool
KmsLauncherLaunch(int i)
{
	KmsWorkerSlot *s = &kmsLauncher->slots[i];
	BackgroundWorker bgw;
	BackgroundWorkerHandle *h;
	const char *type = KmsWorkerKindBgwName(s->kind);

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_ConsistentState;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(bgw.bgw_library_name, "pg_kms", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "KmsWorkerMain", BGW_MAXLEN);
	snprintf(bgw.bgw_name, BGW_MAXLEN, "%s for database %s", type, s->dbname);
	strlcpy(bgw.bgw_type, type, BGW_MAXLEN);
	bgw.bgw_main_arg = Int32GetDatum(i);
	bgw.bgw_notify_pid = MyProcPid;

	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	if (KmsLauncherHeld(s->dboid))
	{
		LWLockRelease(kmsLauncher->lock);
		return false;
	}
	s->launched = true;
	s->release_requested = false;
	SpinLockAcquire(&s->mutex);
	s->exit_reason = KMS_EXIT_NONE;
	s->started = 0;
	strlcpy(s->state, "starting", sizeof(s->state));
	SpinLockRelease(&s->mutex);
	LWLockRelease(kmsLauncher->lock);

	if (!RegisterDynamicBackgroundWorker(&bgw, &h))
	{
		LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
		s->launched = false;
		SpinLockAcquire(&s->mutex);
		s->exit_reason = KMS_EXIT_ERROR;
		strlcpy(s->state, "no background worker slot", sizeof(s->state));
		SpinLockRelease(&s->mutex);
		LWLockRelease(kmsLauncher->lock);
		kms_restart_at[i] = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), KMS_RESTART_MIN_MS);
		if (!kms_warned_register)
			ereport(WARNING,
					(errmsg("pg_kms launcher: could not start the %s for database \"%s\": no free background worker slot",
							type, s->dbname),
					 errhint("Raise max_worker_processes (pg_kms needs pg_kms.max_workers + 1).")));
		kms_warned_register = true;
		return false;
	}
	kms_warned_register = false;
	kms_handles[i] = h;
	return true;
}

/* Give dboid a slot for a worker of this kind and start it. */
static void
KmsLauncherAssign(KmsDbEntry *e, int kind)
{
	int			i;

	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	for (i = 0; i < kmsLauncher->nslots; i++)
		if (!kmsLauncher->slots[i].in_use)
			break;
	if (i == kmsLauncher->nslots)
	{
		LWLockRelease(kmsLauncher->lock);
		/*
		 * A probe (is pg_kms installed there?) of a database that most
		 * likely has no pg_kms is only LOG; a database known to have it
		 * that cannot get its rotation worker is a WARNING.
		 */
		if (!e->warned_full)
			ereport(kind == KMS_WORKER_AUDIT ? LOG : WARNING,
					(errmsg("pg_kms launcher: database \"%s\" is not served: all %d pg_kms.max_workers are in use",
							e->name, kmsLauncher->nslots),
					 errhint("Raise pg_kms.max_workers (two per database where pg_kms is installed) and max_worker_processes.")));
		if (!e->warned_full)
			e->unserved_since = GetCurrentTimestamp();
		e->warned_full = true;
		return;
	}
	e->warned_full = false;
	{
		KmsWorkerSlot *s = &kmsLauncher->slots[i];

		s->in_use = true;
		s->dboid = e->dboid;
		s->kind = kind;
		s->launched = false;
		s->release_requested = false;
		strlcpy(s->dbname, e->name, sizeof(s->dbname));
		SpinLockAcquire(&s->mutex);
		s->pid = 0;
		s->latch = NULL;
		s->started = s->last_wake = s->next_wake = s->last_error_time = 0;
		s->last_error[0] = '\0';
		s->restarts = 0;
		s->next_due = 0;
		s->job[0] = '\0';
		s->job_started = 0;
		s->exit_reason = KMS_EXIT_NONE;
		s->found_extension = false;
		strlcpy(s->state, "starting", sizeof(s->state));
		SpinLockRelease(&s->mutex);
		kms_fails[i] = 0;
		kms_restart_at[i] = 0;
		kms_stopped_at[i] = 0;
	}
	LWLockRelease(kmsLauncher->lock);
	(void) KmsLauncherLaunch(i);
}

/* ----------------------------------------------------------------
 * The audit queue: what no audit worker drains
 * ----------------------------------------------------------------
 */

/* Why a database's queued audit events are not drained (KMS_UNDRAINED_KEEP: they will be) */
typedef enum KmsUndrained
{
	KMS_UNDRAINED_KEEP = 0,		/* its worker runs, starts, or comes back soon */
	KMS_UNDRAINED_NOT_SERVED,	/* all pg_kms.max_workers are in use */
	KMS_UNDRAINED_STOPPED,		/* SIGTERM: stopped until the server restarts */
	KMS_UNDRAINED_RESTARTING,	/* failed: started again after a backoff */
	KMS_UNDRAINED_NO_WORKER		/* no audit worker yet (a probe is due later) */
} KmsUndrained;

/*
 * Would dboid's queued events hold the queue, at this fill level?  Not
 * served or stopped (no worker is coming): from half full.  Restarting after
 * an error, or waiting for its probe (a worker is coming, maybe minutes
 * from now): only under pressure, three quarters full.  Kept always: a
 * worker starting or running, one released for a command (back when the
 * command ends), a database held by such a command; for a second a worker
 * just stopped (at a shutdown every worker and the launcher get SIGTERM
 * together, and what is queued then goes to the queue file); and for 5 s
 * a database without a slot (at a start, probes of databases without
 * pg_kms hold slots for a moment, and the queue may hold what the last
 * shutdown kept).
 */
static KmsUndrained
KmsLauncherUndrained(KmsDbEntry *e, TimestampTz now, int fill, TimestampTz *wake)
{
	KmsWorkerSlot *s;
	KmsUndrained why = KMS_UNDRAINED_KEEP;

	LWLockAcquire(kmsLauncher->lock, LW_SHARED);
	s = KmsWorkerFindSlot(e->dboid, KMS_WORKER_AUDIT);
	if (KmsLauncherHeld(e->dboid))
		why = KMS_UNDRAINED_KEEP;
	else if (s == NULL)
	{
		TimestampTz until = TimestampTzPlusMilliseconds(e->warned_full ? e->unserved_since : e->known_since,
														KMS_UNSERVED_GRACE_MS);

		if (until > now)
			*wake = Min(*wake, until);	/* look again then */
		else if (e->warned_full)
			why = KMS_UNDRAINED_NOT_SERVED;
		else if (fill >= KMS_AUDIT_FILL_PRESSURE)
			why = KMS_UNDRAINED_NO_WORKER;
	}
	else if (!s->launched)
	{
		int			i = s - kmsLauncher->slots;
		KmsWorkerExit reason;

		SpinLockAcquire(&s->mutex);
		reason = s->exit_reason;
		SpinLockRelease(&s->mutex);
		if (reason == KMS_EXIT_STOPPED)
		{
			if (kms_stopped_at[i] == 0)
				kms_stopped_at[i] = now;	/* adopted: from now on */
			if (TimestampDifferenceExceeds(kms_stopped_at[i], now, KMS_STOPPED_GRACE_MS))
				why = KMS_UNDRAINED_STOPPED;
			else
				*wake = Min(*wake, TimestampTzPlusMilliseconds(kms_stopped_at[i], KMS_STOPPED_GRACE_MS));
		}
		else if ((reason == KMS_EXIT_NONE || reason == KMS_EXIT_ERROR) &&
				 fill >= KMS_AUDIT_FILL_PRESSURE)
			why = KMS_UNDRAINED_RESTARTING;
	}
	LWLockRelease(kmsLauncher->lock);
	return why;
}

/*
 * The shared audit queue frees space in order: the events of a database
 * that no audit worker drains would hold it, and once it is full every
 * other database's events would go to the server log only.  On a primary,
 * once the queue is half full, discard the events of the databases that
 * KmsLauncherUndrained() names (they are already in the server log; they
 * count in events_only_logged), with one WARNING per database.  Below half
 * full they stay: if the database gets its worker (a slot frees up, a
 * restart with more pg_kms.max_workers, which keeps the queue in its file)
 * they still reach its kms.audit_log.  On a standby nothing is drained
 * anyway: the queue keeps the latest events until a promotion, as before.
 * Producers wake the launcher when the queue fills behind such a database
 * (audit/event.c), so this runs then, besides every pass; *wake is moved
 * up to when a database kept for a grace period is to be looked at again.
 */
static void
KmsLauncherUnblockQueue(TimestampTz now, TimestampTz *wake)
{
	int			fill;
	int			n = 0;
	Oid		   *dboids;
	KmsUndrained *why;
	char	  (*names)[NAMEDATALEN];
	uint32	   *counts;
	HASH_SEQ_STATUS hs;
	KmsDbEntry *e;

	if (launcher_sigterm || RecoveryInProgress())
		return;
	fill = KmsAuditQueueFill();
	if (fill < KMS_AUDIT_FILL_HALF)
		return;
	n = hash_get_num_entries(kms_dbs);
	dboids = palloc(sizeof(Oid) * (n + 1));
	why = palloc(sizeof(KmsUndrained) * (n + 1));
	names = palloc(NAMEDATALEN * (n + 1));
	counts = palloc(sizeof(uint32) * (n + 1));
	n = 0;
	hash_seq_init(&hs, kms_dbs);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		KmsUndrained w;

		if (!e->seen || (w = KmsLauncherUndrained(e, now, fill, wake)) == KMS_UNDRAINED_KEEP)
			continue;
		dboids[n] = e->dboid;
		why[n] = w;
		strlcpy(names[n], e->name, NAMEDATALEN);
		n++;
	}
	if (n > 0 && KmsAuditDiscardDatabases(dboids, n, counts) > 0)
	{
		for (int i = 0; i < n; i++)
		{
			if (counts[i] == 0)
				continue;
			ereport(WARNING,
					(errmsg("pg_kms launcher: %u audit events of database \"%s\" are only in the server log: its audit worker is not running",
							counts[i], names[i]),
					 why[i] == KMS_UNDRAINED_NOT_SERVED ?
					 errdetail("The database is not served: all %d pg_kms.max_workers are in use. Its events are discarded from the shared audit queue whenever the queue is half full, so that they do not hold up the other databases' events.",
							   kmsLauncher->nslots) :
					 why[i] == KMS_UNDRAINED_STOPPED ?
					 errdetail("Its audit worker was stopped (SIGTERM, pg_terminate_backend()) and is not started again until the server restarts. Its events are discarded from the shared audit queue whenever the queue is half full, so that they do not hold up the other databases' events.") :
					 why[i] == KMS_UNDRAINED_RESTARTING ?
					 errdetail("Its audit worker is restarting after an error (see kms_worker_status() in that database) and the shared audit queue is three quarters full.") :
					 errdetail("It has no audit worker yet and the shared audit queue is three quarters full."),
					 why[i] == KMS_UNDRAINED_NOT_SERVED ?
					 errhint("Raise pg_kms.max_workers (two per database where pg_kms is installed) and max_worker_processes.") :
					 why[i] == KMS_UNDRAINED_STOPPED ?
					 errhint("Restart the server to start the worker again.") : 0));
		}
	}
	pfree(dboids);
	pfree(why);
	pfree(names);
	pfree(counts);
}

/*
 * Publish the databases not served for lack of slots, for
 * kms_worker_status() (KmsWorkerNotServed).
 */
static void
KmsLauncherPublishUnserved(void)
{
	HASH_SEQ_STATUS hs;
	KmsDbEntry *e;
	int			n = 0;

	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	hash_seq_init(&hs, kms_dbs);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		if (!e->seen || !e->warned_full)
			continue;
		if (n == KMS_MAX_UNSERVED)
		{
			hash_seq_term(&hs);
			break;
		}
		kmsLauncher->unserved[n].dboid = e->dboid;
		/* no audit worker: neither; else the rotation worker could not start */
		kmsLauncher->unserved[n].kinds =
			KmsWorkerFindSlot(e->dboid, KMS_WORKER_AUDIT) == NULL ?
			(1 << KMS_WORKER_AUDIT) | (1 << KMS_WORKER_ROTATION) : (1 << KMS_WORKER_ROTATION);
		n++;
	}
	kmsLauncher->nunserved = n;
	LWLockRelease(kmsLauncher->lock);
}

/*
 * Is dboid's worker of this kind missing because all pg_kms.max_workers
 * are in use?  The launcher lock held.
 */
bool
KmsWorkerNotServed(Oid dboid, int kind)
{
	for (int i = 0; i < kmsLauncher->nunserved; i++)
		if (kmsLauncher->unserved[i].dboid == dboid)
			return (kmsLauncher->unserved[i].kinds & (1 << kind)) != 0;
	return false;
}

/* One pass: nudges, databases, stopped workers, holds, starts. */
static long
KmsLauncherPass(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = TimestampTzPlusMilliseconds(now, kms_worker_naptime * 1000L);
	Oid			nudges[KMS_MAX_NUDGES];
	int			nnudges;
	bool		nudge_all;
	bool		holds;
	HASH_SEQ_STATUS hs;
	KmsDbEntry *e;
	Oid		   *present;
	int			npresent = 0;

	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	nnudges = kmsLauncher->nnudges;
	memcpy(nudges, kmsLauncher->nudges, sizeof(Oid) * nnudges);
	nudge_all = kmsLauncher->nudge_all;
	kmsLauncher->nnudges = 0;
	kmsLauncher->nudge_all = false;
	kmsLauncher->launcher_last_wake = now;
	LWLockRelease(kmsLauncher->lock);

	KmsLauncherScan(now);
	KmsLauncherReap(now);
	holds = KmsLauncherExpireHolds();

	/* nudged databases: look now, then often for a while */
	hash_seq_init(&hs, kms_dbs);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		bool		nudged = nudge_all;

		for (int i = 0; i < nnudges && !nudged; i++)
			nudged = nudges[i] == e->dboid;
		if (nudged)
		{
			e->eager_until = TimestampTzPlusMilliseconds(now, KMS_EAGER_FOR_MS);
			e->eager_step_ms = KMS_EAGER_FIRST_MS;
			e->next_eager = now;
			e->probe_backoff_ms = KMS_PROBE_MIN_MS;
		}
		if (e->eager_until > now && e->next_eager <= now)
		{
			e->next_probe = now;
			KmsLauncherWakeDatabase(e->dboid);	/* running workers look again */
			e->next_eager = TimestampTzPlusMilliseconds(now, e->eager_step_ms);
			e->eager_step_ms *= 2;
		}
		if (e->eager_until > now && e->next_eager < wake)
			wake = e->next_eager;
	}

	/* databases that are gone: their workers, slots and queued events */
	present = palloc(sizeof(Oid) * (hash_get_num_entries(kms_dbs) + 1));
	hash_seq_init(&hs, kms_dbs);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		bool		has_slot = false;

		if (e->seen)
		{
			present[npresent++] = e->dboid;
			continue;
		}
		LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
		for (int i = 0; i < kmsLauncher->nslots; i++)
		{
			KmsWorkerSlot *s = &kmsLauncher->slots[i];

			if (!s->in_use || s->dboid != e->dboid)
				continue;
			if (s->launched)
			{
				if (kms_handles[i])
					TerminateBackgroundWorker(kms_handles[i]);
				has_slot = true;
			}
			else
				KmsLauncherFreeSlot(i);
		}
		LWLockRelease(kmsLauncher->lock);
		if (!has_slot)
			(void) hash_search(kms_dbs, &e->dboid, HASH_REMOVE, NULL);
	}
	(void) KmsAuditDiscardMissing(present, npresent);
	pfree(present);

	/* start what should run */
	hash_seq_init(&hs, kms_dbs);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		KmsWorkerSlot *audit,
				   *rot;
		bool		held;
		bool		audit_found = false;

		if (!e->seen)
			continue;
		LWLockAcquire(kmsLauncher->lock, LW_SHARED);
		held = KmsLauncherHeld(e->dboid);
		audit = KmsWorkerFindSlot(e->dboid, KMS_WORKER_AUDIT);
		rot = KmsWorkerFindSlot(e->dboid, KMS_WORKER_ROTATION);
		if (audit)
		{
			SpinLockAcquire(&audit->mutex);
			audit_found = audit->found_extension && audit->pid != 0;
			SpinLockRelease(&audit->mutex);
		}
		LWLockRelease(kmsLauncher->lock);
		if (held)
		{
			/* a worker registered but not yet started: make sure it never does */
			for (int i = 0; i < kmsLauncher->nslots; i++)
				if (kmsLauncher->slots[i].in_use && kmsLauncher->slots[i].dboid == e->dboid &&
					kmsLauncher->slots[i].launched && kms_handles[i])
					TerminateBackgroundWorker(kms_handles[i]);
			continue;
		}
		for (int k = 0; k < KMS_NWORKERS; k++)
		{
			KmsWorkerSlot *s = k == KMS_WORKER_AUDIT ? audit : rot;
			int			i;
			KmsWorkerExit reason;

			if (s == NULL || s->launched)
				continue;
			i = s - kmsLauncher->slots;
			SpinLockAcquire(&s->mutex);
			reason = s->exit_reason;
			SpinLockRelease(&s->mutex);
			if (reason == KMS_EXIT_RELEASED)
				(void) KmsLauncherLaunch(i);
			else if (reason == KMS_EXIT_NONE || reason == KMS_EXIT_ERROR)
			{
				if (kms_restart_at[i] <= now)
					(void) KmsLauncherLaunch(i);
				else if (kms_restart_at[i] < wake)
					wake = kms_restart_at[i];
			}
		}
		if (audit == NULL)
		{
			/* unserved (or its audit worker found no pg_kms): probe */
			if (e->next_probe <= now)
				KmsLauncherAssign(e, KMS_WORKER_AUDIT);
			else if (e->next_probe < wake)
				wake = e->next_probe;
		}
		else if (rot == NULL && audit_found)
			KmsLauncherAssign(e, KMS_WORKER_ROTATION);
	}

	/* what no audit worker drains must not hold up the others */
	KmsLauncherUnblockQueue(now, &wake);
	KmsLauncherPublishUnserved();

	if (holds)
		wake = Min(wake, TimestampTzPlusMilliseconds(now, 100));
	return Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), wake), 10);
}

void
KmsLauncherMain(Datum main_arg)
{
	HASHCTL		ctl;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, KmsLauncherSigterm);
	BackgroundWorkerUnblockSignals();

	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	kmsLauncher->launcher_pid = MyProcPid;
	kmsLauncher->launcher_latch = MyLatch;
	kmsLauncher->launcher_started = GetCurrentTimestamp();
	strlcpy(kmsLauncher->launcher_state, "running", sizeof(kmsLauncher->launcher_state));
	LWLockRelease(kmsLauncher->lock);
	before_shmem_exit(KmsLauncherAtExit, (Datum) 0);

	/* no database: only the shared catalogs */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("pg_kms launcher");

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(KmsDbEntry);
	kms_dbs = hash_create("pg_kms launcher databases", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	kms_handles = MemoryContextAllocZero(TopMemoryContext,
										 sizeof(BackgroundWorkerHandle *) * kmsLauncher->nslots);
	kms_fails = MemoryContextAllocZero(TopMemoryContext, sizeof(int) * kmsLauncher->nslots);
	kms_restart_at = MemoryContextAllocZero(TopMemoryContext, sizeof(TimestampTz) * kmsLauncher->nslots);
	kms_stopped_at = MemoryContextAllocZero(TopMemoryContext, sizeof(TimestampTz) * kmsLauncher->nslots);
	KmsAuditSetJanitor(MyLatch);

	ereport(LOG, (errmsg("pg_kms launcher started")));
	if (kms_database_set)
		ereport(WARNING,
				(errmsg("pg_kms.database is deprecated and ignored"),
				 errdetail("Since pg_kms 1.2 every database where pg_kms is installed has its own workers and its own audit trail in kms.audit."),
				 errhint("Remove pg_kms.database from the configuration.")));

	while (!launcher_sigterm)
	{
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		sleep_ms = KmsLauncherPass();
		if (launcher_sigterm)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	KmsLauncherSetState("stopped");
	ereport(LOG, (errmsg("pg_kms launcher stopping")));
	proc_exit(0);
}
