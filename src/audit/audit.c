/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The audit trail: event creation, the backend-local aggregate of
 *	  data-plane calls, the bounded shared-memory queue, the server-log
 *	  line, and the drain into kms.audit_log that the worker runs.
 *
 * An event is created by the call it describes, in the caller's backend:
 * KmsAudit()/KmsAuditEx() for management calls, secret reads and denied
 * calls; KmsAuditData() counts a successful data-plane call into a small
 * backend-local table keyed by (key, operation, version, role), which is
 * flushed as one event per entry at the end of the top-level statement and
 * at transaction end (commit or abort).  Creating an event means, at once:
 * copy it into the shared queue (waiting up to pg_kms.audit_queue_wait if
 * it is full and the worker is draining), then write its log line
 * ("pg_kms audit: {json}", docs/audit.md) with "queued" saying whether the
 * table will get it.  Neither step belongs to the caller's transaction, so
 * a rollback cannot erase the event, and the log line is out before the
 * call returns or raises its error.
 *
 * Queue: a byte ring in shared memory of pg_kms.audit_queue_size events of
 * KMS_AUDIT_AVG_BYTES each on average, holding variable-length records of
 * at most KMS_AUDIT_MAX_RECORD bytes (long strings are clipped).  head and
 * tail are monotonically increasing byte positions; a record that does not
 * fit before the end of the ring leaves a zero length word there and starts
 * at offset 0.  Producers append at head; only the worker advances tail,
 * and only after the transaction that inserted the records committed, so
 * a failed drain leaves them queued.  A crash of any backend resets shared
 * memory: whatever was still queued then is in the server log only.
 *
 * Locking: the named LWLock "pg_kms audit" guards head, tail, nevents and
 * the ring bytes in [tail, head) being appended; LW_EXCLUSIVE to append or
 * advance tail, LW_SHARED to read positions.  The worker reads the record
 * bytes in [tail, head) without the lock: producers never write there.
 * Counters are atomics.  The condition variable `space` is broadcast when
 * tail moves.
 *
 * Hash chain: computed by the audit worker, the single writer, as
 * SHA-256(prev_hash || payload(row)) where payload is a length-prefixed
 * serialization of the row's fields (docs/audit.md; kms.audit_payload() in
 * SQL is the same definition and kms_audit_verify() recomputes it).  The
 * role OIDs (pg_kms 1.1) are in the payload of the rows that have them, so
 * rows written before the update still verify.
 *
 * Encodings: an event's strings are in its caller's database encoding;
 * KmsAuditSanitize() makes them valid UTF-8 for the log line and valid in
 * the trail database for the row.
 *
 * IDENTIFICATION
 *	  src/audit/audit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

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

#include "audit/audit.h"

/* Settings */
bool		kms_audit_enabled = true;
int			kms_audit_queue_size = 8192;
int			kms_audit_queue_wait = 100;
int			kms_audit_aggregate_interval = 1000;	/* ms; 0: every statement */
int			kms_audit_retention = 90 * 24 * 60;

/* ----------------------------------------------------------------
 * Records
 * ----------------------------------------------------------------
 */
typedef enum KmsAuditStr
{
	S_TYPE = 0,					/* "call" or "aggregate" */
	S_DB_USER,
	S_SESSION_USER,
	S_DATABASE,
	S_CLIENT_ADDR,
	S_APP,
	S_OPERATION,
	S_RESOURCE,
	S_ARN,
	S_VERSION,
	S_OUTCOME,
	S_PARAMS,					/* a JSON object, or NULL */
	KMS_AUDIT_NSTR
} KmsAuditStr;

/* longest kept value of each string, in bytes (clipped on a character) */
static const int kms_audit_strmax[KMS_AUDIT_NSTR] = {
	15, 63, 63, 63, 63, 63, 63, 511, 511, 63, 63, 1023
};

#define KMS_AUDIT_NULL		0xFFFF
#define KMS_AUDIT_AVG_BYTES 512
#define KMS_AUDIT_MAX_RECORD 4096
#define KMS_AUDIT_BATCH		1000
#define KMS_AUDIT_PURGE_BATCH 10000

typedef struct KmsAuditRecord
{
	uint32		len;			/* MAXALIGN'd total; 0 = skip to ring start */
	int32		pid;
	TimestampTz time;			/* the call; an aggregate's first call */
	TimestampTz last_time;		/* an aggregate's last call */
	int64		count;			/* calls (1 for single events) */
	uint64		query_id;		/* top-level query id, 0 if unknown */
	uint64		seq;			/* per server start, also in the log line */
	Oid			db_user_oid;	/* the roles of db_user and session_user */
	Oid			session_user_oid;
	uint16		slen[KMS_AUDIT_NSTR];	/* lengths, KMS_AUDIT_NULL = NULL */
	char		data[FLEXIBLE_ARRAY_MEMBER];	/* the strings, each + NUL */
} KmsAuditRecord;

