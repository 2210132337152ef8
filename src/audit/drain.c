/*-------------------------------------------------------------------------
 *
 * drain.c
 *	  The workers' side: each database's audit worker drains that
 *	  database's events from the shared queue into its kms.audit_log with
 *	  the hash chain (computed in queue order, then the whole batch inserted
 *	  at once: heap_multi_insert, or one SQL insert when the table has
 *	  something the direct insert would skip), and applies retention; the
 *	  launcher discards the events of databases that are gone, and of those
 *	  that no audit worker drains when they would hold up the others;
 *	  kms_audit_stats().
 *
 * IDENTIFICATION
 *	  src/audit/drain.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "parser/parse_relation.h"
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "audit/audit_internal.h"
#include "catalog/guard.h"

/* ----------------------------------------------------------------
 * The worker's side
 * ----------------------------------------------------------------
 */
void
KmsAuditSetConsumer(Latch *latch, bool draining)
{
	KmsAuditConsumer *c;

	if (kmsAudit == NULL || !OidIsValid(MyDatabaseId))
		return;
	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	c = KmsAuditFindConsumer(MyDatabaseId);
	if (c == NULL && latch != NULL)
	{
		for (int i = 0; i < kmsAudit->max_consumers; i++)
			if (!OidIsValid(kmsAuditConsumers[i].dboid))
			{
				c = &kmsAuditConsumers[i];
				break;
			}
	}
	if (c != NULL && latch != NULL)
	{
		c->dboid = MyDatabaseId;
		c->latch = latch;
		c->pid = MyProcPid;
		c->draining = draining;
	}
	else if (c != NULL && c->pid == MyProcPid)
		memset(c, 0, sizeof(*c));
	LWLockRelease(kmsAudit->lock);
	if (!draining)
		ConditionVariableBroadcast(&kmsAudit->space);
}

/* Is the consumer of the caller's database draining?  (kms_audit_stats) */
static bool
KmsAuditMyConsumerDraining(void)
{
	KmsAuditConsumer *c = KmsAuditFindConsumer(MyDatabaseId);

	return c != NULL && c->draining;
}

uint64
KmsAuditQueueHead(void)
{
	uint64		head;

	if (kmsAudit == NULL)
		return 0;
	LWLockAcquire(kmsAudit->lock, LW_SHARED);
	head = kmsAudit->head;
	LWLockRelease(kmsAudit->lock);
	return head;
}

/*
 * Mark done, without writing them, the queued events of dboid before
 * position `before` (whose database no longer has pg_kms, or is gone when
 * keep() says so); they are in the server log.  Returns how many.
 */
static uint32
KmsAuditDiscardWhere(Oid dboid, uint64 before, const Oid *keep, int nkeep)
{
	uint64		cap,
				pos;
	uint32		n = 0;

	if (kmsAudit == NULL)
		return 0;
	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	cap = kmsAudit->capacity;
	for (pos = kmsAudit->tail; pos < kmsAudit->head && pos < before;)
	{
		KmsAuditRecord *rec = (KmsAuditRecord *) (kmsAudit->ring + pos % cap);
		bool		discard;

		if (rec->len == 0)
		{
			pos += cap - pos % cap;
			continue;
		}
		if (keep != NULL)
		{
			discard = true;
			for (int i = 0; i < nkeep && discard; i++)
				if (keep[i] == rec->dboid)
					discard = false;
		}
		else
			discard = rec->dboid == dboid;
		if (discard && !(rec->flags & KMS_AUDIT_REC_DONE))
		{
			rec->flags |= KMS_AUDIT_REC_DONE;
			kmsAudit->nevents--;
			n++;
		}
		pos += rec->len;
	}
	if (n > 0)
		KmsAuditAdvanceTail();
	LWLockRelease(kmsAudit->lock);
	if (n > 0)
	{
		pg_atomic_fetch_add_u64(&kmsAudit->only_logged, n);
		ConditionVariableBroadcast(&kmsAudit->space);
	}
	return n;
}

uint32
KmsAuditDiscardDatabase(Oid dboid, uint64 before)
{
	return KmsAuditDiscardWhere(dboid, before, NULL, 0);
}

