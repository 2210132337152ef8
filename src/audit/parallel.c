/*-------------------------------------------------------------------------
 *
 * parallel.c
 *	  Data-plane counts of parallel workers, handed to their leader: a
 *	  parallel query makes the same aggregate events (same count, same
 *	  statement) as the serial one.
 *
 *	  A parallel worker's KmsAuditData() counts into the worker's own
 *	  backend-local aggregate (aggregate.c).  When the worker's transaction
 *	  ends (XACT_EVENT_PARALLEL_PRE_COMMIT or _ABORT, which run before the
 *	  leader's WaitForParallelWorkersToFinish returns), or when the worker
 *	  exits, it folds those entries into its leader's slot here; the leader
 *	  takes the slot in at ExecutorEnd, at transaction end and before any
 *	  flush, and counts the entries into its own aggregate under its own
 *	  statement.  Counts are never lost: an entry that does not fit in the
 *	  slot (KMS_AUDIT_PAR_MAX distinct keys) is emitted by the worker as an
 *	  aggregate event of its own; an entry that a leader left behind (it
 *	  exited without taking it in) is emitted by the next owner of the slot.
 *
 *	  One slot per PGPROC that can lead a parallel query (the first
 *	  MaxBackends), indexed by the leader's pgprocno.  Each entry carries
 *	  its leader's pid, so a new backend in the same PGPROC tells them apart.
 *
 * Locking: a spinlock per slot, held to search and add (workers) or to
 * copy out and empty it (the leader): at most KMS_AUDIT_PAR_MAX short
 * comparisons.  `n` is read without the lock by the leader as a hint: its
 * workers wrote it before their exit was reported to it (shm_mq and the
 * latch give the barrier), and a worker of a later query cannot write it
 * while the leader runs this code.
 *
 * IDENTIFICATION
 *	  src/audit/parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "audit/audit_internal.h"

typedef struct KmsAuditParEntry
{
	int32		leader_pid;
	KmsAuditAgg agg;			/* stmt_hash and query_id unused: the leader's */
} KmsAuditParEntry;

typedef struct KmsAuditParSlot
{
	slock_t		mutex;
	int			n;
	KmsAuditParEntry e[KMS_AUDIT_PAR_MAX];
} KmsAuditParSlot;

static KmsAuditParSlot *kmsAuditPar = NULL;
static int	kms_audit_par_slots = 0;

static Size
KmsAuditParallelSize(void)
{
	return mul_size(sizeof(KmsAuditParSlot), MaxBackends);
}

void
KmsAuditParallelShmemRequest(void)
{
	RequestAddinShmemSpace(KmsAuditParallelSize());
}

/* Called with AddinShmemInitLock not held (it takes it). */
void
KmsAuditParallelShmemStartup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	kmsAuditPar = ShmemInitStruct("pg_kms audit parallel", KmsAuditParallelSize(), &found);
	kms_audit_par_slots = MaxBackends;
	if (!found)
	{
		for (int i = 0; i < MaxBackends; i++)
		{
			SpinLockInit(&kmsAuditPar[i].mutex);
			kmsAuditPar[i].n = 0;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The slot of the leader whose pgprocno is given, or NULL. */
static KmsAuditParSlot *
KmsAuditSlot(int pgprocno)
{
	if (kmsAuditPar == NULL || pgprocno < 0 || pgprocno >= kms_audit_par_slots)
		return NULL;
	return &kmsAuditPar[pgprocno];
}

/*
 * In a parallel worker: fold aggs[n] into the leader's slot.  The entries
 * that did not fit are moved to the front of aggs; returns how many (the
 * caller emits them).
 */
int
KmsAuditParallelFold(KmsAuditAgg *aggs, int n)
{
	PGPROC	   *leader = MyProc ? MyProc->lockGroupLeader : NULL;
	KmsAuditParSlot *slot;
	int			left = 0;

	if (n == 0 || leader == NULL || leader == MyProc ||
		(slot = KmsAuditSlot(leader->pgprocno)) == NULL)
		return n;
	SpinLockAcquire(&slot->mutex);
	for (int i = 0; i < n; i++)
	{
		KmsAuditAgg *a = &aggs[i];
		KmsAuditParEntry *e = NULL;

		for (int j = 0; j < slot->n; j++)
		{
			KmsAuditParEntry *c = &slot->e[j];

			if (c->leader_pid == leader->pid && c->agg.op == a->op &&
				c->agg.version == a->version && c->agg.userid == a->userid &&
				memcmp(c->agg.key_id, a->key_id, KMS_KEY_ID_LEN) == 0)
			{
				e = c;
				break;
			}
		}
		if (e != NULL)
		{
			e->agg.count += a->count;
			if (a->first < e->agg.first)
				e->agg.first = a->first;
		}
		else if (slot->n < KMS_AUDIT_PAR_MAX)
		{
			e = &slot->e[slot->n++];
			e->leader_pid = leader->pid;
			e->agg = *a;
		}
		else if (left != i)
			aggs[left++] = *a;
		else
			left++;
	}
	SpinLockRelease(&slot->mutex);
	return left;
}

/* In a leader: does its slot hold anything?  (A hint: no lock.) */
bool
KmsAuditParallelPending(void)
{
	KmsAuditParSlot *slot = MyProc ? KmsAuditSlot(MyProc->pgprocno) : NULL;

	return slot != NULL && slot->n > 0;
}

/*
 * In a leader: copy out and empty its slot; own[i] says whether entry i is
 * this backend's (else a previous owner's of the PGPROC, left behind).
 */
int
KmsAuditParallelTake(KmsAuditAgg *out, bool *own, int max)
{
	KmsAuditParSlot *slot = MyProc ? KmsAuditSlot(MyProc->pgprocno) : NULL;
	int			n;

	if (slot == NULL)
		return 0;
	SpinLockAcquire(&slot->mutex);
	n = Min(slot->n, max);
	for (int i = 0; i < n; i++)
	{
		out[i] = slot->e[i].agg;
		own[i] = slot->e[i].leader_pid == MyProcPid;
	}
	slot->n = 0;
	SpinLockRelease(&slot->mutex);
	return n;
}
