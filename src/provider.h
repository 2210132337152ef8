/*-------------------------------------------------------------------------
 *
 * provider.h
 *	  The key-provider interface: what wraps and unwraps key-version
 *	  material.  `local` (provider_local.c) wraps under a master key read
 *	  at server start and kept across crash restarts; `aws` (a later part)
 *	  will call AWS KMS.  Callers never know which one runs.
 *
 * IDENTIFICATION
 *	  src/provider.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_PROVIDER_H
#define PG_KMS_PROVIDER_H

#include "pg_kms.h"

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

/* local provider: master key handling (provider_local.c) */
extern void KmsLocalLoadMasterKey(void);	/* postmaster, at every shmem
											 * startup (crash restarts too) */
extern void KmsLocalCheckMasterKey(bool for_write);	/* errors unless loaded and matching */
extern int	KmsLocalRotateMasterKey(const char *path);
extern void KmsLocalAtCommit(void);
extern void KmsLocalAtAbort(void);

#endif							/* PG_KMS_PROVIDER_H */
