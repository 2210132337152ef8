/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  The shared-memory key cache (unwrapped key-version material, the
 *	  master key, statistics, the invalidation generation) and each
 *	  backend's own cache of AES contexts and key info.
 *
 * IDENTIFICATION
 *	  src/cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_CACHE_H
#define PG_KMS_CACHE_H

#include "pg_kms.h"
#include "storage/lwlock.h"
#include "port/atomics.h"
#include "storage/spin.h"

typedef struct KmsMasterSlot
{
	bool		loaded;
	char		error[512];		/* why not loaded (no key material in it) */
	uint8		key[KMS_AES_KEY_LEN];
	uint8		kcv[KMS_KCV_LEN];
	/* the master key being rotated away from, while rewrapping is pending */
	bool		prev_loaded;
	uint8		prev_key[KMS_AES_KEY_LEN];
	uint8		prev_kcv[KMS_KCV_LEN];
} KmsMasterSlot;

extern void KmsShmemRequest(void);
extern void KmsShmemStartup(void);

/* master key slot; read or write it holding KmsCacheLock() */
extern KmsMasterSlot *KmsSharedMaster(void);
extern LWLock *KmsCacheLock(void);

/*
 * Invalidation: any change to keys, aliases or grants bumps a shared
 * counter after commit; every backend drops its local caches when it sees
 * the counter move (one atomic read per call).
 */
extern void KmsInvalidateAtCommit(void);
extern void KmsForgetKeyAtCommit(const uint8 *key_id);
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

extern void KmsProtectProcessMemory(void);

#endif							/* PG_KMS_CACHE_H */
