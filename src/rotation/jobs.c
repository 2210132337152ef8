/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  The rotation worker's jobs (secret rotation, key rotation, deletion
 *	  windows) and what runs them: the step timeout and the test-only crash
 *	  injection of pg_kms.rotation_test_crash_at.
 *
 * IDENTIFICATION
 *	  src/rotation/jobs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>
#include <fcntl.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_auth_members.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_shdepend.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "parser/parse_func.h"
#include "utils/json.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/varlena.h"

#include "cache/cache.h"
#include "keystore/keystore.h"
#include "rotation/rotation.h"
#include "rotation/scram.h"
#include "secrets/secrets.h"

#include "rotation/rotation_internal.h"

/* ----------------------------------------------------------------
 * Test-only crash injection
 * ----------------------------------------------------------------
 */
static char crash_after_token[65];

static bool
CrashWanted(const char *step, bool before)
{
	const char *v = kms_rotation_test_crash_at;
	size_t		len;

	if (v == NULL || v[0] == '\0' || strcmp(v, "none") == 0)
		return false;
	len = strlen(step);
	if (strncmp(v, step, len) != 0)
		return false;
	if (before)
		return strcmp(v + len, ":before") == 0;
	return v[len] == '\0' || strcmp(v + len, ":after") == 0;
}

/* Die with SIGKILL once per (token, step, side): a marker file remembers. */
static void
CrashNow(const char *token, const char *step, bool before)
{
	char	   *line = psprintf("%s %s %s\n", token, step, before ? "before" : "after");
	char	   *path = psprintf("%s/pg_kms_rotation_crash.done", DataDir);
	FILE	   *f = AllocateFile(path, "r");
	char		buf[256];
	int			fd;

	if (f)
	{
		while (fgets(buf, sizeof(buf), f))
			if (strcmp(buf, line) == 0)
			{
				FreeFile(f);
				return;
			}
		FreeFile(f);
	}
	fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_APPEND | PG_BINARY);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t) strlen(line) || pg_fsync(fd) != 0)
		elog(ERROR, "could not write \"%s\": %m", path);
	CloseTransientFile(fd);
	ereport(LOG,
			(errmsg("pg_kms: rotation_test_crash_at: killing the worker with SIGKILL %s %s commits",
					before ? "before" : "after", step)));
	kill(MyProcPid, SIGKILL);
	for (;;)
		pg_usleep(1000000L);
}

/* ----------------------------------------------------------------
 * Step timeout (pg_kms.rotation_step_timeout)
 *
 * A timeout of our own rather than statement_timeout, which only
 * postgres.c arms (a background worker's SPI never does): when it fires it
 * cancels whatever the step is doing as a query cancel would (pg_sleep,
 * a lock wait, the login client's wait), and the step fails like any other.
 * ----------------------------------------------------------------
 */
static TimeoutId step_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t step_timed_out = false;