/* Discard the events of every database not in dboids[n] (dropped ones). */
uint32
KmsAuditDiscardMissing(const Oid *dboids, int n)
{
	return KmsAuditDiscardWhere(InvalidOid, PG_UINT64_MAX, dboids, n);
}

/* ----------------------------------------------------------------
 * The launcher's side: what no consumer drains
 * ----------------------------------------------------------------
 */
void
KmsAuditSetJanitor(Latch *latch)
{
	if (kmsAudit == NULL)
		return;
	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	kmsAudit->janitor = latch;
	kmsAudit->janitor_level = KMS_AUDIT_FILL_LOW;
	LWLockRelease(kmsAudit->lock);
	if (latch == NULL)
		ConditionVariableBroadcast(&kmsAudit->space);	/* no one to wait for */
}

int
KmsAuditQueueFill(void)
{
	int			level;

	if (kmsAudit == NULL)
		return KMS_AUDIT_FILL_LOW;
	LWLockAcquire(kmsAudit->lock, LW_SHARED);
	level = KmsAuditFillLevel();
	LWLockRelease(kmsAudit->lock);
	return level;
}

static int
KmsAuditOidCmp(const void *a, const void *b)
{
	Oid			x = *(const Oid *) a;
	Oid			y = *(const Oid *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Mark done, without writing them, every queued event of the databases
 * dboids[n] that have no consumer now (the launcher's choice: databases
 * whose audit worker is not running and is not coming soon); they are in
 * the server log.  A database that has a consumer is skipped: its worker
 * may be draining, and its drain must find its records as it copied them
 * (KmsAuditDrainCommitted).  counts[i] gets how many of dboids[i]'s were
 * discarded; returns the total, also added to events_only_logged.
 */
uint32
KmsAuditDiscardDatabases(const Oid *dboids, int n, uint32 *counts)
{
	Oid		   *sorted;
	uint32	   *found;
	int			nsorted = 0;
	uint32		total = 0;
	uint64		cap;

	memset(counts, 0, sizeof(uint32) * n);
	if (kmsAudit == NULL || n <= 0)
		return 0;
	sorted = palloc(sizeof(Oid) * n);
	found = palloc0(sizeof(uint32) * n);

	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
		if (KmsAuditFindConsumer(dboids[i]) == NULL)
			sorted[nsorted++] = dboids[i];
	if (nsorted > 0)
	{
		qsort(sorted, nsorted, sizeof(Oid), KmsAuditOidCmp);
		cap = kmsAudit->capacity;
		for (uint64 pos = kmsAudit->tail; pos < kmsAudit->head;)
		{
			KmsAuditRecord *rec = (KmsAuditRecord *) (kmsAudit->ring + pos % cap);
			Oid		   *hit;

			if (rec->len == 0)
			{
				pos += cap - pos % cap;
				continue;
			}
			if (!(rec->flags & KMS_AUDIT_REC_DONE) &&
				(hit = bsearch(&rec->dboid, sorted, nsorted, sizeof(Oid), KmsAuditOidCmp)) != NULL)
			{
				rec->flags |= KMS_AUDIT_REC_DONE;
				kmsAudit->nevents--;
				found[hit - sorted]++;
				total++;
			}
			pos += rec->len;
		}
		if (total > 0)
			KmsAuditAdvanceTail();
	}
	LWLockRelease(kmsAudit->lock);

	if (total > 0)
	{
		for (int i = 0; i < n; i++)
		{
			Oid		   *hit = bsearch(&dboids[i], sorted, nsorted, sizeof(Oid), KmsAuditOidCmp);

			if (hit != NULL)
			{
				counts[i] = found[hit - sorted];
				found[hit - sorted] = 0;	/* a database listed twice counts once */
			}
		}
		pg_atomic_fetch_add_u64(&kmsAudit->only_logged, total);
		ConditionVariableBroadcast(&kmsAudit->space);
	}
	pfree(sorted);
	pfree(found);
	return total;
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

/*
 * What the last drain consumed (the positions of its records), marked done
 * once its transaction commits.
 */
static uint64 *kms_drain_pos = NULL;
static char *kms_drain_copy = NULL;		/* the records copied out */
static MemoryContext kms_drain_cxt = NULL;	/* the rows being built */
static uint32 kms_drain_n = 0;

/* the most bytes one drain copies out of the ring */
#define KMS_AUDIT_DRAIN_BYTES (1024 * 1024)

/*
 * The insert, with the role OID columns (pg_kms 1.1) or without them (a
 * database still at 1.0, until ALTER EXTENSION pg_kms UPDATE adds them):
 * one statement per drain, its rows given as one array per column, so the
 * executor, the statement trigger and the plan run once per batch, not
 * once per event.  unnest() returns the elements in order: the rows go in
 * in queue order, with the ids and hashes computed here.
 */
static SPIPlanPtr kms_insert_plan[2] = {NULL, NULL};

#define KMS_AUDIT_COLS_SQL \
	"id, event_time, last_time, event_count, event_type, " \
	"db_user, session_user_name, database, client_addr, application_name, " \
	"backend_pid, query_id, operation, resource_id, resource_arn, version, " \
	"outcome, parameters, prev_hash, row_hash"

#define U(n) "pg_catalog.unnest($" #n ")"
#define KMS_AUDIT_UNNEST_20 \
	U(1) ", " U(2) ", " U(3) ", " U(4) ", " U(5) ", " U(6) ", " U(7) ", " \
	U(8) ", " U(9) ", " U(10) ", " U(11) ", " U(12) ", " U(13) ", " U(14) ", " \
	U(15) ", " U(16) ", " U(17) ", " U(18) ", " U(19) ", " U(20)

/* ROWS FROM of qualified unnest()s: the multi-argument unnest() is not qualified */
static const char *const kms_insert_sql[2] = {
	"INSERT INTO kms.audit_log (" KMS_AUDIT_COLS_SQL ") "
	"SELECT * FROM ROWS FROM (" KMS_AUDIT_UNNEST_20 ")",
	"INSERT INTO kms.audit_log (" KMS_AUDIT_COLS_SQL ", db_user_oid, session_user_oid) "
	"SELECT * FROM ROWS FROM (" KMS_AUDIT_UNNEST_20 ", " U(21) ", " U(22) ")"
};
#undef U

/* the columns' element types; the statement's parameters are arrays of them */
static const Oid kms_insert_types[KMS_AUDIT_NCOLS] = {
	INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT4OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, JSONBOID, BYTEAOID, BYTEAOID, OIDOID, OIDOID
};

/* The rows of one drain, column by column. */
typedef struct KmsAuditRows
{
	int			n;
	Datum	   *values[KMS_AUDIT_NCOLS];	/* [KMS_AUDIT_BATCH] each */
	bool	   *nulls[KMS_AUDIT_NCOLS];
	StringInfoData hashbuf;		/* the hash payload, reused row after row */
} KmsAuditRows;

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

/* v in decimal, into buf (MAXINT8LEN + 1 bytes); no allocation */
static char *
KmsAuditI64(int64 v, char *buf)
{
	pg_lltoa(v, buf);
	return buf;
}

static int64
KmsAuditEpochUs(TimestampTz t)
{
	return (int64) t + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
}

/*
 * The row hash of an audit row: SHA-256 of the previous row's hash and the
 * row's fields (s: its strings, sanitized), in the order and forms
 * docs/audit.md gives (kms.audit_payload() computes the same in SQL).
 * h: a buffer to reuse.
 */
static void
KmsAuditRowHash(StringInfo h, const KmsAuditRecord *rec, int64 id, const uint8 *prev,
				char **s, const char *params_text, bool with_oids, uint8 *hash)
{
	unsigned int hlen = 0;
	char		n[MAXINT8LEN + 1];

	resetStringInfo(h);
	appendBinaryStringInfo(h, (const char *) prev, 32);
	KmsAuditHashField(h, KmsAuditI64(id, n));
	KmsAuditHashField(h, KmsAuditI64(KmsAuditEpochUs(rec->time), n));
	KmsAuditHashField(h, KmsAuditI64(KmsAuditEpochUs(rec->last_time), n));
	KmsAuditHashField(h, KmsAuditI64(rec->count, n));
	KmsAuditHashField(h, s[S_TYPE]);
	KmsAuditHashField(h, s[S_DB_USER]);
	KmsAuditHashField(h, s[S_SESSION_USER]);
	KmsAuditHashField(h, s[S_DATABASE]);
	KmsAuditHashField(h, s[S_CLIENT_ADDR]);
	KmsAuditHashField(h, s[S_APP]);
	KmsAuditHashField(h, KmsAuditI64(rec->pid, n));
	KmsAuditHashField(h, rec->query_id ? KmsAuditI64((int64) rec->query_id, n) : NULL);
	KmsAuditHashField(h, s[S_OPERATION]);
	KmsAuditHashField(h, s[S_RESOURCE]);
	KmsAuditHashField(h, s[S_ARN]);
	KmsAuditHashField(h, s[S_VERSION]);
	KmsAuditHashField(h, s[S_OUTCOME]);
	KmsAuditHashField(h, params_text);
	if (with_oids)
	{
		/* only rows that have them: rows written before 1.1 still verify */
		KmsAuditHashField(h, OidIsValid(rec->db_user_oid) ? KmsAuditI64(rec->db_user_oid, n) : NULL);
		KmsAuditHashField(h, OidIsValid(rec->session_user_oid) ? KmsAuditI64(rec->session_user_oid, n) : NULL);
	}
	if (EVP_Digest(h->data, h->len, hash, &hlen, EVP_sha256(), NULL) != 1 || hlen != 32)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INTERNAL), errhidestmt(true),
				 errmsg("KMSInternalException: SHA-256 failed")));
}

