/*-------------------------------------------------------------------------
 *
 * rekey.c
 *	  kms_encrypt_column: convert a plaintext text/bytea column to
 *	  encrypted_text / encrypted_bytea (ALTER COLUMN TYPE: a table rewrite
 *	  under ACCESS EXCLUSIVE, documented as such).
 *
 *	  CALL kms_reencrypt_column: move every value of an encrypted column to
 *	  its key's current version, online (with key => ..., first move the
 *	  column to that key: rekey_move.c).  The procedure
 *	  (src/sql/072_tce_rekey.sql) commits after kms.column_rekey_begin and
 *	  after each kms.column_rekey_batch.  A batch is a range of heap blocks
 *	  (ctid >= '(b,0)' AND ctid < '(b+n,0)', a TID range scan): the values
 *	  of the range that are not on the column key's current version are
 *	  locked FOR UPDATE SKIP LOCKED and rewritten by "UPDATE ... SET col =
 *	  kms.column_reseal(col, typmod)": KmsTceSeal (tce.h) decrypts (Decrypt
 *	  on the value's key) and seals again with the column's key at its
 *	  current version (Encrypt), both checked and audited by the type's
 *	  code; the plaintext never leaves it.  A deterministic column seals
 *	  with its column key's recorded version: begin moves that to the key's
 *	  current version first (KmsTceSetDeterministicVersion).  So a batch
 *	  holds the row locks of its rows only, for one transaction; readers are
 *	  never blocked and a writer waits at most for one batch; a row a writer
 *	  holds is skipped and picked up by the next pass.  Pass 1 walks every
 *	  block; pass 2 and later walk the table again (values a writer moved
 *	  into blocks already done, rows skipped) until a pass finds nothing to
 *	  do, pausing 1, 2, ... 10 s before pass 3, 4, ... (rows a long
 *	  transaction holds).  The progress row is written in the batch's transaction
 *	  (progress.c), so a crash or a cancel resumes at the first block not
 *	  committed.
 *
 *	  Privileges: the statements run as the caller, who must own the table
 *	  or hold SELECT and UPDATE on it, may not be subject to row level
 *	  security on it (hidden rows would stay on the old key), and needs
 *	  Encrypt and Decrypt on the column's key (and Decrypt on any key a
 *	  value is found under: the cast checks it).  Start, resume, end and
 *	  denials are audited (ReEncryptColumn, EncryptColumn).
 *
 *	  Locking: a transaction-level advisory lock on (database, table,
 *	  column) is held by begin and by each batch (dontWait: a second caller
 *	  gets ConflictException, as does one while the job's backend is
 *	  between two batches).
 *
 * IDENTIFICATION
 *	  src/tce/rekey.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/indexing.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "storage/lmgr.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/wait_event.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "audit/audit.h"
#include "catalog/kms_catalog.h"
#include "keystore/keystore.h"
#include "tce/rekey.h"
#include "tce/tce.h"

/* advisory lock tag field 4: pg_kms column rekey ('KR'); 1 and 2 are SQL's */
#define REKEY_LOCK_FIELD4	0x4B52

#define REKEY_MAX_BATCH		100000

/* What the column is: names for SQL, its type and key. */
typedef struct RekeyColumn
{
	Oid			relid;
	AttrNumber	attnum;
	char	   *qual_table;		/* schema-qualified, quoted */
	char	   *qual_column;	/* quoted */
	char	   *table_name;		/* for messages */
	char	   *column_name;
	char	   *ext_schema;		/* quoted schema of pg_kms's objects */
	char	   *type_sql;		/* qualified type with its key, for a cast */
	const char *plain_type;		/* pg_catalog.text or pg_catalog.bytea */
	int32		typmod;			/* the column's (names its key) */
} RekeyColumn;

/* The schema pg_kms was created in (get_extension_schema is static in 15). */
static Oid
ExtSchema(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pg_kms"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(nsp))
		elog(ERROR, "pg_kms: extension pg_kms is not installed");
	return nsp;
}