typedef struct KmsAuditShared
{
	LWLock	   *lock;
	ConditionVariable space;	/* broadcast when tail moves */
	uint64		head;			/* byte positions, lock */
	uint64		tail;
	uint32		nevents;
	uint32		max_events;
	uint64		capacity;		/* ring bytes, multiple of MAXIMUM_ALIGNOF */
	/* the consumer (the worker), lock */
	Latch	   *consumer_latch;
	int			consumer_pid;
	bool		consumer_draining;
	pg_atomic_uint64 seq;
	pg_atomic_uint64 enqueued;
	pg_atomic_uint64 written;
	pg_atomic_uint64 only_logged;
	pg_atomic_uint64 waits;
	char		ring[FLEXIBLE_ARRAY_MEMBER];
} KmsAuditShared;

static KmsAuditShared *kmsAudit = NULL;


/* An event being built, before it is serialized. */
typedef struct KmsAuditEvent
{
	const char *str[KMS_AUDIT_NSTR];
	TimestampTz time;
	TimestampTz last_time;
	int64		count;
	uint64		query_id;
	Oid			db_user_oid;
	Oid			session_user_oid;
} KmsAuditEvent;

/* scratch for one record; events are built one at a time per backend */
static union
{
	KmsAuditRecord rec;
	char		bytes[KMS_AUDIT_MAX_RECORD];
}			kms_recbuf;

static MemoryContext kms_audit_cxt = NULL;

static void kms_audit_shmem_exit(int code, Datum arg);

/* ----------------------------------------------------------------
 * This backend's identity, looked up once (no catalog access at abort)
 * ----------------------------------------------------------------
 */
static bool kms_ident_done = false;
static char kms_ident_database[NAMEDATALEN];
static char kms_ident_client[64];
static bool kms_ident_has_client = false;
static Oid	kms_ident_session_oid = InvalidOid;
static char kms_ident_session_user[NAMEDATALEN];

static void
KmsAuditIdentity(void)
{
	Oid			sess;

	if (!kms_ident_done)
	{
		char	   *db = OidIsValid(MyDatabaseId) ? get_database_name(MyDatabaseId) : NULL;

		strlcpy(kms_ident_database, db ? db : "", sizeof(kms_ident_database));
		kms_ident_has_client = false;
		if (MyProcPort != NULL)
		{
			/* inet_client_addr(): NULL for a Unix-domain socket */
			LOCAL_FCINFO(fcinfo, 0);
			Datum		addr;

			InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
			addr = inet_client_addr(fcinfo);
			kms_ident_has_client = true;
			if (fcinfo->isnull)
				strlcpy(kms_ident_client, "[local]", sizeof(kms_ident_client));
			else
			{
				char	   *txt = DatumGetCString(DirectFunctionCall1(inet_out, addr));

				strlcpy(kms_ident_client, txt, sizeof(kms_ident_client));
			}
		}
		kms_ident_done = true;
	}
	sess = GetSessionUserId();
	if (sess != kms_ident_session_oid)
	{
		char	   *n = GetUserNameFromId(sess, true);

		strlcpy(kms_ident_session_user, n ? n : "", sizeof(kms_ident_session_user));
		kms_ident_session_oid = sess;
	}
}

static void
KmsAuditFillIdentity(KmsAuditEvent *ev, const char *db_user, Oid db_user_oid)
{
	ev->str[S_DB_USER] = db_user;
	ev->db_user_oid = db_user_oid;
	ev->str[S_SESSION_USER] = kms_ident_session_user;
	ev->session_user_oid = kms_ident_session_oid;
	ev->str[S_DATABASE] = kms_ident_database;
	ev->str[S_CLIENT_ADDR] = kms_ident_has_client ? kms_ident_client : NULL;
	ev->str[S_APP] = (application_name && application_name[0]) ? application_name : NULL;
}

/* ----------------------------------------------------------------
 * Shared memory
 * ----------------------------------------------------------------
 */
static uint64
KmsAuditCapacity(void)
{
	return (uint64) MAXALIGN((Size) kms_audit_queue_size * KMS_AUDIT_AVG_BYTES);
}

static Size
KmsAuditShmemSize(void)
{
	return add_size(offsetof(KmsAuditShared, ring), (Size) KmsAuditCapacity());
}

void
KmsAuditShmemRequest(void)
{
	RequestAddinShmemSpace(KmsAuditShmemSize());
	RequestNamedLWLockTranche("pg_kms audit", 1);
}