/*
 * Add one record to rows as row id, chained to prev (32 bytes); the new
 * row's hash goes to prev.  with_oids: the table has the role OID columns,
 * which are then filled and hashed (fields 19 and 20).
 */
static void
KmsAuditAddRow(KmsAuditRows *rows, const KmsAuditRecord *rec, int64 id,
			   uint8 *prev, bool with_oids)
{
	int			r = rows->n;
	char	   *s[KMS_AUDIT_NSTR];
	char	   *params_text = NULL;
	uint8		hash[32];
	bytea	   *prevb,
			   *hashb;

	/*
	 * Valid in the trail database's encoding; in a SQL_ASCII database (which
	 * accepts any bytes, and now holds its own trail) valid UTF-8, as the
	 * hash payload and the log line must be.
	 */
	int			enc = GetDatabaseEncoding() == PG_SQL_ASCII ? PG_UTF8 : GetDatabaseEncoding();

#define V(c) rows->values[c][r]
#define N(c) rows->nulls[c][r]
	for (int c = 0; c < KMS_AUDIT_NCOLS; c++)
		N(c) = false;
	for (int i = 0; i < KMS_AUDIT_NSTR; i++)
	{
		int			len;
		const char *v = KmsAuditRecStr(rec, i, &len);

		/* the record's own bytes when valid (the copy outlives the rows) */
		if (v == NULL || pg_verify_mbstr(enc, v, len, true))
			s[i] = (char *) v;
		else
			s[i] = KmsAuditSanitize(v, len, enc);
	}
	if (s[S_PARAMS] != NULL)
	{
		Datum		jb = DirectFunctionCall1(jsonb_in, CStringGetDatum(s[S_PARAMS]));
		Jsonb	   *j = DatumGetJsonbP(jb);

		params_text = JsonbToCString(NULL, &j->root, VARSIZE(j));
		V(17) = jb;
	}
	else
		N(17) = true;

	KmsAuditRowHash(&rows->hashbuf, rec, id, prev, s, params_text, with_oids, hash);

	prevb = palloc(VARHDRSZ + 32);
	SET_VARSIZE(prevb, VARHDRSZ + 32);
	memcpy(VARDATA(prevb), prev, 32);
	hashb = palloc(VARHDRSZ + 32);
	SET_VARSIZE(hashb, VARHDRSZ + 32);
	memcpy(VARDATA(hashb), hash, 32);

	V(0) = Int64GetDatum(id);
	V(1) = TimestampTzGetDatum(rec->time);
	V(2) = TimestampTzGetDatum(rec->last_time);
	V(3) = Int64GetDatum(rec->count);
	for (int i = 0; i < 6; i++)
	{
		static const int map[6] = {S_TYPE, S_DB_USER, S_SESSION_USER, S_DATABASE, S_CLIENT_ADDR, S_APP};

		if (s[map[i]])
			V(4 + i) = CStringGetTextDatum(s[map[i]]);
		else
			N(4 + i) = true;
	}
	V(10) = Int32GetDatum(rec->pid);
	if (rec->query_id)
		V(11) = Int64GetDatum((int64) rec->query_id);
	else
		N(11) = true;
	for (int i = 0; i < 5; i++)
	{
		static const int map[5] = {S_OPERATION, S_RESOURCE, S_ARN, S_VERSION, S_OUTCOME};

		if (s[map[i]])
			V(12 + i) = CStringGetTextDatum(s[map[i]]);
		else
			N(12 + i) = true;
	}
	V(18) = PointerGetDatum(prevb);
	V(19) = PointerGetDatum(hashb);
	V(20) = ObjectIdGetDatum(rec->db_user_oid);
	N(20) = !OidIsValid(rec->db_user_oid);
	V(21) = ObjectIdGetDatum(rec->session_user_oid);
	N(21) = !OidIsValid(rec->session_user_oid);
#undef V
#undef N
	rows->n++;
	memcpy(prev, hash, 32);
}

