
-- ------------------------------------------------------------------
-- tce rekey (issue 13): converting a plaintext column and rekeying an
-- encrypted one online (docs/column-encryption.md, "Converting and
-- rekeying").  kms.column_rekey holds one job per column: where the batches
-- have got to, so that a crash or a cancel resumes there; written only by
-- the C code of src/tce/ (progress.c), read through the progress view.
-- ------------------------------------------------------------------
CREATE TABLE kms.column_rekey (
	relid		oid NOT NULL,			-- the table (pg_class oid)
	attnum		int2 NOT NULL,			-- the column
	table_name	text NOT NULL,			-- as named at the start (the view after a DROP)
	column_name name NOT NULL,
	key_id		text NOT NULL,			-- the column key's id
	key_version int4 NOT NULL,			-- its current version, as of the last batch
	state		text NOT NULL CHECK (state IN ('running', 'done')),
	pass		int4 NOT NULL DEFAULT 1,	-- 1: every block; 2..: the sweeps after it
	next_block	int8 NOT NULL DEFAULT 0,	-- first block of the next batch in this pass
	pass_blocks int8 NOT NULL,			-- blocks of the table at the start of the pass
	batch_blocks int4 NOT NULL,			-- blocks per batch (batch_size / rows per block)
	batch_size	int4 NOT NULL,
	rows_total	int8 NOT NULL,			-- rows of the table at the start
	rows_done	int8 NOT NULL DEFAULT 0,	-- rows examined in this pass
	rows_rekeyed int8 NOT NULL DEFAULT 0,	-- values moved, all passes
	pass_changed int8 NOT NULL DEFAULT 0,	-- values moved or skipped (row locked) in this pass
	run_rows	int8 NOT NULL DEFAULT 0,	-- rows_done when this run (call) started
	run_pass	int4 NOT NULL DEFAULT 1,	-- pass when this run started
	started_by	oid NOT NULL,			-- role of the first call
	pid			int4 NOT NULL,			-- backend of the last call
	started		timestamptz NOT NULL,
	run_started timestamptz NOT NULL,	-- start of the last call (rate, ETA)
	updated		timestamptz NOT NULL,	-- end of the last batch
	finished	timestamptz,
	PRIMARY KEY (relid, attnum)
);
REVOKE ALL ON kms.column_rekey FROM PUBLIC;

CREATE FUNCTION kms.column_value_stale(value encrypted_text, typmod integer)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_column_value_stale' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION kms.column_value_stale(value encrypted_bytea, typmod integer)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_column_value_stale' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION kms.column_reseal(value encrypted_text, typmod integer)
RETURNS encrypted_text AS 'MODULE_PATHNAME', 'kms_column_reseal_text' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION kms.column_reseal(value encrypted_bytea, typmod integer)
RETURNS encrypted_bytea AS 'MODULE_PATHNAME', 'kms_column_reseal_bytea' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION kms.column_value_stale(encrypted_text, integer) IS 'Internal: is the value not on the current version of the key of the column type modifier typmod names';
COMMENT ON FUNCTION kms.column_value_stale(encrypted_bytea, integer) IS 'Internal: is the value not on the current version of the key of the column type modifier typmod names';
COMMENT ON FUNCTION kms.column_reseal(encrypted_text, integer) IS 'Internal: the value sealed again with the current version of the key typmod names (Decrypt and Encrypt)';
COMMENT ON FUNCTION kms.column_reseal(encrypted_bytea, integer) IS 'Internal: the value sealed again with the current version of the key typmod names (Decrypt and Encrypt)';

CREATE FUNCTION kms.column_rekey_begin(tbl regclass, col name, batch_size integer, key text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_column_rekey_begin' LANGUAGE C VOLATILE;
CREATE FUNCTION kms.column_rekey_batch(tbl regclass, col name)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_column_rekey_batch' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION kms.column_rekey_begin(regclass, name, integer, text) IS 'Internal: start or resume the rekey job of a column (CALL kms_reencrypt_column)';
COMMENT ON FUNCTION kms.column_rekey_batch(regclass, name) IS 'Internal: one batch of the rekey job of a column; false when it is done';

/*
 * A procedure, so that each batch commits on its own: locks are held for one
 * batch only and a crash or cancel loses at most one batch.  CALL it outside
 * a transaction block.  No SET clause (it would forbid the COMMITs): every
 * name is schema-qualified instead.
 */
CREATE PROCEDURE kms_reencrypt_column(tbl regclass, col name, batch_size integer DEFAULT 1000,
									  key text DEFAULT NULL)
LANGUAGE plpgsql AS $pg_kms$
BEGIN
	IF tbl IS NULL OR col IS NULL OR batch_size IS NULL THEN
		RAISE EXCEPTION 'ValidationException: table, column and batch_size must not be null'
			USING ERRCODE = '22023';
	END IF;
	PERFORM kms.column_rekey_begin(tbl, col, batch_size, key);
	COMMIT;
	WHILE kms.column_rekey_batch(tbl, col) LOOP
		COMMIT;
	END LOOP;
	COMMIT;
END
$pg_kms$;
COMMENT ON PROCEDURE kms_reencrypt_column(regclass, name, integer, text) IS 'Move every value of an encrypted column to its key''s current version (with key: first move the column to that key), in batches committed one by one; resumes an interrupted run';

CREATE FUNCTION kms_encrypt_column(tbl regclass, col name, key text, deterministic boolean DEFAULT false)
RETURNS void AS 'MODULE_PATHNAME', 'kms_encrypt_column' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION kms_encrypt_column(regclass, name, text, boolean) IS 'Convert a plaintext text or bytea column to encrypted_text / encrypted_bytea with key (rewrites the table under ACCESS EXCLUSIVE)';

/*
 * Progress, pg_stat_progress style: one row per column rekey job of a table
 * the caller may read.  running: the backend of the last call is still
 * running a statement; interrupted: it is not (crash, cancel, error: CALL
 * kms_reencrypt_column again to resume); done.
 */
CREATE VIEW kms.column_rekey_progress AS
SELECT r.relid::pg_catalog.regclass AS table_name,
	   r.column_name,
	   r.key_id,
	   r.key_version,
	   CASE WHEN r.state OPERATOR(pg_catalog.=) 'done' THEN 'done'
			WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(r.pid) a
						 WHERE a.state OPERATOR(pg_catalog.=) 'active'
						   AND a.backend_start OPERATOR(pg_catalog.<=) r.run_started)
			THEN 'running' ELSE 'interrupted' END AS state,
	   r.pass,
	   r.rows_done,
	   GREATEST(r.rows_total, r.rows_done) AS rows_total,
	   r.rows_rekeyed,
	   CASE WHEN r.state OPERATOR(pg_catalog.=) 'done' THEN 100::numeric
			WHEN r.pass_blocks OPERATOR(pg_catalog.>) 0
			THEN pg_catalog.round(100 OPERATOR(pg_catalog.*) LEAST(r.next_block, r.pass_blocks)::numeric
								  OPERATOR(pg_catalog./) r.pass_blocks, 1)
			ELSE 0::numeric END AS percent_done,
	   CASE WHEN r.updated OPERATOR(pg_catalog.>) r.run_started
				 AND r.pass OPERATOR(pg_catalog.=) r.run_pass
			THEN pg_catalog.round(((r.rows_done OPERATOR(pg_catalog.-) r.run_rows)::numeric
								   OPERATOR(pg_catalog./) EXTRACT(epoch FROM r.updated OPERATOR(pg_catalog.-) r.run_started)), 1)
			END AS rows_per_second,
	   CASE WHEN r.state OPERATOR(pg_catalog.=) 'done' THEN interval '0'
			WHEN r.updated OPERATOR(pg_catalog.>) r.run_started
				 AND r.pass OPERATOR(pg_catalog.=) r.run_pass
				 AND r.rows_done OPERATOR(pg_catalog.>) r.run_rows
			THEN (r.updated OPERATOR(pg_catalog.-) r.run_started)
				 OPERATOR(pg_catalog.*) (GREATEST(r.rows_total OPERATOR(pg_catalog.-) r.rows_done, 0)::float8
										 OPERATOR(pg_catalog./) (r.rows_done OPERATOR(pg_catalog.-) r.run_rows))
			END AS eta,
	   r.batch_size,
	   r.pid,
	   r.started,
	   r.updated,
	   r.finished
  FROM kms.column_rekey r
 WHERE pg_catalog.has_table_privilege(r.relid, 'SELECT')
	OR pg_catalog.pg_has_role(r.started_by, 'MEMBER');
GRANT SELECT ON kms.column_rekey_progress TO PUBLIC;

CREATE FUNCTION kms_column_rekey_progress()
RETURNS SETOF kms.column_rekey_progress
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $pg_kms$ SELECT * FROM kms.column_rekey_progress $pg_kms$;
COMMENT ON FUNCTION kms_column_rekey_progress() IS 'Progress of the column rekey jobs (kms.column_rekey_progress): rows done / total, rate, ETA, state';