static char *
ExtSchemaQuoted(void)
{
	return pstrdup(quote_identifier(get_namespace_name(ExtSchema())));
}

static Oid
ExtTypeOid(const char *name)
{
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(name),
						   ObjectIdGetDatum(ExtSchema()));
}

/* Open the relation's facts; refuse what is not an ordinary table's column. */
static void
RekeyDescribeColumn(Oid relid, const char *colname, RekeyColumn *c,
					bool want_encrypted, Oid *atttype, int32 *atttypmod)
{
	HeapTuple	tup;
	Form_pg_attribute att;
	char		relkind = get_rel_relkind(relid);
	char	   *nsp;

	memset(c, 0, sizeof(*c));
	c->relid = relid;
	if (relkind == '\0')
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "relation with OID %u does not exist", relid);
	c->table_name = get_rel_name(relid);
	nsp = get_namespace_name(get_rel_namespace(relid));
	c->qual_table = quote_qualified_identifier(nsp, c->table_name);
	if (relkind == RELKIND_PARTITIONED_TABLE && want_encrypted)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_UNSUPPORTED), errhidestmt(true),
				 errmsg("UnsupportedOperationException: \"%s\" is a partitioned table", c->table_name),
				 errhint("Call kms_reencrypt_column on each of its partitions.")));
	if (relkind != RELKIND_RELATION &&
		!(relkind == RELKIND_PARTITIONED_TABLE && !want_encrypted))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "\"%s\" is not a table", c->table_name);

	tup = SearchSysCacheAttName(relid, colname);
	if (!HeapTupleIsValid(tup))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "column \"%s\" of table \"%s\" does not exist", colname, c->table_name);
	att = (Form_pg_attribute) GETSTRUCT(tup);
	c->attnum = att->attnum;
	*atttype = att->atttypid;
	*atttypmod = att->atttypmod;
	ReleaseSysCache(tup);
	if (c->attnum <= 0)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "column \"%s\" is a system column", colname);
	c->column_name = pstrdup(colname);
	c->qual_column = pstrdup(quote_identifier(colname));
	c->ext_schema = ExtSchemaQuoted();
}

/* The column must be encrypted_text / encrypted_bytea with a key. */
static void
RekeyEncryptedColumn(Oid relid, const char *colname, RekeyColumn *c)
{
	Oid			typid;
	int32		typmod;

	RekeyDescribeColumn(relid, colname, c, true, &typid, &typmod);
	if (typid == ExtTypeOid("encrypted_text"))
		c->plain_type = "pg_catalog.text";
	else if (typid == ExtTypeOid("encrypted_bytea"))
		c->plain_type = "pg_catalog.bytea";
	else
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("ValidationException: column \"%s\" of table \"%s\" is not encrypted",
						colname, c->table_name),
				 errhint("Convert it first with kms_encrypt_column.")));
	if (typmod < 0)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "column \"%s\" of table \"%s\" has no key", colname, c->table_name);
	c->typmod = typmod;
	c->type_sql = format_type_extended(typid, typmod,
									   FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
}

static void
RekeyDenied(RekeyColumn *c, const char *operation, const char *what)
{
	StringInfoData p;

	initStringInfo(&p);
	KmsAuditParamStr(&p, "table", c->qual_table);
	KmsAuditParamStr(&p, "column", c->column_name);
	KmsAuditEx(operation, c->qual_table, NULL, "AccessDeniedException", KmsAuditParams(&p));
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
			 errmsg("AccessDeniedException: role \"%s\" is not authorized to rekey column \"%s\" of table \"%s\"",
					GetUserNameFromId(GetUserId(), false), c->column_name, c->table_name),
			 errdetail("%s", what)));
}

