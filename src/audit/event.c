/*-------------------------------------------------------------------------
 *
 * event.c
 *	  Audit records and events: this backend's identity, the shared queue
 *	  in shared memory (and its file across a clean restart),
 *	  serialization, the log line, single events.
 *
 * IDENTIFICATION
 *	  src/audit/event.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
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


/* longest kept value of each string, in bytes (clipped on a character) */
static const int kms_audit_strmax[KMS_AUDIT_NSTR] = {
	15, 63, 63, 63, 63, 63, 63, 511, 511, 63, 63, 1023
};




KmsAuditShared *kmsAudit = NULL;
KmsAuditConsumer *kmsAuditConsumers = NULL;
static int	kms_audit_max_consumers = 16;



/* scratch for one record; events are built one at a time per backend */
static union
{
	KmsAuditRecord rec;
	char		bytes[KMS_AUDIT_MAX_RECORD];
}			kms_recbuf;

static MemoryContext kms_audit_cxt = NULL;


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

void
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

void
KmsAuditFillIdentity(KmsAuditEvent *ev, const char *db_user, Oid db_user_oid)
{
	ev->str[S_DB_USER] = db_user;
	ev->db_user_oid = db_user_oid;
	ev->str[S_SESSION_USER] = kms_ident_session_user;
	ev->session_user_oid = kms_ident_session_oid;
	ev->str[S_DATABASE] = kms_ident_database;
	ev->str[S_CLIENT_ADDR] = kms_ident_has_client ? kms_ident_client : NULL;
	ev->str[S_APP] = (application_name && application_name[0]) ? application_name : NULL;
	ev->dboid = MyDatabaseId;
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

static Size
KmsAuditConsumersSize(void)
{
	return mul_size(sizeof(KmsAuditConsumer), kms_audit_max_consumers);
}

void
KmsAuditSetMaxConsumers(int n)
{
	kms_audit_max_consumers = Max(n, 1);
}

void
KmsAuditShmemRequest(void)
{
	RequestAddinShmemSpace(KmsAuditShmemSize());
	RequestAddinShmemSpace(KmsAuditConsumersSize());
	RequestNamedLWLockTranche("pg_kms audit", 1);
	KmsAuditParallelShmemRequest();
}

static void KmsAuditQueueLoad(void);
static void KmsAuditQueueSave(int code, Datum arg);

void
KmsAuditShmemStartup(void)
{
	bool		found;
	bool		cfound;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	kmsAudit = ShmemInitStruct("pg_kms audit queue", KmsAuditShmemSize(), &found);
	kmsAuditConsumers = ShmemInitStruct("pg_kms audit consumers", KmsAuditConsumersSize(), &cfound);
	if (!found)
	{
		memset(kmsAudit, 0, offsetof(KmsAuditShared, ring));
		kmsAudit->lock = &(GetNamedLWLockTranche("pg_kms audit"))->lock;
		ConditionVariableInit(&kmsAudit->space);
		kmsAudit->capacity = KmsAuditCapacity();
		kmsAudit->max_events = kms_audit_queue_size;
		kmsAudit->max_consumers = kms_audit_max_consumers;
		pg_atomic_init_u64(&kmsAudit->seq, 0);
		pg_atomic_init_u64(&kmsAudit->enqueued, 0);
		pg_atomic_init_u64(&kmsAudit->written, 0);
		pg_atomic_init_u64(&kmsAudit->only_logged, 0);
		pg_atomic_init_u64(&kmsAudit->waits, 0);
	}
	if (!cfound)
		memset(kmsAuditConsumers, 0, KmsAuditConsumersSize());
	LWLockRelease(AddinShmemInitLock);
	KmsAuditParallelShmemStartup();	/* takes AddinShmemInitLock itself */

	/*
	 * In the postmaster: queue again what a clean shutdown kept, and keep
	 * what is queued at the next one (after a crash, shmem_exit runs with
	 * code 1 and nothing is written: the queue may be inconsistent).
	 */
	if (!IsUnderPostmaster)
	{
		if (!found)
			KmsAuditQueueLoad();
		on_shmem_exit(KmsAuditQueueSave, (Datum) 0);
	}
}

/* The consumer of dboid's events, or NULL; lock held. */
KmsAuditConsumer *
KmsAuditFindConsumer(Oid dboid)
{
	for (int i = 0; i < kmsAudit->max_consumers; i++)
		if (kmsAuditConsumers[i].dboid == dboid && OidIsValid(dboid))
			return &kmsAuditConsumers[i];
	return NULL;
}

/*
 * Advance tail over every leading record that is done (or a wrap marker);
 * lock held exclusively.
 */
void
KmsAuditAdvanceTail(void)
{
	uint64		cap = kmsAudit->capacity;

	while (kmsAudit->tail < kmsAudit->head)
	{
		uint64		off = kmsAudit->tail % cap;
		const KmsAuditRecord *rec = (const KmsAuditRecord *) (kmsAudit->ring + off);

		if (rec->len == 0)
			kmsAudit->tail += cap - off;
		else if (rec->flags & KMS_AUDIT_REC_DONE)
			kmsAudit->tail += rec->len;
		else
			break;
	}
}

/* KMS_AUDIT_FILL_LOW, _HALF or _PRESSURE: events or bytes, the fuller; lock held. */
int
KmsAuditFillLevel(void)
{
	uint64		n = kmsAudit->nevents;
	uint64		max = kmsAudit->max_events;
	uint64		used = kmsAudit->head - kmsAudit->tail;
	uint64		cap = kmsAudit->capacity;

	if (n * 4 >= max * 3 || used * 4 >= cap * 3)
		return KMS_AUDIT_FILL_PRESSURE;
	if (n * 2 >= max || used * 2 >= cap)
		return KMS_AUDIT_FILL_HALF;
	return KMS_AUDIT_FILL_LOW;
}

/* The record that holds the space (the first not done), or NULL; lock held. */
static const KmsAuditRecord *
KmsAuditTailRecord(void)
{
	uint64		cap = kmsAudit->capacity;

	for (uint64 pos = kmsAudit->tail; pos < kmsAudit->head;)
	{
		const KmsAuditRecord *rec = (const KmsAuditRecord *) (kmsAudit->ring + pos % cap);

		if (rec->len == 0)
			pos += cap - pos % cap; /* a wrap marker */
		else if (rec->flags & KMS_AUDIT_REC_DONE)
			pos += rec->len;
		else
			return rec;
	}
	return NULL;
}

/* ----------------------------------------------------------------
 * The queue across a clean restart (in the postmaster only)
 * ----------------------------------------------------------------
 */

/*
 * on_shmem_exit of the postmaster: every backend and worker is gone, so
 * nothing changes the queue any more.  Write the records not yet done to
 * a temporary file, then rename it into place.
 */
static void
KmsAuditQueueSave(int code, Datum arg)
{
	char		tmp[MAXPGPATH];
	FILE	   *f;
	uint32		hdr[3];
	uint32		n = 0;
	uint64		cap,
				pos;

	if (code != 0 || kmsAudit == NULL)
		return;
	cap = kmsAudit->capacity;
	for (pos = kmsAudit->tail; pos < kmsAudit->head;)
	{
		const KmsAuditRecord *rec = (const KmsAuditRecord *) (kmsAudit->ring + pos % cap);

		if (rec->len == 0)
		{
			pos += cap - pos % cap;
			continue;
		}
		if (!(rec->flags & KMS_AUDIT_REC_DONE))
			n++;
		pos += rec->len;
	}
	if (n == 0)
	{
		(void) unlink(KMS_AUDIT_QUEUE_FILE);
		return;
	}

	snprintf(tmp, sizeof(tmp), "%s.tmp", KMS_AUDIT_QUEUE_FILE);
	f = AllocateFile(tmp, PG_BINARY_W);
	if (f == NULL)
		goto error;
	(void) chmod(tmp, S_IRUSR | S_IWUSR);
	hdr[0] = KMS_AUDIT_QUEUE_MAGIC;
	hdr[1] = KMS_AUDIT_QUEUE_VERSION;
	hdr[2] = n;
	if (fwrite(hdr, sizeof(hdr), 1, f) != 1)
		goto error;
	for (pos = kmsAudit->tail; pos < kmsAudit->head;)
	{
		const KmsAuditRecord *rec = (const KmsAuditRecord *) (kmsAudit->ring + pos % cap);

		if (rec->len == 0)
		{
			pos += cap - pos % cap;
			continue;
		}
		if (!(rec->flags & KMS_AUDIT_REC_DONE) &&
			fwrite(rec, rec->len, 1, f) != 1)
			goto error;
		pos += rec->len;
	}
	if (FreeFile(f) != 0)
	{
		f = NULL;
		goto error;
	}
	(void) durable_rename(tmp, KMS_AUDIT_QUEUE_FILE, LOG);
	ereport(LOG,
			(errmsg("pg_kms audit: kept %u queued audit events for the next start", n)));
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("pg_kms audit: could not write file \"%s\": %m; %u queued audit events are in the server log only",
					tmp, n)));
	if (f)
		FreeFile(f);
	(void) unlink(tmp);
}

