/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  The key cache (src/cache/): the shared-memory cache of unwrapped
 *	  key-version material (a protected region that also holds the
 *	  provider's master slot), statistics, the invalidation generation, and
 *	  each backend's own cache of AES contexts, key info and key references.
 *	  Owns pg_kms.key_cache_size and pg_kms.key_cache_ttl.
 *
 *	  May call: provider/, audit/, catalog/, common/, crypto/.  What it
 *	  needs from the key store above it (wrapped material) is installed by
 *	  the module entry (KmsCacheSetWrappedFetcher).
 *
 * IDENTIFICATION
 *	  src/cache/cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_CACHE_H
#define PG_KMS_CACHE_H

#include "common/kms_common.h"
#include "provider/provider.h"
#include "storage/lwlock.h"
#include "port/atomics.h"
#include "storage/spin.h"

/* pg_kms.key_cache_size, pg_kms.key_cache_ttl (seconds) */
extern int	kms_key_cache_size;
extern int	kms_key_cache_ttl;

extern void KmsCacheDefineGucs(void);

/*
 * What a backend caches about one key for the current user (the key store
 * fills it, keystore/keystore.c).  Valid until the shared generation counter
 * moves.
 */
typedef struct KmsKeyInfo
{
	uint8		key_id[KMS_KEY_ID_LEN]; /* hash key: MUST BE FIRST */
	char		key_id_str[37];
	KmsKeyState state;
	KmsKeyUsage usage;
	char		key_spec[24];
	int32		current_version;
	int32		material_len;	/* bytes of each version's material */
	Oid			owner;
	Oid			checked_user;	/* role the bits below were computed for */
	uint32		allowed_ops;	/* KMS_OPBIT()s that role may perform */
	bool		may_manage;		/* owner, kms_admin or superuser */
	bool		valid;
	uint64		last_used;		/* local clock at the last lookup (LRU) */
} KmsKeyInfo;

/* Shared memory: the region (with the provider's master slot) and its lock */
extern void KmsCacheShmemRequest(void);
extern void KmsCacheShmemStartup(void);

/*
 * Which material a key version has: the first bytes of SHA-256 of its
 * key_material_id (random per version, kept by a master-key rewrap, so a
 * rewrap keeps the cached material).  Every cache entry, shared or local,
 * is keyed by it (and the shared ones by database too).
 */
#define KMS_MATERIAL_TAG_LEN 16

/*
 * The cache fetches the wrapped material of (key, version) and its tag
 * through this (the key store's KmsFetchWrappedMaterial, installed by
 * _PG_init): once per backend and version to learn the tag, and on a miss
 * of the shared cache to unwrap it through the provider.
 */
typedef bytea *(*KmsWrappedFetcher) (const uint8 *key_id, int32 version,
									 uint8 *tag_out);
extern void KmsCacheSetWrappedFetcher(KmsWrappedFetcher fetch);

/*
 * Invalidation: any change to keys, aliases or grants bumps a shared
 * counter after commit; every backend drops its local caches when it sees
 * the counter move (one atomic read per call).
 */
extern void KmsInvalidateAtCommit(void);
extern void KmsForgetKeyAtCommit(const uint8 *key_id);
extern bool KmsCacheChangesPending(void);
extern void KmsCacheAtCommit(void);
extern void KmsCacheAtAbort(void);
extern void KmsCheckGeneration(void);
extern void KmsLocalDirty(void);

/* The shared generation itself, for parts with caches of their own. */
extern uint64 KmsCurrentGeneration(void);

/* Material of (key, version) into out: cache, else provider.  Errors out. */
extern void KmsGetMaterial(const uint8 *key_id, uint32 version,
						   uint8 *out, size_t outcap, size_t *outlen);

/* AES context for decrypting blobs of (key, version, salt). */
extern KmsAead *KmsDecryptContext(const uint8 *key_id, uint32 version,
								  const uint8 *salt);

/* AES context and salt for one encryption under the key's version. */
extern KmsAead *KmsEncryptContext(const uint8 *key_id, uint32 version,
								  uint8 *salt_out, uint64 *counter_out);

/* Backend-local key info (keystore.c fills it) */
extern KmsKeyInfo *KmsLocalKeyInfo(const uint8 *key_id, bool *found);
extern void KmsLocalKeyInfoRemove(const uint8 *key_id);
extern bool KmsLocalRefLookup(const char *ref, uint8 *key_id_out);
extern void KmsLocalRefStore(const char *ref, const uint8 *key_id);

/* Statistics */
typedef enum KmsStat
{
	KMS_STAT_HITS = 0,
	KMS_STAT_MISSES,
	KMS_STAT_DERIVATIONS,
	KMS_NUM_LOCAL_STATS
} KmsStat;

extern void KmsStatAdd(KmsStat stat, uint64 n);

#endif							/* PG_KMS_CACHE_H */
