/*-------------------------------------------------------------------------
 *
 * progress.c
 *	  The rekey jobs' rows in kms.column_rekey, the one table src/tce/
 *	  writes for rekeying: where a column's batches have got to, counted
 *	  rows, and timestamps for the rate and ETA of kms.column_rekey_progress.
 *	  Each write runs as the extension owner (catalog/) inside the batch's
 *	  own transaction, so the progress row and the batch commit or roll
 *	  back together: after a crash or a cancel the row says exactly which
 *	  blocks are done.
 *
 *	  Locking: the caller (rekey.c) holds the job's advisory lock for the
 *	  transaction; these functions take only the row locks of their UPDATE.
 *
 * IDENTIFICATION
 *	  src/tce/progress.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"

#include "catalog/kms_catalog.h"
#include "tce/rekey.h"

static int64
GetInt8(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

static int32
GetInt4(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* Read the job of (relid, attnum); false if there is none. */
bool
RekeyJobLoad(Oid relid, int16 attnum, RekeyJob *job)
{
	KmsCatalogState st;
	Oid			types[2] = {OIDOID, INT2OID};
	Datum		values[2] = {ObjectIdGetDatum(relid), Int16GetDatum(attnum)};

	memset(job, 0, sizeof(*job));
	job->relid = relid;
	job->attnum = attnum;
	KmsCatalogEnter(&st);
	if (KmsExec("SELECT state OPERATOR(pg_catalog.=) 'running', key_id, key_version, pass,"
				" next_block, pass_blocks, batch_blocks, batch_size, rows_total, rows_done,"
				" rows_rekeyed, pass_changed, pid"
				" FROM kms.column_rekey WHERE relid = $1 AND attnum = $2 FOR UPDATE",
				2, types, values, NULL, false, SPI_OK_SELECT) == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *key_id = SPI_getvalue(tup, desc, 2);

		job->found = true;
		job->running = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		strlcpy(job->key_id, key_id ? key_id : "", sizeof(job->key_id));
		job->key_version = GetInt4(tup, desc, 3);
		job->pass = GetInt4(tup, desc, 4);
		job->next_block = GetInt8(tup, desc, 5);
		job->pass_blocks = GetInt8(tup, desc, 6);
		job->batch_blocks = GetInt4(tup, desc, 7);
		job->batch_size = GetInt4(tup, desc, 8);
		job->rows_total = GetInt8(tup, desc, 9);
		job->rows_done = GetInt8(tup, desc, 10);
		job->rows_rekeyed = GetInt8(tup, desc, 11);
		job->pass_changed = GetInt8(tup, desc, 12);
		job->pid = GetInt4(tup, desc, 13);
	}
	KmsCatalogExit(&st);
	return job->found;
}

/* A new job (replacing a finished one of the same column). */
void
RekeyJobCreate(RekeyJob *job, const char *table_name, const char *column_name)
{
	KmsCatalogState st;
	Oid			types[13] = {OIDOID, INT2OID, TEXTOID, NAMEOID, TEXTOID, INT4OID,
		INT8OID, INT4OID, INT4OID, INT8OID, OIDOID, INT4OID, INT4OID};
	Datum		values[13];
	NameData	colname;

	namestrcpy(&colname, column_name);
	values[0] = ObjectIdGetDatum(job->relid);
	values[1] = Int16GetDatum(job->attnum);
	values[2] = CStringGetTextDatum(table_name);
	values[3] = NameGetDatum(&colname);
	values[4] = CStringGetTextDatum(job->key_id);
	values[5] = Int32GetDatum(job->key_version);
	values[6] = Int64GetDatum(job->pass_blocks);
	values[7] = Int32GetDatum(job->batch_blocks);
	values[8] = Int32GetDatum(job->batch_size);
	values[9] = Int64GetDatum(job->rows_total);
	values[10] = ObjectIdGetDatum(GetUserId());
	values[11] = Int32GetDatum(MyProcPid);
	values[12] = Int32GetDatum(job->pass);

	KmsCatalogEnter(&st);
	/* this column's finished job, and the jobs of tables dropped since */
	KmsExec("DELETE FROM kms.column_rekey r WHERE (relid = $1 AND attnum = $2)"
			" OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.relid)",
			2, types, values, NULL, false, SPI_OK_DELETE);
	KmsExec("INSERT INTO kms.column_rekey (relid, attnum, table_name, column_name, key_id,"
			" key_version, state, pass, next_block, pass_blocks, batch_blocks, batch_size,"
			" rows_total, started_by, pid, started, run_started, updated, run_pass)"
			" VALUES ($1, $2, $3, $4, $5, $6, 'running', $13, 0, $7, $8, $9, $10, $11, $12,"
			" pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp(),"
			" pg_catalog.clock_timestamp(), $13)",
			13, types, values, NULL, false, SPI_OK_INSERT);
	KmsCatalogExit(&st);
	job->found = true;
	job->running = true;
	job->pid = MyProcPid;
}