static bool KmsAuditTryAppend(const KmsAuditRecord *rec);

/* Is rec (len bytes read) a well-formed record? */
static bool
KmsAuditRecordValid(const KmsAuditRecord *rec)
{
	Size		strings = 0;

	if (rec->len < offsetof(KmsAuditRecord, data) || rec->len > KMS_AUDIT_MAX_RECORD ||
		rec->len != MAXALIGN(rec->len))
		return false;
	for (int i = 0; i < KMS_AUDIT_NSTR; i++)
	{
		if (rec->slen[i] == KMS_AUDIT_NULL)
			continue;
		strings += rec->slen[i] + 1;
		if (offsetof(KmsAuditRecord, data) + strings > rec->len ||
			rec->data[strings - 1] != '\0')
			return false;
	}
	return true;
}

/* At postmaster start: queue the records a clean shutdown kept, in order. */
static void
KmsAuditQueueLoad(void)
{
	FILE	   *f;
	uint32		hdr[3];
	uint32		loaded = 0,
				lost = 0;
	static union
	{
		KmsAuditRecord rec;
		char		bytes[KMS_AUDIT_MAX_RECORD];
	}			buf;

	f = AllocateFile(KMS_AUDIT_QUEUE_FILE, PG_BINARY_R);
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("pg_kms audit: could not read file \"%s\": %m", KMS_AUDIT_QUEUE_FILE)));
		return;
	}
	if (fread(hdr, sizeof(hdr), 1, f) != 1 || hdr[0] != KMS_AUDIT_QUEUE_MAGIC ||
		hdr[1] != KMS_AUDIT_QUEUE_VERSION)
	{
		ereport(LOG,
				(errmsg("pg_kms audit: ignoring file \"%s\": not a queue file of this version",
						KMS_AUDIT_QUEUE_FILE)));
		goto done;
	}
	for (uint32 i = 0; i < hdr[2]; i++)
	{
		Size		rest;

		if (fread(&buf.rec, offsetof(KmsAuditRecord, data), 1, f) != 1 ||
			buf.rec.len < offsetof(KmsAuditRecord, data) || buf.rec.len > KMS_AUDIT_MAX_RECORD)
			break;
		rest = buf.rec.len - offsetof(KmsAuditRecord, data);
		if (rest > 0 && fread(buf.rec.data, rest, 1, f) != 1)
			break;
		if (!KmsAuditRecordValid(&buf.rec))
			break;
		buf.rec.flags = 0;
		if (KmsAuditTryAppend(&buf.rec))
		{
			loaded++;
			pg_atomic_fetch_add_u64(&kmsAudit->enqueued, 1);
		}
		else
			lost++;
	}
	if (loaded + lost < hdr[2])
		ereport(LOG,
				(errmsg("pg_kms audit: file \"%s\" is truncated or damaged after %u of %u events",
						KMS_AUDIT_QUEUE_FILE, loaded + lost, hdr[2])));
	if (lost > 0)
	{
		pg_atomic_fetch_add_u64(&kmsAudit->only_logged, lost);
		ereport(WARNING,
				(errmsg("pg_kms audit: %u audit events kept from before the restart did not fit in the queue; they are in the server log only",
						lost),
				 errhint("Raise pg_kms.audit_queue_size.")));
	}
	if (loaded > 0)
		ereport(LOG,
				(errmsg("pg_kms audit: queued %u audit events kept from before the restart", loaded)));