/* the columns, in the order of kms_insert_types */
static const char *const kms_insert_cols[KMS_AUDIT_NCOLS] = {
	"id", "event_time", "last_time", "event_count", "event_type",
	"db_user", "session_user_name", "database", "client_addr", "application_name",
	"backend_pid", "query_id", "operation", "resource_id", "resource_arn", "version",
	"outcome", "parameters", "prev_hash", "row_hash", "db_user_oid", "session_user_oid"
};

/*
 * Can the rows go in directly (heap_multi_insert and the index entries,
 * as COPY does)?  Only when nothing would run or be checked on the way
 * that this would skip: no row trigger, no after-statement trigger, no
 * CHECK constraint or generated column, indexes on plain columns without
 * predicates, exclusion or deferred uniqueness, and the columns of the
 * types we fill.  (The statement trigger that refuses restores into a
 * used trail, kms.guard_trigger, passes our own rows anyway.)  map gets
 * the attribute number of each column.  Otherwise the SQL insert runs.
 */
static bool
KmsAuditDirectOk(Relation rel, bool with_oids, AttrNumber *map, List **indexes)
{
	TriggerDesc *t = rel->trigdesc;
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *oids;
	ListCell   *lc;

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return false;
	if (t && (t->trig_insert_before_row || t->trig_insert_after_row ||
			  t->trig_insert_instead_row || t->trig_insert_after_statement ||
			  t->trig_insert_new_table))
		return false;
	if (desc->constr && (desc->constr->num_check > 0 || desc->constr->has_generated_stored))
		return false;
	for (int c = 0; c < (with_oids ? KMS_AUDIT_NCOLS : KMS_AUDIT_NCOLS_1_0); c++)
	{
		map[c] = attnameAttNum(rel, kms_insert_cols[c], false);
		if (map[c] <= 0 || TupleDescAttr(desc, map[c] - 1)->atttypid != kms_insert_types[c])
			return false;
	}
	*indexes = NIL;
	oids = RelationGetIndexList(rel);
	foreach(lc, oids)
	{
		Relation	idx = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *ii = BuildIndexInfo(idx);

		*indexes = lappend(*indexes, idx);
		if (ii->ii_Expressions != NIL || ii->ii_Predicate != NIL ||
			ii->ii_ExclusionOps != NULL || !idx->rd_index->indimmediate)
			return false;
	}
	return true;
}