/* Owner, or SELECT and UPDATE; no row level security in the way. */
static void
RekeyCheckTable(RekeyColumn *c, const char *operation)
{
	if (!pg_class_ownercheck(c->relid, GetUserId()) &&
		(pg_class_aclcheck(c->relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		 pg_class_aclcheck(c->relid, GetUserId(), ACL_UPDATE) != ACLCHECK_OK))
		RekeyDenied(c, operation, "Rekeying a column takes the table's owner or SELECT and UPDATE on the table.");
	if (check_enable_rls(c->relid, InvalidOid, true) == RLS_ENABLED)
		RekeyDenied(c, operation, "Row level security applies to this role on the table: the rows it hides would keep their old key.");
}

/* Run SQL as the caller with search_path pinned; returns SPI_processed. */
static uint64
RekeyExec(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			nest = NewGUCNestLevel();
	int			rc;

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	AtEOXact_GUC(true, nest);
	if (rc != expected)
		elog(ERROR, "pg_kms rekey statement failed (%d)", rc);
	return SPI_processed;
}

/*
 * The column key's id and current version: those of a value the column's
 * type seals now (takes Encrypt on the key, as any write does).
 */
static void
RekeyTarget(RekeyColumn *c, char *key_id, Size key_id_len, int32 *version)
{
	char	   *sql = psprintf("SELECT i.key_id::pg_catalog.text, i.key_version"
							   " FROM %s.kms_column_value_info('k'::%s) i",
							   c->ext_schema, c->type_sql);
	bool		isnull;
	char	   *kid;

	RekeyExec(sql, 0, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "pg_kms: no key information for column \"%s\"", c->column_name);
	kid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	strlcpy(key_id, kid ? kid : "", key_id_len);
	*version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

static void
RekeyLock(RekeyColumn *c)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, c->relid, (uint32) c->attnum, REKEY_LOCK_FIELD4);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		kms_error(ConflictException, KMS_SQLSTATE_CONFLICT,
				  "a rekey of column \"%s\" of table \"%s\" is running in another session",
				  c->column_name, c->table_name);
}

/* the key a column was moved to by this call, for its audit event */
static const char *rekey_new_key = NULL;

static void
RekeyAudit(RekeyColumn *c, RekeyJob *job, const char *phase)
{
	StringInfoData p;
	char		v[16];

	initStringInfo(&p);
	KmsAuditParamStr(&p, "table", c->qual_table);
	KmsAuditParamStr(&p, "column", c->column_name);
	KmsAuditParamStr(&p, "phase", phase);
	if (rekey_new_key)
		KmsAuditParamStr(&p, "newKey", rekey_new_key);
	KmsAuditParamInt(&p, "batchSize", job->batch_size);
	KmsAuditParamInt(&p, "rowsReEncrypted", job->rows_rekeyed);
	snprintf(v, sizeof(v), "%d", job->key_version);
	KmsAuditEx("ReEncryptColumn", job->key_id, v, "success", KmsAuditParams(&p));
}

static int64
RelBlocks(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	int64		n = RelationGetNumberOfBlocks(rel);

	table_close(rel, AccessShareLock);
	return n;
}

/* Blocks per batch: batch_size rows at the table's rows per block. */
static int32
BatchBlocks(int32 batch_size, int64 rows, int64 blocks)
{
	double		per_block = (blocks > 0 && rows > 0) ? (double) rows / blocks : 1.0;
	double		n = ceil(batch_size / Max(per_block, 1.0));

	return (int32) Max(1.0, Min(n, (double) PG_INT32_MAX));
}

/*
 * Other columns declared with the same deterministic key reference share its
 * recorded version: say so, they need the same CALL (until then their
 * equality lookups may miss values sealed with the other version).
 */
