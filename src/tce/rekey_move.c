/*-------------------------------------------------------------------------
 *
 * rekey_move.c
 *	  The online move of an encrypted column to another key, the first step
 *	  of CALL kms_reencrypt_column(..., key => 'alias/new').  ALTER COLUMN
 *	  TYPE encrypted_text('alias/new') would rewrite the whole table under
 *	  ACCESS EXCLUSIVE.  Values are self-describing (each carries its key id
 *	  and version), so a column may hold values under its old key while it
 *	  is moving: this changes only the column's type modifier in
 *	  pg_attribute (new writes are sealed with the new key from the next
 *	  statement on) and the batches then move the old values.
 *
 *	  Only where nothing else carries the old type modifier: no index,
 *	  view, constraint, default, statistics object or trigger column list
 *	  depends on the column, the table has no inheritance children and is no
 *	  partition, and the column is randomized (a deterministic column's
 *	  equality and indexes need one key: ALTER COLUMN TYPE for those).
 *
 *	  Locking: ACCESS EXCLUSIVE on the table for the rest of the caller's
 *	  transaction (kms.column_rekey_begin's, which commits at once): it
 *	  waits for the statements running on the table, and holds back new
 *	  ones only for that short transaction (lock_timeout bounds the wait).
 *
 * IDENTIFICATION
 *	  src/tce/rekey_move.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog/kms_catalog.h"
#include "tce/rekey.h"

/* Does any object depend on column attnum of relid? */
static bool
ColumnHasDependents(Oid relid, AttrNumber attnum)
{
	Relation	dep = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum((int32) attnum));
	scan = systable_beginscan(dep, DependReferenceIndexId, true, NULL, 3, key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
		found = true;
	systable_endscan(scan);
	table_close(dep, AccessShareLock);
	return found;
}

/* The mode of a column key, from tce's kms.column_key (-1: no such typmod). */
int
RekeyTypmodDeterministic(int32 typmod)
{
	KmsCatalogState st;
	Oid			t = INT4OID;
	Datum		v = Int32GetDatum(typmod);
	int			det = -1;

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT deterministic FROM kms.column_key WHERE typmod = $1",
				1, &t, &v, NULL, true, SPI_OK_SELECT) == 1)
	{
		bool		isnull;

		det = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) ? 1 : 0;
	}
	KmsCatalogExit(&st);
	return det;
}

static int32
TypmodOf(const char *keyref)
{
	KmsCatalogState st;
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(keyref);
	int32		typmod = -1;

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT typmod FROM kms.column_key WHERE key_ref = $1 AND NOT deterministic",
				1, &t, &v, NULL, false, SPI_OK_SELECT) == 1)
	{
		bool		isnull;

		typmod = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	KmsCatalogExit(&st);
	return typmod;
}

static void
Refuse(const char *column, const char *table, const char *why)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_UNSUPPORTED), errhidestmt(true),
			 errmsg("UnsupportedOperationException: column \"%s\" of table \"%s\" cannot move to another key online: %s",
					column, table, why),
			 errhint("Use ALTER TABLE ... ALTER COLUMN ... TYPE with the new key (it rewrites the table under ACCESS EXCLUSIVE).")));
}

/*
 * Give column attnum of relid the type modifier of keyref (randomized);
 * returns it (old_typmod: nothing to do).  type_sql_out: the qualified type
 * with its new key.  Called inside SPI_connect by rekey.c, after the
 * caller's Encrypt on keyref was checked by sealing a probe value.
 */
int32
RekeyMoveColumnKey(Oid relid, AttrNumber attnum, const char *table_name,
				   const char *column_name, int32 old_typmod, const char *keyref)
{
	int32		typmod;
	Relation	attrel;
	HeapTuple	tup;
	Form_pg_attribute att;

	if (RekeyTypmodDeterministic(old_typmod) == 1)
		Refuse(column_name, table_name, "it is deterministic (its equality and indexes work under one key)");
	typmod = TypmodOf(keyref);
	if (typmod < 0)
		elog(ERROR, "pg_kms: no column key for \"%s\"", keyref);
	if (typmod == old_typmod)
		return old_typmod;

	LockRelationOid(relid, AccessExclusiveLock);
	if (ColumnHasDependents(relid, attnum))
		Refuse(column_name, table_name,
			   "an index, view, constraint, default, statistics object or trigger depends on it");
	if (has_subclass(relid) || has_superclass(relid) || get_rel_relispartition(relid))
		Refuse(column_name, table_name, "the table is part of an inheritance or partition tree");

	attrel = table_open(AttributeRelationId, RowExclusiveLock);
	tup = SearchSysCacheCopyAttNum(relid, attnum);
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for attribute %d of relation %u", attnum, relid);
	att = (Form_pg_attribute) GETSTRUCT(tup);
	if (att->atttypmod != old_typmod)
		elog(ERROR, "pg_kms: column \"%s\" changed while it was being moved", column_name);
	att->atttypmod = typmod;
	/* the update invalidates the table's relcache entry: plans are remade */
	CatalogTupleUpdate(attrel, &tup->t_self, tup);
	table_close(attrel, RowExclusiveLock);
	heap_freetuple(tup);
	CommandCounterIncrement();
	return typmod;
}