/*
 * Insert the rows collected, directly; every NOT NULL column is checked
 * (the rows' own fields: a failure here is a bug, not a user's error).
 */
static void
KmsAuditInsertDirect(Relation rel, KmsAuditRows *rows, bool with_oids,
					 const AttrNumber *map, List *indexes)
{
	/* a copy: not reference-counted, so no resource owner work per slot */
	TupleDesc	desc = CreateTupleDescCopy(RelationGetDescr(rel));
	int			natts = desc->natts;
	int			ncols = with_oids ? KMS_AUDIT_NCOLS : KMS_AUDIT_NCOLS_1_0;
	TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * rows->n);
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);
	ListCell   *lc;

	for (int r = 0; r < rows->n; r++)
	{
		for (int a = 0; a < natts; a++)
		{
			values[a] = (Datum) 0;
			nulls[a] = true;
		}
		for (int c = 0; c < ncols; c++)
		{
			values[map[c] - 1] = rows->values[c][r];
			nulls[map[c] - 1] = rows->nulls[c][r];
		}
		for (int a = 0; a < natts; a++)
			if (nulls[a] && TupleDescAttr(RelationGetDescr(rel), a)->attnotnull)
				elog(ERROR, "pg_kms audit: null value in column \"%s\" of kms.audit_log",
					 NameStr(TupleDescAttr(desc, a)->attname));
		slots[r] = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
		ExecStoreHeapTuple(heap_form_tuple(desc, values, nulls), slots[r], true);
	}
	heap_multi_insert(rel, slots, rows->n, GetCurrentCommandId(true), 0, NULL);
	foreach(lc, indexes)
	{
		Relation	idx = lfirst(lc);
		IndexInfo  *ii = BuildIndexInfo(idx);
		Datum		iv[INDEX_MAX_KEYS];
		bool		in[INDEX_MAX_KEYS];

		if (!ii->ii_ReadyForInserts)
			continue;
		for (int r = 0; r < rows->n; r++)
		{
			FormIndexDatum(ii, slots[r], NULL, iv, in);
			index_insert(idx, iv, in, &slots[r]->tts_tid, rel,
						 idx->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
						 false, ii);
		}
	}
	for (int r = 0; r < rows->n; r++)
		ExecDropSingleTupleTableSlot(slots[r]);
	CommandCounterIncrement();
}

