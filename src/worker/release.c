/*-------------------------------------------------------------------------
 *
 * release.c
 *	  The utility hook's part of the workers: free a database for a
 *	  command that needs it alone, and nudge the launcher after CREATE or
 *	  DROP EXTENSION pg_kms.
 *
 * CREATE DATABASE ... TEMPLATE d, DROP DATABASE d and ALTER DATABASE d
 * RENAME / SET TABLESPACE fail while another session is connected to d
 * ("being accessed by other users").  Before such a command runs,
 * KmsWorkerUtility() records a hold on d (until the calling transaction
 * ends), marks d's workers release_requested, sends them SIGTERM (as
 * pg_terminate_backend: a job in progress is cancelled, its transaction
 * rolls back and is run again later) and waits, at most
 * KMS_RELEASE_WAIT_MS, until they have left the proc array, which is what
 * the command checks.  The launcher (launcher.c) starts them again once
 * the hold ends.  If they do not leave in time, the command runs anyway
 * and fails as it would have.  Only for a caller who may run the command
 * on that database (superuser, owner, or a template for CREATE DATABASE):
 * nobody else's failing command stops a database's workers.  DROP
 * EXTENSION pg_kms frees the current database the same way (for the
 * extension's owner): the workers' transactions could deadlock with the
 * drop's locks on pg_kms's tables.
 *
 * Locking: see worker_internal.h.
 *
 * IDENTIFICATION
 *	  src/worker/release.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/syscache.h"

#include "worker/worker_internal.h"

#define KMS_RELEASE_WAIT_MS		10000	/* a command waits this long at most */

#if PG_VERSION_NUM >= 160000
#define kms_database_ownercheck(oid, role)	object_ownercheck(DatabaseRelationId, (oid), (role))
#define kms_extension_ownercheck(oid, role)	object_ownercheck(ExtensionRelationId, (oid), (role))
#else
#define kms_database_ownercheck(oid, role)	pg_database_ownercheck((oid), (role))
#define kms_extension_ownercheck(oid, role)	pg_extension_ownercheck((oid), (role))
#endif

/* Have the launcher look at dboid now (and a few times more, see above). */
void
KmsWorkerNudge(Oid dboid)
{
	Latch	   *latch;

	if (kmsLauncher == NULL || !OidIsValid(dboid))
		return;
	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	if (kmsLauncher->nnudges < KMS_MAX_NUDGES)
		kmsLauncher->nudges[kmsLauncher->nnudges++] = dboid;
	else
		kmsLauncher->nudge_all = true;
	latch = kmsLauncher->launcher_latch;
	LWLockRelease(kmsLauncher->lock);
	if (latch)
		SetLatch(latch);
}

/* ----------------------------------------------------------------
 * The utility hook's part: free a database, nudge after CREATE/DROP EXTENSION
 * ----------------------------------------------------------------
 */

/* Is any worker of dboid still there?  Lock held. */
static bool
KmsWorkerDatabaseBusy(Oid dboid, bool launcher_up)
{
	for (int i = 0; i < kmsLauncher->nslots; i++)
	{
		KmsWorkerSlot *s = &kmsLauncher->slots[i];
		int			pid;

		if (!s->in_use || s->dboid != dboid)
			continue;
		SpinLockAcquire(&s->mutex);
		pid = s->pid;
		SpinLockRelease(&s->mutex);
		if (pid != 0 || (s->launched && launcher_up))
			return true;
	}
	return false;
}

/*
 * Stop dboid's workers and keep them stopped until this transaction ends;
 * wait for them to leave, at most KMS_RELEASE_WAIT_MS.
 */