done:
	FreeFile(f);
	(void) unlink(KMS_AUDIT_QUEUE_FILE);
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

	rec->flags = 0;
	rec->dboid = ev->dboid;
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
const char *
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
char *
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
 * Wake consumers; lock held.  all: every one (the queue is full: any of
 * them may be the one holding tail); else the consumer of dboid.
 */
static void
KmsAuditWakeConsumers(Oid dboid, bool all)
{
	for (int i = 0; i < kmsAudit->max_consumers; i++)
	{
		KmsAuditConsumer *c = &kmsAuditConsumers[i];

		if (OidIsValid(c->dboid) && c->latch && (all || c->dboid == dboid))
			SetLatch(c->latch);
	}
}

/*
 * May a producer wait for room?  If the record at tail (the one that holds
 * the space) belongs to a database whose consumer is draining, and that
 * consumer is not this process; or to a database with no consumer at all,
 * whose events the launcher discards on a primary (KmsAuditWakeJanitor has
 * just woken it).  Lock held.
 */
static bool
KmsAuditRoomExpected(void)
{
	const KmsAuditRecord *rec = KmsAuditTailRecord();
	KmsAuditConsumer *c;

	if (rec == NULL)
		return false;
	c = KmsAuditFindConsumer(rec->dboid);
	if (c != NULL)
		return c->draining && c->pid != MyProcPid;
	return kmsAudit->janitor != NULL && !RecoveryInProgress();
}