/* This backend takes the job over: a new run (rate and ETA restart). */
void
RekeyJobResume(RekeyJob *job)
{
	KmsCatalogState st;
	Oid			types[7] = {OIDOID, INT2OID, INT4OID, INT4OID, INT4OID, INT8OID, TEXTOID};
	Datum		values[7] = {ObjectIdGetDatum(job->relid), Int16GetDatum(job->attnum),
		Int32GetDatum(MyProcPid), Int32GetDatum(job->batch_size),
		Int32GetDatum(job->batch_blocks), Int64GetDatum(job->rows_done),
	CStringGetTextDatum(job->key_id)};

	KmsCatalogEnter(&st);
	KmsExec("UPDATE kms.column_rekey SET pid = $3, batch_size = $4, batch_blocks = $5,"
			" run_rows = $6, key_id = $7, run_pass = pass, run_started = pg_catalog.clock_timestamp(),"
			" updated = pg_catalog.clock_timestamp()"
			" WHERE relid = $1 AND attnum = $2",
			7, types, values, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
	job->pid = MyProcPid;
}

/* After a batch (or at the end of a pass): the counters, or done. */
void
RekeyJobSave(RekeyJob *job, bool done)
{
	KmsCatalogState st;
	Oid			types[12] = {OIDOID, INT2OID, BOOLOID, INT4OID, INT4OID, INT8OID,
		INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};
	Datum		values[12];

	values[0] = ObjectIdGetDatum(job->relid);
	values[1] = Int16GetDatum(job->attnum);
	values[2] = BoolGetDatum(done);
	values[3] = Int32GetDatum(job->key_version);
	values[4] = Int32GetDatum(job->pass);
	values[5] = Int64GetDatum(job->next_block);
	values[6] = Int64GetDatum(job->pass_blocks);
	values[7] = Int64GetDatum(job->rows_total);
	values[8] = Int64GetDatum(job->rows_done);
	values[9] = Int64GetDatum(job->rows_rekeyed);
	values[10] = Int64GetDatum(job->pass_changed);
	values[11] = CStringGetTextDatum(job->key_id);

	KmsCatalogEnter(&st);
	/* a new pass starts a new run for the rate (run_pass, run_rows) */
	KmsExec("UPDATE kms.column_rekey SET"
			" state = CASE WHEN $3 THEN 'done' ELSE 'running' END,"
			" key_version = $4, key_id = $12,"
			" run_rows = CASE WHEN pass OPERATOR(pg_catalog.=) $5 THEN run_rows ELSE 0 END,"
			" run_started = CASE WHEN pass OPERATOR(pg_catalog.=) $5 THEN run_started"
			"   ELSE pg_catalog.clock_timestamp() END,"
			" run_pass = CASE WHEN pass OPERATOR(pg_catalog.=) $5 THEN run_pass ELSE $5 END,"
			" pass = $5, next_block = $6, pass_blocks = $7, rows_total = $8, rows_done = $9,"
			" rows_rekeyed = $10, pass_changed = $11, updated = pg_catalog.clock_timestamp(),"
			" finished = CASE WHEN $3 THEN pg_catalog.clock_timestamp() END"
			" WHERE relid = $1 AND attnum = $2",
			12, types, values, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
	job->running = !done;
}

/* Is backend pid running a statement now (a rekey that is not interrupted)? */
bool
RekeyBackendActive(int32 pid)
{
	int			n = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);

		if (l && l->backendStatus.st_procpid == pid)
			return l->backendStatus.st_state == STATE_RUNNING ||
				l->backendStatus.st_state == STATE_FASTPATH;
	}
	return false;
}