void
KmsAuditShmemStartup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	kmsAudit = ShmemInitStruct("pg_kms audit queue", KmsAuditShmemSize(), &found);
	if (!found)
	{
		memset(kmsAudit, 0, offsetof(KmsAuditShared, ring));
		kmsAudit->lock = &(GetNamedLWLockTranche("pg_kms audit"))->lock;
		ConditionVariableInit(&kmsAudit->space);
		kmsAudit->capacity = KmsAuditCapacity();
		kmsAudit->max_events = kms_audit_queue_size;
		pg_atomic_init_u64(&kmsAudit->seq, 0);
		pg_atomic_init_u64(&kmsAudit->enqueued, 0);
		pg_atomic_init_u64(&kmsAudit->written, 0);
		pg_atomic_init_u64(&kmsAudit->only_logged, 0);
		pg_atomic_init_u64(&kmsAudit->waits, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ----------------------------------------------------------------
 * Serialization, queue, log line
 * ----------------------------------------------------------------
 */

/* Clip s to at most max bytes without splitting a character. */
static int
KmsAuditClip(const char *s, int max)
{
	int			len = strlen(s);

	if (len <= max)
		return len;
	return pg_mbcliplen(s, len, max);
}

static KmsAuditRecord *
KmsAuditSerialize(const KmsAuditEvent *ev, uint64 seq)
{
	KmsAuditRecord *rec = &kms_recbuf.rec;
	char	   *p = rec->data;

	rec->pid = MyProcPid;
	rec->time = ev->time;
	rec->last_time = ev->last_time;
	rec->count = ev->count;
	rec->query_id = ev->query_id;
	rec->db_user_oid = ev->db_user_oid;
	rec->session_user_oid = ev->session_user_oid;
	rec->seq = seq;
	for (int i = 0; i < KMS_AUDIT_NSTR; i++)
	{
		const char *s = ev->str[i];
		int			n;

		if (s == NULL)
		{
			rec->slen[i] = KMS_AUDIT_NULL;
			continue;
		}
		n = strlen(s);
		if (n > kms_audit_strmax[i])
		{
			/* clipped JSON would not parse: say that it was too long */
			if (i == S_PARAMS)
				s = "{\"truncated\": true}";
			n = KmsAuditClip(s, kms_audit_strmax[i]);
		}
		memcpy(p, s, n);
		p[n] = '\0';
		rec->slen[i] = (uint16) n;
		p += n + 1;
	}
	rec->len = MAXALIGN(p - (char *) rec);
	Assert(rec->len <= KMS_AUDIT_MAX_RECORD);
	return rec;
}

/* The i-th string of a record, or NULL; sets *len. */
static const char *
KmsAuditRecStr(const KmsAuditRecord *rec, int i, int *len)
{
	const char *p = rec->data;

	for (int j = 0; j < i; j++)
		if (rec->slen[j] != KMS_AUDIT_NULL)
			p += rec->slen[j] + 1;
	if (rec->slen[i] == KMS_AUDIT_NULL)
	{
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = rec->slen[i];
	return p;
}

/*
 * A copy of s (len bytes) that is valid in encoding: unchanged if it is,
 * else with every non-ASCII byte replaced by '?'.  The strings of an event
 * are in the encoding of the caller's database, which may be SQL_ASCII
 * (any bytes) or differ from the trail database's; this one rule makes
 * both the kms.audit row (the trail database's encoding) and the log line
 * (UTF-8, as JSON must be) valid.  No conversion: no catalog access, no
 * error, so it is safe at abort too.
 */
static char *
KmsAuditSanitize(const char *s, int len, int encoding)
{
	char	   *r;

	if (s == NULL)
		return NULL;
	r = pnstrdup(s, len);
	if (pg_verify_mbstr(encoding, r, len, true))
		return r;
	for (int i = 0; i < len; i++)
		if ((unsigned char) r[i] >= 0x80)
			r[i] = '?';
	return r;
}

/* The i-th string of a record made valid UTF-8 for the log line, or NULL. */
static const char *
KmsAuditLogStr(const KmsAuditRecord *rec, int i)
{
	int			len;
	const char *v = KmsAuditRecStr(rec, i, &len);

	return KmsAuditSanitize(v, len, PG_UTF8);
}

/* Append rec at head if it fits; caller holds the lock exclusively. */
static bool
KmsAuditTryAppend(const KmsAuditRecord *rec)
{
	uint64		cap = kmsAudit->capacity;
	uint64		used = kmsAudit->head - kmsAudit->tail;
	uint64		off = kmsAudit->head % cap;
	uint64		contig = cap - off;
	uint64		need = rec->len;

	if (kmsAudit->nevents >= kmsAudit->max_events)
		return false;
	if (need > contig)
		need += contig;			/* the rest of the ring is skipped */
	if (need > cap - used)
		return false;
	if (rec->len > contig)
	{
		*(uint32 *) (kmsAudit->ring + off) = 0;
		kmsAudit->head += contig;
		off = 0;
	}
	memcpy(kmsAudit->ring + off, rec, rec->len);
	kmsAudit->head += rec->len;
	kmsAudit->nevents++;
	return true;
}

/*
 * Put rec on the queue.  If it is full and the worker is draining, wait up
 * to pg_kms.audit_queue_wait for space (not at abort, and not in the worker
 * itself).  Interrupts are held meanwhile: the event must come out of here
 * either queued or logged.  Returns whether it was queued.
 */
static bool
KmsAuditEnqueue(const KmsAuditRecord *rec, bool may_wait)
{
	bool		queued;
	bool		wake = false;
	bool		can_wait;

	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	queued = KmsAuditTryAppend(rec);
	can_wait = kmsAudit->consumer_draining && kmsAudit->consumer_pid != MyProcPid;
	if (queued)
		wake = kmsAudit->nevents * 2 >= kmsAudit->max_events ||
			(kmsAudit->head - kmsAudit->tail) * 2 >= kmsAudit->capacity;
	else
		wake = true;
	if (wake && kmsAudit->consumer_latch)
		SetLatch(kmsAudit->consumer_latch);
	LWLockRelease(kmsAudit->lock);

	if (!queued && may_wait && can_wait && kms_audit_queue_wait > 0)
	{
		TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   kms_audit_queue_wait);

		pg_atomic_fetch_add_u64(&kmsAudit->waits, 1);
		HOLD_INTERRUPTS();
		ConditionVariablePrepareToSleep(&kmsAudit->space);
		for (;;)
		{
			long		remain = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

			LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
			queued = KmsAuditTryAppend(rec);
			if (!queued && kmsAudit->consumer_latch)
				SetLatch(kmsAudit->consumer_latch);
			LWLockRelease(kmsAudit->lock);
			if (queued || remain <= 0)
				break;
			(void) ConditionVariableTimedSleep(&kmsAudit->space, remain, PG_WAIT_EXTENSION);
		}
		ConditionVariableCancelSleep();
		RESUME_INTERRUPTS();
	}

	if (queued)
		pg_atomic_fetch_add_u64(&kmsAudit->enqueued, 1);
	else
		pg_atomic_fetch_add_u64(&kmsAudit->only_logged, 1);
	return queued;
}

/* ISO 8601 in UTC with microseconds: 2024-05-01T12:00:00.123456Z */
static void
KmsAuditTimeString(TimestampTz t, char *buf, size_t len)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
	{
		strlcpy(buf, "invalid", len);
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
			 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int) fsec);
}