/*
 * Wake the launcher if the fill level rose past a mark it has not been
 * woken for while the record at tail has no draining consumer (level: the
 * fill level, KMS_AUDIT_FILL_FULL if an event did not fit).  A lower level
 * re-arms the marks above it.  Lock held exclusively.
 */
static void
KmsAuditWakeJanitor(int level)
{
	const KmsAuditRecord *rec;
	KmsAuditConsumer *c;

	if (level < kmsAudit->janitor_level)
		kmsAudit->janitor_level = level;
	if (level <= kmsAudit->janitor_level || kmsAudit->janitor == NULL)
		return;
	rec = KmsAuditTailRecord();
	if (rec == NULL)
		return;
	c = KmsAuditFindConsumer(rec->dboid);
	if (c != NULL && c->draining)
		return;					/* it frees the space */
	kmsAudit->janitor_level = level;
	SetLatch(kmsAudit->janitor);
}

/*
 * Put rec on the queue.  If it is full and the worker that can free room
 * is draining, wait up to pg_kms.audit_queue_wait for space (not at abort,
 * and not in that worker itself).  Interrupts are held meanwhile: the event
 * must come out of here either queued or logged.  Returns whether it was
 * queued.
 */
static bool
KmsAuditEnqueue(const KmsAuditRecord *rec, bool may_wait)
{
	bool		queued;
	bool		can_wait;
	int			level;

	LWLockAcquire(kmsAudit->lock, LW_EXCLUSIVE);
	queued = KmsAuditTryAppend(rec);
	level = queued ? KmsAuditFillLevel() : KMS_AUDIT_FILL_FULL;
	if (!queued)
		KmsAuditWakeConsumers(InvalidOid, true);
	else if (level >= KMS_AUDIT_FILL_HALF)
		KmsAuditWakeConsumers(rec->dboid, false);
	KmsAuditWakeJanitor(level);
	can_wait = !queued && KmsAuditRoomExpected();
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
			if (!queued)
			{
				KmsAuditWakeConsumers(InvalidOid, true);
				KmsAuditWakeJanitor(KMS_AUDIT_FILL_FULL);
			}
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

#define KmsAuditLit(buf, lit) appendBinaryStringInfo(buf, lit, sizeof(lit) - 1)

/* Append v (len bytes, valid UTF-8) as a JSON string, as escape_json does. */
static void
KmsAuditJsonValue(StringInfo buf, const char *v, int len)
{
	int			i;

	/* most strings need no escape: copy them whole */
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) v[i];

		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	if (i == len)
	{
		enlargeStringInfo(buf, len + 2);
		buf->data[buf->len++] = '"';
		memcpy(buf->data + buf->len, v, len);
		buf->len += len;
		buf->data[buf->len++] = '"';
		buf->data[buf->len] = '\0';
	}
	else
		escape_json(buf, v);
}

/*
 * Append the i-th string of rec as ,"name":value (value a JSON string, or
 * raw JSON for params), made valid UTF-8 by KmsAuditSanitize() if it is not.
 */
