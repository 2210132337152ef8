/*-------------------------------------------------------------------------
 *
 * audit_internal.h
 *	  The audit trail's internal interface, shared by the files of
 *	  src/audit/ only: event.c (identity, the shared queue, serialization,
 *	  the log line, single events), aggregate.c (the data-plane aggregate,
 *	  statement and transaction ends, settings), drain.c (the worker's
 *	  drain into kms.audit_log, retention, kms_audit_stats), parallel.c
 *	  (parallel workers' data-plane counts handed to their leader).  Owns
 *	  kms.audit_log and the pg_kms.audit* settings.  May call: catalog/,
 *	  common/, crypto/.
 *
 *	  The audit trail: event creation, the backend-local aggregate of
 *	  data-plane calls, the bounded shared-memory queue, the server-log
 *	  line, and the drain into kms.audit_log that the worker runs.
 *
 * An event is created by the call it describes, in the caller's backend:
 * KmsAudit()/KmsAuditEx() for management calls, secret reads and denied
 * calls; KmsAuditData() counts a successful data-plane call into a small
 * backend-local table keyed by (key, operation, version, role), which is
 * flushed as one event per entry at the end of the top-level statement and
 * at transaction end (commit or abort); KmsAuditRead() does the same for
 * successful secret reads unless pg_kms.audit_secret_reads = 'each'.  Creating an event means, at once:
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
 * tail are monotonically increasing byte positions (never reset, so a
 * position names one record for the life of the server); a record that
 * does not fit before the end of the ring leaves a zero length word there
 * and starts at offset 0.  Every record carries the OID of the database it
 * belongs to: the audit worker of that database (one per database,
 * worker/launcher.c) drains it into that database's kms.audit_log.  Many
 * consumers share the one ring: each copies its own database's records out
 * under the lock, inserts them, and once that transaction committed marks
 * them KMS_AUDIT_REC_DONE; tail then advances over every leading record
 * that is done, so a failed drain leaves its records queued.  A record
 * whose database has no draining worker (not served, worker stopped or
 * restarting) would hold tail, and fill the ring behind it for every other
 * database: on a primary the launcher (the "janitor") discards such
 * records once the queue is half full (KmsAuditDiscardDatabases; they are
 * in the server log).  A producer wakes the janitor when the fill level
 * rises past a mark (half, three quarters, full) while the record at tail
 * has no draining consumer; each mark wakes it once until the level falls
 * again, so a queue kept half full by a database whose events the launcher
 * keeps (a worker starting) cannot make it spin.  Producers wait for room
 * if the consumer of the database at tail is draining, or if that database
 * has no consumer and the janitor runs on a primary.
 *
 * Restarts: at a clean postmaster exit the records still queued are
 * written to KMS_AUDIT_QUEUE_FILE, and loaded back at the next start (as
 * pg_stat_statements keeps its file), so a clean shutdown or restart loses
 * nothing queued.  A crash of any backend resets shared memory without
 * writing the file: whatever was still queued then is in the server log
 * only.  Records hold only what the row will hold (no plaintext, no key
 * material: see KmsAuditEx's callers); the file is mode 0600 in PGDATA.
 *
 * Locking: the named LWLock "pg_kms audit" guards head, tail, nevents,
 * the ring bytes, the records' flags and the consumer table; LW_EXCLUSIVE
 * to append, to mark records done or to advance tail, LW_SHARED to read
 * positions and to copy records out (a consumer never keeps a pointer into
 * the ring after releasing the lock: another consumer's commit can move
 * tail past bytes it was reading).  Counters are atomics.  The condition
 * variable `space` is broadcast when tail moves.
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
 *	  src/audit/audit_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_AUDIT_INTERNAL_H
#define PG_KMS_AUDIT_INTERNAL_H

#include "audit/audit.h"
#include "utils/timestamp.h"
#include "storage/condition_variable.h"
#include "port/atomics.h"
#include "storage/lwlock.h"

/* Settings */


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

#define KMS_AUDIT_NULL		0xFFFF

#define KMS_AUDIT_AVG_BYTES 512

#define KMS_AUDIT_MAX_RECORD 4096

#define KMS_AUDIT_BATCH		1000

#define KMS_AUDIT_PURGE_BATCH 10000

#define KMS_AUDIT_REC_DONE	0x0001	/* in kms.audit_log (or discarded) */

