/*-------------------------------------------------------------------------
 *
 * tce_internal.h
 *	  Internals of src/tce/ shared between its files.
 *
 *	  A value of encrypted_text / encrypted_bytea is a varlena whose first
 *	  byte says what it is (docs/ciphertext-format.md, section 8):
 *
 *	  0x00  pending: the plaintext follows.  Exists in memory only: input
 *			with typmod -1 (every literal and parameter) makes one; the
 *			length coercion to the column's typmod seals it.
 *	  0x01  randomized: an envelope blob of format 1 (crypto.h) under the
 *			column encryption context {"pg_kms:column": "<type name>"}.
 *	  0x02  deterministic: 0x02 || key id (16) || version (4) || SIV (16)
 *			|| AES-256-SIV ciphertext; AAD = the first 21 bytes || the same
 *			canonical context; the SIV key is derived for this use only.
 *	  0x81, 0x82  imported: a value of format 0x01 / 0x02 that came in
 *			through the ciphertext form with typmod -1; the length coercion
 *			checks it against the column (no re-encryption) and stores it
 *			with the flag cleared.  Memory only.
 *
 * IDENTIFICATION
 *	  src/tce/tce_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_TCE_INTERNAL_H
#define PG_KMS_TCE_INTERNAL_H

#include "tce/tce.h"

#define TCE_PENDING			0x00
#define TCE_RANDOMIZED		0x01	/* == KMS_FORMAT_V1 */
#define TCE_DETERMINISTIC	KMS_TCE_FORMAT_DETERMINISTIC	/* 0x02 */
#define TCE_IMPORTED		0x80

#define TCE_DET_HEADER_LEN	21		/* format, key id, version */
#define TCE_DET_OVERHEAD	(TCE_DET_HEADER_LEN + 16)	/* 37 */

/* The text form of a sealed value (output in ciphertext mode, input). */
#define TCE_TEXT_PREFIX		"pg_kms:v1:"
#define TCE_TEXT_PREFIX_LEN 10
/* The binary form (send in ciphertext mode, recv). */
#define TCE_BINARY_MAGIC	"\0KMSv1\0"
#define TCE_BINARY_MAGIC_LEN 7

#define TCE_CONTEXT_KEY		"pg_kms:column"
#define TCE_TYPE_NAME(is_text) ((is_text) ? "encrypted_text" : "encrypted_bytea")

/* A typmod of kms.column_key, as this backend caches it (columnkey.c). */
typedef struct TceColumnKey
{
	int32		typmod;			/* hash key: MUST BE FIRST */
	bool		deterministic;
	bool		key_known;		/* key_id resolved (see columnkey.c) */
	uint8		key_id[KMS_KEY_ID_LEN];
	int32		det_version;	/* deterministic: the version sealed with (0: unknown) */
	char	   *key_ref;		/* the reference as declared (cache context) */
	LocalTransactionId provisional;	/* made by typmod_in in this transaction,
									 * maybe not yet visible to the statement's
									 * snapshot; else InvalidLocalTransactionId */
} TceColumnKey;

/* columnkey.c */
extern TceColumnKey *TceGetColumnKey(int32 typmod, bool need_key);
extern const char *TceColumnKeyRef(int32 typmod);
extern bool TceTryResolve(TceColumnKey *ck);

/* value.c */
extern void TceParse(const uint8 *p, Size len, KmsTceValueInfo *info);
extern struct varlena *TceMakePending(const char *data, Size len);
extern struct varlena *TceSealPlain(TceColumnKey *ck, const char *data, Size len,
									bool is_text);
extern struct varlena *TceSealWithKey(const uint8 *key_id, uint32 version,
									  bool deterministic, const char *data,
									  Size len, bool is_text, bool for_lookup);
extern char *TceDecrypt(struct varlena *value, bool is_text, Size *len);
extern bool TceMayDecrypt(struct varlena *value);
extern struct varlena *TceCoerce(struct varlena *value, int32 typmod, bool is_text);
extern struct varlena *TceImport(const uint8 *p, Size len, int32 typmod, bool is_text);
extern void TceInvalidCiphertext(void) pg_attribute_noreturn();

/* guard.c */
extern void TceTouched(void);
extern bool TceOutputCiphertext(void);
extern void TceWriting(void);
extern bool TceDescribingWrite(FunctionCallInfo fcinfo);

#endif							/* PG_KMS_TCE_INTERNAL_H */
