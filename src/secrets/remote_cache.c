/*-------------------------------------------------------------------------
 *
 * remote_cache.c
 *	  The shared cache of remote secrets, like AWS's Secrets Manager caching
 *	  clients: one entry per (ARN, version id, staging label), fresh for
 *	  pg_kms.remote_secret_cache_ttl (default 1 hour), at most
 *	  pg_kms.remote_secret_cache_size entries (default 1024, least recently
 *	  used evicted).  A miss or an expired entry costs one GetSecretValue
 *	  for all backends: the first caller fetches, the others wait for it.
 *	  When a refresh fails the old value is served with a WARNING naming the
 *	  error, and no new call is made before a backoff (1 s doubling up to
 *	  1 hour, as the AWS clients do); without an old value the error is
 *	  raised, to the waiters too.
 *
 *	  Values are held encrypted (AES-256-GCM, the cache key as AAD) under a
 *	  key drawn at postmaster start that lives only in this region's first
 *	  page, excluded from core dumps and locked in memory; the ciphertexts
 *	  are in a dynamic shared memory area (DSA), since values go up to 64
 *	  KiB.  Nothing of a value is ever on disk, in the WAL or a log line.
 *	  A restart empties the cache.
 *
 * Locking: the entries, the clock and the DSA pointers are guarded by the
 * "pg_kms remote secrets" LWLock (exclusive: every lookup moves the LRU
 * clock).  No lock is held across the AWS call: the entry is marked
 * "fetching" by the caller's pid instead, and waiters sleep on the
 * condition variable (checking that the fetcher is still alive).
 *
 * IDENTIFICATION
 *	  src/secrets/remote_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>
#include <unistd.h>

#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "catalog/kms_catalog.h"
#include "crypto/crypto.h"
#include "secrets/remote_internal.h"

#define REMOTE_DSA_INIT		(256 * 1024)
#define REMOTE_NONCE		12
#define REMOTE_TAG			16
#define REMOTE_BACKOFF_MAX	3600	/* s, as exception_retry_delay_max */

int			kms_remote_secret_cache_ttl = 3600;
int			kms_remote_secret_cache_size = 1024;

typedef struct RemoteEntry
{
	uint64		hash;			/* of key; 0: free */
	uint64		last_used;		/* the clock at the last lookup */
	bool		has_value;
	bool		fetching;		/* a call is in flight, by fetch_pid */
	int			fetch_pid;
	TimestampTz fetched_at;		/* of the value */
	TimestampTz next_try;		/* after a failure: no call before */
	int			nfailures;		/* in a row */
	RemoteFailure failure;		/* the last one, if nfailures > 0 */
	dsa_pointer blob;			/* nonce | tag | ciphertext */
	uint32		bloblen;
	char		key[REMOTE_KEY_MAX];
} RemoteEntry;

/* The region's first page (protected): keep the key in it */
typedef struct RemoteShared
{
	uint8		key[32];		/* encrypts the values; never leaves memory */
	LWLock	   *lock;
	ConditionVariable cv;
	int			nentries;
	uint64		clock;
	RemoteEntry *entries;
	char	   *dsa_place;
} RemoteShared;

static RemoteShared *remoteShared = NULL;
static dsa_area *remote_dsa = NULL;
static KmsAead *remote_aead = NULL;

/* ----------------------------------------------------------------
 * Settings and shared memory
 * ----------------------------------------------------------------
 */
