/*-------------------------------------------------------------------------
 *
 * keystore.h
 *	  Internal interface of the key store for the KMS entry points
 *	  (kms_api.c, kms_data.c) and the later parts (secrets, worker).
 *
 * IDENTIFICATION
 *	  src/keystore.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_KEYSTORE_H
#define PG_KMS_KEYSTORE_H

#include "pg_kms.h"

/* Run one catalog statement inside KmsCatalogEnter/Exit; returns rows. */
extern uint64 KmsExec(const char *sql, int nargs, Oid *types, Datum *values,
					  const char *nulls, bool read_only, int expected);

extern char *KmsAliasArn(const char *alias_name);
extern Datum KmsUuidDatum(const uint8 *key_id);
extern void KmsKeyNotFound(const char *keyref, KmsOp op) pg_attribute_noreturn();
extern int	KmsMaterialLength(const char *key_spec);
extern char *KmsNewToken(int nbytes);
extern int32 KmsRotateKeyMaterial(KmsKeyInfo *key, const char *rotation_type);
extern void KmsValidateAliasName(const char *name);

/* The key an alias names (no privilege check); false if no such alias. */
extern bool KmsLookupAlias(const char *alias_name, uint8 *key_id);
extern void KmsSetOperationName(const char *opname);
extern KmsKeyInfo *KmsResolveKeyForManagement(const char *keyref, const char *opname);

/* Operations the current user holds on a key through grants alone. */
extern uint32 KmsGrantedOps(const uint8 *key_id);

/* SQL for a key's KeyManager ('AWS' or 'CUSTOMER') from kms.key row k. */
extern const char *KmsKeyManagerSql(void);

/* The one visibility rule of ListKeys, ListAliases and kms.keys. */
extern bool KmsKeyVisibleToUser(KmsKeyInfo *key);

#endif							/* PG_KMS_KEYSTORE_H */