static void
KmsAuditJsonStr(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, ",\"%s\":", name);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * The server-log line of an event (docs/audit.md):
 *   pg_kms audit: {"v":1,"seq":...,...,"queued":true}
 * Fields are always present and always in this order.  Strings are made
 * valid UTF-8 by KmsAuditSanitize() (params too: a '?' keeps the JSON
 * valid), so the line decodes whatever the caller's database encoding.
 */
static void
KmsAuditLogLine(const KmsAuditRecord *rec, bool queued)
{
	StringInfoData buf;
	char		ts[40];
	const char *params;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"v\":1,\"seq\":" UINT64_FORMAT, rec->seq);
	KmsAuditJsonStr(&buf, "type", KmsAuditLogStr(rec, S_TYPE));
	KmsAuditTimeString(rec->time, ts, sizeof(ts));
	KmsAuditJsonStr(&buf, "time", ts);
	KmsAuditTimeString(rec->last_time, ts, sizeof(ts));
	KmsAuditJsonStr(&buf, "last_time", ts);
	appendStringInfo(&buf, ",\"count\":" INT64_FORMAT, rec->count);
	KmsAuditJsonStr(&buf, "db_user", KmsAuditLogStr(rec, S_DB_USER));
	KmsAuditJsonStr(&buf, "session_user", KmsAuditLogStr(rec, S_SESSION_USER));
	KmsAuditJsonStr(&buf, "database", KmsAuditLogStr(rec, S_DATABASE));
	KmsAuditJsonStr(&buf, "client_addr", KmsAuditLogStr(rec, S_CLIENT_ADDR));
	KmsAuditJsonStr(&buf, "application_name", KmsAuditLogStr(rec, S_APP));
	appendStringInfo(&buf, ",\"pid\":%d", rec->pid);
	if (rec->query_id != 0)
		appendStringInfo(&buf, ",\"query_id\":" INT64_FORMAT, (int64) rec->query_id);
	else
		appendStringInfoString(&buf, ",\"query_id\":null");
	KmsAuditJsonStr(&buf, "operation", KmsAuditLogStr(rec, S_OPERATION));
	KmsAuditJsonStr(&buf, "resource", KmsAuditLogStr(rec, S_RESOURCE));
	KmsAuditJsonStr(&buf, "arn", KmsAuditLogStr(rec, S_ARN));
	KmsAuditJsonStr(&buf, "version", KmsAuditLogStr(rec, S_VERSION));
	KmsAuditJsonStr(&buf, "outcome", KmsAuditLogStr(rec, S_OUTCOME));
	params = KmsAuditLogStr(rec, S_PARAMS);
	appendStringInfo(&buf, ",\"params\":%s", params ? params : "null");
	appendStringInfo(&buf, ",\"queued\":%s}", queued ? "true" : "false");

	ereport(LOG_SERVER_ONLY,
			(errmsg_internal("pg_kms audit: %s", buf.data),
			 errhidestmt(true),
			 errhidecontext(true)));
	pfree(buf.data);
}

