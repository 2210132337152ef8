/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  The audit trail: events, the backend-local aggregate of data-plane
 *	  calls, the shared-memory queue, and the drain the worker runs.
 *
 *	  KmsAudit() records one event: a management call, a secret
 *	  read, or a denied call; KmsAuditCall() (call.c), through which every
 *	  SQL entry point runs, records a call that fails for another reason.  KmsAuditData() counts one successful
 *	  data-plane call in a backend-local aggregate that is flushed at the
 *	  end of the top-level statement and at transaction end.  Either way
 *	  the event is put on the shared queue and written to the server log at
 *	  once (docs/audit.md), so neither a rollback nor a crashed backend can
 *	  erase it; the audit worker of the caller's database (worker/worker.c)
 *	  drains that database's events into its kms.audit_log.  What is still
 *	  queued at a clean shutdown is kept in a file and queued again at the
 *	  next start (audit_internal.h).
 *
 * IDENTIFICATION
 *	  src/audit/audit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_AUDIT_H
#define PG_KMS_AUDIT_H

#include "catalog/kms_catalog.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "storage/latch.h"
#include "tcop/utility.h"

/*
 * One event per call: operation is the AWS operation name, resource a key
 * id, alias name or secret ARN/name, version a key version (0: none) or a
 * secret version id, outcome "success" or the AWS exception name.  params,
 * if not NULL, is a JSON object of request parameters that are safe to show
 * (built with KmsAuditParamStr/Int, then KmsAuditParams): never a
 * plaintext, a password or key material.  The event is queued for kms.audit
 * and logged before the function returns; a rollback does not undo it.
 */
extern void KmsAudit(const char *operation, const char *resource,
					 int32 version, const char *outcome);
extern void KmsAuditEx(const char *operation, const char *resource,
					   const char *version, const char *outcome,
					   const char *params);
/*
 * One successful secret read (GetSecretValue, local or remote): with
 * pg_kms.audit_secret_reads = 'each' the event KmsAuditEx(operation,
 * resource, version, "success", params) makes; with 'aggregate' (the
 * default) counted in a backend-local aggregate per role, operation,
 * resource, version, params and statement, flushed as one 'aggregate'
 * event with the data-plane aggregate.  Denied and failed reads go through
 * KmsAudit/KmsAuditEx as before: individual and immediate.
 */
extern void KmsAuditRead(const char *operation, const char *resource,
						 const char *version, const char *params);
extern void KmsAuditParamStr(StringInfo params, const char *name, const char *value);
extern void KmsAuditParamInt(StringInfo params, const char *name, int64 value);
extern char *KmsAuditParams(StringInfo params);

/*
 * Failed calls (call.c).  An SQL entry point declared with
 * KMS_AUDITED_ENTRY(fn, "Operation", resource_arg) records a call that ends
 * in an error as an audit event (outcome: the AWS exception name), unless
 * the entry point recorded the failure itself (any KmsAudit outcome but
 * "success", e.g. a denial).  resource_arg names the argument that holds
 * the resource: a text argument's number, KMS_AUDIT_BLOB_RESOURCE(n) for a
 * ciphertext blob in argument n (the key it names), or
 * KMS_AUDIT_NO_RESOURCE.
 */
#define KMS_AUDIT_NO_RESOURCE (-1)
#define KMS_AUDIT_BLOB_RESOURCE(n) (-2 - (n))
extern bool kms_audit_failure_recorded;
extern Datum KmsAuditCall(FunctionCallInfo fcinfo, const char *operation,
						  int resource_arg, PGFunction impl);

