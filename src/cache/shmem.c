/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The key cache's settings (pg_kms.key_cache_size, pg_kms.key_cache_ttl)
 *	  and its shared-memory region: one page-aligned region holding the
 *	  shared state, the entries and the per-backend counters (layout in
 *	  cache_internal.h), excluded from core dumps and locked in memory
 *	  where the OS allows, with the provider's master slot in it.
 *
 * Locking: set up once by the postmaster under AddinShmemInitLock; the
 * entries and the master slot are then guarded by the "pg_kms" LWLock
 * (cache.c says how).
 *
 * IDENTIFICATION
 *	  src/cache/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "cache/cache.h"
#include "cache/cache_internal.h"

KmsSharedState *kmsShared = NULL;

int			kms_key_cache_size = 1024;
int			kms_key_cache_ttl = 300;

void
KmsCacheDefineGucs(void)
{
	DefineCustomIntVariable("pg_kms.key_cache_size",
							"Number of key versions the shared key cache holds.",
							NULL,
							&kms_key_cache_size,
							1024, 16, 1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.key_cache_ttl",
							"How long unwrapped key material stays cached.",
							NULL,
							&kms_key_cache_ttl,
							300, 1, 7 * 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* ----------------------------------------------------------------
 * Shared memory setup
 * ----------------------------------------------------------------
 */
static int
KmsNumBackendSlots(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends + 1;
#else
	return MaxConnections + autovacuum_max_workers + max_worker_processes +
		max_wal_senders + 2;
#endif
}

static Size
KmsRegionSize(void)
{
	Size		size;

	size = MAXALIGN(sizeof(KmsSharedState));
	size = add_size(size, mul_size(kms_key_cache_size, sizeof(KmsCacheEntry)));
	size = add_size(size, mul_size(KmsNumBackendSlots(), sizeof(KmsBackendStats)));
	return size;
}

void
KmsCacheShmemRequest(void)
{
	long		page = sysconf(_SC_PAGESIZE);

	/* two extra pages so the region can be page-aligned for madvise */
	RequestAddinShmemSpace(add_size(KmsRegionSize(), 2 * page));
	RequestNamedLWLockTranche("pg_kms", 1);
}

void
KmsCacheShmemStartup(void)
{
	bool		found;
	long		page = sysconf(_SC_PAGESIZE);
	Size		region = KmsRegionSize();
	char	   *raw;
	char	   *base;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	raw = ShmemInitStruct("pg_kms key cache", add_size(region, 2 * page), &found);
	base = (char *) TYPEALIGN(page, raw);
	kmsShared = (KmsSharedState *) base;

	if (!found)
	{
		Size		protlen = TYPEALIGN(page, region);

		memset(base, 0, region);
		kmsShared->lock = &(GetNamedLWLockTranche("pg_kms"))->lock;
		pg_atomic_init_u64(&kmsShared->generation, 1);
		pg_atomic_init_u64(&kmsShared->clock, 1);
		SpinLockInit(&kmsShared->mutex);
		kmsShared->nentries = kms_key_cache_size;
		kmsShared->nbackends = KmsNumBackendSlots();
		kmsShared->entries = (KmsCacheEntry *) (base + MAXALIGN(sizeof(KmsSharedState)));
		kmsShared->backends = (KmsBackendStats *)
			((char *) kmsShared->entries + kms_key_cache_size * sizeof(KmsCacheEntry));
		for (int i = 0; i < kmsShared->nentries; i++)
			pg_atomic_init_u64(&kmsShared->entries[i].used, 0);
		for (int i = 0; i < kmsShared->nbackends; i++)
			for (int j = 0; j < KMS_NUM_LOCAL_STATS; j++)
				pg_atomic_init_u64(&kmsShared->backends[i].counters[j], 0);

		/*
		 * Keep key material out of core dumps and swap.  Both are best
		 * effort: huge pages or RLIMIT_MEMLOCK may refuse, which we report.
		 */
		if (kms_protect_memory)
		{
#ifdef MADV_DONTDUMP
			if (madvise(base, protlen, MADV_DONTDUMP) != 0)
				ereport(LOG,
						(errmsg("pg_kms: could not exclude the key cache from core dumps: %m")));
#endif
			if (mlock(base, protlen) != 0)
				ereport(LOG,
						(errmsg("pg_kms: could not lock the key cache in memory: %m"),
						 errhint("Raise RLIMIT_MEMLOCK for the postgres user to keep key material out of swap.")));
		}
	}
	/* the provider's master slot lives in this protected region */
	KmsProviderShmemAttach(&kmsShared->master, kmsShared->lock, !found);
	LWLockRelease(AddinShmemInitLock);
}

void
KmsCheckLoaded(void)
{
	KmsCheckPreloaded(kmsShared != NULL);
}