/* Queue first: the log line says whether the event is also in the queue. */
static void
KmsAuditEmit(const KmsAuditEvent *ev, bool may_wait)
{
	KmsAuditRecord *rec;
	bool		queued = false;
	uint64		seq = 0;
	MemoryContext old;

	if (kms_audit_cxt == NULL)
		kms_audit_cxt = AllocSetContextCreate(TopMemoryContext, "pg_kms audit",
											  ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(kms_audit_cxt);
	if (kmsAudit != NULL)
		seq = pg_atomic_add_fetch_u64(&kmsAudit->seq, 1);
	rec = KmsAuditSerialize(ev, seq);
	if (kmsAudit != NULL)
		queued = KmsAuditEnqueue(rec, may_wait);
	KmsAuditLogLine(rec, queued);
	MemoryContextSwitchTo(old);
	MemoryContextReset(kms_audit_cxt);
}

/* The ARN of a resource reference, if it names one we can tell. */
static char *
KmsAuditArn(const char *resource)
{
	uint8		id[KMS_KEY_ID_LEN];

	if (resource == NULL)
		return NULL;
	if (strncmp(resource, "arn:", 4) == 0)
		return pstrdup(resource);
	if (strncmp(resource, "alias/", 6) == 0)
		return psprintf("arn:aws:kms:%s:%s:%s", kms_region, KmsAccountId(), resource);
	if (KmsUuidFromString(resource, id))
		return KmsKeyArn(resource);
	return NULL;
}

/* ----------------------------------------------------------------
 * Single events
 * ----------------------------------------------------------------
 */
void
KmsAuditEx(const char *operation, const char *resource, const char *version,
		   const char *outcome, const char *params)
{
	KmsAuditEvent ev;
	char	   *db_user;
	Oid			userid;

	if (!kms_audit_enabled)
		return;
	memset(&ev, 0, sizeof(ev));
	KmsAuditIdentity();
	userid = GetUserId();
	db_user = GetUserNameFromId(userid, true);
	KmsAuditFillIdentity(&ev, db_user ? db_user : "", userid);
	ev.str[S_TYPE] = "call";
	ev.str[S_OPERATION] = operation;
	ev.str[S_RESOURCE] = resource;
	ev.str[S_ARN] = KmsAuditArn(resource);
	ev.str[S_VERSION] = version;
	ev.str[S_OUTCOME] = outcome;
	ev.str[S_PARAMS] = params;
	ev.time = ev.last_time = GetCurrentTimestamp();
	ev.count = 1;
	ev.query_id = pgstat_get_my_query_id();
	KmsAuditEmit(&ev, true);
}

void
KmsAudit(const char *operation, const char *resource, int32 version,
		 const char *outcome)
{
	char		v[16];

	if (!kms_audit_enabled)
		return;
	if (version > 0)
		snprintf(v, sizeof(v), "%d", version);
	KmsAuditEx(operation, resource, version > 0 ? v : NULL, outcome, NULL);
}

/* Request parameters: append "name": value to a JSON object body. */
void
KmsAuditParamStr(StringInfo params, const char *name, const char *value)
{
	if (params->len > 0)
		appendStringInfoString(params, ", ");
	escape_json(params, name);
	appendStringInfoString(params, ": ");
	if (value == NULL)
		appendStringInfoString(params, "null");
	else if (strlen(value) > 256)
	{
		char	   *clip = pnstrdup(value, KmsAuditClip(value, 256));

		escape_json(params, clip);
	}
	else
		escape_json(params, value);
}

void
KmsAuditParamInt(StringInfo params, const char *name, int64 value)
{
	if (params->len > 0)
		appendStringInfoString(params, ", ");
	escape_json(params, name);
	appendStringInfo(params, ": " INT64_FORMAT, value);
}

/* The JSON object of the parameters collected (palloc'd), NULL if none. */
char *
KmsAuditParams(StringInfo params)
{
	if (params->len == 0)
		return NULL;
	return psprintf("{%s}", params->data);
}

/* ----------------------------------------------------------------
 * Data-plane aggregate
 * ----------------------------------------------------------------
 */
#define KMS_AUDIT_AGG_MAX 32

typedef struct KmsAuditAgg
{
	uint8		key_id[KMS_KEY_ID_LEN];
	Oid			userid;
	int32		version;
	int32		op;
	int64		count;
	TimestampTz first;			/* first call */
	uint64		query_id;
	uint32		stmt_hash;		/* the top-level statement's text */
	char		key_id_str[37];
	char		db_user[NAMEDATALEN];
} KmsAuditAgg;

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

static void
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

/* ----------------------------------------------------------------
 * The worker's side
 * ----------------------------------------------------------------
 */
void
KmsAuditSetConsumer(Latch *latch, bool draining)
{
	if (kmsAudit == NULL)
		return;
	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	kmsAudit->consumer_latch = latch;
	kmsAudit->consumer_pid = latch ? MyProcPid : 0;
	kmsAudit->consumer_draining = latch ? draining : false;
	LWLockRelease(kmsAudit->lock);
	if (!draining)
		ConditionVariableBroadcast(&kmsAudit->space);
}

uint32
KmsAuditQueueLength(void)
{
	uint32		n;

	if (kmsAudit == NULL)
		return 0;
	LWLockAcquire(kmsAudit->lock, LW_SHARED);
	n = kmsAudit->nevents;
	LWLockRelease(kmsAudit->lock);
	return n;
}

uint64
KmsAuditWritten(void)
{
	return kmsAudit ? pg_atomic_read_u64(&kmsAudit->written) : 0;
}

uint64
KmsAuditOnlyLogged(void)
{
	return kmsAudit ? pg_atomic_read_u64(&kmsAudit->only_logged) : 0;
}

/* what the last drain consumed, released once its transaction commits */
static uint64 kms_drain_tail = 0;
static uint32 kms_drain_n = 0;

/*
 * The insert, with the role OID columns (pg_kms 1.1) or without them (a
 * database still at 1.0, until ALTER EXTENSION pg_kms UPDATE adds them).
 */
static SPIPlanPtr kms_insert_plan[2] = {NULL, NULL};

#define KMS_AUDIT_NCOLS_1_0 20
#define KMS_AUDIT_NCOLS 22

static const char *const kms_insert_sql[2] = {
	"INSERT INTO kms.audit_log (id, event_time, last_time, event_count, event_type, "
	"db_user, session_user_name, database, client_addr, application_name, "
	"backend_pid, query_id, operation, resource_id, resource_arn, version, "
	"outcome, parameters, prev_hash, row_hash) VALUES "
	"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
	"INSERT INTO kms.audit_log (id, event_time, last_time, event_count, event_type, "
	"db_user, session_user_name, database, client_addr, application_name, "
	"backend_pid, query_id, operation, resource_id, resource_arn, version, "
	"outcome, parameters, prev_hash, row_hash, db_user_oid, session_user_oid) VALUES "
	"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
};

static const Oid kms_insert_types[KMS_AUDIT_NCOLS] = {
	INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT4OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, JSONBOID, BYTEAOID, BYTEAOID, OIDOID, OIDOID
};

/* Append one hash-payload field: uint32 big-endian length + UTF-8 bytes. */
static void
KmsAuditHashField(StringInfo buf, const char *s)
{
	uint32		n;
	uint8		be[4];

	if (s == NULL)
	{
		appendBinaryStringInfo(buf, "\xff\xff\xff\xff", 4);
		return;
	}
	s = pg_server_to_any(s, strlen(s), PG_UTF8);
	n = strlen(s);
	be[0] = n >> 24;
	be[1] = n >> 16;
	be[2] = n >> 8;
	be[3] = n;
	appendBinaryStringInfo(buf, (char *) be, 4);
	appendBinaryStringInfo(buf, s, n);
}

static char *
KmsAuditEpochUs(TimestampTz t)
{
	return psprintf(INT64_FORMAT,
					(int64) t + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
}

/*
 * Insert one record as row id, chained to prev (32 bytes); the new row's
 * hash goes to prev.  with_oids: the table has the role OID columns, which
 * are then filled and hashed (fields 19 and 20).
 */
static void
KmsAuditInsert(const KmsAuditRecord *rec, int64 id, uint8 *prev, bool with_oids)
{
	Datum		values[KMS_AUDIT_NCOLS];
	char		nulls[KMS_AUDIT_NCOLS];
	char	   *s[KMS_AUDIT_NSTR];
	char	   *params_text = NULL;
	StringInfoData h;
	uint8		hash[32];
	unsigned int hlen = 0;
	bytea	   *prevb,
			   *hashb;
	int			rc;

	memset(nulls, ' ', sizeof(nulls));
	for (int i = 0; i < KMS_AUDIT_NSTR; i++)
	{
		int			len;
		const char *v = KmsAuditRecStr(rec, i, &len);

		s[i] = KmsAuditSanitize(v, len, GetDatabaseEncoding());
	}
	if (s[S_PARAMS] != NULL)
	{
		Datum		jb = DirectFunctionCall1(jsonb_in, CStringGetDatum(s[S_PARAMS]));
		Jsonb	   *j = DatumGetJsonbP(jb);

		params_text = JsonbToCString(NULL, &j->root, VARSIZE(j));
		values[17] = jb;
	}
	else
		nulls[17] = 'n';

	/* the payload: field order and forms as in docs/audit.md */
	initStringInfo(&h);
	appendBinaryStringInfo(&h, (char *) prev, 32);
	KmsAuditHashField(&h, psprintf(INT64_FORMAT, id));
	KmsAuditHashField(&h, KmsAuditEpochUs(rec->time));
	KmsAuditHashField(&h, KmsAuditEpochUs(rec->last_time));
	KmsAuditHashField(&h, psprintf(INT64_FORMAT, rec->count));
	KmsAuditHashField(&h, s[S_TYPE]);
	KmsAuditHashField(&h, s[S_DB_USER]);
	KmsAuditHashField(&h, s[S_SESSION_USER]);
	KmsAuditHashField(&h, s[S_DATABASE]);
	KmsAuditHashField(&h, s[S_CLIENT_ADDR]);
	KmsAuditHashField(&h, s[S_APP]);
	KmsAuditHashField(&h, psprintf("%d", rec->pid));
	KmsAuditHashField(&h, rec->query_id ? psprintf(INT64_FORMAT, (int64) rec->query_id) : NULL);
	KmsAuditHashField(&h, s[S_OPERATION]);
	KmsAuditHashField(&h, s[S_RESOURCE]);
	KmsAuditHashField(&h, s[S_ARN]);
	KmsAuditHashField(&h, s[S_VERSION]);
	KmsAuditHashField(&h, s[S_OUTCOME]);
	KmsAuditHashField(&h, params_text);
	if (with_oids)
	{
		/* only rows that have them: rows written before 1.1 still verify */
		KmsAuditHashField(&h, OidIsValid(rec->db_user_oid) ? psprintf("%u", rec->db_user_oid) : NULL);
		KmsAuditHashField(&h, OidIsValid(rec->session_user_oid) ? psprintf("%u", rec->session_user_oid) : NULL);
	}
	if (EVP_Digest(h.data, h.len, hash, &hlen, EVP_sha256(), NULL) != 1 || hlen != 32)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INTERNAL), errhidestmt(true),
				 errmsg("KMSInternalException: SHA-256 failed")));

	prevb = palloc(VARHDRSZ + 32);
	SET_VARSIZE(prevb, VARHDRSZ + 32);
	memcpy(VARDATA(prevb), prev, 32);
	hashb = palloc(VARHDRSZ + 32);
	SET_VARSIZE(hashb, VARHDRSZ + 32);
	memcpy(VARDATA(hashb), hash, 32);

	values[0] = Int64GetDatum(id);
	values[1] = TimestampTzGetDatum(rec->time);
	values[2] = TimestampTzGetDatum(rec->last_time);
	values[3] = Int64GetDatum(rec->count);
	for (int i = 0; i < 6; i++)
	{
		static const int map[6] = {S_TYPE, S_DB_USER, S_SESSION_USER, S_DATABASE, S_CLIENT_ADDR, S_APP};

		if (s[map[i]])
			values[4 + i] = CStringGetTextDatum(s[map[i]]);
		else
			nulls[4 + i] = 'n';
	}
	values[10] = Int32GetDatum(rec->pid);
	if (rec->query_id)
		values[11] = Int64GetDatum((int64) rec->query_id);
	else
		nulls[11] = 'n';
	for (int i = 0; i < 5; i++)
	{
		static const int map[5] = {S_OPERATION, S_RESOURCE, S_ARN, S_VERSION, S_OUTCOME};

		if (s[map[i]])
			values[12 + i] = CStringGetTextDatum(s[map[i]]);
		else
			nulls[12 + i] = 'n';
	}
	values[18] = PointerGetDatum(prevb);
	values[19] = PointerGetDatum(hashb);
	if (with_oids)
	{
		values[20] = ObjectIdGetDatum(rec->db_user_oid);
		nulls[20] = OidIsValid(rec->db_user_oid) ? ' ' : 'n';
		values[21] = ObjectIdGetDatum(rec->session_user_oid);
		nulls[21] = OidIsValid(rec->session_user_oid) ? ' ' : 'n';
	}

	rc = SPI_execute_plan(kms_insert_plan[with_oids ? 1 : 0], values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "pg_kms audit: insert into kms.audit_log failed (%d)", rc);
	memcpy(prev, hash, 32);
}