#define KMS_AUDITED_ENTRY(fn, operation, resource_arg) \
	static Datum fn##_call(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(fn); \
	Datum \
	fn(PG_FUNCTION_ARGS) \
	{ \
		return KmsAuditCall(fcinfo, operation, resource_arg, fn##_call); \
	} \
	static Datum \
	fn##_call(PG_FUNCTION_ARGS)

/* Settings */
extern bool kms_audit_enabled;		/* pg_kms.audit */
extern int	kms_audit_queue_size;	/* pg_kms.audit_queue_size, events */
extern int	kms_audit_queue_wait;	/* pg_kms.audit_queue_wait, ms */
extern int	kms_audit_retention;	/* pg_kms.audit_retention, minutes; 0 = keep */
/* pg_kms.audit_secret_reads */
typedef enum KmsAuditReads
{
	KMS_AUDIT_READS_AGGREGATE,
	KMS_AUDIT_READS_EACH
} KmsAuditReads;
extern int	kms_audit_secret_reads;

/*
 * Module setup: _PG_init (src/pg_kms.c) defines the settings, and calls the
 * shared memory, executor/utility hook and transaction parts from its own
 * hooks and callbacks (next: the hook to chain to).
 */
extern void KmsAuditDefineGucs(void);
extern void KmsAuditShmemRequest(void);
extern void KmsAuditShmemStartup(void);
extern void KmsAuditExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
								uint64 count, bool execute_once,
								ExecutorRun_hook_type next);
extern void KmsAuditExecutorFinish(QueryDesc *queryDesc,
								   ExecutorFinish_hook_type next);
extern void KmsAuditExecutorEnd(QueryDesc *queryDesc,
								ExecutorEnd_hook_type next);
extern void KmsAuditProcessUtility(PlannedStmt *pstmt, const char *queryString,
								   bool readOnlyTree, ProcessUtilityContext context,
								   ParamListInfo params, QueryEnvironment *queryEnv,
								   DestReceiver *dest, QueryCompletion *qc,
								   ProcessUtility_hook_type next);
extern void KmsAuditXactCallback(XactEvent event);

/*
 * One successful data-plane call (Encrypt, Decrypt, GenerateDataKey*,
 * ReEncrypt*, GenerateMac, VerifyMac) on key key_id (key_id_str its text
 * form) at version (0 if unknown).
 * Costs a few nanoseconds when the previous call had the same key,
 * operation, version and role.
 */
extern void KmsAuditData(KmsOp op, const uint8 *key_id, const char *key_id_str,
						 int32 version);

/* The audit worker's jobs: drain the queue, apply retention */
extern const KmsWorkerJob KmsAuditDrainJob;
extern const KmsWorkerJob KmsAuditRetentionJob;

/*
 * For the workers (worker/worker.c, worker/launcher.c).  Each database's
 * audit worker is the consumer of that database's events (MyDatabaseId);
 * KmsAuditSetMaxConsumers (before shared memory is sized, from _PG_init)
 * says how many can exist at once.
 */
extern void KmsAuditSetMaxConsumers(int n);
extern void KmsAuditSetConsumer(Latch *latch, bool draining);
extern uint64 KmsAuditQueueHead(void);	/* a position: events queued before it */
extern uint32 KmsAuditDiscardDatabase(Oid dboid, uint64 before);

/* The launcher's part: free the queue of databases no one drains */
/* How full the queue is, by events or by bytes, whichever is fuller */
#define KMS_AUDIT_FILL_LOW		0	/* under half */
#define KMS_AUDIT_FILL_HALF		1	/* half or more */
#define KMS_AUDIT_FILL_PRESSURE 2	/* three quarters or more */
#define KMS_AUDIT_FILL_FULL		3	/* an event did not fit (producers only) */

/* The launcher's latch, woken when the queue fills behind a database no one drains (NULL: none) */
extern void KmsAuditSetJanitor(Latch *latch);
extern int	KmsAuditQueueFill(void);
/* Discard the queued events of dboids[n] that no consumer drains; counts[i]: dboids[i]'s */
extern uint32 KmsAuditDiscardDatabases(const Oid *dboids, int n, uint32 *counts);
extern uint32 KmsAuditDiscardMissing(const Oid *dboids, int n);
extern bool KmsAuditDrain(void);		/* one batch; true if more is queued */
extern void KmsAuditDrainCommitted(void);	/* release what was just committed */
extern void KmsAuditDrainAborted(void);
extern bool KmsAuditPurge(void);		/* retention; false = nothing more */
extern uint32 KmsAuditQueueLength(void);
extern uint64 KmsAuditWritten(void);
extern uint64 KmsAuditOnlyLogged(void);

#endif							/* PG_KMS_AUDIT_H */
