/*-------------------------------------------------------------------------
 *
 * local_internal.h
 *	  Shared by the files of the local provider (local.c: the master key
 *	  and kms.master; keyring.c: earlier master keys; retry.c: loading the
 *	  master key again on demand).  Not for other folders: they use
 *	  provider.h.
 *
 * IDENTIFICATION
 *	  src/provider/local_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_LOCAL_INTERNAL_H
#define PG_KMS_LOCAL_INTERNAL_H

#include "provider/provider.h"

/* The master slot and its lock (the "pg_kms" LWLock); error if not preloaded. */
extern KmsMasterSlot *KmsSharedMaster(void);
extern LWLock *KmsMasterLock(void);

/* keyring.c: read pg_kms.master_keyring_directory into the slot (postmaster). */
extern void KmsKeyringLoad(KmsMasterSlot *m);
/* Unwrap with the keyring's keys; 0 if one of them did. */
extern int	KmsKeyringUnwrap(const uint8 *key_id, uint32 version, const uint8 *wrapped,
							 size_t wrappedlen, uint8 *out, size_t outcap, size_t *outlen);
/* Is kcv the check value of a keyring key (or of the previous key)? */
extern bool KmsKeyringHasKcv(const uint8 *kcv);

/*
 * retry.c: the current master key failed to load; try the settings again
 * if an attempt is due (see retry.c).  True if the slot has a key now;
 * else why not in err.
 */
extern bool KmsMasterRetry(char *err, size_t errlen);

#endif							/* PG_KMS_LOCAL_INTERNAL_H */
