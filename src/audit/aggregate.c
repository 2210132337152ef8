/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  The backend-local aggregate of data-plane calls, flushed at the end of
 *	  a top-level statement and of a transaction (the executor, utility and
 *	  transaction hooks of the module entry call here), and the settings.
 *
 * IDENTIFICATION
 *	  src/audit/aggregate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "audit/audit_internal.h"

/* Settings (defined in KmsAuditDefineGucs below) */
bool		kms_audit_enabled = true;
int			kms_audit_queue_size = 8192;
int			kms_audit_queue_wait = 100;
int			kms_audit_aggregate_interval = 1000;	/* ms; 0: every statement */
int			kms_audit_retention = 90 * 24 * 60;



static KmsAuditAgg kms_agg[KMS_AUDIT_AGG_MAX];
static int	kms_nagg = 0;
static KmsAuditAgg *kms_agg_last = NULL;
static int	kms_nesting = 0;
static TimestampTz kms_agg_oldest = 0;	/* first call of the oldest aggregate */

/*
 * The statement an aggregate belongs to: its query id when one is computed,
 * else a hash of its source text, so repeated executions of one statement
 * by one role on one key add up to one event per interval (as
 * pg_stat_statements groups them).  Computed once per statement, on the
 * first call (the slow path).
 */
static uint32
KmsAuditStatementHash(void)
{
	uint64		qid = pgstat_get_my_query_id();

	if (qid != 0)
		return (uint32) (qid ^ (qid >> 32));
	if (debug_query_string)
		return hash_bytes((const unsigned char *) debug_query_string,
						  (int) strlen(debug_query_string));
	return 0;
}

/*
 * Emit the aggregate as events.  The hot path does not read the clock, so
 * an aggregate's last_time is the time of the flush: the end of the
 * top-level statement (or transaction) that made the calls, which is at or
 * just after the last call.
 */
static void
KmsAuditFlush(bool may_wait)
{
	int			n = kms_nagg;
	TimestampTz now = GetCurrentTimestamp();

	/* reset first: a failure below must not flush the same entries twice */
	kms_nagg = 0;
	kms_agg_last = NULL;
	kms_agg_oldest = 0;
	for (int i = 0; i < n; i++)
	{
		KmsAuditAgg *a = &kms_agg[i];
		KmsAuditEvent ev;
		char		ver[16];

		memset(&ev, 0, sizeof(ev));
		KmsAuditFillIdentity(&ev, a->db_user, a->userid);
		ev.str[S_TYPE] = "aggregate";
		ev.str[S_OPERATION] = KmsOpNames[a->op];
		ev.str[S_RESOURCE] = a->key_id_str;
		if (a->version > 0)
		{
			snprintf(ver, sizeof(ver), "%d", a->version);
			ev.str[S_VERSION] = ver;
		}
		ev.str[S_OUTCOME] = "success";
		ev.time = a->first;
		ev.last_time = now;
		ev.count = a->count;
		ev.query_id = a->query_id;
		/* the ARN is derived at flush time: no catalog access needed */
		ev.str[S_ARN] = NULL;
		{
			char		arn[160];

			snprintf(arn, sizeof(arn), "arn:aws:kms:%s:%s:key/%s",
					 kms_region, KmsAccountId(), a->key_id_str);
			ev.str[S_ARN] = arn;
			KmsAuditEmit(&ev, may_wait);
		}
	}
}

/*
 * Per-backend setup that needs a process: the exit callback that flushes
 * what a dying session still aggregates.  Called lazily.
 */
static bool kms_exit_registered = false;

static void
KmsAuditBackendSetup(void)
{
	if (!kms_exit_registered)
	{
		before_shmem_exit(kms_audit_shmem_exit, (Datum) 0);
		kms_exit_registered = true;
	}
}

static pg_noinline void
KmsAuditDataSlow(KmsOp op, const uint8 *key_id, const char *key_id_str,
				 int32 version, Oid userid)
{
	KmsAuditAgg *a = NULL;
	TimestampTz now = GetCurrentTimestamp();
	uint32		stmt = KmsAuditStatementHash();

	for (int i = 0; i < kms_nagg; i++)
	{
		KmsAuditAgg *e = &kms_agg[i];

		if (e->op == (int32) op && e->version == version && e->userid == userid &&
			e->stmt_hash == stmt &&
			memcmp(e->key_id, key_id, KMS_KEY_ID_LEN) == 0)
		{
			a = e;
			break;
		}
	}
	if (a == NULL)
	{
		char	   *name;

		if (kms_nagg == KMS_AUDIT_AGG_MAX)
			KmsAuditFlush(true);
		KmsAuditIdentity();
		KmsAuditBackendSetup();
		a = &kms_agg[kms_nagg];
		memcpy(a->key_id, key_id, KMS_KEY_ID_LEN);
		strlcpy(a->key_id_str, key_id_str, sizeof(a->key_id_str));
		a->userid = userid;
		a->version = version;
		a->op = (int32) op;
		a->count = 0;
		a->first = now;
		if (kms_agg_oldest == 0)
			kms_agg_oldest = now;
		a->query_id = pgstat_get_my_query_id();
		a->stmt_hash = stmt;
		name = GetUserNameFromId(userid, true);
		strlcpy(a->db_user, name ? name : "", sizeof(a->db_user));
		kms_nagg++;
	}
	a->count++;
	kms_agg_last = a;
}