static void
KmsWorkerRelease(Oid dboid, const char *dbname, const char *why)
{
	TimestampTz deadline;
	int			pids[64];
	int			npids = 0;
	bool		held = false;
	bool		any = false;

	LWLockAcquire(kmsLauncher->lock, LW_EXCLUSIVE);
	for (int i = 0; i < KMS_MAX_HOLDS && !held; i++)
	{
		KmsWorkerHold *h = &kmsLauncher->holds[i];

		if (h->dboid == dboid && h->holder_pid == MyProcPid)
			held = true;
	}
	for (int i = 0; i < KMS_MAX_HOLDS && !held; i++)
	{
		KmsWorkerHold *h = &kmsLauncher->holds[i];

		if (!OidIsValid(h->dboid))
		{
			h->dboid = dboid;
			h->holder_pid = MyProcPid;
			h->holder_lxid = MyProc->lxid;
			held = true;
		}
	}
	for (int i = 0; i < kmsLauncher->nslots; i++)
	{
		KmsWorkerSlot *s = &kmsLauncher->slots[i];

		if (s->in_use && s->dboid == dboid)
		{
			s->release_requested = true;
			any = true;
		}
	}
	LWLockRelease(kmsLauncher->lock);
	if (!any)
		return;
	if (!held)
		ereport(WARNING,
				(errmsg("pg_kms: too many databases are being freed at once; the workers of database \"%s\" may come back before %s",
						dbname, why)));
	KmsWorkerWakeLauncher();

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), KMS_RELEASE_WAIT_MS);
	for (;;)
	{
		bool		busy;
		bool		launcher_up;

		LWLockAcquire(kmsLauncher->lock, LW_SHARED);
		launcher_up = kmsLauncher->launcher_pid != 0;
		for (int i = 0; i < kmsLauncher->nslots; i++)
		{
			KmsWorkerSlot *s = &kmsLauncher->slots[i];
			int			pid;
			bool		seen = false;

			if (!s->in_use || s->dboid != dboid)
				continue;
			SpinLockAcquire(&s->mutex);
			pid = s->pid;
			SpinLockRelease(&s->mutex);
			if (pid == 0)
				continue;
			for (int j = 0; j < npids; j++)
				if (pids[j] == pid)
					seen = true;
			if (!seen && npids < lengthof(pids))
			{
				pids[npids++] = pid;
				/* as pg_terminate_backend: the job is cancelled, the worker exits */
				(void) kill(pid, SIGTERM);
			}
		}
		busy = KmsWorkerDatabaseBusy(dboid, launcher_up);
		LWLockRelease(kmsLauncher->lock);
		/* gone from the proc array, which is what the command checks */
		for (int j = 0; j < npids && !busy; j++)
			if (BackendPidGetProc(pids[j]) != NULL)
				busy = true;
		if (!busy)
			break;
		if (GetCurrentTimestamp() >= deadline)
		{
			ereport(WARNING,
					(errmsg("pg_kms: the workers of database \"%s\" did not stop within %d s before %s",
							dbname, KMS_RELEASE_WAIT_MS / 1000, why)));
			break;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	ereport(DEBUG1,
			(errmsg("pg_kms: stopped the workers of database \"%s\" for %s", dbname, why)));
}

/*
 * Free dbname for a command, if the caller may run that command on it: a
 * superuser, the database's owner, or (template) anyone when the database
 * is marked as a template.  Anyone else's command fails on its privileges
 * anyway, and must not stop other roles' workers on the way.
 */
static void
KmsWorkerReleaseByName(const char *dbname, const char *why, bool template)
{
	Oid			dboid;
	bool		may = false;

	if (dbname == NULL)
		return;
	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid))
		return;
	if (superuser() || kms_database_ownercheck(dboid, GetUserId()))
		may = true;
	else if (template)
	{
		HeapTuple	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));

		if (HeapTupleIsValid(tup))
		{
			may = ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
			ReleaseSysCache(tup);
		}
	}
	if (may)
		KmsWorkerRelease(dboid, dbname, why);
}

void
KmsWorkerUtility(PlannedStmt *pstmt)
{
	Node	   *n = pstmt->utilityStmt;

	if (kmsLauncher == NULL || n == NULL || IsBinaryUpgrade)
		return;
	switch (nodeTag(n))
	{
		case T_CreatedbStmt:
			{
				CreatedbStmt *st = (CreatedbStmt *) n;
				const char *template = "template1";
				ListCell   *lc;

				foreach(lc, st->options)
				{
					DefElem    *d = lfirst_node(DefElem, lc);

					if (strcmp(d->defname, "template") == 0 && d->arg != NULL)
						template = defGetString(d);
				}
				KmsWorkerReleaseByName(template, "CREATE DATABASE", true);
				break;
			}
		case T_DropdbStmt:
			KmsWorkerReleaseByName(((DropdbStmt *) n)->dbname, "DROP DATABASE", false);
			break;
		case T_RenameStmt:
			if (((RenameStmt *) n)->renameType == OBJECT_DATABASE)
				KmsWorkerReleaseByName(((RenameStmt *) n)->subname, "ALTER DATABASE RENAME", false);
			break;
		case T_AlterDatabaseStmt:
			{
				AlterDatabaseStmt *st = (AlterDatabaseStmt *) n;
				ListCell   *lc;

				foreach(lc, st->options)
					if (strcmp(lfirst_node(DefElem, lc)->defname, "tablespace") == 0)
						KmsWorkerReleaseByName(st->dbname, "ALTER DATABASE SET TABLESPACE", false);
				break;
			}
		case T_CreateExtensionStmt:
			if (strcmp(((CreateExtensionStmt *) n)->extname, "pg_kms") == 0)
				KmsWorkerNudge(MyDatabaseId);
			break;
		case T_DropStmt:
			{
				DropStmt   *st = (DropStmt *) n;
				ListCell   *lc;

				if (st->removeType != OBJECT_EXTENSION)
					break;
				foreach(lc, st->objects)
				{
					Oid			extoid;

					if (!IsA(lfirst(lc), String) || strcmp(strVal(lfirst(lc)), "pg_kms") != 0)
						continue;

					/*
					 * The workers read and write pg_kms's tables: a DROP
					 * taking its locks while they work can deadlock with
					 * them.  Stop them first (for the extension's owner
					 * only; the custody guard has already refused a drop
					 * that would destroy live keys).
					 */
					extoid = get_extension_oid("pg_kms", true);
					if (OidIsValid(extoid) &&
						(superuser() || kms_extension_ownercheck(extoid, GetUserId())))
						KmsWorkerRelease(MyDatabaseId, get_database_name(MyDatabaseId),
										 "DROP EXTENSION pg_kms");
					KmsWorkerNudge(MyDatabaseId);
				}
				break;
			}
		default:
			break;
	}
}

