/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  The backend-local aggregates of data-plane calls and (with
 *	  pg_kms.audit_secret_reads = 'aggregate') of successful secret reads,
 *	  flushed at the end of a top-level statement and of a transaction (the
 *	  executor, utility and transaction hooks of the module entry call
 *	  here), and the settings.  In a parallel worker the data-plane
 *	  aggregate goes to the leader (parallel.c), which counts it as its own.
 *
 * Locking: none here (backend-local); see event.c and parallel.c.
 *
 * IDENTIFICATION
 *	  src/audit/aggregate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
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
int			kms_audit_secret_reads = KMS_AUDIT_READS_AGGREGATE;

static const struct config_enum_entry kms_audit_reads_options[] = {
	{"aggregate", KMS_AUDIT_READS_AGGREGATE, false},
	{"each", KMS_AUDIT_READS_EACH, false},
	{NULL, 0, false}
};


static KmsAuditAgg kms_agg[KMS_AUDIT_AGG_MAX];
static int	kms_nagg = 0;

/*
 * kms_agg stays dense (flushed and folded as an array); kms_agg_slot is an
 * open-addressing index over it, so that finding the aggregate of a call
 * does not search all of them.  A slot holds 1 + an index into kms_agg, 0
 * when empty; emptied as a whole when kms_agg is.
 */
#define KMS_AUDIT_AGG_SLOTS (KMS_AUDIT_AGG_MAX * 2)	/* a power of two */
StaticAssertDecl((KMS_AUDIT_AGG_SLOTS & (KMS_AUDIT_AGG_SLOTS - 1)) == 0 &&
				 KMS_AUDIT_AGG_MAX < PG_UINT16_MAX,
				 "the aggregate index is a power of two of uint16 slots");
static uint16 kms_agg_slot[KMS_AUDIT_AGG_SLOTS];
static KmsAuditAgg *kms_agg_last = NULL;
static int	kms_nesting = 0;
static TimestampTz kms_agg_oldest = 0;	/* first call of the oldest aggregate */

/* successful secret reads ('aggregate'); strings in kms_read_cxt */
static KmsAuditReadAgg kms_reads[KMS_AUDIT_READ_MAX];
static int	kms_nreads = 0;
static KmsAuditReadAgg *kms_read_last = NULL;
static MemoryContext kms_read_cxt = NULL;

#define KmsAuditPendingLocal() (kms_nagg > 0 || kms_nreads > 0)

static void KmsAuditAbsorb(void);

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

/* One data-plane aggregate as an event. */
static void
KmsAuditEmitAgg(const KmsAuditAgg *a, TimestampTz now, bool may_wait)
{
	KmsAuditEvent ev;
	char		ver[16];
	char		arn[160];

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
	snprintf(arn, sizeof(arn), "arn:aws:kms:%s:%s:key/%s",
			 kms_region, KmsAccountId(), a->key_id_str);
	ev.str[S_ARN] = arn;
	KmsAuditEmit(&ev, may_wait);
}

/* One secret-read aggregate as an event. */
static void
KmsAuditEmitRead(const KmsAuditReadAgg *r, TimestampTz now, bool may_wait)
{
	KmsAuditEvent ev;

	memset(&ev, 0, sizeof(ev));
	KmsAuditFillIdentity(&ev, r->db_user, r->userid);
	ev.str[S_SESSION_USER] = r->session_user;
	ev.session_user_oid = r->session_oid;
	ev.str[S_TYPE] = "aggregate";
	ev.str[S_OPERATION] = r->operation;
	ev.str[S_RESOURCE] = r->resource;
	ev.str[S_ARN] = KmsAuditArn(r->resource);
	ev.str[S_VERSION] = r->version;
	ev.str[S_OUTCOME] = "success";
	ev.str[S_PARAMS] = r->params;
	ev.time = r->first;
	ev.last_time = now;
	ev.count = r->count;
	ev.query_id = r->query_id;
	KmsAuditEmit(&ev, may_wait);
}