void
KmsAuditData(KmsOp op, const uint8 *key_id, const char *key_id_str,
			 int32 version)
{
	KmsAuditAgg *a = kms_agg_last;
	Oid			userid;

	if (unlikely(!kms_audit_enabled))
		return;
	userid = GetUserId();
	if (likely(a != NULL && a->op == (int32) op && a->version == version &&
			   a->userid == userid &&
			   memcmp(a->key_id, key_id, KMS_KEY_ID_LEN) == 0))
	{
		a->count++;				/* no clock read here: see KmsAuditFlush */
		return;
	}
	KmsAuditDataSlow(op, key_id, key_id_str, version, userid);
}

/* ----------------------------------------------------------------
 * Statement and transaction end
 * ----------------------------------------------------------------
 */
void
KmsAuditExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					bool execute_once, ExecutorRun_hook_type next)
{
	kms_nesting++;
	PG_TRY();
	{
		next(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		kms_nesting--;
	}
	PG_END_TRY();
}

void
KmsAuditExecutorFinish(QueryDesc *queryDesc, ExecutorFinish_hook_type next)
{
	kms_nesting++;
	PG_TRY();
	{
		next(queryDesc);
	}
	PG_FINALLY();
	{
		kms_nesting--;
	}
	PG_END_TRY();
}

/*
 * At the end of a top-level statement: flush if the oldest aggregate is
 * older than pg_kms.audit_aggregate_interval (0: always).  The next
 * statement starts a fresh match (its first call takes the slow path and
 * finds or makes the aggregate of that statement).
 */
static void
KmsAuditStatementEnd(void)
{
	kms_agg_last = NULL;
	if (kms_nagg == 0)
		return;
	if (kms_audit_aggregate_interval == 0 ||
		TimestampDifferenceExceeds(kms_agg_oldest, GetCurrentTimestamp(),
								   kms_audit_aggregate_interval))
		KmsAuditFlush(true);
}

void
KmsAuditExecutorEnd(QueryDesc *queryDesc, ExecutorEnd_hook_type next)
{
	next(queryDesc);
	if (kms_nesting == 0)
		KmsAuditStatementEnd();
}

void
KmsAuditProcessUtility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc,
					   ProcessUtility_hook_type next)
{
	kms_nesting++;
	PG_TRY();
	{
		next(pstmt, queryString, readOnlyTree, context,
			 params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		kms_nesting--;
	}
	PG_END_TRY();
	if (kms_nesting == 0)
		KmsAuditStatementEnd();
}

void
KmsAuditXactCallback(XactEvent event)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			kms_agg_last = NULL;
			if (kms_nagg > 0 &&
				(kms_audit_aggregate_interval == 0 ||
				 TimestampDifferenceExceeds(kms_agg_oldest, GetCurrentTimestamp(),
											kms_audit_aggregate_interval)))
				KmsAuditFlush(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			kms_nesting = 0;
			kms_agg_last = NULL;
			/* the calls happened: a rollback does not erase their counts */
			if (kms_nagg > 0 && kms_audit_aggregate_interval == 0)
				KmsAuditFlush(false);	/* no waiting while aborting */
			break;
		default:
			break;
	}
}

void
kms_audit_shmem_exit(int code, Datum arg)
{
	if (kms_nagg > 0)
		KmsAuditFlush(false);
}

/* ----------------------------------------------------------------
 * Setup
 * ----------------------------------------------------------------
 */
void
KmsAuditDefineGucs(void)
{
	DefineCustomBoolVariable("pg_kms.audit",
							 "Records audit events of pg_kms calls.",
							 "When off, no event is created: no kms.audit row and no log line.",
							 &kms_audit_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.audit_queue_size",
							"Sets the number of audit events the shared queue holds.",
							"Events wait there for the worker; 512 bytes of shared memory per event.",
							&kms_audit_queue_size,
							8192, 64, 1048576,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.audit_queue_wait",
							"Sets how long a call waits for room in a full audit queue.",
							"After that the event goes to the server log only, and kms_audit_stats() counts it.",
							&kms_audit_queue_wait,
							100, 0, 60000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.audit_aggregate_interval",
							"Sets how long data-plane calls are added up before their event is written.",
							"Calls by one role on one key with one operation in one statement (by query id, else text) are one event per interval; 0 writes one event per statement execution. Pending counts are also written at backend exit.",
							&kms_audit_aggregate_interval,
							1000, 0, 3600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.audit_retention",
							"Sets how long the worker keeps rows in kms.audit.",
							"0 keeps them forever.",
							&kms_audit_retention,
							90 * 24 * 60, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
}

/* The audit worker's jobs (registered by _PG_init, in this order). */
const KmsWorkerJob KmsAuditDrainJob =
{"audit drain", KmsAuditDrain, KmsAuditDrainCommitted, KmsAuditDrainAborted, true};
const KmsWorkerJob KmsAuditRetentionJob =
{"audit retention", KmsAuditPurge, NULL, NULL, true};
