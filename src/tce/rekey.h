/*-------------------------------------------------------------------------
 *
 * rekey.h
 *	  Converting a plaintext column to an encrypted one
 *	  (kms_encrypt_column) and rekeying an encrypted column online in
 *	  batches (CALL kms_reencrypt_column), with the job's progress kept in
 *	  kms.column_rekey so that a crash or a cancel resumes where the last
 *	  committed batch ended (docs/column-encryption.md, "Converting and
 *	  rekeying").
 *
 *	  rekey.c: the entry points and the batches (run as the caller, so the
 *	  table's privileges, and the column type's own Encrypt/Decrypt checks
 *	  and audit, apply to every value).  progress.c: the one writer of
 *	  kms.column_rekey (as the extension owner).  rekey_move.c: moving a
 *	  column to another key by its type modifier alone.
 *
 *	  May call: keystore/, audit/, catalog/, common/.
 *
 * IDENTIFICATION
 *	  src/tce/rekey.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_TCE_REKEY_H
#define PG_KMS_TCE_REKEY_H

#include "catalog/kms_catalog.h"

/* One column's rekey job: a row of kms.column_rekey. */
typedef struct RekeyJob
{
	Oid			relid;
	int16		attnum;
	bool		found;			/* the row exists */
	bool		running;		/* state = 'running' (else 'done') */
	char		key_id[64];
	int32		key_version;
	int32		pass;
	int64		next_block;
	int64		pass_blocks;
	int32		batch_blocks;
	int32		batch_size;
	int64		rows_total;
	int64		rows_done;
	int64		rows_rekeyed;
	int64		pass_changed;
	int32		pid;
} RekeyJob;

/* rekey_move.c: the column's type modifier to keyref's (online key move) */
extern int32 RekeyMoveColumnKey(Oid relid, AttrNumber attnum, const char *table_name,
								const char *column_name, int32 old_typmod,
								const char *keyref);

/* 1: typmod names a deterministic column key, 0: randomized, -1: none */
extern int	RekeyTypmodDeterministic(int32 typmod);

/* progress.c */
extern bool RekeyJobLoad(Oid relid, int16 attnum, RekeyJob *job);
extern void RekeyJobCreate(RekeyJob *job, const char *table_name,
						   const char *column_name);
extern void RekeyJobResume(RekeyJob *job);
extern void RekeyJobSave(RekeyJob *job, bool done);
extern bool RekeyBackendActive(int32 pid);

#endif							/* PG_KMS_TCE_REKEY_H */
