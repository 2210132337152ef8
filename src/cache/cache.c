/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  The shared-memory key cache and each backend's local caches.
 *
 * Shared memory holds one page-aligned region (excluded from core dumps and
 * locked in memory where the OS allows):
 *
 *	  KmsSharedState   lock, generation counter, master key slot, counters
 *	  KmsCacheEntry[]  unwrapped key-version material, pg_kms.key_cache_size
 *	  KmsBackendStats[] one row of counters per backend, written only by it
 *
 * An entry maps (database, key id, version, material tag) to material, its
 * expiry, and the current encryption epoch of that version: a random
 * derivation salt D and a count of encryptions under it (the nonce budget,
 * docs/ciphertext-format.md).  The database and the tag (cache.h) keep
 * cloned databases, whose key ids are the same and whose later versions
 * differ, from ever meeting in the cache.
 *
 * Locking: the named LWLock "pg_kms" protects the entry array and the
 * master slot: LW_SHARED to look up or copy material, LW_EXCLUSIVE to
 * insert, evict or roll an epoch.  An entry's `used` counter is atomic and
 * is advanced under LW_SHARED.  The generation counter and the per-backend
 * statistics are atomics read without the lock.  The spinlock `mutex`
 * guards the provider-call counters.
 *
 * Each backend keeps, in TopMemoryContext, the material tag of each (key,
 * version) it used (read from its own database's catalog, once), AES
 * contexts per (key, version, tag, salt) and per (key, version, tag) for
 * encryption, and key info per key id for the current role.  They are dropped as
 * a whole whenever the shared generation moves (a key, alias or grant
 * changed and committed somewhere) and contexts expire with the material
 * they came from.  Each table is bounded (KMS_LOCAL_*_MAX): past its bound,
 * the least recently used half of it is dropped (KmsLocalTrim), so that a
 * backend's memory stays within a few MB however many keys it touches, and
 * the entries in use by the running call (the newest) stay where they are.  Key info is also re-checked after a role change (a
 * syscache invalidation of pg_authid or pg_auth_members moves a local
 * counter).  The hot path of kms_decrypt is: one atomic read, one
 * pointer comparison (the last context used) or a local hash probe, one
 * local counter compare, and the AES-GCM call; no lock, no catalog access, no provider call.
 *
 * The settings and the shared region's setup are shmem.c, the counters
 * and kms_cache_stats() stats.c; the shared layout is cache_internal.h.
 *
 * IDENTIFICATION
 *	  src/cache/cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cache/cache.h"
#include "cache/cache_internal.h"
#include "catalog/kms_catalog.h"

/* ----------------------------------------------------------------
 * Backend-local caches
 * ----------------------------------------------------------------
 */
typedef struct KmsCtxKey
{
	uint8		key_id[KMS_KEY_ID_LEN];
	uint32		version;
	uint8		tag[KMS_MATERIAL_TAG_LEN];
	uint8		salt[KMS_SALT_LEN];
} KmsCtxKey;

typedef struct KmsLocalCtx
{
	KmsCtxKey	key;			/* hash key: MUST BE FIRST */
	KmsAead    *aead;
	TimestampTz expires_at;
	uint64		last_used;
} KmsLocalCtx;

typedef struct KmsVersionKey
{
	uint8		key_id[KMS_KEY_ID_LEN];
	uint32		version;
} KmsVersionKey;

/* The material tag of one version, as this backend's catalog has it. */
typedef struct KmsLocalTag
{
	KmsVersionKey key;			/* hash key: MUST BE FIRST */
	uint8		tag[KMS_MATERIAL_TAG_LEN];
} KmsLocalTag;

typedef struct KmsEncKey
{
	uint8		key_id[KMS_KEY_ID_LEN];
	uint32		version;
	uint8		tag[KMS_MATERIAL_TAG_LEN];
} KmsEncKey;

typedef struct KmsLocalEnc
{
	KmsEncKey	key;			/* hash key: MUST BE FIRST */
	uint8		salt[KMS_SALT_LEN];
	KmsAead    *aead;
	uint64		next;			/* next counter value of our reservation */
	uint64		end;			/* end of our reservation (exclusive) */
	TimestampTz expires_at;
	uint64		last_used;
} KmsLocalEnc;

#define KMS_REF_MAXLEN 320

typedef struct KmsLocalRef
{
	char		ref[KMS_REF_MAXLEN];	/* hash key: MUST BE FIRST */
	uint8		key_id[KMS_KEY_ID_LEN];
	uint64		last_used;
} KmsLocalRef;

/*
 * Bounds of the local tables (entries): together a few MB at most.  A key
 * info is ~160 bytes with its hash entry (16384: ~2.5 MB; a miss costs two
 * catalog queries, so it is kept above common key counts), a reference
 * ~400, an AES context (OpenSSL's, with its derived key) ~3 KB (1024, as
 * the shared cache's default size).  Past a bound the least recently used
 * half goes; what the running call uses is among the newest, so pointers
 * it holds stay valid (dynahash never moves entries).
 */
#define KMS_LOCAL_KEYS_MAX	16384
#define KMS_LOCAL_REFS_MAX	1024
#define KMS_LOCAL_CTX_MAX	1024
#define KMS_LOCAL_ENC_MAX	256
#define KMS_LOCAL_TAGS_MAX	1024

static MemoryContext KmsLocalContext = NULL;
static HTAB *local_ctx = NULL;
static HTAB *local_enc = NULL;
static HTAB *local_keys = NULL;
static HTAB *local_refs = NULL;
static HTAB *local_tags = NULL;
static uint64 local_generation = 0;
static uint64 local_epoch = 0;	/* moves on invalidations received here */
static KmsLocalCtx *last_ctx = NULL;
static KmsKeyInfo *last_key = NULL;
/* per table: stamps last_used of its entries, one tick per use */
static uint64 keys_clock = 0;
static uint64 refs_clock = 0;
static uint64 ctx_clock = 0;
static uint64 enc_clock = 0;
static bool local_over = false;	/* a table passed its bound: trim */

/*
 * Role changes (membership granted or revoked, SUPERUSER or INHERIT
 * altered, a role dropped) move role_epoch from a syscache callback; the
 * next entry point sees it differ from roles_seen and makes every cached
 * key info re-check the role's rights.  Nothing is freed there, so key
 * info pointers held by a running function stay valid.
 */
static uint64 role_epoch = 0;
static uint64 roles_seen = 0;
static bool role_callbacks_registered = false;

static void
KmsLocalReset(void)
{
	HASH_SEQ_STATUS seq;

	if (local_ctx)
	{
		KmsLocalCtx *c;

		hash_seq_init(&seq, local_ctx);
		while ((c = hash_seq_search(&seq)) != NULL)
			kms_aead_free(c->aead);
	}
	if (local_enc)
	{
		KmsLocalEnc *e;

		hash_seq_init(&seq, local_enc);
		while ((e = hash_seq_search(&seq)) != NULL)
			kms_aead_free(e->aead);
	}
	if (KmsLocalContext)
		MemoryContextReset(KmsLocalContext);
	else
		KmsLocalContext = AllocSetContextCreate(TopMemoryContext,
												"pg_kms local cache",
												ALLOCSET_SMALL_SIZES);
	local_ctx = local_enc = local_keys = local_refs = local_tags = NULL;
	last_ctx = NULL;
	last_key = NULL;
	local_over = false;
}

/*
 * The stamp below which a table's entries go so that at most keep stay:
 * its stamps are unique and increasing, so at most keep entries were
 * stamped in its last keep ticks.
 */
static inline uint64
KmsTrimStamp(uint64 clock, long keep)
{
	return clock > (uint64) keep ? clock - (uint64) keep : 0;
}

/*
 * Drop the entries of table t stamped before below (last_used at
 * stamp_off), but not keep; aead_off: where the entry's KmsAead * is, to
 * free it, or -1.  Every entry's hash key is at its start.
 */
static void
KmsTrimTable(HTAB *t, uint64 below, size_t stamp_off, int aead_off, const void *keep)
{
	HASH_SEQ_STATUS seq;
	char	   *x;

	hash_seq_init(&seq, t);
	while ((x = hash_seq_search(&seq)) != NULL)
	{
		if (*(uint64 *) (x + stamp_off) >= below || x == keep)
			continue;
		if (aead_off >= 0)
			kms_aead_free(*(KmsAead **) (x + aead_off));
		hash_search(t, x, HASH_REMOVE, NULL);
	}
}

/*
 * Drop the least recently used half of each local table past its bound.
 * Runs at the start of an entry point (KmsCheckGeneration) and when a
 * table passes its bound; entries of the running call are the newest and
 * stay, so no pointer it holds is freed.  (The rest of a dropped
 * encryption reservation is never used: nonces stay unique.)
 */
static void
KmsLocalTrim(void)
{
	local_over = false;
	if (local_keys && hash_get_num_entries(local_keys) > KMS_LOCAL_KEYS_MAX)
		KmsTrimTable(local_keys, KmsTrimStamp(keys_clock, KMS_LOCAL_KEYS_MAX / 2),
					 offsetof(KmsKeyInfo, last_used), -1, last_key);
	if (local_refs && hash_get_num_entries(local_refs) > KMS_LOCAL_REFS_MAX)
		KmsTrimTable(local_refs, KmsTrimStamp(refs_clock, KMS_LOCAL_REFS_MAX / 2),
					 offsetof(KmsLocalRef, last_used), -1, NULL);
	if (local_ctx && hash_get_num_entries(local_ctx) > KMS_LOCAL_CTX_MAX)
		KmsTrimTable(local_ctx, KmsTrimStamp(ctx_clock, KMS_LOCAL_CTX_MAX / 2),
					 offsetof(KmsLocalCtx, last_used), offsetof(KmsLocalCtx, aead), last_ctx);
	if (local_enc && hash_get_num_entries(local_enc) > KMS_LOCAL_ENC_MAX)
		KmsTrimTable(local_enc, KmsTrimStamp(enc_clock, KMS_LOCAL_ENC_MAX / 2),
					 offsetof(KmsLocalEnc, last_used), offsetof(KmsLocalEnc, aead), NULL);
}

static void
KmsLocalInit(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.hcxt = KmsLocalContext;

	ctl.keysize = sizeof(KmsCtxKey);
	ctl.entrysize = sizeof(KmsLocalCtx);
	local_ctx = hash_create("pg_kms contexts", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(KmsEncKey);
	ctl.entrysize = sizeof(KmsLocalEnc);
	local_enc = hash_create("pg_kms encryption epochs", 16, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(KmsVersionKey);
	ctl.entrysize = sizeof(KmsLocalTag);
	local_tags = hash_create("pg_kms material tags", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = KMS_KEY_ID_LEN;
	ctl.entrysize = sizeof(KmsKeyInfo);
	local_keys = hash_create("pg_kms keys", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = KMS_REF_MAXLEN;
	ctl.entrysize = sizeof(KmsLocalRef);
	local_refs = hash_create("pg_kms key references", 16, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

static void
KmsRoleCallback(Datum arg, int cacheid, uint32 hashvalue)
{
	role_epoch++;
}

/* Cached rights are stale: every key info is checked again at next use. */
static void
KmsLocalRolesChanged(void)
{
	HASH_SEQ_STATUS seq;
	KmsKeyInfo *info;

	roles_seen = role_epoch;
	if (local_keys == NULL)
		return;
	hash_seq_init(&seq, local_keys);
	while ((info = hash_seq_search(&seq)) != NULL)
		info->checked_user = InvalidOid;
}

/*
 * Drop every local cache if anything changed since we filled them, and
 * forget cached rights if a role changed.  Called at the start of every SQL
 * entry point: one atomic read and one local compare when nothing did.
 */
void
KmsCheckGeneration(void)
{
	uint64		gen;

	KmsCheckLoaded();
	if (unlikely(!role_callbacks_registered))
	{
		/* what has_privs_of_role() and superuser_arg() depend on */
		CacheRegisterSyscacheCallback(AUTHMEMMEMROLE, KmsRoleCallback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, KmsRoleCallback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, KmsRoleCallback, (Datum) 0);
		role_callbacks_registered = true;
	}
	gen = pg_atomic_read_u64(&kmsShared->generation) + local_epoch;
	if (likely(gen == local_generation && local_ctx != NULL))
	{
		if (unlikely(role_epoch != roles_seen))
			KmsLocalRolesChanged();
		if (unlikely(local_over))
			KmsLocalTrim();
		return;
	}
	KmsLocalReset();
	KmsLocalInit();
	local_generation = gen;
	roles_seen = role_epoch;
}

/*
 * The shared generation, for parts that keep caches of their own (the
 * secrets store): a cache filled at generation g is stale once this moves.
 */
uint64
KmsCurrentGeneration(void)
{
	KmsCheckLoaded();
	return pg_atomic_read_u64(&kmsShared->generation) + local_epoch;
}

KmsKeyInfo *
KmsLocalKeyInfo(const uint8 *key_id, bool *found)
{
	/* rows of one column are mostly under one key */
	if (last_key != NULL && memcmp(last_key->key_id, key_id, KMS_KEY_ID_LEN) == 0)
	{
		*found = true;
		return last_key;
	}
	last_key = (KmsKeyInfo *) hash_search(local_keys, key_id, HASH_ENTER, found);
	last_key->last_used = ++keys_clock;
	if (!*found && hash_get_num_entries(local_keys) > KMS_LOCAL_KEYS_MAX)
		local_over = true;
	return last_key;
}

/* Forget a key this backend found not to exist (no negative caching). */
void
KmsLocalKeyInfoRemove(const uint8 *key_id)
{
	last_key = NULL;
	hash_search(local_keys, key_id, HASH_REMOVE, NULL);
}

bool
KmsLocalRefLookup(const char *ref, uint8 *key_id_out)
{
	KmsLocalRef *r;

	if (strlen(ref) >= KMS_REF_MAXLEN)
		return false;
	r = hash_search(local_refs, ref, HASH_FIND, NULL);
	if (r == NULL)
		return false;
	r->last_used = ++refs_clock;
	memcpy(key_id_out, r->key_id, KMS_KEY_ID_LEN);
	return true;
}

void
KmsLocalRefStore(const char *ref, const uint8 *key_id)
{
	KmsLocalRef *r;

	if (strlen(ref) >= KMS_REF_MAXLEN)
		return;
	r = hash_search(local_refs, ref, HASH_ENTER, NULL);
	memcpy(r->key_id, key_id, KMS_KEY_ID_LEN);
	r->last_used = ++refs_clock;
	if (hash_get_num_entries(local_refs) > KMS_LOCAL_REFS_MAX)
		local_over = true;
}

/* ----------------------------------------------------------------
 * Shared entries
 * ----------------------------------------------------------------
 */

/* Is e this database's (key, version), with material tag (unless NULL)? */
static inline bool
KmsEntryIs(const KmsCacheEntry *e, const uint8 *key_id, uint32 version,
		   const uint8 *tag)
{
	return e->valid && e->version == version && e->dbid == MyDatabaseId &&
		memcmp(e->key_id, key_id, KMS_KEY_ID_LEN) == 0 &&
		(tag == NULL || memcmp(e->tag, tag, KMS_MATERIAL_TAG_LEN) == 0);
}

/* Find a live entry; caller holds the lock in any mode. */
static KmsCacheEntry *
KmsFindEntry(const uint8 *key_id, uint32 version, const uint8 *tag,
			 TimestampTz now)
{
	for (int i = 0; i < kmsShared->nentries; i++)
	{
		KmsCacheEntry *e = &kmsShared->entries[i];

		/* an expired entry is as good as absent; a fresh copy may follow */
		if (KmsEntryIs(e, key_id, version, tag) && e->expires_at > now)
			return e;
	}
	return NULL;
}

static void
KmsEvictEntry(KmsCacheEntry *e)
{
	kms_cleanse(e->material, sizeof(e->material));
	e->valid = false;
	e->material_len = 0;
}

/* Where wrapped material comes from: the key store, set by _PG_init. */
static KmsWrappedFetcher wrapped_fetcher = NULL;

void
KmsCacheSetWrappedFetcher(KmsWrappedFetcher fetch)
{
	wrapped_fetcher = fetch;
}

/* The wrapped material changed under a tag this backend learnt: start over. */
static void
KmsMaterialChanged(const uint8 *key_id, uint32 version)
{
	char		kid[37];

	KmsLocalDirty();
	KmsUuidToString(key_id, kid);
	kms_error_detail(KMSInvalidStateException, KMS_SQLSTATE_INVALID_STATE,
					 "The catalog of this database now holds other material for this version (a restore or a catalog change); run the statement again.",
					 "the key material of key \"%s\" version %u changed while in use", kid, version);
}

/*
 * The material tag of (key, version) in this database's catalog: learnt
 * once per backend (until the local caches are dropped) from the key store.
 * When it had to read the catalog, *fetched is the wrapped material it
 * read (palloc'd), so that a cache miss right after does not read it
 * again; else NULL.
 */
static void
KmsVersionTag(const uint8 *key_id, uint32 version, uint8 *tag, bytea **fetched)
{
	KmsVersionKey k;
	KmsLocalTag *t;
	bool		found;
	bytea	   *wrapped;

	memset(&k, 0, sizeof(k));
	memcpy(k.key_id, key_id, KMS_KEY_ID_LEN);
	k.version = version;
	*fetched = NULL;
	t = hash_search(local_tags, &k, HASH_FIND, NULL);
	if (t != NULL)
	{
		memcpy(tag, t->tag, KMS_MATERIAL_TAG_LEN);
		return;
	}
	wrapped = wrapped_fetcher(key_id, (int32) version, tag);
	/* tags are copied out: start over rather than grow */
	if (hash_get_num_entries(local_tags) >= KMS_LOCAL_TAGS_MAX)
	{
		HASH_SEQ_STATUS seq;
		KmsLocalTag *x;

		hash_seq_init(&seq, local_tags);
		while ((x = hash_seq_search(&seq)) != NULL)
			hash_search(local_tags, &x->key, HASH_REMOVE, NULL);
	}
	t = hash_search(local_tags, &k, HASH_ENTER, &found);
	memcpy(t->tag, tag, KMS_MATERIAL_TAG_LEN);
	*fetched = wrapped;
}

/*
 * Unwrap through the provider, counting the call and its latency.  wrapped
 * is the material KmsVersionTag has just read with tag, or NULL: then it
 * is read here, and must still be the one with tag.
 */
static void
KmsProviderUnwrap(const uint8 *key_id, uint32 version, const uint8 *tag,
				  bytea *wrapped, uint8 *material, size_t cap, size_t *material_len)
{
	const KmsProvider *prov = KmsGetProvider();
	instr_time	start,
				duration;
	double		ms;
	bytea	   *volatile w = wrapped;

	if (w == NULL)
	{
		uint8		fetched_tag[KMS_MATERIAL_TAG_LEN];

		w = wrapped_fetcher(key_id, (int32) version, fetched_tag);
		if (memcmp(fetched_tag, tag, KMS_MATERIAL_TAG_LEN) != 0)
			KmsMaterialChanged(key_id, version);
	}

	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		prov->unwrap(key_id, version, w, material, cap, material_len);
	}
	PG_CATCH();
	{
		SpinLockAcquire(&kmsShared->mutex);
		kmsShared->provider_calls++;
		kmsShared->provider_errors++;
		SpinLockRelease(&kmsShared->mutex);
		PG_RE_THROW();
	}
	PG_END_TRY();
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	ms = INSTR_TIME_GET_MILLISEC(duration);

	SpinLockAcquire(&kmsShared->mutex);
	kmsShared->provider_calls++;
	kmsShared->provider_total_ms += ms;
	if (ms > kmsShared->provider_max_ms)
		kmsShared->provider_max_ms = ms;
	SpinLockRelease(&kmsShared->mutex);
}

/*
 * Look up this database's (key, version) with material tag, loading it
 * through the provider on a miss, and return with the lock held in shared
 * mode and the entry valid.
 */
static KmsCacheEntry *
KmsAcquireEntry(const uint8 *key_id, uint32 version, const uint8 *tag,
				bytea *wrapped)
{
	TimestampTz now = GetCurrentTimestamp();
	KmsCacheEntry *e;
	uint8		material[KMS_MAX_MATERIAL_LEN];
	size_t		material_len = 0;
	KmsCacheEntry *victim = NULL;

	LWLockAcquire(kmsShared->lock, LW_SHARED);
	e = KmsFindEntry(key_id, version, tag, now);
	if (e != NULL)
	{
		e->last_used = pg_atomic_fetch_add_u64(&kmsShared->clock, 1);
		KmsStatAdd(KMS_STAT_HITS, 1);
		return e;
	}
	LWLockRelease(kmsShared->lock);

	KmsStatAdd(KMS_STAT_MISSES, 1);

	/* Miss: the catalog has the wrapped material, the provider unwraps it. */
	KmsProviderUnwrap(key_id, version, tag, wrapped, material, sizeof(material), &material_len);

	LWLockAcquire(kmsShared->lock, LW_EXCLUSIVE);
	e = KmsFindEntry(key_id, version, tag, now);
	if (e == NULL)
	{
		/*
		 * Drop expired copies of this version first, and copies of other
		 * material for it (stale since this database's catalog changed):
		 * never two entries.
		 */
		for (int i = 0; i < kmsShared->nentries; i++)
		{
			KmsCacheEntry *c = &kmsShared->entries[i];

			if (KmsEntryIs(c, key_id, version, NULL))
			{
				KmsEvictEntry(c);
				SpinLockAcquire(&kmsShared->mutex);
				kmsShared->evictions++;
				SpinLockRelease(&kmsShared->mutex);
			}
		}

		/* a free slot, else an expired one, else the least recently used */
		for (int i = 0; i < kmsShared->nentries; i++)
		{
			KmsCacheEntry *c = &kmsShared->entries[i];

			if (!c->valid)
			{
				victim = c;
				break;
			}
			if (c->expires_at <= now)
			{
				if (victim == NULL || victim->expires_at > now)
					victim = c;
			}
			else if (victim == NULL ||
					 (victim->expires_at > now && c->last_used < victim->last_used))
				victim = c;
		}
		if (victim->valid)
		{
			KmsEvictEntry(victim);
			SpinLockAcquire(&kmsShared->mutex);
			kmsShared->evictions++;
			SpinLockRelease(&kmsShared->mutex);
		}
		e = victim;
		e->dbid = MyDatabaseId;
		memcpy(e->key_id, key_id, KMS_KEY_ID_LEN);
		e->version = version;
		memcpy(e->tag, tag, KMS_MATERIAL_TAG_LEN);
		memcpy(e->material, material, material_len);
		e->material_len = (int32) material_len;
		e->expires_at = now + (TimestampTz) kms_key_cache_ttl * USECS_PER_SEC;
		if (kms_random_bytes(e->salt, KMS_SALT_LEN) != 0)
		{
			KmsEvictEntry(e);
			LWLockRelease(kmsShared->lock);
			kms_cleanse(material, sizeof(material));
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "could not generate random bytes");
		}
		pg_atomic_write_u64(&e->used, 0);
		e->valid = true;
	}
	e->last_used = pg_atomic_fetch_add_u64(&kmsShared->clock, 1);
	kms_cleanse(material, sizeof(material));
	LWLockRelease(kmsShared->lock);

	/* Downgrade: re-acquire shared and find it again (it may be gone). */
	LWLockAcquire(kmsShared->lock, LW_SHARED);
	e = KmsFindEntry(key_id, version, tag, now);
	if (e == NULL)
	{
		LWLockRelease(kmsShared->lock);
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "key cache is too small for the working set");
	}
	return e;
}

void
KmsGetMaterial(const uint8 *key_id, uint32 version,
			   uint8 *out, size_t outcap, size_t *outlen)
{
	uint8		tag[KMS_MATERIAL_TAG_LEN];
	bytea	   *wrapped;
	KmsCacheEntry *e;

	KmsVersionTag(key_id, version, tag, &wrapped);
	e = KmsAcquireEntry(key_id, version, tag, wrapped);

	KmsProtectProcessMemory();
	if ((size_t) e->material_len > outcap)
	{
		LWLockRelease(kmsShared->lock);
		elog(ERROR, "key material buffer too small");
	}
	memcpy(out, e->material, e->material_len);
	*outlen = e->material_len;
	LWLockRelease(kmsShared->lock);
}

static KmsAead *
KmsDeriveContext(const uint8 *material, size_t len, const uint8 *salt)
{
	uint8		dk[KMS_AES_KEY_LEN];
	KmsAead    *aead;

	if (kms_derive_data_key(material, len, salt, dk) != 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not derive a data key");
	aead = kms_aead_new(dk);
	kms_cleanse(dk, sizeof(dk));
	if (aead == NULL)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not create a cipher context");
	KmsStatAdd(KMS_STAT_DERIVATIONS, 1);
	return aead;
}

KmsAead *
KmsDecryptContext(const uint8 *key_id, uint32 version, const uint8 *salt)
{
	KmsCtxKey	k;
	KmsLocalCtx *volatile c;
	bool		found;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	uint8		material[KMS_MAX_MATERIAL_LEN];
	size_t		len;
	bytea	   *wrapped;

	/* Hot path: the same (key, version, salt) as the previous row. */
	if (last_ctx != NULL &&
		last_ctx->key.version == version &&
		memcmp(last_ctx->key.salt, salt, KMS_SALT_LEN) == 0 &&
		memcmp(last_ctx->key.key_id, key_id, KMS_KEY_ID_LEN) == 0 &&
		last_ctx->expires_at > now)
	{
		KmsStatAdd(KMS_STAT_HITS, 1);
		return last_ctx->aead;
	}

	memset(&k, 0, sizeof(k));
	memcpy(k.key_id, key_id, KMS_KEY_ID_LEN);
	k.version = version;
	KmsVersionTag(key_id, version, k.tag, &wrapped);
	memcpy(k.salt, salt, KMS_SALT_LEN);
	c = hash_search(local_ctx, &k, HASH_FIND, NULL);
	if (c != NULL && c->expires_at > now)
	{
		if (wrapped != NULL)
			pfree(wrapped);
		last_ctx = c;
		c->last_used = ++ctx_clock;
		KmsStatAdd(KMS_STAT_HITS, 1);
		return c->aead;
	}

	{
		KmsCacheEntry *e = KmsAcquireEntry(key_id, version, k.tag, wrapped);

		KmsProtectProcessMemory();
		memcpy(material, e->material, e->material_len);
		len = e->material_len;
		LWLockRelease(kmsShared->lock);
	}
	PG_TRY();
	{
		KmsAead    *aead = KmsDeriveContext(material, len, salt);
		KmsLocalCtx *nc = hash_search(local_ctx, &k, HASH_ENTER, &found);

		if (found)
			kms_aead_free(nc->aead);
		nc->aead = aead;
		nc->expires_at = GetCurrentTimestamp() +
			(TimestampTz) kms_key_cache_ttl * USECS_PER_SEC;
		nc->last_used = ++ctx_clock;
		c = nc;
	}
	PG_FINALLY();
	{
		kms_cleanse(material, sizeof(material));
	}
	PG_END_TRY();
	last_ctx = c;
	/* bounded: a row-by-row scan over many keys trims as it goes */
	if (hash_get_num_entries(local_ctx) > KMS_LOCAL_CTX_MAX)
		KmsLocalTrim();
	return c->aead;
}

/*
 * Reserve one encryption under the version's current epoch and return its
 * number, which is unique within the epoch and becomes the GCM nonce (the
 * deterministic construction of NIST SP 800-38D 8.2.1: no nonce ever
 * repeats under one derived key).  Reservations are taken from the shared
 * counter in blocks, so the common case touches no shared memory.
 */
KmsAead *
KmsEncryptContext(const uint8 *key_id, uint32 version, uint8 *salt_out,
				  uint64 *counter_out)
{
	KmsEncKey	k;
	KmsLocalEnc *le;
	bool		found;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	bytea	   *wrapped;

	memset(&k, 0, sizeof(k));
	memcpy(k.key_id, key_id, KMS_KEY_ID_LEN);
	k.version = version;
	KmsVersionTag(key_id, version, k.tag, &wrapped);
	le = hash_search(local_enc, &k, HASH_ENTER, &found);
	if (!found)
	{
		le->aead = NULL;
		le->next = le->end = 0;
		if (hash_get_num_entries(local_enc) > KMS_LOCAL_ENC_MAX)
			local_over = true;
	}
	le->last_used = ++enc_clock;

	if (le->aead == NULL || le->next >= le->end || le->expires_at <= now)
	{
		KmsCacheEntry *e;
		uint8		material[KMS_MAX_MATERIAL_LEN];
		size_t		len;
		uint64		start;
		uint8		salt[KMS_SALT_LEN];

		e = KmsAcquireEntry(key_id, version, k.tag, wrapped);	/* lock held shared */
		for (;;)
		{
			start = pg_atomic_fetch_add_u64(&e->used, KMS_EPOCH_BLOCK);
			if (start + KMS_EPOCH_BLOCK <= KMS_EPOCH_LIMIT)
				break;

			/* Epoch used up: draw a new salt (once, whoever gets here). */
			LWLockRelease(kmsShared->lock);
			LWLockAcquire(kmsShared->lock, LW_EXCLUSIVE);
			if (KmsEntryIs(e, key_id, version, k.tag) &&
				pg_atomic_read_u64(&e->used) + KMS_EPOCH_BLOCK > KMS_EPOCH_LIMIT)
			{
				if (kms_random_bytes(e->salt, KMS_SALT_LEN) != 0)
				{
					LWLockRelease(kmsShared->lock);
					kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
							  "could not generate random bytes");
				}
				pg_atomic_write_u64(&e->used, 0);
				SpinLockAcquire(&kmsShared->mutex);
				kmsShared->salt_rollovers++;
				SpinLockRelease(&kmsShared->mutex);
			}
			LWLockRelease(kmsShared->lock);
			e = KmsAcquireEntry(key_id, version, k.tag, NULL);
		}
		memcpy(salt, e->salt, KMS_SALT_LEN);
		memcpy(material, e->material, e->material_len);
		len = e->material_len;
		LWLockRelease(kmsShared->lock);
		KmsProtectProcessMemory();

		PG_TRY();
		{
			if (le->aead == NULL || memcmp(le->salt, salt, KMS_SALT_LEN) != 0)
			{
				KmsAead    *aead = KmsDeriveContext(material, len, salt);

				kms_aead_free(le->aead);
				le->aead = aead;
				memcpy(le->salt, salt, KMS_SALT_LEN);
			}
		}
		PG_FINALLY();
		{
			kms_cleanse(material, sizeof(material));
		}
		PG_END_TRY();
		le->next = start;
		le->end = start + KMS_EPOCH_BLOCK;
		le->expires_at = GetCurrentTimestamp() +
			(TimestampTz) kms_key_cache_ttl * USECS_PER_SEC;
	}

	else if (wrapped != NULL)
		pfree(wrapped);

	*counter_out = le->next++;
	memcpy(salt_out, le->salt, KMS_SALT_LEN);
	return le->aead;
}

/* ----------------------------------------------------------------
 * Invalidation at commit
 * ----------------------------------------------------------------
 */
static bool pending_invalidate = false;
static List *pending_forget = NIL;	/* key ids (palloc'd in TopMemoryContext) */

void
KmsInvalidateAtCommit(void)
{
	pending_invalidate = true;
	/*
	 * The shared counter tells this server's backends; a relcache
	 * invalidation of kms.key travels in the commit record and tells a hot
	 * standby's backends, which never run our commit callback.
	 */
	CacheInvalidateRelcacheByRelid(KmsKeyRelationId());
	/* and this backend sees its own change at once */
	KmsLocalDirty();
}

/*
 * What this backend cached may be stale: a subtransaction rolled back, or an
 * invalidation of kms.key arrived (on a standby, replayed from the primary).
 */
void
KmsLocalDirty(void)
{
	local_generation = 0;
	local_epoch++;
}

void
KmsForgetKeyAtCommit(const uint8 *key_id)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	uint8	   *copy = palloc(KMS_KEY_ID_LEN);

	memcpy(copy, key_id, KMS_KEY_ID_LEN);
	pending_forget = lappend(pending_forget, copy);
	MemoryContextSwitchTo(old);
	pending_invalidate = true;
}

/* Has this transaction changed something published at commit? */
bool
KmsCacheChangesPending(void)
{
	return pending_invalidate;
}

void
KmsCacheAtCommit(void)
{
	ListCell   *lc;

	if (!pending_invalidate || kmsShared == NULL)
		return;

	if (pending_forget != NIL)
	{
		LWLockAcquire(kmsShared->lock, LW_EXCLUSIVE);
		foreach(lc, pending_forget)
		{
			uint8	   *kid = lfirst(lc);

			for (int i = 0; i < kmsShared->nentries; i++)
			{
				KmsCacheEntry *e = &kmsShared->entries[i];

				if (e->valid && e->dbid == MyDatabaseId &&
					memcmp(e->key_id, kid, KMS_KEY_ID_LEN) == 0)
					KmsEvictEntry(e);
			}
		}
		LWLockRelease(kmsShared->lock);
	}
	pg_atomic_fetch_add_u64(&kmsShared->generation, 1);
	KmsCacheAtAbort();
}

void
KmsCacheAtAbort(void)
{
	pending_invalidate = false;
	list_free_deep(pending_forget);
	pending_forget = NIL;
	/* our own local caches may hold state from the aborted transaction */
	KmsLocalDirty();
}