/*
 * Move up to KMS_AUDIT_BATCH queued events into kms.audit_log.  Runs in
 * the worker's transaction with SPI connected; the events leave the queue
 * only in KmsAuditDrainCommitted().  Returns true if more are queued.
 */
bool
KmsAuditDrain(void)
{
	uint64		head,
				pos,
				cap;
	int64		id = 0;
	uint8		prev[32];
	uint32		n = 0;
	Oid			relid;
	bool		with_oids;
	MemoryContext cxt,
				old;

	kms_drain_n = 0;
	if (kmsAudit == NULL)
		return false;
	LWLockAcquire(kmsAudit->lock, LW_SHARED);
	head = kmsAudit->head;
	pos = kmsAudit->tail;
	LWLockRelease(kmsAudit->lock);
	if (pos == head)
		return false;
	cap = kmsAudit->capacity;

	/*
	 * Which columns the table has: locked first, so that an ALTER EXTENSION
	 * UPDATE adding the OID columns is either all before us or all after.
	 */
	relid = get_relname_relid("audit_log", get_namespace_oid("kms", false));
	if (!OidIsValid(relid))
		elog(ERROR, "pg_kms audit: table kms.audit_log does not exist");
	LockRelationOid(relid, RowExclusiveLock);
	with_oids = get_attnum(relid, "db_user_oid") != InvalidAttrNumber &&
		get_attnum(relid, "session_user_oid") != InvalidAttrNumber;
	if (kms_insert_plan[with_oids] == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(kms_insert_sql[with_oids],
									with_oids ? KMS_AUDIT_NCOLS : KMS_AUDIT_NCOLS_1_0,
									(Oid *) kms_insert_types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "pg_kms audit: could not prepare the insert into kms.audit_log");
		kms_insert_plan[with_oids] = p;
	}

	/* the chain's last link; the table is written by this process only */
	if (SPI_execute("SELECT id, row_hash FROM kms.audit_log ORDER BY id DESC LIMIT 1",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pg_kms audit: could not read kms.audit_log");
	memset(prev, 0, sizeof(prev));
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d;

		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		id = DatumGetInt64(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(b) == 32)
				memcpy(prev, VARDATA_ANY(b), 32);
		}
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "pg_kms audit drain",
								ALLOCSET_DEFAULT_SIZES);
	while (pos < head && n < KMS_AUDIT_BATCH)
	{
		uint64		off = pos % cap;
		const KmsAuditRecord *rec = (const KmsAuditRecord *) (kmsAudit->ring + off);

		CHECK_FOR_INTERRUPTS();
		if (rec->len == 0)
		{
			pos += cap - off;
			continue;
		}
		old = MemoryContextSwitchTo(cxt);
		KmsAuditInsert(rec, ++id, prev, with_oids);
		MemoryContextSwitchTo(old);
		MemoryContextReset(cxt);
		pos += rec->len;
		n++;
	}
	MemoryContextDelete(cxt);
	kms_drain_tail = pos;
	kms_drain_n = n;
	return pos < head || head != kmsAudit->head;
}

