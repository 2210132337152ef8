/*-------------------------------------------------------------------------
 *
 * pg_kms.c
 *	  Module entry, included by nobody: _PG_init defines every setting
 *	  through the part that reads it, installs what a lower layer needs from
 *	  a higher one (the cache's source of wrapped material, the workers'
 *	  jobs, due source and wake function), registers the background workers,
 *	  and owns every PostgreSQL hook and callback: one shared-memory request
 *	  and one startup hook, the executor and utility hooks, the error-report
 *	  hook (tce/), one transaction,
 *	  one subtransaction and one relcache callback.  Each dispatches to the
 *	  parts in the order the separate hooks and callbacks of pg_kms 1.1 ran
 *	  in (the audit queue, then the worker status, then the key cache;
 *	  rotation's and the key cache's transaction work, then the audit's).
 *
 *	  The layer order (README.md, "Layout"; make check-layers): crypto ->
 *	  common -> catalog -> audit -> provider -> cache -> keystore ->
 *	  envelope -> kms | secrets | tce -> rotation -> worker -> this file.
 *
 * pg_kms must be in shared_preload_libraries: the key cache lives in shared
 * memory.  Loaded any other way, every call fails with a hint.
 *
 * Locking: none here; see cache/cache.c.
 *
 * IDENTIFICATION
 *	  src/pg_kms.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/inval.h"

#include "audit/audit.h"
#include "aws/aws_client.h"
#include "catalog/guard.h"
#include "cache/cache.h"
#include "keystore/keystore.h"
#include "provider/provider.h"
#include "rotation/rotation.h"
#include "secrets/principals.h"
#include "secrets/remote.h"
#include "tce/tce.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

void		_PG_init(void);

/*
 * Shared memory: the audit queue, the worker status, the key cache, the
 * remote secrets' cache, the column encryption's parallel marks.
 */
static void
kms_shmem_request_all(void)
{
	KmsAuditShmemRequest();
	KmsWorkerShmemRequest();
	KmsCacheShmemRequest();
	KmsRemoteSecretShmemRequest();
	KmsTceShmemRequest();
}

#if PG_VERSION_NUM >= 150000
static void
kms_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	kms_shmem_request_all();
}
#endif

static void
kms_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	KmsAuditShmemStartup();
	KmsWorkerShmemStartup();
	KmsCacheShmemStartup();
	KmsRemoteSecretShmemStartup();
	KmsTceShmemStartup();
}

/*
 * Executor and utility hooks: the audit's statement boundaries; around a
 * utility statement, the principals' part (DROP ROLE of a role pg_kms
 * names refused before it runs; REASSIGN OWNED, DROP OWNED, CREATE ROLE and
 * ALTER ROLE ... RENAME carried over to keys and secrets after).
 */
static void
kms_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				bool execute_once)
{
	/* parallel workers output encrypted values in the leader's form */
	int			tce_nest = KmsTceExecutorRunBegin(queryDesc);

	KmsAuditExecutorRun(queryDesc, direction, count, execute_once,
						prev_ExecutorRun ? prev_ExecutorRun : standard_ExecutorRun);
	KmsTceExecutorRunEnd(tce_nest);
}

static void
kms_ExecutorFinish(QueryDesc *queryDesc)
{
	KmsAuditExecutorFinish(queryDesc,
						   prev_ExecutorFinish ? prev_ExecutorFinish : standard_ExecutorFinish);
}

static void
kms_ExecutorEnd(QueryDesc *queryDesc)
{
	KmsAuditExecutorEnd(queryDesc,
						prev_ExecutorEnd ? prev_ExecutorEnd : standard_ExecutorEnd);
}

static void
kms_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	KmsGuardUtility(pstmt);		/* refuse destroying live keys */
	KmsPrincipalsUtilityBefore(pstmt);	/* DROP ROLE of a principal: refused */
	/* free a database for CREATE DATABASE ... TEMPLATE, DROP DATABASE */
	KmsWorkerUtility(pstmt);
	KmsAuditProcessUtility(pstmt, queryString, readOnlyTree, context,
						   params, queryEnv, dest, qc,
						   prev_ProcessUtility ? prev_ProcessUtility : standard_ProcessUtility);
	KmsPrincipalsUtilityAfter(pstmt);	/* REASSIGN/DROP OWNED, CREATE/RENAME ROLE */
}