static void
KmsAuditJsonField(StringInfo buf, const char *key, int keylen,
				  const KmsAuditRecord *rec, const char **p, int i, bool raw)
{
	const char *v = *p;
	int			len;

	appendBinaryStringInfo(buf, key, keylen);
	if (rec->slen[i] == KMS_AUDIT_NULL)
	{
		KmsAuditLit(buf, "null");
		return;
	}
	len = rec->slen[i];
	*p += len + 1;
	for (int j = 0; j < len; j++)
		if ((unsigned char) v[j] >= 0x80)
		{
			if (!pg_verify_mbstr(PG_UTF8, v, len, true))
				v = KmsAuditSanitize(v, len, PG_UTF8);
			break;
		}
	if (raw)
		appendBinaryStringInfo(buf, v, len);
	else
		KmsAuditJsonValue(buf, v, len);
}

#define KMS_JSON_FIELD(buf, key, rec, p, i) \
	KmsAuditJsonField(buf, ",\"" key "\":", sizeof(",\"" key "\":") - 1, rec, p, i, false)

/*
 * The server-log line of an event (docs/audit.md):
 *   pg_kms audit: {"v":1,"seq":...,...,"queued":true}
 * Fields are always present and always in this order.  Strings are made
 * valid UTF-8 by KmsAuditSanitize() (params too: a '?' keeps the JSON
 * valid), so the line decodes whatever the caller's database encoding.
 * Built with plain copies (no format string per field): in 'each' mode
 * this runs once per secret read.
 */
static void
KmsAuditLogLine(const KmsAuditRecord *rec, bool queued)
{
	StringInfoData buf;
	char		ts[40];
	char		num[MAXINT8LEN + 1];
	const char *p = rec->data;	/* the strings, in order */

	initStringInfo(&buf);
	KmsAuditLit(&buf, "{\"v\":1,\"seq\":");
	appendBinaryStringInfo(&buf, num, pg_ulltoa_n(rec->seq, num));
	KMS_JSON_FIELD(&buf, "type", rec, &p, S_TYPE);
	KmsAuditTimeString(rec->time, ts, sizeof(ts));
	KmsAuditLit(&buf, ",\"time\":");
	KmsAuditJsonValue(&buf, ts, strlen(ts));
	if (rec->last_time != rec->time)
		KmsAuditTimeString(rec->last_time, ts, sizeof(ts));
	KmsAuditLit(&buf, ",\"last_time\":");
	KmsAuditJsonValue(&buf, ts, strlen(ts));
	KmsAuditLit(&buf, ",\"count\":");
	appendBinaryStringInfo(&buf, num, pg_lltoa(rec->count, num));
	KMS_JSON_FIELD(&buf, "db_user", rec, &p, S_DB_USER);
	KMS_JSON_FIELD(&buf, "session_user", rec, &p, S_SESSION_USER);
	KMS_JSON_FIELD(&buf, "database", rec, &p, S_DATABASE);
	KMS_JSON_FIELD(&buf, "client_addr", rec, &p, S_CLIENT_ADDR);
	KMS_JSON_FIELD(&buf, "application_name", rec, &p, S_APP);
	KmsAuditLit(&buf, ",\"pid\":");
	appendBinaryStringInfo(&buf, num, pg_ltoa(rec->pid, num));
	KmsAuditLit(&buf, ",\"query_id\":");
	if (rec->query_id != 0)
		appendBinaryStringInfo(&buf, num, pg_lltoa((int64) rec->query_id, num));
	else
		KmsAuditLit(&buf, "null");
	KMS_JSON_FIELD(&buf, "operation", rec, &p, S_OPERATION);
	KMS_JSON_FIELD(&buf, "resource", rec, &p, S_RESOURCE);
	KMS_JSON_FIELD(&buf, "arn", rec, &p, S_ARN);
	KMS_JSON_FIELD(&buf, "version", rec, &p, S_VERSION);
	KMS_JSON_FIELD(&buf, "outcome", rec, &p, S_OUTCOME);
	KmsAuditJsonField(&buf, ",\"params\":", sizeof(",\"params\":") - 1, rec, &p, S_PARAMS, true);
	if (queued)
		KmsAuditLit(&buf, ",\"queued\":true}");
	else
		KmsAuditLit(&buf, ",\"queued\":false}");

	ereport(LOG_SERVER_ONLY,
			(errmsg_internal("pg_kms audit: %s", buf.data),
			 errhidestmt(true),
			 errhidecontext(true)));
	pfree(buf.data);
}

/* Queue first: the log line says whether the event is also in the queue. */
void
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
char *
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

	/* the call's failure is recorded: KmsAuditCall does not record it again */
	if (strcmp(outcome, "success") != 0)
		kms_audit_failure_recorded = true;
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
