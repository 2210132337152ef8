/*-------------------------------------------------------------------------
 *
 * cache_internal.h
 *	  The shared key cache's layout, shared by the files of cache/
 *	  (cache.c: the cache; stats.c: counters and kms_cache_stats()).
 *	  Not for other folders: they use cache.h.
 *
 * IDENTIFICATION
 *	  src/cache/cache_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_CACHE_INTERNAL_H
#define PG_KMS_CACHE_INTERNAL_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "cache/cache.h"
#include "provider/provider.h"

/* encryptions per (version, salt) epoch, and per backend reservation */
#define KMS_EPOCH_LIMIT		((uint64) 1 << 30)
#define KMS_EPOCH_BLOCK		((uint64) 1 << 16)

/*
 * One unwrapped key version.  Keyed by (database, key id, version, material
 * tag): a database cloned from another (CREATE DATABASE ... TEMPLATE, a dump
 * restored twice) has the same key ids, and its rotations make versions of
 * the same numbers with other material; neither may ever be served the
 * other's.
 */
typedef struct KmsCacheEntry
{
	Oid			dbid;			/* the database whose catalog holds it */
	uint8		key_id[KMS_KEY_ID_LEN];
	uint32		version;
	uint8		tag[KMS_MATERIAL_TAG_LEN];	/* which material (cache.h) */
	bool		valid;
	int32		material_len;
	uint8		material[KMS_MAX_MATERIAL_LEN];
	TimestampTz expires_at;
	uint64		last_used;		/* clock for LRU eviction */
	uint8		salt[KMS_SALT_LEN];
	pg_atomic_uint64 used;		/* encryptions reserved under salt */
} KmsCacheEntry;

typedef struct KmsBackendStats
{
	pg_atomic_uint64 counters[KMS_NUM_LOCAL_STATS];
	char		pad[64 - (KMS_NUM_LOCAL_STATS * 8) % 64];
} KmsBackendStats;

typedef struct KmsSharedState
{
	LWLock	   *lock;
	pg_atomic_uint64 generation;
	pg_atomic_uint64 clock;
	slock_t		mutex;
	/* protected by mutex */
	uint64		evictions;
	uint64		provider_calls;
	uint64		provider_errors;
	double		provider_total_ms;
	double		provider_max_ms;
	uint64		salt_rollovers;
	/* protected by lock */
	KmsMasterSlot master;
	int			nentries;
	int			nbackends;
	KmsCacheEntry *entries;
	KmsBackendStats *backends;
} KmsSharedState;

extern KmsSharedState *kmsShared;

/* Errors out unless pg_kms was preloaded (the region exists). */
extern void KmsCheckLoaded(void);

#endif							/* PG_KMS_CACHE_INTERNAL_H */
