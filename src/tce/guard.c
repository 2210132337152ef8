/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  What keeps plaintext of encrypted columns where it belongs:
 *	  pg_kms.column_output (plaintext or ciphertext form out of output and
 *	  send), the error-report scrub (an ERROR in a transaction that handled
 *	  encrypted values loses DETAIL, CONTEXT and the statement: a unique
 *	  violation's DETAIL or a COPY line would quote plaintext), and the
 *	  type's ANALYZE function, which keeps no statistics (pg_stats would
 *	  show values and their order).  The DDL guard that refuses columns
 *	  without a key is the event trigger of src/sql/070_tce.sql.
 *
 *	  Parallel query: a parallel worker decides the output form as its
 *	  leader does (the leader passes a ciphertext decision on through
 *	  pg_kms.column_output, which workers inherit), and a worker that
 *	  handles encrypted values marks its leader's transaction, so that the
 *	  leader's errors are scrubbed as if it had handled them itself.
 *
 * Locking: the marks are one atomic per PGPROC in shared memory, each
 * written by the workers of one leader and read by that leader only; a
 * stale mark of an earlier backend in the same PGPROC slot names another
 * pid (or, were the pid reused, at worst scrubs an error more: the safe
 * side).  Everything else is backend-local.
 *
 * IDENTIFICATION
 *	  src/tce/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/execdesc.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/pquery.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"

#include "tce/tce_internal.h"

int			kms_column_output = KMS_COLUMN_OUTPUT_AUTO;

static const struct config_enum_entry column_output_options[] = {
	{"auto", KMS_COLUMN_OUTPUT_AUTO, false},
	{"plaintext", KMS_COLUMN_OUTPUT_PLAINTEXT, false},
	{"ciphertext", KMS_COLUMN_OUTPUT_CIPHERTEXT, false},
	{NULL, 0, false}
};

/* The top-level transaction (local id) that last handled an encrypted value. */
static LocalTransactionId touched_lxid = InvalidLocalTransactionId;