/*
 * Emit the aggregates as events.  The hot path does not read the clock, so
 * an aggregate's last_time is the time of the flush: the end of the
 * top-level statement (or transaction) that made the calls, which is at or
 * just after the last call.  In a parallel worker, the data-plane
 * aggregate goes to the leader's slot instead (what does not fit there is
 * emitted here); a leader first takes in what its workers left.
 */
static void
KmsAuditFlush(bool may_wait)
{
	int			n,
				nr;
	TimestampTz now;

	/* (taking in may flush by itself, if the table fills: count after it) */
	if (IsParallelWorker())
		n = KmsAuditParallelFold(kms_agg, kms_nagg);	/* what did not fit */
	else
	{
		KmsAuditAbsorb();
		n = kms_nagg;
	}
	nr = kms_nreads;
	now = GetCurrentTimestamp();

	/* reset first: a failure below must not flush the same entries twice */
	if (kms_nagg > 0)
		memset(kms_agg_slot, 0, sizeof(kms_agg_slot));
	kms_nagg = 0;
	kms_agg_last = NULL;
	kms_agg_oldest = 0;
	kms_nreads = 0;
	kms_read_last = NULL;
	for (int i = 0; i < n; i++)
		KmsAuditEmitAgg(&kms_agg[i], now, may_wait);
	for (int i = 0; i < nr; i++)
		KmsAuditEmitRead(&kms_reads[i], now, may_wait);
	if (nr > 0)
		MemoryContextReset(kms_read_cxt);
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

/*
 * The aggregate of (op, key, version, role) in the current statement,
 * made if there is none (flushing all of them first if the table is full).
 * db_user: the role's name if the caller knows it (else looked up).
 */
static KmsAuditAgg *
KmsAuditAggFor(KmsOp op, const uint8 *key_id, const char *key_id_str,
			   int32 version, Oid userid, const char *db_user,
			   TimestampTz first)
{
	KmsAuditAgg *a = NULL;
	uint32		stmt = KmsAuditStatementHash();
	uint32		h;
	uint32		pos;

	h = hash_bytes(key_id, KMS_KEY_ID_LEN);
	h = hash_combine(h, (uint32) op);
	h = hash_combine(h, (uint32) version);
	h = hash_combine(h, (uint32) userid);
	h = hash_combine(h, stmt);
	for (pos = h & (KMS_AUDIT_AGG_SLOTS - 1); kms_agg_slot[pos] != 0;
		 pos = (pos + 1) & (KMS_AUDIT_AGG_SLOTS - 1))
	{
		KmsAuditAgg *e = &kms_agg[kms_agg_slot[pos] - 1];

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
		if (kms_nagg == KMS_AUDIT_AGG_MAX)
		{
			KmsAuditFlush(true);
			pos = h & (KMS_AUDIT_AGG_SLOTS - 1);	/* the index is empty now */
		}
		KmsAuditIdentity();
		KmsAuditBackendSetup();
		a = &kms_agg[kms_nagg];
		kms_agg_slot[pos] = (uint16) (kms_nagg + 1);
		memcpy(a->key_id, key_id, KMS_KEY_ID_LEN);
		strlcpy(a->key_id_str, key_id_str, sizeof(a->key_id_str));
		a->userid = userid;
		a->version = version;
		a->op = (int32) op;
		a->count = 0;
		a->first = first;
		a->query_id = pgstat_get_my_query_id();
		a->stmt_hash = stmt;
		if (db_user == NULL)
		{
			char	   *name = GetUserNameFromId(userid, true);

			db_user = name ? name : "";
		}
		strlcpy(a->db_user, db_user, sizeof(a->db_user));
		kms_nagg++;
	}
	else if (first < a->first)
		a->first = first;
	if (kms_agg_oldest == 0 || a->first < kms_agg_oldest)
		kms_agg_oldest = a->first;
	return a;
}

static pg_noinline void
KmsAuditDataSlow(KmsOp op, const uint8 *key_id, const char *key_id_str,
				 int32 version, Oid userid)
{
	KmsAuditAgg *a = KmsAuditAggFor(op, key_id, key_id_str, version, userid,
									NULL, GetCurrentTimestamp());

	a->count++;
	kms_agg_last = a;
}

/*
 * A leader: take in what its parallel workers counted (parallel.c) as if
 * it had made the calls itself, in its current statement.  Counts left by
 * a leader that is gone (the slot's previous owner) are emitted as they
 * are.  No catalog access: the role names come with the counts.
 */
static void
KmsAuditAbsorb(void)
{
	KmsAuditAgg got[KMS_AUDIT_PAR_MAX];
	bool		own[KMS_AUDIT_PAR_MAX];
	int			n;

	if (!KmsAuditParallelPending())
		return;
	n = KmsAuditParallelTake(got, own, KMS_AUDIT_PAR_MAX);
	for (int i = 0; i < n; i++)
	{
		KmsAuditAgg *g = &got[i];
		KmsAuditAgg *a;

		if (!own[i])
		{
			/* another leader's, left behind: its own event */
			KmsAuditEmitAgg(g, GetCurrentTimestamp(), false);
			continue;
		}
		a = KmsAuditAggFor((KmsOp) g->op, g->key_id, g->key_id_str, g->version,
						   g->userid, g->db_user, g->first);
		a->count += g->count;
	}
	kms_agg_last = NULL;
}

/* ----------------------------------------------------------------
 * Secret reads
 * ----------------------------------------------------------------
 */
static inline bool
KmsAuditStrEq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static pg_noinline void
KmsAuditReadSlow(const char *operation, const char *resource,
				 const char *version, const char *params, Oid userid, Oid sess)
{
	KmsAuditReadAgg *r = NULL;
	uint32		stmt = KmsAuditStatementHash();

	for (int i = 0; i < kms_nreads; i++)
	{
		KmsAuditReadAgg *e = &kms_reads[i];

		if (e->userid == userid && e->session_oid == sess && e->stmt_hash == stmt &&
			strcmp(e->operation, operation) == 0 &&
			KmsAuditStrEq(e->resource, resource) &&
			KmsAuditStrEq(e->version, version) &&
			KmsAuditStrEq(e->params, params))
		{
			r = e;
			break;
		}
	}
	if (r == NULL)
	{
		TimestampTz now = GetCurrentTimestamp();
		char	   *name;

		if (kms_nreads == KMS_AUDIT_READ_MAX)
			KmsAuditFlush(true);
		if (kms_read_cxt == NULL)
			kms_read_cxt = AllocSetContextCreate(TopMemoryContext, "pg_kms audit reads",
												 ALLOCSET_SMALL_SIZES);
		KmsAuditIdentity();
		KmsAuditBackendSetup();
		r = &kms_reads[kms_nreads];
		r->userid = userid;
		r->session_oid = sess;
		r->stmt_hash = stmt;
		r->count = 0;
		r->first = now;
		r->query_id = pgstat_get_my_query_id();
		r->operation = MemoryContextStrdup(kms_read_cxt, operation);
		r->resource = resource ? MemoryContextStrdup(kms_read_cxt, resource) : NULL;
		r->version = version ? MemoryContextStrdup(kms_read_cxt, version) : NULL;
		r->params = params ? MemoryContextStrdup(kms_read_cxt, params) : NULL;
		name = GetUserNameFromId(userid, true);
		strlcpy(r->db_user, name ? name : "", sizeof(r->db_user));
		name = GetUserNameFromId(sess, true);
		strlcpy(r->session_user, name ? name : "", sizeof(r->session_user));
		if (kms_agg_oldest == 0)
			kms_agg_oldest = now;
		kms_nreads++;
	}
	r->count++;
	kms_read_last = r;
}

void
KmsAuditRead(const char *operation, const char *resource, const char *version,
			 const char *params)
{
	KmsAuditReadAgg *r = kms_read_last;
	Oid			userid,
				sess;

	if (unlikely(!kms_audit_enabled))
		return;
	if (kms_audit_secret_reads == KMS_AUDIT_READS_EACH)
	{
		KmsAuditEx(operation, resource, version, "success", params);
		return;
	}
	userid = GetUserId();
	sess = GetSessionUserId();
	if (likely(r != NULL && r->userid == userid && r->session_oid == sess &&
			   strcmp(r->operation, operation) == 0 &&
			   KmsAuditStrEq(r->resource, resource) &&
			   KmsAuditStrEq(r->version, version) &&
			   KmsAuditStrEq(r->params, params)))
	{
		r->count++;				/* no clock read: see KmsAuditFlush */
		return;
	}
	KmsAuditReadSlow(operation, resource, version, params, userid, sess);
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
	/*
	 * A leader may take in its workers' counts at abort, where no catalog
	 * lookup is allowed: know who we are before they run.
	 */
	if (queryDesc->plannedstmt->parallelModeNeeded && !IsParallelWorker())
		KmsAuditIdentity();
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

/* Is the oldest pending aggregate due (older than the interval)? */
static bool
KmsAuditDue(void)
{
	return kms_audit_aggregate_interval == 0 ||
		TimestampDifferenceExceeds(kms_agg_oldest, GetCurrentTimestamp(),
								   kms_audit_aggregate_interval);
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
	kms_read_last = NULL;
	if (!KmsAuditPendingLocal())
		return;
	if (KmsAuditDue())
		KmsAuditFlush(true);
}

void
KmsAuditExecutorEnd(QueryDesc *queryDesc, ExecutorEnd_hook_type next)
{
	next(queryDesc);
	/* a leader: its parallel workers are done, take in their counts */
	if (!IsParallelWorker())
		KmsAuditAbsorb();
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
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			/* a parallel worker: everything to the leader, now */
			kms_agg_last = NULL;
			kms_read_last = NULL;
			if (KmsAuditPendingLocal())
				KmsAuditFlush(true);
			break;
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			kms_agg_last = NULL;
			kms_read_last = NULL;
			KmsAuditAbsorb();
			if (KmsAuditPendingLocal() && KmsAuditDue())
				KmsAuditFlush(true);
			break;
		case XACT_EVENT_PARALLEL_ABORT:
			kms_nesting = 0;
			kms_agg_last = NULL;
			kms_read_last = NULL;
			if (KmsAuditPendingLocal())
				KmsAuditFlush(false);	/* to the leader; no waiting while aborting */
			break;
		case XACT_EVENT_ABORT:
			kms_nesting = 0;
			kms_agg_last = NULL;
			kms_read_last = NULL;
			/* the workers are gone (AtEOXact_Parallel ran): take in their counts */
			KmsAuditAbsorb();
			/* the calls happened: a rollback does not erase their counts */
			if (KmsAuditPendingLocal() &&
				(kms_audit_aggregate_interval == 0 || proc_exit_inprogress))
				KmsAuditFlush(false);	/* no waiting while aborting */
			break;
		default:
			break;
	}
}

void
kms_audit_shmem_exit(int code, Datum arg)
{
	if (KmsAuditPendingLocal() || (!IsParallelWorker() && KmsAuditParallelPending()))
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

	DefineCustomEnumVariable("pg_kms.audit_secret_reads",
							 "Sets whether each successful secret read is an audit event of its own.",
							 "aggregate: reads by one role of one secret version with the same parameters in one statement are one event per pg_kms.audit_aggregate_interval, as data-plane calls; each: one event and one log line per read. Denied and failed reads are always events of their own.",
							 &kms_audit_secret_reads,
							 KMS_AUDIT_READS_AGGREGATE,
							 kms_audit_reads_options,
							 PGC_SUSET,
							 0,
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