typedef struct KmsAuditRecord
{
	uint32		len;			/* MAXALIGN'd total; 0 = skip to ring start */
	uint32		flags;			/* KMS_AUDIT_REC_*, under the lock */
	Oid			dboid;			/* the database whose kms.audit_log gets it */
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
	/* the consumers (one audit worker per database), lock */
	int			max_consumers;
	pg_atomic_uint64 seq;
	pg_atomic_uint64 enqueued;
	pg_atomic_uint64 written;
	pg_atomic_uint64 only_logged;
	pg_atomic_uint64 waits;
	/* the launcher, which discards what no consumer drains (lock) */
	Latch	   *janitor;
	int			janitor_level;	/* the fill level it was last woken for */
	char		ring[FLEXIBLE_ARRAY_MEMBER];
} KmsAuditShared;

/* A consumer: the audit worker of one database (lock). */
typedef struct KmsAuditConsumer
{
	Oid			dboid;			/* InvalidOid: free */
	Latch	   *latch;
	int			pid;
	bool		draining;
} KmsAuditConsumer;

/* the queue kept across a clean restart, in PGDATA (see above) */
#define KMS_AUDIT_QUEUE_FILE	"pg_stat/pg_kms_audit_queue.stat"
#define KMS_AUDIT_QUEUE_MAGIC	0x4b4d5351	/* "KMSQ" */
#define KMS_AUDIT_QUEUE_VERSION 1

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
	Oid			dboid;			/* the caller's database */
} KmsAuditEvent;

/* ----------------------------------------------------------------
 * Data-plane aggregate
 * ----------------------------------------------------------------
 */
/*
 * Aggregates one backend holds before it flushes them all: one per (op,
 * key, version, role, statement), so a statement that cycles through many
 * keys still makes one row per key, not one per call.
 */
#define KMS_AUDIT_AGG_MAX 1024

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

/*
 * Successful secret reads (KmsAuditRead), with pg_kms.audit_secret_reads =
 * 'aggregate': a backend-local table keyed by everything an event says but
 * its time (role, session user, operation, resource, version, parameters)
 * and the statement; its strings live in a memory context of their own,
 * reset at each flush.
 */
#define KMS_AUDIT_READ_MAX 32

typedef struct KmsAuditReadAgg
{
	Oid			userid;
	Oid			session_oid;
	uint32		stmt_hash;
	int64		count;
	TimestampTz first;
	uint64		query_id;
	char	   *operation;
	char	   *resource;
	char	   *version;		/* NULL: none */
	char	   *params;			/* NULL: none */
	char		db_user[NAMEDATALEN];
	char		session_user[NAMEDATALEN];
} KmsAuditReadAgg;

/*
 * Parallel workers (parallel.c): a worker folds its data-plane aggregate
 * into its leader's slot in shared memory; the leader absorbs the slot into
 * its own aggregate (with its own statement) at ExecutorEnd and before it
 * flushes.  KMS_AUDIT_PAR_MAX entries per leader; what does not fit is
 * emitted by the worker as its own events.
 */
#define KMS_AUDIT_PAR_MAX 16

extern void KmsAuditParallelShmemRequest(void);
extern void KmsAuditParallelShmemStartup(void);
extern int	KmsAuditParallelFold(KmsAuditAgg *aggs, int n);	/* in a worker */
extern int	KmsAuditParallelTake(KmsAuditAgg *out, bool *own, int max);	/* in a leader */
extern bool KmsAuditParallelPending(void);

#define KMS_AUDIT_NCOLS_1_0 20

#define KMS_AUDIT_NCOLS 22

/* Shared between the files of this folder */
extern int	kms_audit_aggregate_interval;	/* pg_kms.audit_aggregate_interval, ms */
extern KmsAuditShared *kmsAudit;
extern KmsAuditConsumer *kmsAuditConsumers;	/* [max_consumers] */

extern void KmsAuditIdentity(void);
extern void KmsAuditFillIdentity(KmsAuditEvent *ev, const char *db_user, Oid db_user_oid);
extern const char *KmsAuditRecStr(const KmsAuditRecord *rec, int i, int *len);
extern char *KmsAuditSanitize(const char *s, int len, int encoding);
extern void KmsAuditEmit(const KmsAuditEvent *ev, bool may_wait);
extern char *KmsAuditArn(const char *resource);
extern void kms_audit_shmem_exit(int code, Datum arg);
extern KmsAuditConsumer *KmsAuditFindConsumer(Oid dboid);	/* lock held */
extern void KmsAuditAdvanceTail(void);	/* lock held exclusively */
extern int	KmsAuditFillLevel(void);	/* lock held */

#endif							/* PG_KMS_AUDIT_INTERNAL_H */