void
KmsTceDefineGucs(void)
{
	DefineCustomEnumVariable("pg_kms.column_output",
							 "How encrypted_text and encrypted_bytea values are output: plaintext, or the ciphertext form that input accepts back.",
							 "auto: the ciphertext form in COPY ... TO, in pg_dump and pg_dumpall sessions and to logical replication; plaintext otherwise.",
							 &kms_column_output,
							 KMS_COLUMN_OUTPUT_AUTO,
							 column_output_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/*
 * Parallel query: per PGPROC slot, the leader transaction (pid << 32 | its
 * local transaction id) whose parallel workers handled encrypted values.
 */
typedef struct TceParallelMarks
{
	int			nslots;
	pg_atomic_uint64 leader_touched[FLEXIBLE_ARRAY_MEMBER];
} TceParallelMarks;

static TceParallelMarks *tce_marks = NULL;
static uint64 tce_marked = 0;	/* the mark this worker last wrote */

static Size
TceMarksSize(void)
{
	/* leaders are ordinary backends and background workers */
	return add_size(offsetof(TceParallelMarks, leader_touched),
					mul_size(MaxBackends, sizeof(pg_atomic_uint64)));
}

void
KmsTceShmemRequest(void)
{
	RequestAddinShmemSpace(TceMarksSize());
}

void
KmsTceShmemStartup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tce_marks = ShmemInitStruct("pg_kms column parallel marks", TceMarksSize(), &found);
	if (!found)
	{
		tce_marks->nslots = MaxBackends;
		for (int i = 0; i < MaxBackends; i++)
			pg_atomic_init_u64(&tce_marks->leader_touched[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

static inline uint64
TceMark(PGPROC *proc)
{
	return ((uint64) (uint32) proc->pid << 32) | proc->lxid;
}

void
TceTouched(void)
{
	if (MyProc == NULL)
		return;
	touched_lxid = MyProc->lxid;
	/* a parallel worker: its leader's transaction has handled them too */
	if (IsParallelWorker() && tce_marks != NULL && MyProc->lockGroupLeader != NULL)
	{
		PGPROC	   *leader = MyProc->lockGroupLeader;
		uint64		mark = TceMark(leader);

		if (mark != tce_marked && leader->pgprocno >= 0 &&
			leader->pgprocno < tce_marks->nslots)
		{
			pg_atomic_write_u64(&tce_marks->leader_touched[leader->pgprocno], mark);
			pg_memory_barrier();
			tce_marked = mark;
		}
	}
}

/* Has this transaction handled encrypted values, here or in its workers? */
static bool
TceTransactionTouched(void)
{
	if (touched_lxid != InvalidLocalTransactionId && touched_lxid == MyProc->lxid)
		return true;
	return tce_marks != NULL && MyProc->pgprocno >= 0 &&
		MyProc->pgprocno < tce_marks->nslots &&
		pg_atomic_read_u64(&tce_marks->leader_touched[MyProc->pgprocno]) == TceMark(MyProc);
}

/*
 * Ciphertext form out?  'auto' errs towards ciphertext, which is never a
 * leak: a dump (COPY ... TO; pg_dump --inserts, recognised by its cursor
 * "_pg_dump_cursor" and by application_name pg_dump or pg_dumpall), a
 * logical replication stream (walsender).
 */
bool
TceOutputCiphertext(void)
{
	switch (kms_column_output)
	{
		case KMS_COLUMN_OUTPUT_PLAINTEXT:
			return false;
		case KMS_COLUMN_OUTPUT_CIPHERTEXT:
			return true;
		default:
			break;
	}
	if (am_walsender)
		return true;
	if (ActivePortal != NULL &&
		(ActivePortal->commandTag == CMDTAG_COPY ||
	/* pg_dump --inserts / --column-inserts: FETCH from this cursor */
		 (ActivePortal->commandTag == CMDTAG_FETCH &&
		  GetPortalByName("_pg_dump_cursor") != NULL)))
		return true;
	if (application_name != NULL &&
		(strcmp(application_name, "pg_dump") == 0 ||
		 strcmp(application_name, "pg_dumpall") == 0))
		return true;
	return false;
}

/*
 * The statement (top-level transaction and command id) that last wrote an
 * encrypted value: sealed or imported one for a column.
 */
static LocalTransactionId write_lxid = InvalidLocalTransactionId;
static CommandId write_cid = InvalidCommandId;

void
TceWriting(void)
{
	if (MyProc != NULL)
	{
		write_lxid = MyProc->lxid;
		write_cid = GetCurrentCommandId(false);
	}
}

/*
 * Is the output function called to describe a value in an error of the
 * statement that is writing it?  PostgreSQL builds the DETAIL of a unique,
 * NOT NULL, check or foreign-key violation before it raises the error,
 * with a one-off call (OidOutputFunctionCall: a fresh FmgrInfo in the
 * current context).  A writer without Decrypt then gets the ciphertext
 * form there, so that the error stays the violation (23505, ...) instead
 * of becoming AccessDeniedException; the DETAIL is hidden anyway
 * (KmsTceEmitLog).
 */
bool
TceDescribingWrite(FunctionCallInfo fcinfo)
{
	return fcinfo->flinfo != NULL &&
		fcinfo->flinfo->fn_extra == NULL &&
		fcinfo->flinfo->fn_mcxt == CurrentMemoryContext &&
		MyProc != NULL && write_lxid == MyProc->lxid &&
		write_cid == GetCurrentCommandId(false);
}

/*
 * Before a query that runs parallel workers: they decide the output form
 * without the leader's portal or walsender, so a leader that would give
 * the ciphertext form in 'auto' (COPY (SELECT ...) TO) sets
 * pg_kms.column_output to 'ciphertext' for the run, which the workers
 * inherit with the leader's settings.  Returns the GUC nest level to undo
 * (KmsTceExecutorRunEnd), or -1.
 */
int
KmsTceExecutorRunBegin(QueryDesc *queryDesc)
{
	int			nest;

	if (kms_column_output != KMS_COLUMN_OUTPUT_AUTO ||
		!queryDesc->plannedstmt->parallelModeNeeded || IsParallelWorker() ||
		!TceOutputCiphertext())
		return -1;
	nest = NewGUCNestLevel();
	(void) set_config_option("pg_kms.column_output", "ciphertext",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
KmsTceExecutorRunEnd(int nest)
{
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
}

void
KmsTceEmitLog(ErrorData *edata)
{
	if (edata->elevel < ERROR || MyProc == NULL || !TceTransactionTouched())
		return;
	if (edata->detail != NULL || edata->context != NULL ||
		edata->detail_log != NULL || edata->internalquery != NULL)
		edata->detail = MemoryContextStrdup(ErrorContext,
											"pg_kms hid the detail and context of this error: the transaction handled encrypted column values.");
	edata->detail_log = NULL;
	edata->context = NULL;
	edata->internalquery = NULL;
	edata->internalpos = 0;
	edata->hide_stmt = true;
	edata->hide_ctx = true;
}

/* ANALYZE: no statistics for encrypted columns (they would be plaintext). */
PG_FUNCTION_INFO_V1(encrypted_column_typanalyze);
Datum
encrypted_column_typanalyze(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(false);
}