/* Insert the rows collected, in one statement. */
static void
KmsAuditInsertRows(KmsAuditRows *rows, bool with_oids)
{
	int			ncols = with_oids ? KMS_AUDIT_NCOLS : KMS_AUDIT_NCOLS_1_0;
	Datum		args[KMS_AUDIT_NCOLS];
	char		argnulls[KMS_AUDIT_NCOLS];
	int			rc;

	for (int c = 0; c < ncols; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {rows->n};
		int			lbs[1] = {1};

		get_typlenbyvalalign(kms_insert_types[c], &typlen, &typbyval, &typalign);
		args[c] = PointerGetDatum(construct_md_array(rows->values[c], rows->nulls[c], 1,
													 dims, lbs, kms_insert_types[c],
													 typlen, typbyval, typalign));
		argnulls[c] = ' ';
	}
	rc = SPI_execute_plan(kms_insert_plan[with_oids ? 1 : 0], args, argnulls, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != (uint64) rows->n)
		elog(ERROR, "pg_kms audit: insert into kms.audit_log failed (%d)", rc);
}

/*
 * Move up to KMS_AUDIT_BATCH queued events into kms.audit_log.  Runs in
 * the worker's transaction with SPI connected; the events leave the queue
 * only in KmsAuditDrainCommitted().  Returns true if more are queued.
 */