static void
StepTimeoutHandler(void)
{
	step_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

static void
StepTimeoutArm(void)
{
	if (step_timeout_id == MAX_TIMEOUTS)
		step_timeout_id = RegisterTimeout(USER_TIMEOUT, StepTimeoutHandler);
	step_timed_out = false;
	enable_timeout_after(step_timeout_id, kms_rotation_step_timeout * 1000);
}

/* Returns true if the timeout fired. */
static bool
StepTimeoutDisarm(void)
{
	bool		fired;

	disable_timeout(step_timeout_id, false);
	fired = step_timed_out;
	step_timed_out = false;
	return fired;
}

/* ----------------------------------------------------------------
 * Jobs
 * ----------------------------------------------------------------
 */

/*
 * Start the scheduled rotation of r: a new token (the AWSPENDING version
 * id to be), first step createSecret.  Inside KmsCatalogEnter.
 */
static void
StartScheduledRotation(RotationRow *r)
{
	uint8		u[16];
	char		tok[37];

	if (!KmsRandomUuid(u))
		elog(ERROR, "could not generate random bytes");
	KmsUuidToString(u, tok);
	KmsSecretStartRotation(r->id, tok);
}

/* The step of one rotation, in KmsRotationSecretsJob's subtransaction. */
typedef struct StepRun
{
	RotationRow *r;
	const char *done;
	bool		timed_out;
} StepRun;

static void
StepRun1(void *arg)
{
	StepRun    *run = (StepRun *) arg;

	StepTimeoutArm();
	run->done = RunStep(run->r);
	if (StepTimeoutDisarm() && QueryCancelPending)
		QueryCancelPending = false; /* fired after the step was done */
}

static void
StepRunFailed(void *arg)
{
	((StepRun *) arg)->timed_out = StepTimeoutDisarm();
}

/*
 * One unit of secret rotation: the next step of one rotation in progress
 * whose retry time has come, or the start of one scheduled rotation.
 * Errors of the step roll back a subtransaction and are recorded; the job
 * itself fails only if the catalog does.
 */
bool
KmsRotationSecretsJob(void)
{
	KmsCatalogState st;
	RotationRow r;
	bool		found;
	MemoryContext cxt = CurrentMemoryContext;
	StepRun		run;
	ErrorData  *edata;
	const char *done;
	char	   *error = NULL;

	crash_after_token[0] = '\0';
	/* prepared for pg_upgrade (kms_pg_upgrade_prepare): wait for finish */
	if (KmsRotationPreparedForUpgrade())
		return false;
	KmsCatalogEnter(&st);
	found = KmsExec(psprintf("%s WHERE rotation_token IS NOT NULL AND deleted_date IS NULL "
							 "AND (rotation_next_attempt IS NULL OR rotation_next_attempt <= pg_catalog.now()) "
							 "ORDER BY rotation_next_attempt NULLS FIRST, secret_id LIMIT 1 FOR UPDATE SKIP LOCKED",
							 rotation_columns),
					0, NULL, NULL, NULL, false, SPI_OK_SELECT) == 1;
	if (found)
	{
		RowFromSpi(&r);
		RowCopyOut(&r, cxt);
	}
	else if (KmsExec(psprintf("%s WHERE rotation_enabled AND rotation_token IS NULL AND deleted_date IS NULL "
							  "AND next_rotation_date <= pg_catalog.now() "
							  "ORDER BY next_rotation_date, secret_id LIMIT 1 FOR UPDATE SKIP LOCKED",
							  rotation_columns),
					 0, NULL, NULL, NULL, false, SPI_OK_SELECT) == 1)
	{
		/* a scheduled rotation: start it, run it from the next call */
		RowFromSpi(&r);
		RowCopyOut(&r, cxt);
		StartScheduledRotation(&r);
		KmsCatalogExit(&st);
		KmsAudit("RotationStarted", r.arn, 0, "success");
		return true;
	}
	KmsCatalogExit(&st);
	if (!found)
		return false;

	run.r = &r;
	run.done = NULL;
	run.timed_out = false;
	edata = KmsRunInSubTransaction(StepRun1, StepRunFailed, &run);
	done = run.done;
	if (edata != NULL)
	{
		if (run.timed_out && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			error = psprintf("the step was cancelled after %d s (pg_kms.rotation_step_timeout)",
							 kms_rotation_step_timeout);
		else
		{
			if (run.timed_out && QueryCancelPending)
				QueryCancelPending = false;
			error = edata->message ? edata->message : "unknown error";
		}
	}

	if (error)
	{
		RecordFailure(&r, error);
		return true;			/* other secrets may be due */
	}
	if (IsBackgroundWorker && strcmp(done, "done") != 0)
	{
		if (CrashWanted(done, true))
			CrashNow(r.token, done, true);
		if (CrashWanted(done, false))
		{
			snprintf(crash_after_token, sizeof(crash_after_token), "%s", r.token);
			strlcpy(crash_after_token + strlen(crash_after_token) + 1, done,
					sizeof(crash_after_token) - strlen(crash_after_token) - 1);
		}
	}
	return true;
}

/* After the worker committed a step: the test-only ":after" crash. */
void
KmsRotationSecretsCommitted(void)
{
	if (crash_after_token[0] != '\0')
	{
		char		token[65];
		char		step[32];

		strlcpy(token, crash_after_token, sizeof(token));
		strlcpy(step, crash_after_token + strlen(crash_after_token) + 1, sizeof(step));
		crash_after_token[0] = '\0';
		CrashNow(token, step, false);
	}
}

/* Automatic key rotation: one key whose NextRotationDate has come. */
bool
KmsRotationKeysJob(void)
{
	return KmsKeysRotateOneDue();
}

/*
 * Deletion windows: one key whose PendingDeletion window has passed is
 * destroyed (keystore/lifecycle.c); else secrets whose recovery window has
 * passed are purged, a batch at a time.
 */
bool
KmsRotationDeletionJob(void)
{
	if (KmsKeysDestroyOneExpired())
		return true;
	return KmsSecretsPurgeExpired(100) > 0;
}

TimestampTz
KmsRotationNextDue(void)
{
	KmsCatalogState st;
	TimestampTz due = 0;
	bool		isnull;
	Datum		d;

	KmsCatalogEnter(&st);
	KmsExec("SELECT LEAST("
			" (SELECT min(COALESCE(rotation_next_attempt, '-infinity'::timestamptz)) FROM kms.secret "
			"   WHERE rotation_token IS NOT NULL AND deleted_date IS NULL),"
			" (SELECT min(next_rotation_date) FROM kms.secret WHERE rotation_enabled AND deleted_date IS NULL),"
			" (SELECT min(deletion_date) FROM kms.secret),"
			" (SELECT min(next_rotation_date) FROM kms.key WHERE rotation_enabled AND key_state = 'Enabled'),"
			" (SELECT min(deletion_date) FROM kms.key WHERE key_state = 'PendingDeletion'))",
			0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		due = DatumGetTimestampTz(d);
	KmsCatalogExit(&st);
	return due;
}

/* The rotation worker's jobs (registered by _PG_init, in this order). */
bool
KmsRotationJobsEnabled(void)
{
	return kms_rotation_jobs;
}

static bool
KmsRotationSecretsWorkerRun(void)
{
	return kms_rotation_jobs && KmsRotationSecretsJob();
}

static bool
KmsRotationKeysWorkerRun(void)
{
	return kms_rotation_jobs && KmsRotationKeysJob();
}

static bool
KmsRotationDeletionWorkerRun(void)
{
	return kms_rotation_jobs && KmsRotationDeletionJob();
}

const KmsWorkerJob KmsRotationSecretsWorkerJob =
{"secret rotation", KmsRotationSecretsWorkerRun, KmsRotationSecretsCommitted, NULL, true};
const KmsWorkerJob KmsRotationKeysWorkerJob =
{"key rotation", KmsRotationKeysWorkerRun, NULL, NULL, true};
const KmsWorkerJob KmsRotationDeletionWorkerJob =
{"deletion", KmsRotationDeletionWorkerRun, NULL, NULL, true};

/*
 * Wake the worker once this transaction commits, so a requested rotation
 * starts at once rather than after pg_kms.worker_naptime.
 */
static bool wake_pending = false;

/* Called from the module's transaction callback (src/pg_kms.c). */
void
KmsRotationXactCallback(XactEvent event)
{
	if (event == XACT_EVENT_COMMIT && wake_pending)
		KmsWakeWorker();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		wake_pending = false;
}

void
KmsRotationWakeAtCommit(void)
{
	wake_pending = true;
}
