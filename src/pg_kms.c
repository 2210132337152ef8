/*-------------------------------------------------------------------------
 *
 * pg_kms.c
 *	  Module entry: settings, shared-memory hooks, the transaction callback
 *	  that publishes cache invalidations and master-key changes at commit,
 *	  and small helpers shared by the parts.
 *
 * pg_kms must be in shared_preload_libraries: the key cache lives in shared
 * memory.  Loaded any other way, every call fails with a hint.
 *
 * Locking: none here; see cache.c.
 *
 * IDENTIFICATION
 *	  src/pg_kms.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"

#include "audit/audit.h"
#include "cache/cache.h"
#include "keystore/keystore.h"
#include "provider/provider.h"
#include "rotation/rotation.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

#if PG_VERSION_NUM >= 150000
static void
kms_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	KmsCacheShmemRequest();
}
#endif

static void
kms_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	KmsCacheShmemStartup();
}

/*
 * Publish what a transaction changed only once it is committed and visible,
 * so a rolled-back DisableKey never disables anything.
 */
static void
kms_xact_callback(XactEvent event, void *arg)
{
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
			KmsCacheAtAbort();
			KmsLocalAtAbort();
			break;
		default:
			break;
	}
}

/* kms.key invalidated (on a standby: replayed): drop what we cached. */
static void
kms_relcache_callback(Datum arg, Oid relid)
{
	Oid			keyrel = KmsKeyRelationIdIfKnown();

	if (relid == InvalidOid || (OidIsValid(keyrel) && relid == keyrel))
		KmsLocalDirty();
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

	/* settings, each defined by the part that reads it (today's order) */
	KmsLocalProviderDefineGucs();
	KmsProviderDefineGucs();
	KmsArnDefineGucs();
	KmsCacheDefineGucs();
	KmsSecureMemDefineGucs();

	/* the audit trail and the worker: their settings, memory and hooks */
	KmsAuditInit();
	KmsWorkerInit();

	/* rotation: its (test-only) setting */
	KmsRotationInit();

	MarkGUCPrefixReserved("pg_kms");

	kms_preloaded = true;

	/* upward needs, met by registration: the cache's source of wrapped material */
	KmsCacheSetWrappedFetcher(KmsFetchWrappedMaterial);

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kms_shmem_request;
#else
	KmsCacheShmemRequest();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kms_shmem_startup;

	RegisterXactCallback(kms_xact_callback, NULL);
	RegisterSubXactCallback(kms_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(kms_relcache_callback, (Datum) 0);
}