void
KmsAuditDrainCommitted(void)
{
	if (kms_drain_n == 0 || kmsAudit == NULL)
		return;
	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	kmsAudit->tail = kms_drain_tail;
	kmsAudit->nevents -= kms_drain_n;
	if (kmsAudit->tail == kmsAudit->head)
	{
		/* empty: start over at offset 0, fewer wraps */
		kmsAudit->head = kmsAudit->tail = 0;
	}
	LWLockRelease(kmsAudit->lock);
	pg_atomic_fetch_add_u64(&kmsAudit->written, kms_drain_n);
	kms_drain_n = 0;
	ConditionVariableBroadcast(&kmsAudit->space);
}

void
KmsAuditDrainAborted(void)
{
	kms_drain_n = 0;
}

/*
 * Retention: delete the oldest rows older than pg_kms.audit_retention,
 * keeping the rows as a contiguous suffix of ids (and always the newest
 * row, the chain's anchor).  Returns true if more are due.
 */
bool
KmsAuditPurge(void)
{
	static TimestampTz last_purge = 0;
	TimestampTz now = GetCurrentTimestamp();
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	int			rc;

	if (kms_audit_retention <= 0)
		return false;
	if (last_purge != 0 && !TimestampDifferenceExceeds(last_purge, now, 60 * 1000))
		return false;
	values[0] = Int32GetDatum(kms_audit_retention);
	rc = SPI_execute_with_args(
							   "WITH bound AS ("
							   "  SELECT coalesce((SELECT min(id) FROM kms.audit_log"
							   "                    WHERE event_time >= pg_catalog.now() - pg_catalog.make_interval(mins => $1)),"
							   "                  (SELECT max(id) FROM kms.audit_log)) AS keep_from) "
							   "DELETE FROM kms.audit_log WHERE id IN ("
							   "  SELECT id FROM kms.audit_log, bound WHERE id < bound.keep_from"
							   "  ORDER BY id LIMIT 10000)",
							   1, types, values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "pg_kms audit: retention purge failed (%d)", rc);
	if (SPI_processed < KMS_AUDIT_PURGE_BATCH)
	{
		last_purge = now;
		return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 * SQL: kms_audit_stats()
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(kms_audit_stats);
Datum
kms_audit_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {0};

	KmsCheckPreloaded(kmsAudit != NULL);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(kmsAudit->lock, LW_SHARED);
	values[0] = Int32GetDatum((int32) kmsAudit->max_events);
	values[1] = Int32GetDatum((int32) kmsAudit->nevents);
	values[2] = Int64GetDatum((int64) kmsAudit->capacity);
	values[3] = Int64GetDatum((int64) (kmsAudit->head - kmsAudit->tail));
	values[8] = BoolGetDatum(kmsAudit->consumer_draining);
	LWLockRelease(kmsAudit->lock);
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->enqueued));
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->written));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->only_logged));
	values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->waits));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
