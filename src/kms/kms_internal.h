/*-------------------------------------------------------------------------
 *
 * kms_internal.h
 *	  Helpers shared by the files of src/kms/ only: keys_sql.c (keys,
 *	  key state, tags, key rotation), aliases_sql.c (aliases, the master
 *	  key rotation), grants_sql.c (grants), data_sql.c (the data plane),
 *	  paging.c (Limit/Marker paging, EncryptionAlgorithm, DryRun).
 *	  May call: envelope/, keystore/, provider/, cache/, audit/, catalog/,
 *	  common/, crypto/.
 *
 *	  SQL entry points of KMS key management: CreateKey, DescribeKey,
 *	  ListKeys, Enable/DisableKey, Schedule/CancelKeyDeletion, rotation,
 *	  aliases, tags, grants, and the master-key rotation.
 *
 *	  Each entry point checks the caller's privilege on the key (keystore/)
 *	  before it touches anything, then the key state, then its arguments'
 *	  meaning; changes are made with catalog SQL and published to other
 *	  backends when the transaction commits (cache/cache.c).  Keys pg_kms manages
 *	  (KeyManager AWS) are changed by superusers only; aliases move between
 *	  keys of different owners only by a role owning both.
 *
 * Locking: every change locks the key's row (SELECT ... FOR UPDATE) and
 * decides on the state found after the lock, as the deletion job does, so
 * transitions serialize; alias changes lock the alias row first, then the
 * target key's.  No shared state.
 *
 * IDENTIFICATION
 *	  src/kms/kms_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_KMS_INTERNAL_H
#define PG_KMS_KMS_INTERNAL_H

#include "keystore/keystore.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/tuplestore.h"




/* one rule for ListKeys, ListAliases and kms.keys (keystore/) */
#define KmsVisible(key) KmsKeyVisibleToUser(key)

#define KMS_MAX_ON_DEMAND_ROTATIONS 25

/* ----------------------------------------------------------------
 * Aliases
 * ----------------------------------------------------------------
 */
#define KMS_MANAGED_ALIAS_PREFIX "alias/pg_kms/"

/* Shared between the files of this folder */

extern char *ArgKeyRef(FunctionCallInfo fcinfo, int n);
extern void KmsCheckManagedKey(KmsKeyInfo *key, bool aws_managed, const char *operation);
extern void KmsWarnManagedKey(KmsKeyInfo *key, const char *operation, const char *object,
				  const char *what);
extern KmsKeyInfo *KmsLockKey(KmsKeyInfo *cached, bool *aws_managed, int32 *on_demand_rotations);
extern KmsKeyInfo *KmsManagedKey(const char *keyref, const char *operation);
extern void KmsNotPendingDeletion(KmsKeyInfo *key);

/* ----------------------------------------------------------------
 * Paging, EncryptionAlgorithm, DryRun (paging.c)
 * ----------------------------------------------------------------
 */
typedef struct KmsPager
{
	const char *list;			/* the operation, e.g. "ListAliases" */
	int			limit;			/* rows per page; -1: all */
	char	   *after;			/* the marker's position, or NULL */
	int			emitted;
	bool		truncated;
	bool		done;
	Tuplestorestate *ts;
	TupleDesc	tupdesc;
	int			ncols;			/* columns before next_marker */
	bool		has_marker;		/* next_marker is a column (not in 1.1) */
	Datum	   *held_values;
	bool	   *held_nulls;
	char	   *held_pos;
	bool		holding;
} KmsPager;

extern void KmsPagerInit(KmsPager *pg, FunctionCallInfo fcinfo, int limit_arg,
						 const char *list, int max_limit, int default_limit,
						 Tuplestorestate *ts, TupleDesc tupdesc, int ncols);
extern char *KmsPagePosTime(TimestampTz t, const char *id);
extern char *KmsPagePosInt(int64 n);
extern bool KmsPagerWant(KmsPager *pg, const char *pos);
extern void KmsPagerPut(KmsPager *pg, Datum *values, bool *nulls, const char *pos);
extern void KmsPagerFinish(KmsPager *pg);

extern void KmsCheckEncryptionAlgorithm(const char *alg, const char *name);
extern void KmsDryRunSucceeded(const char *operation) pg_attribute_noreturn();

/*
 * Arguments added in 1.2 (issue 15): absent from a 1.0 or 1.1 catalog until
 * ALTER EXTENSION pg_kms UPDATE, where the function has fewer of them.
 */
#define KmsArgGiven(fcinfo, n)	(PG_NARGS() > (n) && !PG_ARGISNULL(n))
#define KmsArgDryRun(fcinfo, n) (KmsArgGiven(fcinfo, n) && PG_GETARG_BOOL(n))
#define KmsArgTextOpt(fcinfo, n) (KmsArgGiven(fcinfo, n) ? KmsArgText(fcinfo, n) : NULL)

#endif							/* PG_KMS_KMS_INTERNAL_H */
