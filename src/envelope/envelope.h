/*-------------------------------------------------------------------------
 *
 * envelope.h
 *	  Envelope encryption (src/envelope/), for the SQL entry points of the
 *	  data plane (kms/) and for the secrets store (secrets/) alike.  The
 *	  encryption context is given as pairs.
 *
 *	  May call: keystore/, cache/, audit/, catalog/, common/, crypto/.
 *
 * IDENTIFICATION
 *	  src/envelope/envelope.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_ENVELOPE_H
#define PG_KMS_ENVELOPE_H

#include "keystore/keystore.h"

typedef struct KmsContext
{
	int			npairs;
	KmsContextPair *pairs;
} KmsContext;

/* Build a context from a jsonb object of strings (NULL -> empty). */
extern void KmsContextFromJsonb(Jsonb *jb, KmsContext *ctx);

/*
 * Encrypt data under key (already resolved, access and state checked by the
 * caller).  Returns a palloc'd blob.
 */
extern bytea *KmsEncryptData(KmsKeyInfo *key, const char *data, Size len,
							 KmsContext *ctx);

/*
 * Decrypt a blob.  expected_keyref, if not NULL, must name the key that
 * encrypted it (IncorrectKeyException).  op is the operation checked on the
 * blob's key (Decrypt, or ReEncryptFrom).  If check_access is false the
 * caller has already authorised the use (the secrets store's own key).
 * Returns the plaintext (palloc'd) and the key in *key_out (may be NULL).
 */
extern bytea *KmsDecryptData(bytea *blob, KmsContext *ctx,
							 const char *expected_keyref, KmsOp op,
							 bool check_access, KmsKeyInfo **key_out);

/*
 * Blobs of another format (their first byte), decrypted by a higher layer:
 * the deterministic values of column encryption (format 0x02, tce/), which
 * kms_decrypt() opens too.  Same contract as KmsDecryptData.  Installed
 * from the module entry (src/pg_kms.c) at load.
 */
typedef bytea *(*KmsFormatDecryptor) (bytea *blob, KmsContext *ctx,
									  const char *expected_keyref, KmsOp op,
									  bool check_access, KmsKeyInfo **key_out);
extern void KmsSetFormatDecryptor(uint8 format, KmsFormatDecryptor fn);

#endif							/* PG_KMS_ENVELOPE_H */