static void
RekeyDeterministicOthers(RekeyColumn *c)
{
	Oid			types[5] = {INT4OID, OIDOID, INT2OID, OIDOID, OIDOID};
	Datum		values[5] = {Int32GetDatum(c->typmod), ObjectIdGetDatum(c->relid),
		Int16GetDatum(c->attnum), ObjectIdGetDatum(ExtTypeOid("encrypted_text")),
	ObjectIdGetDatum(ExtTypeOid("encrypted_bytea"))};
	bool		isnull;
	Datum		d;

	RekeyExec("SELECT pg_catalog.string_agg(pg_catalog.format('%s.%I', a.attrelid::pg_catalog.regclass, a.attname), ', '"
			  "  ORDER BY a.attrelid, a.attnum)"
			  " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class r ON r.oid = a.attrelid"
			  " WHERE a.atttypmod = $1 AND NOT a.attisdropped AND r.relkind IN ('r', 'p')"
			  "   AND (a.attrelid, a.attnum) <> ($2, $3)"
			  "   AND a.atttypid IN ($4, $5)",
			  5, types, values, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		ereport(NOTICE,
				(errmsg("other columns share the deterministic column key of column \"%s\": %s",
						c->column_name, TextDatumGetCString(d)),
				 errhint("CALL kms_reencrypt_column on each of them too; until then their equality lookups may miss values sealed with the other key version.")));
}

PG_FUNCTION_INFO_V1(kms_column_rekey_begin);
Datum
kms_column_rekey_begin(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *colname;
	int32		batch_size;
	char	   *newkey = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	RekeyColumn c;
	RekeyJob	job;
	char		key_id[64];
	int32		version;
	KmsKeyInfo *key;
	bool		moved = false;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "table, column and batch_size must not be null");
	relid = PG_GETARG_OID(0);
	colname = NameStr(*PG_GETARG_NAME(1));
	batch_size = PG_GETARG_INT32(2);
	if (batch_size < 1 || batch_size > REKEY_MAX_BATCH)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "batch_size must be between 1 and %d", REKEY_MAX_BATCH);
	KmsCheckWritable("kms_reencrypt_column");
	RekeyEncryptedColumn(relid, colname, &c);
	RekeyCheckTable(&c, "ReEncryptColumn");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	RekeyTarget(&c, key_id, sizeof(key_id), &version);
	/* Decrypt on the column key too (Encrypt was just checked by the seal) */
	key = KmsResolveKey(key_id, KMS_OP_DECRYPT);
	RekeyLock(&c);
	if (newkey == NULL && RekeyTypmodDeterministic(c.typmod) == 1 &&
		key->current_version > version)
	{
		/*
		 * A deterministic column seals with its column key's recorded
		 * version: move that to the key's current version, then every value.
		 */
		RekeyDeterministicOthers(&c);
		KmsTceSetDeterministicVersion(c.typmod, key->current_version);
		version = key->current_version;
	}
	if (newkey != NULL)
	{
		int32		typmod;

		/* the key first: its own NotFound / AccessDenied, before any declaration */
		(void) KmsResolveKey(newkey, KMS_OP_ENCRYPT);
		/* declare the new key's type modifier; the probe takes Encrypt on it */
		c.type_sql = psprintf("%s.%s(%s)", c.ext_schema,
							  strcmp(c.plain_type, "pg_catalog.text") == 0 ? "encrypted_text" : "encrypted_bytea",
							  quote_literal_cstr(newkey));
		RekeyTarget(&c, key_id, sizeof(key_id), &version);
		(void) KmsResolveKey(key_id, KMS_OP_DECRYPT);
		typmod = RekeyMoveColumnKey(relid, c.attnum, c.table_name, c.column_name, c.typmod, newkey);
		moved = (typmod != c.typmod);
		c.typmod = typmod;
	}

	if (RekeyJobLoad(relid, c.attnum, &job) && job.running)
	{
		if (job.pid != MyProcPid && RekeyBackendActive(job.pid))
			kms_error(ConflictException, KMS_SQLSTATE_CONFLICT,
					  "a rekey of column \"%s\" of table \"%s\" is running in process %d",
					  c.column_name, c.table_name, job.pid);
		job.batch_size = batch_size;
		job.batch_blocks = BatchBlocks(batch_size, job.rows_total, job.pass_blocks);
		strlcpy(job.key_id, key_id, sizeof(job.key_id));
		RekeyJobResume(&job);
		ereport(NOTICE,
				(errmsg("resuming the rekey of column \"%s\" of table \"%s\" at block %lld of %lld (pass %d)",
						c.column_name, c.table_name, (long long) job.next_block,
						(long long) job.pass_blocks, job.pass)));
		rekey_new_key = moved ? newkey : NULL;
		RekeyAudit(&c, &job, "resume");
		rekey_new_key = NULL;
	}
	else
	{
		memset(&job, 0, sizeof(job));
		job.relid = relid;
		job.attnum = c.attnum;
		strlcpy(job.key_id, key_id, sizeof(job.key_id));
		job.key_version = version;
		job.pass = 1;
		job.batch_size = batch_size;
		job.pass_blocks = RelBlocks(relid);
		if (moved)
		{
			/* no full count under the ACCESS EXCLUSIVE lock: the estimate */
			float4		reltuples = 0;
			HeapTuple	ct = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

			if (HeapTupleIsValid(ct))
			{
				reltuples = ((Form_pg_class) GETSTRUCT(ct))->reltuples;
				ReleaseSysCache(ct);
			}
			job.rows_total = reltuples > 0 ? (int64) reltuples : 0;
		}
		else
		{
			bool		isnull;

			RekeyExec(psprintf("SELECT pg_catalog.count(*) FROM ONLY %s", c.qual_table),
					  0, NULL, NULL, SPI_OK_SELECT);
			job.rows_total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
		}
		job.batch_blocks = BatchBlocks(batch_size, job.rows_total, job.pass_blocks);
		RekeyJobCreate(&job, c.qual_table, c.column_name);
		rekey_new_key = moved ? newkey : NULL;
		RekeyAudit(&c, &job, "start");
		rekey_new_key = NULL;
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/* Sleep secs seconds, or until cancelled (a cancel ends the CALL). */
static void
RekeyPause(int secs)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 secs * 1000L, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static Datum
TidDatum(int64 block)
{
	ItemPointer tid = palloc(sizeof(ItemPointerData));

	ItemPointerSet(tid, (BlockNumber) Min(block, (int64) MaxBlockNumber), 0);
	return PointerGetDatum(tid);
}

/*
 * One batch of the blocks [next_block, next_block + batch_blocks): returns
 * true while there is more to do.  Ends a pass at its last block: a new pass
 * follows pass 1, and any pass that found something to do.
 */
PG_FUNCTION_INFO_V1(kms_column_rekey_batch);
Datum
kms_column_rekey_batch(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *colname = NameStr(*PG_GETARG_NAME(1));
	RekeyColumn c;
	RekeyJob	job;
	char		key_id[64];
	int32		version;
	int64		end;
	int64		rows = 0;
	int64		stale = 0;
	int64		done = 0;
	Datum		stale_tids = (Datum) 0;
	bool		isnull;

	CHECK_FOR_INTERRUPTS();
	KmsCheckWritable("kms_reencrypt_column");
	RekeyEncryptedColumn(relid, colname, &c);
	RekeyCheckTable(&c, "ReEncryptColumn");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	RekeyLock(&c);
	if (!RekeyJobLoad(relid, c.attnum, &job) || !job.running)
	{
		SPI_finish();
		PG_RETURN_BOOL(false);
	}
	if (job.pid != MyProcPid)
	{
		/* another session resumed the job after this one stalled */
		ereport(NOTICE,
				(errmsg("the rekey of column \"%s\" of table \"%s\" was taken over by process %d",
						c.column_name, c.table_name, job.pid)));
		SPI_finish();
		PG_RETURN_BOOL(false);
	}

	if (job.next_block >= job.pass_blocks)
	{
		/* end of a pass: another one, or done */
		if (job.pass == 1 || job.pass_changed > 0)
		{
			/*
			 * Pass 3 and later mostly meet rows a long transaction keeps
			 * locked (skipped, not waited for): let it finish rather than
			 * sweep the table again and again at once.
			 */
			if (job.pass >= 2)
				RekeyPause(Min(job.pass - 1, 10));
			job.pass++;
			RekeyExec(psprintf("SELECT pg_catalog.count(*) FROM ONLY %s", c.qual_table),
					  0, NULL, NULL, SPI_OK_SELECT);
			job.rows_total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
			job.next_block = 0;
			job.rows_done = 0;
			job.pass_changed = 0;
			job.pass_blocks = RelBlocks(relid);
			RekeyJobSave(&job, false);
			SPI_finish();
			PG_RETURN_BOOL(true);
		}
		RekeyJobSave(&job, true);
		RekeyAudit(&c, &job, "done");
		SPI_finish();
		PG_RETURN_BOOL(false);
	}

	RekeyTarget(&c, key_id, sizeof(key_id), &version);
	end = job.next_block + job.batch_blocks;

	{
		Oid			types[3] = {TIDOID, TIDOID, INT4OID};
		Datum		values[3] = {TidDatum(job.next_block), TidDatum(end),
		Int32GetDatum(c.typmod)};
		char	   *sql;

		/* the values of the range not on the column key's current version */
		sql = psprintf("SELECT pg_catalog.count(*),"
					   " pg_catalog.array_agg(t.ctid) FILTER (WHERE kms.column_value_stale(t.%s, $3))"
					   " FROM ONLY %s t"
					   " WHERE t.ctid OPERATOR(pg_catalog.>=) $1 AND t.ctid OPERATOR(pg_catalog.<) $2",
					   c.qual_column, c.qual_table);
		RekeyExec(sql, 3, types, values, SPI_OK_SELECT);
		rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		stale_tids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
		{
			ArrayType  *a = DatumGetArrayTypePCopy(stale_tids);

			stale_tids = PointerGetDatum(a);
			stale = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
		}
	}
	if (stale > 0)
	{
		Oid			types[2] = {TIDARRAYOID, INT4OID};
		Datum		values[2] = {stale_tids, Int32GetDatum(c.typmod)};
		char	   *sql;

		/* rows a writer holds are skipped: the next pass takes them */
		sql = psprintf("UPDATE ONLY %s SET %s = kms.column_reseal(%s, $2)"
					   " WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
					   "  SELECT ctid FROM ONLY %s WHERE ctid OPERATOR(pg_catalog.=) ANY ($1)"
					   "  FOR UPDATE SKIP LOCKED))",
					   c.qual_table, c.qual_column, c.qual_column, c.qual_table);
		done = RekeyExec(sql, 2, types, values, SPI_OK_UPDATE);
	}

	job.key_version = version;
	strlcpy(job.key_id, key_id, sizeof(job.key_id));
	job.next_block = end;
	job.rows_done += rows;
	job.rows_rekeyed += done;
	job.pass_changed += stale;
	RekeyJobSave(&job, false);
	SPI_finish();
	PG_RETURN_BOOL(true);
}

/*
 * kms_encrypt_column(table, column, key [, deterministic]): ALTER COLUMN
 * TYPE to the encrypted type with the key; every value is sealed by the
 * type's assignment cast (Encrypt on key, checked here first so that a
 * refusal comes before the table is locked).
 */
PG_FUNCTION_INFO_V1(kms_encrypt_column);
Datum
kms_encrypt_column(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *colname = NameStr(*PG_GETARG_NAME(1));
	char	   *keyref = text_to_cstring(PG_GETARG_TEXT_PP(2));
	bool		deterministic = PG_GETARG_BOOL(3);
	RekeyColumn c;
	Oid			typid;
	int32		typmod;
	const char *target;
	const char *plain;
	KmsKeyInfo *key;
	StringInfoData p;
	char	   *sql;

	KmsCheckWritable("kms_encrypt_column");
	RekeyDescribeColumn(relid, colname, &c, false, &typid, &typmod);
	if (typid == ExtTypeOid("encrypted_text") || typid == ExtTypeOid("encrypted_bytea"))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_STATE), errhidestmt(true),
				 errmsg("KMSInvalidStateException: column \"%s\" of table \"%s\" is already encrypted",
						colname, c.table_name),
				 errhint("To move it to a new key version, CALL kms_reencrypt_column.")));
	switch (typid)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			target = "encrypted_text";
			plain = "pg_catalog.text";
			break;
		case BYTEAOID:
			target = "encrypted_bytea";
			plain = "pg_catalog.bytea";
			break;
		default:
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "column \"%s\" of table \"%s\" is of type %s: only text, varchar, char and bytea columns can be encrypted",
					  colname, c.table_name, format_type_be(typid));
	}
	if (!pg_class_ownercheck(relid, GetUserId()))
		RekeyDenied(&c, "EncryptColumn", "Converting a column takes the table's owner (ALTER TABLE).");
	key = KmsResolveKey(keyref, KMS_OP_ENCRYPT);
	KmsCheckUsable(key);

	sql = psprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s.%s(%s%s) USING %s::%s",
				   c.qual_table, c.qual_column, c.ext_schema, target,
				   quote_literal_cstr(keyref), deterministic ? ", 'deterministic'" : "",
				   c.qual_column, plain);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * Declare the type modifier in a statement of its own first: the column
	 * key it records in kms.column_key must be visible to the rewrite's seals
	 * (a read-only lookup with the rewrite statement's snapshot).
	 */
	RekeyExec(psprintf("SELECT NULL::%s.%s(%s%s)", c.ext_schema, target,
					   quote_literal_cstr(keyref), deterministic ? ", 'deterministic'" : ""),
			  0, NULL, NULL, SPI_OK_SELECT);
	RekeyExec(sql, 0, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();

	initStringInfo(&p);
	KmsAuditParamStr(&p, "table", c.qual_table);
	KmsAuditParamStr(&p, "column", c.column_name);
	KmsAuditParamStr(&p, "keyId", keyref);
	KmsAuditParamStr(&p, "deterministic", deterministic ? "true" : "false");
	KmsAuditEx("EncryptColumn", key->key_id_str, NULL, "success", KmsAuditParams(&p));
	PG_RETURN_VOID();
}

/*
 * kms.column_value_stale(value, typmod): would the rekey change the value
 * (not on the column key's current version)?  kms.column_reseal(value,
 * typmod): the value on it.  As the column's cast does, they need Encrypt
 * on the column's key and Decrypt on the value's.
 */
PG_FUNCTION_INFO_V1(kms_column_value_stale);
Datum
kms_column_value_stale(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(1);

	if (typmod < 0)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION, "a column key's type modifier is needed");
	PG_RETURN_BOOL(KmsTceNeedsReseal(PG_GETARG_VARLENA_PP(0), typmod));
}

static Datum
Reseal(FunctionCallInfo fcinfo, bool is_text)
{
	int32		typmod = PG_GETARG_INT32(1);

	if (typmod < 0)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION, "a column key's type modifier is needed");
	PG_RETURN_POINTER(KmsTceSeal(PG_GETARG_VARLENA_PP(0), typmod, is_text, true));
}

PG_FUNCTION_INFO_V1(kms_column_reseal_text);
Datum
kms_column_reseal_text(PG_FUNCTION_ARGS)
{
	return Reseal(fcinfo, true);
}

PG_FUNCTION_INFO_V1(kms_column_reseal_bytea);
Datum
kms_column_reseal_bytea(PG_FUNCTION_ARGS)
{
	return Reseal(fcinfo, false);
}