void
KmsRemoteSecretDefineGucs(void)
{
	DefineCustomIntVariable("pg_kms.remote_secret_cache_ttl",
							"How long a value read from AWS Secrets Manager is served from the shared cache.",
							"After it, the next read fetches it again; if that fails, the old value is served with a WARNING.",
							&kms_remote_secret_cache_ttl,
							3600, 1, 30 * 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.remote_secret_cache_size",
							"Number of remote secret versions the shared cache holds.",
							NULL,
							&kms_remote_secret_cache_size,
							1024, 16, 65536,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

static Size
RemoteHeadSize(void)
{
	long		page = sysconf(_SC_PAGESIZE);

	return TYPEALIGN(page, sizeof(RemoteShared));
}

static Size
RemoteRegionSize(void)
{
	long		page = sysconf(_SC_PAGESIZE);
	Size		size = page;	/* to align the head on a page */

	size = add_size(size, RemoteHeadSize());
	size = add_size(size, mul_size(kms_remote_secret_cache_size, sizeof(RemoteEntry)));
	size = add_size(size, MAXIMUM_ALIGNOF);
	size = add_size(size, REMOTE_DSA_INIT);
	return size;
}

void
KmsRemoteSecretShmemRequest(void)
{
	RequestAddinShmemSpace(RemoteRegionSize());
	RequestNamedLWLockTranche("pg_kms remote secrets", 1);
}

void
KmsRemoteSecretShmemStartup(void)
{
	bool		found;
	long		page = sysconf(_SC_PAGESIZE);
	char	   *raw;
	char	   *base;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	raw = ShmemInitStruct("pg_kms remote secrets", RemoteRegionSize(), &found);
	base = (char *) TYPEALIGN(page, raw);
	remoteShared = (RemoteShared *) base;
	if (!found)
	{
		LWLock	   *lock = &(GetNamedLWLockTranche("pg_kms remote secrets"))->lock;
		dsa_area   *dsa;

		memset(base, 0, RemoteHeadSize());
		remoteShared->lock = lock;
		ConditionVariableInit(&remoteShared->cv);
		remoteShared->nentries = kms_remote_secret_cache_size;
		remoteShared->entries = (RemoteEntry *) (base + RemoteHeadSize());
		memset(remoteShared->entries, 0,
			   kms_remote_secret_cache_size * sizeof(RemoteEntry));
		remoteShared->dsa_place = (char *)
			MAXALIGN((char *) remoteShared->entries +
					 kms_remote_secret_cache_size * sizeof(RemoteEntry));

		/* the head page holds the key: out of core dumps and swap */
		if (kms_protect_memory)
		{
#ifdef MADV_DONTDUMP
			if (madvise(base, RemoteHeadSize(), MADV_DONTDUMP) != 0)
				ereport(LOG,
						(errmsg("pg_kms: could not exclude the remote secret cache key from core dumps: %m")));
#endif
			if (mlock(base, RemoteHeadSize()) != 0)
				ereport(LOG,
						(errmsg("pg_kms: could not lock the remote secret cache key in memory: %m")));
		}
		if (kms_random_bytes(remoteShared->key, sizeof(remoteShared->key)) != 0)
			ereport(FATAL,
					(errmsg("pg_kms: could not draw the remote secret cache key")));

		/* as pgstat does: the area in place, pinned, detached here */
		dsa = dsa_create_in_place(remoteShared->dsa_place, REMOTE_DSA_INIT,
								  lock->tranche, NULL);
		dsa_pin(dsa);
		dsa_detach(dsa);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* This backend's handles: the DSA mapping and the AEAD key schedule. */
static void
RemoteAttach(void)
{
	if (remoteShared == NULL)
		KmsCheckPreloaded(false);
	if (remote_dsa == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		remote_dsa = dsa_attach_in_place(remoteShared->dsa_place, NULL);
		dsa_pin_mapping(remote_dsa);
		MemoryContextSwitchTo(old);
	}
	if (remote_aead == NULL)
	{
		remote_aead = kms_aead_new(remoteShared->key);
		if (remote_aead == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
							errmsg("could not set up the remote secret cache key")));
	}
}

/* ----------------------------------------------------------------
 * Entries (callers hold the lock)
 * ----------------------------------------------------------------
 */
static uint64
KeyHash(const char *key)
{
	uint64		h = hash_bytes_extended((const unsigned char *) key, strlen(key), 0x6b6d73);

	return h == 0 ? 1 : h;
}

static RemoteEntry *
EntryFind(const char *key, uint64 hash)
{
	for (int i = 0; i < remoteShared->nentries; i++)
	{
		RemoteEntry *e = &remoteShared->entries[i];

		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

static void
EntryDropValue(RemoteEntry *e)
{
	if (DsaPointerIsValid(e->blob))
	{
		char	   *p = dsa_get_address(remote_dsa, e->blob);

		memset(p, 0, e->bloblen);
		dsa_free(remote_dsa, e->blob);
	}
	e->blob = InvalidDsaPointer;
	e->bloblen = 0;
	e->has_value = false;
}

/* A free entry, or the least recently used one not being fetched; NULL. */
static RemoteEntry *
EntryNew(const char *key, uint64 hash)
{
	RemoteEntry *victim = NULL;

	for (int i = 0; i < remoteShared->nentries; i++)
	{
		RemoteEntry *e = &remoteShared->entries[i];

		if (e->hash == 0)
		{
			victim = e;
			break;
		}
		if (!e->fetching && (victim == NULL || e->last_used < victim->last_used))
			victim = e;
	}
	if (victim == NULL)
		return NULL;
	if (victim->hash != 0)
		EntryDropValue(victim);
	memset(victim, 0, offsetof(RemoteEntry, key));
	victim->blob = InvalidDsaPointer;
	victim->hash = hash;
	strlcpy(victim->key, key, REMOTE_KEY_MAX);
	return victim;
}

/* Encrypt json into the entry (replacing its value). */
static void
EntryStore(RemoteEntry *e, const char *json)
{
	size_t		len = strlen(json);
	dsa_pointer dp;
	uint8	   *p;

	dp = dsa_allocate_extended(remote_dsa, REMOTE_NONCE + REMOTE_TAG + len,
							   DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(dp))
	{
		EntryDropValue(e);		/* not cached (served all the same) */
		return;
	}
	p = dsa_get_address(remote_dsa, dp);
	if (kms_random_bytes(p, REMOTE_NONCE) != 0 ||
		kms_aead_encrypt(remote_aead, p, (const uint8 *) e->key, strlen(e->key),
						 NULL, 0, (const uint8 *) json, len,
						 p + REMOTE_NONCE + REMOTE_TAG, p + REMOTE_NONCE) != 0)
	{
		dsa_free(remote_dsa, dp);
		EntryDropValue(e);
		return;
	}
	EntryDropValue(e);
	e->blob = dp;
	e->bloblen = REMOTE_NONCE + REMOTE_TAG + len;
	e->has_value = true;
}

/* A copy of the entry's ciphertext (so it is decrypted without the lock). */
static uint8 *
EntryCopyBlob(RemoteEntry *e, uint32 *len)
{
	uint8	   *copy = palloc(e->bloblen);

	memcpy(copy, dsa_get_address(remote_dsa, e->blob), e->bloblen);
	*len = e->bloblen;
	return copy;
}

static char *
BlobOpen(const char *key, uint8 *blob, uint32 len)
{
	size_t		ctlen = len - REMOTE_NONCE - REMOTE_TAG;
	char	   *json = palloc(ctlen + 1);

	if (kms_aead_decrypt(remote_aead, blob, (const uint8 *) key, strlen(key), NULL, 0,
						 blob + REMOTE_NONCE + REMOTE_TAG, ctlen, blob + REMOTE_NONCE,
						 (uint8 *) json) != 0)
	{
		kms_cleanse(json, ctlen);
		elog(ERROR, "could not decrypt a remote secret cache entry");
	}
	json[ctlen] = '\0';
	return json;
}

static bool
FetcherAlive(int pid)
{
	return pid == MyProcPid || BackendPidGetProc(pid) != NULL;
}

static TimestampTz
BackoffUntil(TimestampTz now, int nfailures)
{
	int64		s = 1;

	for (int i = 1; i < nfailures && s < REMOTE_BACKOFF_MAX; i++)
		s *= 2;
	if (s > REMOTE_BACKOFF_MAX)
		s = REMOTE_BACKOFF_MAX;
	return now + s * USECS_PER_SEC;
}

static void
WarnStale(const char *arn, TimestampTz fetched_at, const RemoteFailure *f)
{
	ereport(WARNING,
			(errmsg("pg_kms: serving the cached value of remote secret \"%s\" fetched at %s: its refresh failed with %s",
					arn, timestamptz_to_str(fetched_at), RemoteFailureName(f)),
			 errdetail("AWS error code: %s; request id: %s.",
					   f->aws_code[0] ? f->aws_code : "none",
					   f->request_id[0] ? f->request_id : "none"),
			 errhint("kms_refresh_remote_secret() tries again at once.")));
}

/* ----------------------------------------------------------------
 * The read
 * ----------------------------------------------------------------
 */
char *
RemoteCacheGet(const char *arn, const char *version_id, const char *stage,
			   bool force, RemoteOutcome *how)
{
	char		key[REMOTE_KEY_MAX];
	uint64		hash;
	RemoteEntry *volatile e;
	char	   *json = NULL;
	RemoteFailure fail;
	bool		ok;
	bool		cached;
	bool		forced = force;

	RemoteAttach();
	if (strlen(arn) + (version_id ? strlen(version_id) : 0) +
		(stage ? strlen(stage) : 0) + 3 > REMOTE_KEY_MAX)
		elog(ERROR, "remote secret id too long");
	snprintf(key, sizeof(key), "%s\x01%s\x01%s", arn, version_id ? version_id : "",
			 stage ? stage : "");
	hash = KeyHash(key);

	for (;;)
	{
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(remoteShared->lock, LW_EXCLUSIVE);
		now = GetCurrentTimestamp();
		e = EntryFind(key, hash);
		if (e != NULL)
		{
			e->last_used = ++remoteShared->clock;
			if (e->fetching && FetcherAlive(e->fetch_pid) && e->fetch_pid != MyProcPid)
			{
				/* one call for everybody: wait for it, then look again */
				ConditionVariablePrepareToSleep(&remoteShared->cv);
				LWLockRelease(remoteShared->lock);
				(void) ConditionVariableTimedSleep(&remoteShared->cv, 100, PG_WAIT_EXTENSION);
				ConditionVariableCancelSleep();
				/* a forced refresh that waited for another's call is served by it */
				force = false;
				continue;
			}
			e->fetching = false;	/* its fetcher died */
			if (e->has_value && !force &&
				!TimestampDifferenceExceeds(e->fetched_at, now,
											kms_remote_secret_cache_ttl * 1000))
			{
				uint32		len;
				uint8	   *blob = EntryCopyBlob(e, &len);

				LWLockRelease(remoteShared->lock);
				*how = REMOTE_HIT;
				json = BlobOpen(key, blob, len);
				kms_cleanse(blob, len);
				return json;
			}
			if (!force && e->nfailures > 0 && now < e->next_try)
			{
				/* within the backoff of a failed call: no new call */
				RemoteFailure f = e->failure;

				if (e->has_value)
				{
					TimestampTz at = e->fetched_at;
					uint32		len;
					uint8	   *blob = EntryCopyBlob(e, &len);

					LWLockRelease(remoteShared->lock);
					json = BlobOpen(key, blob, len);
					kms_cleanse(blob, len);
					WarnStale(arn, at, &f);
					*how = REMOTE_STALE;
					return json;
				}
				LWLockRelease(remoteShared->lock);
				RemoteRaise(arn, &f);
			}
		}
		else
			e = EntryNew(key, hash);
		if (e != NULL)
		{
			e->fetching = true;
			e->fetch_pid = MyProcPid;
		}
		LWLockRelease(remoteShared->lock);
		break;
	}

	/* the call, no lock held; the entry cannot be evicted while fetching */
	cached = (e != NULL);
	PG_TRY();
	{
		ok = RemoteFetch(arn, version_id, stage, &json, &fail);
	}
	PG_CATCH();
	{
		if (cached)
		{
			LWLockAcquire(remoteShared->lock, LW_EXCLUSIVE);
			if (e->hash == hash && e->fetch_pid == MyProcPid)
				e->fetching = false;
			LWLockRelease(remoteShared->lock);
			ConditionVariableBroadcast(&remoteShared->cv);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (!cached)
	{
		if (!ok)
			RemoteRaise(arn, &fail);
		*how = REMOTE_FETCHED;
		return json;
	}

	LWLockAcquire(remoteShared->lock, LW_EXCLUSIVE);
	Assert(e->hash == hash);
	e->fetching = false;
	if (ok)
	{
		EntryStore(e, json);
		e->fetched_at = GetCurrentTimestamp();
		e->nfailures = 0;
		e->next_try = 0;
		LWLockRelease(remoteShared->lock);
		ConditionVariableBroadcast(&remoteShared->cv);
		*how = REMOTE_FETCHED;
		return json;
	}
	e->nfailures++;
	e->failure = fail;
	e->next_try = BackoffUntil(GetCurrentTimestamp(), e->nfailures);
	if (e->has_value && !forced)
	{
		TimestampTz at = e->fetched_at;
		uint32		len;
		uint8	   *blob = EntryCopyBlob(e, &len);

		LWLockRelease(remoteShared->lock);
		ConditionVariableBroadcast(&remoteShared->cv);
		json = BlobOpen(key, blob, len);
		kms_cleanse(blob, len);
		WarnStale(arn, at, &fail);
		*how = REMOTE_STALE;
		return json;
	}
	LWLockRelease(remoteShared->lock);
	ConditionVariableBroadcast(&remoteShared->cv);
	RemoteRaise(arn, &fail);
}

/* The (version_id, stage) pairs cached for arn, as "vid\x01stage" strings. */
List *
RemoteCacheKeysOf(const char *arn)
{
	List	   *out = NIL;
	size_t		n = strlen(arn);

	RemoteAttach();
	LWLockAcquire(remoteShared->lock, LW_SHARED);
	for (int i = 0; i < remoteShared->nentries; i++)
	{
		RemoteEntry *e = &remoteShared->entries[i];

		if (e->hash != 0 && strncmp(e->key, arn, n) == 0 && e->key[n] == '\x01')
			out = lappend(out, pstrdup(e->key + n + 1));
	}
	LWLockRelease(remoteShared->lock);
	return out;
}

/*
 * kms_remote_secret_cache(): what the cache holds, never a value; for
 * superusers and kms_admin.
 */
PG_FUNCTION_INFO_V1(kms_remote_secret_cache);
Datum
kms_remote_secret_cache(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts;

	if (!superuser() && !KmsIsAdmin())
		kms_error(AccessDeniedException, KMS_SQLSTATE_ACCESS_DENIED,
				  "only superusers and members of kms_admin may list the remote secret cache");
	RemoteAttach();
	ts = KmsStartSRF(fcinfo, &tupdesc);
	LWLockAcquire(remoteShared->lock, LW_SHARED);
	for (int i = 0; i < remoteShared->nentries; i++)
	{
		RemoteEntry *e = &remoteShared->entries[i];
		Datum		v[7];
		bool		nulls[7] = {0};
		char	   *parts[3];
		char	   *k;
		char	   *sep;

		if (e->hash == 0)
			continue;
		k = pstrdup(e->key);
		parts[0] = k;
		sep = strchr(k, '\x01');
		*sep = '\0';
		parts[1] = sep + 1;
		sep = strchr(parts[1], '\x01');
		*sep = '\0';
		parts[2] = sep + 1;
		v[0] = CStringGetTextDatum(parts[0]);
		for (int j = 1; j < 3; j++)
		{
			nulls[j] = parts[j][0] == '\0';
			if (!nulls[j])
				v[j] = CStringGetTextDatum(parts[j]);
		}
		nulls[3] = !e->has_value;
		nulls[4] = !e->has_value;
		if (e->has_value)
		{
			v[3] = TimestampTzGetDatum(e->fetched_at);
			v[4] = TimestampTzGetDatum(e->fetched_at +
									   (int64) kms_remote_secret_cache_ttl * USECS_PER_SEC);
		}
		v[5] = Int32GetDatum(e->nfailures);
		nulls[6] = e->nfailures == 0;
		if (e->nfailures > 0)
			v[6] = CStringGetTextDatum(RemoteFailureName(&e->failure));
		tuplestore_putvalues(ts, tupdesc, v, nulls);
	}
	LWLockRelease(remoteShared->lock);
	return (Datum) 0;
}
