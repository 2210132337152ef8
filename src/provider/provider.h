/*-------------------------------------------------------------------------
 *
 * provider.h
 *	  The key-provider interface (src/provider/): what wraps and unwraps
 *	  key-version material.  `local` (local.c) wraps under a master key
 *	  read at server start and kept across crash restarts; `aws` (aws.c)
 *	  calls AWS KMS (src/aws/).  Callers never know which one runs.
 *
 *	  The master key lives in a slot of the shared key cache's protected
 *	  region (cache/cache.c hands the slot and its lock over at shared
 *	  memory startup, KmsProviderShmemAttach), so this layer sits below
 *	  the cache.  Owns pg_kms.provider, pg_kms.master_key_file,
 *	  pg_kms.master_key_command, pg_kms.master_key_command_timeout,
 *	  pg_kms.previous_master_key_file and pg_kms.master_keyring_directory,
 *	  and kms.master (the master key's check value).
 *
 *	  May call: catalog/, aws/, common/, crypto/.
 *
 * IDENTIFICATION
 *	  src/provider/provider.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_PROVIDER_H
#define PG_KMS_PROVIDER_H

#include "common/kms_common.h"
#include "datatype/timestamp.h"
#include "storage/lwlock.h"

/* Settings (master_key_source.c; pg_kms.provider: local.c) */
extern char *kms_master_key_file;
extern char *kms_master_key_command;
extern char *kms_previous_master_key_file;
extern char *kms_master_keyring_directory;
extern int	kms_master_key_command_timeout;
extern char *kms_provider_name;

/* pg_kms.master_key_file, _command, _command_timeout, previous_master_key_file, master_keyring_directory */
extern void KmsLocalProviderDefineGucs(void);
/* pg_kms.provider */
extern void KmsProviderDefineGucs(void);

typedef struct KmsProvider
{
	const char *name;

	/*
	 * Generate new material of len bytes for (key_id, version) into out and
	 * return its wrapped form (palloc'd).  Errors out if the provider is not
	 * ready.
	 */
	bytea	   *(*generate) (const uint8 *key_id, uint32 version,
							 uint8 *out, size_t len);

	/* Unwrap; errors out (KeyUnavailableException etc.) on failure. */
	void		(*unwrap) (const uint8 *key_id, uint32 version,
						   const bytea *wrapped, uint8 *out, size_t outcap,
						   size_t *outlen);
} KmsProvider;

extern const KmsProvider *KmsGetProvider(void);

/*
 * The master key slot, in the shared key cache's protected region; read or
 * write it holding the lock handed over with it.
 */
/*
 * The keyring's size: earlier master keys kept besides the current and the
 * previous one (provider/keyring.c).  32 keys are 1.5 kB of locked memory,
 * a failed unwrap tries at most 34 keys (microseconds), and a master key
 * rotated yearly is kept for 32 years of backups; more is refused with a
 * warning naming the files left out.
 */
#define KMS_KEYRING_MAX 32

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
	/* earlier master keys (pg_kms.master_keyring_directory), by their KCVs */
	int			nring;
	uint8		ring_key[KMS_KEYRING_MAX][KMS_AES_KEY_LEN];
	uint8		ring_kcv[KMS_KEYRING_MAX][KMS_KCV_LEN];
	/* loading the current key again on demand after a failure (retry.c) */
	bool		retry_running;	/* a backend runs the command now */
	TimestampTz retry_started;
	TimestampTz retry_next;		/* no attempt before this */
	int			retry_failures;
} KmsMasterSlot;

/*
 * At shared memory startup (postmaster, at every start and crash restart;
 * every backend under EXEC_BACKEND): where the slot is and what guards it.
 * With init (the segment is new) the master key is loaded into it; the
 * caller holds AddinShmemInitLock.
 */
extern void KmsProviderShmemAttach(KmsMasterSlot *slot, LWLock *lock, bool init);

/* local provider: master key handling (local.c) */
/*
 * Master-key rotation (keystore/master.c runs it): begin (target: the key
 * in path, or the current key; kms.master locked), the material of one
 * version rewrapped under the target (NULL if it is there already), end
 * (kms.master updated; the new key published at commit).
 */
/*
 * The rewrap for the provider that runs (aws_rewrap.c): the local rotation
 * above, or under aws every version not under pg_kms.aws_kms_key_id
 * wrapped again under it.  Rewrap returns NULL when nothing is to be done.
 */
extern void KmsProviderRewrapBegin(const char *path);
extern bytea *KmsProviderRewrap(const uint8 *key_id, uint32 version, const bytea *wrapped);
extern void KmsProviderRewrapEnd(void);
extern const char *KmsProviderName(void);

extern void KmsLocalRewrapBegin(const char *path);
extern bytea *KmsLocalRewrap(const uint8 *key_id, uint32 version, const bytea *wrapped);
extern void KmsLocalRewrapEnd(void);
extern bool KmsLocalChangesPending(void);
extern void KmsLocalAtCommit(void);
extern void KmsLocalAtAbort(void);

#endif							/* PG_KMS_PROVIDER_H */