/* Error reports: encrypted column values kept out of DETAIL and CONTEXT. */
static void
kms_emit_log(ErrorData *edata)
{
	KmsTceEmitLog(edata);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * Publish what a transaction changed only once it is committed and visible,
 * so a rolled-back DisableKey never disables anything.
 */
static void
kms_xact_callback(XactEvent event, void *arg)
{
	/* wake the rotation worker for a rotation requested by this transaction */
	KmsRotationXactCallback(event);

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			KmsLocalAtCommit();
			KmsCacheAtCommit();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			KmsLocalAtAbort();
			KmsCacheAtAbort();
			break;
		case XACT_EVENT_PREPARE:
			/* PREPARE is refused in pre-prepare; nothing pending here */
			break;
		case XACT_EVENT_PRE_PREPARE:

			/*
			 * What a transaction changed is published by this callback at
			 * commit (cache invalidation, a new master key and its check
			 * value); COMMIT PREPARED runs in another session and calls no
			 * callback of ours, so it would commit the change unpublished.
			 * Refuse PREPARE, as PostgreSQL does for temporary objects.
			 */
			if (KmsCacheChangesPending() || KmsLocalChangesPending())
				kms_error(UnsupportedOperationException, KMS_SQLSTATE_UNSUPPORTED,
						  "cannot PREPARE a transaction that has changed keys, secrets or the master key");
			KmsCacheAtAbort();
			KmsLocalAtAbort();
			break;
		default:
			break;
	}

	/* the audit: flush aggregates at commit, keep counts across a rollback */
	KmsAuditXactCallback(event);
}

/* kms.key invalidated (on a standby: replayed): drop what we cached. */
static void
kms_relcache_callback(Datum arg, Oid relid)
{
	Oid			keyrel = KmsKeyRelationIdIfKnown();

	if (relid == InvalidOid || (OidIsValid(keyrel) && relid == keyrel))
		KmsLocalDirty();
	KmsGuardRelcacheCallback(relid);	/* kms.account: the account id */
}

static void
kms_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		KmsLocalDirty();
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	/* settings, each defined by the part that reads it */
	KmsLocalProviderDefineGucs();	/* master_key_file, _command, previous_ */
	KmsProviderDefineGucs();	/* provider */
	KmsArnDefineGucs();			/* region, account_id */
	KmsAwsDefineGucs();			/* aws_* */
	KmsGuardDefineGucs();		/* allow_unsafe_drop */
	KmsCacheDefineGucs();		/* key_cache_size, key_cache_ttl */
	KmsSecureMemDefineGucs();	/* protect_memory */
	KmsAuditDefineGucs();		/* audit, audit_* */
	KmsWorkerDefineGucs();		/* database, worker_naptime */
	KmsRotationDefineGucs();	/* rotation_jobs, rotation_* */
	KmsTceDefineGucs();			/* column_output */
	KmsRemoteSecretDefineGucs();	/* remote_secret_cache_* */

	MarkGUCPrefixReserved("pg_kms");

	kms_preloaded = true;

	/* upward needs, met by registration */
	KmsCacheSetWrappedFetcher(KmsFetchWrappedMaterial);
	KmsSetAccountIdSource(KmsGuardStoredAccountId);
	KmsSetFormatDecryptor(KMS_TCE_FORMAT_DETERMINISTIC, KmsTceDecryptBlob);
	KmsWorkerRegisterJob(KMS_WORKER_AUDIT, &KmsAuditDrainJob);
	KmsWorkerRegisterJob(KMS_WORKER_AUDIT, &KmsAuditRetentionJob);
	KmsWorkerRegisterJob(KMS_WORKER_AUDIT, &KmsPrincipalsWorkerJob);
	KmsWorkerRegisterJob(KMS_WORKER_ROTATION, &KmsRotationSecretsWorkerJob);
	KmsWorkerRegisterJob(KMS_WORKER_ROTATION, &KmsRotationKeysWorkerJob);
	KmsWorkerRegisterJob(KMS_WORKER_ROTATION, &KmsRotationDeletionWorkerJob);
	KmsWorkerSetDueSource(KmsRotationNextDue, KmsRotationJobsEnabled);
	KmsSetWorkerWake(KmsWorkerWake);
	KmsWorkerRegisterBgworkers();

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kms_shmem_request;
#else
	kms_shmem_request_all();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kms_shmem_startup;

	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = kms_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = kms_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = kms_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = kms_ProcessUtility;
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = kms_emit_log;

	RegisterXactCallback(kms_xact_callback, NULL);
	RegisterSubXactCallback(kms_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(kms_relcache_callback, (Datum) 0);
}
