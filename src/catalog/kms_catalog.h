/*-------------------------------------------------------------------------
 *
 * kms_catalog.h
 *	  Catalog access (src/catalog/): run SQL over schema kms as the
 *	  extension owner with a safe search_path, find kms.key, and the checks
 *	  every writer makes (kms_admin, read-only transaction, standby).
 *
 *	  May call: common/.
 *
 * IDENTIFICATION
 *	  src/catalog/kms_catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_CATALOG_H
#define PG_KMS_CATALOG_H

#include "common/kms_common.h"
#include "executor/spi.h"

/* Run catalog SQL as the extension owner with a safe search_path. */
typedef struct KmsCatalogState
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	bool		spi_connected;
} KmsCatalogState;

/* The owner of schema kms (the extension owner). */
extern Oid	KmsCatalogOwner(void);

extern void KmsCatalogEnter(KmsCatalogState *st);
extern void KmsCatalogExit(KmsCatalogState *st);

/* Run one catalog statement inside KmsCatalogEnter/Exit; returns rows. */
extern uint64 KmsExec(const char *sql, int nargs, Oid *types, Datum *values,
					  const char *nulls, bool read_only, int expected);

/*
 * The same for a statement a backend runs often: planned once and kept
 * (made again if the text changes).  Zero-initialise; one per statement.
 */
typedef struct KmsSavedPlan
{
	SPIPlanPtr	plan;
	char	   *sql;			/* its text, in TopMemoryContext */
} KmsSavedPlan;

extern uint64 KmsExecSaved(KmsSavedPlan *saved, const char *sql, int nargs,
						   Oid *types, Datum *values, const char *nulls,
						   bool read_only, int expected);

/* OID of kms.key (its relcache invalidations announce pg_kms changes) */
extern Oid	KmsKeyRelationId(void);
extern Oid	KmsKeyRelationIdIfKnown(void);

/* Refuse writes on a standby / in a read-only transaction. */
extern void KmsCheckWritable(const char *operation);

/* True if the current user is a member of kms_admin (or superuser). */
extern bool KmsIsAdmin(void);

/*
 * Run fn(arg) in an internal subtransaction: NULL if it returned, else its
 * error (rolled back; copied in the caller's context).  on_error, if not
 * NULL, runs first on failure.
 */
extern ErrorData *KmsRunInSubTransaction(void (*fn) (void *arg),
										 void (*on_error) (void *arg), void *arg);

#endif							/* PG_KMS_CATALOG_H */
