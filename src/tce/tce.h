/*-------------------------------------------------------------------------
 *
 * tce.h
 *	  Transparent column encryption (src/tce/): the types encrypted_text and
 *	  encrypted_bytea, whose type modifier names a key; the typmod map
 *	  kms.column_key (the one layer that writes it); sealing on every write
 *	  path, plaintext or ciphertext output (pg_kms.column_output),
 *	  deterministic values (AES-SIV) with equality and btree indexes, and the
 *	  guards that keep plaintext out of storage, error reports and
 *	  statistics (docs/column-encryption.md).
 *
 *	  May call: envelope/, keystore/, cache/, audit/, catalog/, common/,
 *	  crypto/.  Peer of kms/ and secrets/.
 *
 * IDENTIFICATION
 *	  src/tce/tce.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_TCE_H
#define PG_KMS_TCE_H

#include "common/kms_common.h"
#include "envelope/envelope.h"

/* pg_kms.column_output */
typedef enum KmsColumnOutput
{
	KMS_COLUMN_OUTPUT_AUTO = 0,
	KMS_COLUMN_OUTPUT_PLAINTEXT,
	KMS_COLUMN_OUTPUT_CIPHERTEXT
} KmsColumnOutput;

extern int	kms_column_output;

extern void KmsTceDefineGucs(void);

/*
 * From the module entry's emit_log_hook: an ERROR raised in a transaction
 * that handled encrypted column values loses its DETAIL, CONTEXT and
 * statement (they may quote plaintext: a unique violation's key, a COPY
 * line).
 */
struct ErrorData;
extern void KmsTceEmitLog(struct ErrorData *edata);

/*
 * Parallel query (guard.c): shared memory where parallel workers mark
 * their leader's transaction as one that handled encrypted values (from
 * the module entry's shared-memory hooks), and, around each executor run
 * (the module entry's ExecutorRun hook), the leader's output form passed
 * on to its workers.
 */
struct QueryDesc;
extern void KmsTceShmemRequest(void);
extern void KmsTceShmemStartup(void);
extern int	KmsTceExecutorRunBegin(struct QueryDesc *queryDesc);
extern void KmsTceExecutorRunEnd(int nest);

/*
 * What a stored (or in-memory) value is, without decrypting it.
 */
typedef struct KmsTceValueInfo
{
	bool		sealed;			/* false: a pending value (plaintext in memory) */
	bool		deterministic;
	uint8		key_id[KMS_KEY_ID_LEN];
	uint32		version;
} KmsTceValueInfo;

/* Parse a value of either type (detoasted or not); errors on garbage. */
extern void KmsTceValueGetInfo(struct varlena *value, KmsTceValueInfo *info);

/* kms_decrypt() of a deterministic value: envelope/'s decryptor of its format */
#define KMS_TCE_FORMAT_DETERMINISTIC 0x02
extern bytea *KmsTceDecryptBlob(bytea *blob, KmsContext *ctx,
								const char *expected_keyref, KmsOp op,
								bool check_access, KmsKeyInfo **key_out);

/*
 * Seal a value of encrypted_text (is_text) or encrypted_bytea for a column
 * whose typmod is typmod (>= 0): a pending value is encrypted with the
 * column's key; a sealed value under another key, or in the other mode
 * (deterministic / randomized), is decrypted (Decrypt on its key) and sealed
 * again (Encrypt on the column's key).  A sealed value under the column's
 * key is returned as it is, unless to_current: then a randomized value
 * under an older version of the key is sealed again with the current
 * version (kms_reencrypt_column's step), and a deterministic one with the
 * column's deterministic version (kms.column_key.det_version).  The
 * plaintext never leaves this function.
 */
extern struct varlena *KmsTceSeal(struct varlena *value, int32 typmod,
								  bool is_text, bool to_current);

/* Would KmsTceSeal(value, typmod, is_text, true) change value? */
extern bool KmsTceNeedsReseal(struct varlena *value, int32 typmod);

/*
 * Make version the deterministic version of typmod in kms.column_key (a
 * deterministic column moving to the key's current version: set it, then
 * KmsTceSeal(..., true) every value).  Caches follow at commit.
 */
extern void KmsTceSetDeterministicVersion(int32 typmod, int32 version);

#endif							/* PG_KMS_TCE_H */
