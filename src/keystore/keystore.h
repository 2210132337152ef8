/*-------------------------------------------------------------------------
 *
 * keystore.h
 *	  The key store (src/keystore/): the catalog of keys, versions,
 *	  aliases and grants.  Key references resolved to keys, privilege and
 *	  key-state checks, key creation and rotation of key material (wrapped
 *	  by a provider, cached unwrapped by cache/), grant constraints
 *	  (constraints.c), and the worker's key jobs (lifecycle.c).  The one layer that writes kms.key, kms.alias,
 *	  kms.grants (writes.c holds the writes of kms/'s entry points) and
 *	  kms.key_version (master.c: the master-key rewrap, with the local
 *	  provider doing the unwrapping and wrapping).
 *
 *	  May call: cache/, provider/, audit/, catalog/, common/, crypto/.
 *
 * IDENTIFICATION
 *	  src/keystore/keystore.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_KEYSTORE_H
#define PG_KMS_KEYSTORE_H

#include "audit/audit.h"
#include "cache/cache.h"
#include "catalog/kms_catalog.h"

/*
 * Resolve a key reference (key id, key ARN, alias name, alias ARN) and check
 * that the current user may perform op on it.  Raises NotFoundException
 * (only to roles that could know), AccessDeniedException otherwise.
 * Does not check the key state: see KmsCheckUsable().
 */
extern KmsKeyInfo *KmsResolveKey(const char *keyref, KmsOp op);

/* The same, from a key id out of a ciphertext blob; NULL if no such key. */
extern KmsKeyInfo *KmsLookupKeyById(const uint8 *key_id);

/* Privilege check on an already resolved key (errors out if denied). */
extern void KmsCheckAccess(KmsKeyInfo *key, KmsOp op, const char *keyref);

/*
 * The same for a request with an encryption context (npairs >= 0), which a
 * grant with constraints may allow (constraints.c).  KmsCheckAccess and
 * KmsResolveKey are these with no context: constrained grants never allow.
 */
extern void KmsCheckAccessCtx(KmsKeyInfo *key, KmsOp op, const char *keyref,
							  const KmsContextPair *pairs, int npairs);
extern KmsKeyInfo *KmsResolveKeyCtx(const char *keyref, KmsOp op,
									const KmsContextPair *pairs, int npairs);
/* CreateGrant's resolution: newc, the new grant's constraints, may be NULL */
extern KmsKeyInfo *KmsResolveKeyForGrant(const char *keyref, Jsonb *newc);

/*
 * Grant constraints (constraints.c).  An operation a role holds only
 * through grants with constraints is the bit KMS_CONSTRAINED_OPBIT(op) of
 * its cached allowed_ops, which alone allows nothing.
 */
#define KMS_CONSTRAINED_OPBIT(op)	((uint32) 1 << (16 + (op)))
StaticAssertDecl(KMS_NUM_GRANT_OPS <= 16, "grant operations fit in 16 bits");
extern bool KmsOpTakesConstraint(KmsOp op);
extern Jsonb *KmsValidateConstraints(Jsonb *c);
extern bool KmsConstraintSatisfied(Jsonb *c, const KmsContextPair *pairs, int npairs);
extern bool KmsConstraintStricter(Jsonb *newc, Jsonb *oldc);
extern bool KmsConstrainedAllows(const uint8 *key_id, KmsOp op,
								 const KmsContextPair *pairs, int npairs,
								 Jsonb *newc, bool for_grant);

/* Raise DisabledException / KMSInvalidStateException unless Enabled. */
extern void KmsCheckUsable(KmsKeyInfo *key);

/*
 * Fetch the wrapped material of (key, version) from the catalog (palloc'd)
 * and its material tag (cache.h), for the key cache.
 */
extern bytea *KmsFetchWrappedMaterial(const uint8 *key_id, int32 version,
									  uint8 *tag_out);

/*
 * Create a key from C (the secrets store creates alias/pg_kms/secrets with
 * it).  Returns the new key id (text).  owner is the role that holds it.
 */
extern char *KmsCreateKeyInternal(const char *description, KmsKeyUsage usage,
								  const char *key_spec, Jsonb *tags, Oid owner);
extern void KmsCreateAliasInternal(const char *alias_name, const char *key_id_str);

extern void KmsKeyNotFound(const char *keyref, KmsOp op) pg_attribute_noreturn();
/* NotFoundException / KMSInvalidStateException with AWS's message texts */
extern void KmsKeyNotFoundError(const char *keyref, const char *detail) pg_attribute_noreturn();
extern void KmsPendingDeletionError(const char *key_id_str) pg_attribute_noreturn();
extern int	KmsMaterialLength(const char *key_spec);
extern int32 KmsRotateKeyMaterial(KmsKeyInfo *key, const char *rotation_type);
extern void KmsValidateAliasName(const char *name);
extern void KmsValidateAliasNameEx(const char *name, bool creating);

/* The key an alias names (no privilege check); false if no such alias. */
extern bool KmsLookupAlias(const char *alias_name, uint8 *key_id);
extern void KmsSetOperationName(const char *opname);
extern KmsKeyInfo *KmsResolveKeyForManagement(const char *keyref, const char *opname);

/* Operations the current user holds on a key through grants alone. */
extern uint32 KmsGrantedOps(const uint8 *key_id);

/* SQL for a key's KeyManager ('AWS' or 'CUSTOMER') from kms.key row k. */
extern const char *KmsKeyManagerSql(void);

/* Worker jobs (lifecycle.c): one due key rotated; one expired key destroyed. */
extern bool KmsKeysRotateOneDue(void);
extern bool KmsKeysDestroyOneExpired(void);

/*
 * Writes for kms/'s entry points (writes.c), as the catalog owner, no
 * privilege checks: UPDATE kms.key SET set_clause (its parameters from $2);
 * an alias pointed at another key, or deleted; a grant stored (see
 * writes.c) or deleted (rows deleted returned).
 */
extern void KmsUpdateKeyRow(const uint8 *key_id, const char *set_clause, int nextra,
							Oid *types, Datum *values);
extern void KmsRetargetAlias(const char *alias_name, const uint8 *key_id);
extern void KmsDeleteAliasRow(const char *alias_name);
extern void KmsStoreGrant(KmsKeyInfo *key, const char *name, Oid grantee, Oid retiring,
						  Datum oparray, Jsonb *constraints, char **grant_id_out,
						  char **token_out);
extern uint64 KmsDeleteGrantRow(const uint8 *key_id, const char *grant_id);

/*
 * kms_rotate_master_key (master.c): rewrap every version under the key in
 * path (NULL: the current key); the number rewrapped.  The caller
 * invalidates caches.
 */
extern int	KmsRotateMasterKey(const char *path);

/* The one visibility rule of ListKeys, ListAliases and kms.keys. */
extern bool KmsKeyVisibleToUser(KmsKeyInfo *key);

#endif							/* PG_KMS_KEYSTORE_H */