bool
KmsAuditDrain(void)
{
	uint64		pos,
				head,
				cap;
	int64		id = 0;
	uint8		prev[32];
	uint32		n = 0;
	Size		bytes = 0;
	char	   *copy;
	bool		more = false;
	Oid			relid;
	bool		with_oids;
	MemoryContext cxt,
				old;
	KmsAuditRows rows;

	kms_drain_n = 0;
	if (kmsAudit == NULL)
		return false;
	if (kms_drain_pos == NULL)
		kms_drain_pos = MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * KMS_AUDIT_BATCH);

	/*
	 * Copy this database's records out under the shared lock: another
	 * consumer's commit may move tail past bytes we are reading, and a
	 * producer may then reuse them.
	 */
	/* kept across drains: a fresh megabyte each time costs page faults */
	if (kms_drain_copy == NULL)
		kms_drain_copy = MemoryContextAlloc(TopMemoryContext, KMS_AUDIT_DRAIN_BYTES);
	copy = kms_drain_copy;
	LWLockAcquire(kmsAudit->lock, LW_SHARED);
	cap = kmsAudit->capacity;
	head = kmsAudit->head;
	for (pos = kmsAudit->tail; pos < head;)
	{
		const KmsAuditRecord *rec = (const KmsAuditRecord *) (kmsAudit->ring + pos % cap);

		if (rec->len == 0)
		{
			pos += cap - pos % cap;
			continue;
		}
		if (rec->dboid == MyDatabaseId && !(rec->flags & KMS_AUDIT_REC_DONE))
		{
			if (n >= KMS_AUDIT_BATCH || bytes + rec->len > KMS_AUDIT_DRAIN_BYTES)
			{
				more = true;
				break;
			}
			memcpy(copy + bytes, rec, rec->len);
			bytes += rec->len;
			kms_drain_pos[n++] = pos;
		}
		pos += rec->len;
	}
	LWLockRelease(kmsAudit->lock);
	if (n == 0)
		return false;

	/*
	 * Which columns the table has: locked first, so that an ALTER EXTENSION
	 * UPDATE adding the OID columns is either all before us or all after.
	 */
	relid = get_relname_relid("audit_log", get_namespace_oid("kms", false));
	if (!OidIsValid(relid))
		elog(ERROR, "pg_kms audit: table kms.audit_log does not exist");
	LockRelationOid(relid, RowExclusiveLock);
	/* our own rows: the custody guard takes outside inserts for a restore */
	KmsGuardMarkInternal();
	with_oids = get_attnum(relid, "db_user_oid") != InvalidAttrNumber &&
		get_attnum(relid, "session_user_oid") != InvalidAttrNumber;
	if (kms_insert_plan[with_oids] == NULL)
	{
		Oid			types[KMS_AUDIT_NCOLS];
		SPIPlanPtr	p;

		for (int c = 0; c < KMS_AUDIT_NCOLS; c++)
			types[c] = get_array_type(kms_insert_types[c]);
		p = SPI_prepare(kms_insert_sql[with_oids],
						with_oids ? KMS_AUDIT_NCOLS : KMS_AUDIT_NCOLS_1_0, types);

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

	/* one large block kept across drains: no malloc, no page fault per batch */
	if (kms_drain_cxt == NULL)
		kms_drain_cxt = AllocSetContextCreate(TopMemoryContext, "pg_kms audit drain",
											  0, 4 * 1024 * 1024, 8 * 1024 * 1024);
	cxt = kms_drain_cxt;
	MemoryContextReset(cxt);	/* what a failed drain left */
	old = MemoryContextSwitchTo(cxt);
	rows.n = 0;
	initStringInfo(&rows.hashbuf);
	for (int c = 0; c < KMS_AUDIT_NCOLS; c++)
	{
		rows.values[c] = palloc(sizeof(Datum) * n);
		rows.nulls[c] = palloc(sizeof(bool) * n);
	}
	for (Size off = 0; off < bytes;)
	{
		const KmsAuditRecord *rec = (const KmsAuditRecord *) (copy + off);

		CHECK_FOR_INTERRUPTS();
		KmsAuditAddRow(&rows, rec, ++id, prev, with_oids);
		off += rec->len;
	}
	Assert(rows.n == n);
	{
		Relation	rel = table_open(relid, RowExclusiveLock);
		AttrNumber	map[KMS_AUDIT_NCOLS];
		List	   *indexes = NIL;
		ListCell   *lc;

		if (KmsAuditDirectOk(rel, with_oids, map, &indexes))
			KmsAuditInsertDirect(rel, &rows, with_oids, map, indexes);
		else
			KmsAuditInsertRows(&rows, with_oids);
		foreach(lc, indexes)
			index_close(lfirst(lc), NoLock);
		table_close(rel, NoLock);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(cxt);
	kms_drain_n = n;
	return more || head != KmsAuditQueueHead();
}

void
KmsAuditDrainCommitted(void)
{
	uint32		marked = 0;

	if (kms_drain_n == 0 || kmsAudit == NULL)
		return;
	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	for (uint32 i = 0; i < kms_drain_n; i++)
	{
		KmsAuditRecord *rec = (KmsAuditRecord *) (kmsAudit->ring + kms_drain_pos[i] % kmsAudit->capacity);

		/*
		 * Only this database's audit worker marks its records done (the
		 * launcher discards only those of databases that are gone or have
		 * no consumer, and we are this one's), and tail cannot pass a
		 * record that is not done: the position still names our record.
		 */
		if (!(rec->flags & KMS_AUDIT_REC_DONE))
		{
			rec->flags |= KMS_AUDIT_REC_DONE;
			marked++;
		}
	}
	kmsAudit->nevents -= marked;
	KmsAuditAdvanceTail();
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
	values[8] = BoolGetDatum(KmsAuditMyConsumerDraining());
	LWLockRelease(kmsAudit->lock);
	values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->enqueued));
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->written));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->only_logged));
	values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&kmsAudit->waits));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
