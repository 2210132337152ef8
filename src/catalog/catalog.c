/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Catalog access for every part: SQL over schema kms runs through SPI as
 *	  the owner of schema kms (the extension owner), with search_path pinned
 *	  to pg_catalog, so that no caller needs, or gets, privileges on the
 *	  tables, and no object a caller created can be picked up by name.  Also
 *	  the two authorisation checks that need no key: kms_admin membership
 *	  and "may this transaction write"; and the internal subtransaction
 *	  that runs one unit of work whose error is the caller's to handle.
 *	  Everything run between KmsCatalogEnter and KmsCatalogExit is marked
 *	  as pg_kms's own writing, which the custody guards let pass (guard.c).
 *
 *	  May call: common/.  Knows the schema kms and the relation kms.key
 *	  (whose relcache invalidations stand for any pg_kms change), not what
 *	  the tables mean.
 *
 * IDENTIFICATION
 *	  src/catalog/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "catalog/guard.h"
#include "catalog/kms_catalog.h"

/* ----------------------------------------------------------------
 * Catalog access
 * ----------------------------------------------------------------
 */
static Oid	kms_key_relid = InvalidOid;

/* The owner of schema kms (the extension owner); errors if there is none. */
Oid
KmsCatalogOwner(void)
{
	Oid			nsp = get_namespace_oid("kms", true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errhidestmt(true),
				 errmsg("KMSInternalException: schema \"kms\" does not exist"),
				 errhint("Run CREATE EXTENSION pg_kms in this database.")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	/* the extension may have been dropped and created again */
	if (OidIsValid(kms_key_relid) && get_rel_namespace(kms_key_relid) != nsp)
		kms_key_relid = InvalidOid;
	(void) KmsKeyRelationId();
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/* OID of kms.key, whose relcache invalidations stand for any pg_kms change. */
Oid
KmsKeyRelationId(void)
{
	if (!OidIsValid(kms_key_relid))
	{
		Oid			nsp = get_namespace_oid("kms", false);

		kms_key_relid = get_relname_relid("key", nsp);
	}
	return kms_key_relid;
}

/* For the relcache callback: no catalog access allowed there. */
Oid
KmsKeyRelationIdIfKnown(void)
{
	return kms_key_relid;
}

void
KmsCatalogEnter(KmsCatalogState *st)
{
	Oid			owner = KmsCatalogOwner();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	st->spi_connected = true;
	GetUserIdAndSecContext(&st->save_userid, &st->save_sec_context);
	SetUserIdAndSecContext(owner, st->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	st->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* our own writes pass the custody guards (guard.c), until Exit or abort */
	KmsGuardMarkInternal();
}

void
KmsCatalogExit(KmsCatalogState *st)
{
	AtEOXact_GUC(true, st->save_nestlevel);
	SetUserIdAndSecContext(st->save_userid, st->save_sec_context);
	if (st->spi_connected)
		SPI_finish();
	st->spi_connected = false;
}

/*
 * Run one statement with arguments; returns SPI_processed.
 *
 * In a parallel operation (a parallel worker, or the leader while its
 * workers run) no command may start: a statement meant to see the latest
 * commands of its transaction (read_only false) reads the statement's
 * snapshot instead, as a STABLE function's would; nothing in a parallel
 * query can have written to the catalog since it was taken.
 */
uint64
KmsExec(const char *sql, int nargs, Oid *types, Datum *values,
		const char *nulls, bool read_only, int expected)
{
	int			rc;

	if (!read_only && IsInParallelMode())
		read_only = true;
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);

	if (rc != expected)
		elog(ERROR, "pg_kms catalog statement failed (%d): %s", rc, sql);
	return SPI_processed;
}

/*
 * KmsExec for the statements behind a key cache miss, a key's first use in
 * a backend and DescribeKey: parsing and planning were most of their cost,
 * so each is planned once per backend and kept (SPI_keepplan).  The plan
 * cache re-plans it when the tables change, and search_path is pinned by
 * KmsCatalogEnter, so it means the same each time; a different text (an
 * update added a column it names) makes a new plan.
 */
uint64
KmsExecSaved(KmsSavedPlan *saved, const char *sql, int nargs, Oid *types,
			 Datum *values, const char *nulls, bool read_only, int expected)
{
	int			rc;

	if (saved->plan == NULL || strcmp(saved->sql, sql) != 0)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "pg_kms catalog statement failed (%d): %s", SPI_result, sql);
		if (saved->plan != NULL)
			SPI_freeplan(saved->plan);
		if (saved->sql != NULL)
			pfree(saved->sql);
		saved->plan = p;
		saved->sql = MemoryContextStrdup(TopMemoryContext, sql);
	}
	if (!read_only && IsInParallelMode())
		read_only = true;
	rc = SPI_execute_plan(saved->plan, values, nulls, read_only, 0);
	if (rc != expected)
		elog(ERROR, "pg_kms catalog statement failed (%d): %s", rc, sql);
	return SPI_processed;
}

void
KmsCheckWritable(const char *operation)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_READ_ONLY), errhidestmt(true),
				 errmsg("KMSInvalidStateException: %s cannot run on a standby server", operation),
				 errdetail("Key and secret changes are made on the primary; a standby serves reads and decryption.")));
	PreventCommandIfReadOnly(operation);
}

bool
KmsIsAdmin(void)
{
	Oid			admin;

	if (superuser())
		return true;
	admin = get_role_oid("kms_admin", true);
	return OidIsValid(admin) && has_privs_of_role(GetUserId(), admin);
}

/*
 * Run fn(arg) in an internal subtransaction, in the caller's memory context
 * and resource owner.  NULL if fn returned (the subtransaction released);
 * else the subtransaction is rolled back and its error returned, copied in
 * the caller's context with the error state flushed.  on_error (or NULL)
 * runs first when fn fails, before anything else (a timeout to disarm).
 */
ErrorData *
KmsRunInSubTransaction(void (*fn) (void *arg), void (*on_error) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		if (on_error)
			on_error(arg);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	return edata;
}
