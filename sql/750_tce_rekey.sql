-- Column encryption, part 2: converting a plaintext column
-- (kms_encrypt_column) and rekeying an encrypted one in batches
-- (CALL kms_reencrypt_column), the progress view, privileges and errors.
-- Crash, cancel and concurrent writers: TAP 110-112.
SELECT kms_create_key(description => 'tce rekey') AS rk \gset
SELECT kms_create_key(description => 'tce rekey other') AS rk2 \gset
SELECT kms_create_alias('alias/regress/rekey', :'rk');
SELECT kms_create_alias('alias/regress/rekey2', :'rk2');

CREATE FUNCTION regress_rekey_wait(cond text, secs int DEFAULT 60) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	ok boolean;
BEGIN
	FOR i IN 1 .. secs * 10 LOOP
		EXECUTE 'SELECT ' || cond INTO ok;
		IF ok THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN false;
END
$$;

-- 1. kms_encrypt_column: text, varchar and bytea columns, randomized or
-- deterministic; NULLs and empty values kept
CREATE TABLE rk_plain (id int PRIMARY KEY, s text, v varchar(20), c char(3), b bytea, n int);
INSERT INTO rk_plain SELECT g, 's-' || g, 'v-' || g, 'c' || (g % 10), int4send(g), g FROM generate_series(1, 300) g;
INSERT INTO rk_plain VALUES (301, '', '', '', '\x', 0), (302, NULL, NULL, NULL, NULL, NULL);
SELECT kms_encrypt_column('rk_plain', 's', 'alias/regress/rekey');
SELECT kms_encrypt_column('rk_plain', 'v', 'alias/regress/rekey', deterministic => true);
SELECT kms_encrypt_column('rk_plain', 'c', 'alias/regress/rekey');
SELECT kms_encrypt_column('rk_plain', 'b', :'rk');
SELECT attname, replace(format_type(atttypid, atttypmod), :'rk', '<rk>') AS type FROM pg_attribute
 WHERE attrelid = 'rk_plain'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) FILTER (WHERE s::text = 's-' || id) AS s_ok,
	   count(*) FILTER (WHERE v::text = 'v-' || id) AS v_ok,
	   count(*) FILTER (WHERE c::text = 'c' || (id % 10)) AS c_ok,
	   count(*) FILTER (WHERE b::bytea = int4send(id)) AS b_ok
  FROM rk_plain WHERE id <= 300;
SELECT s::text = '' AS s_empty, v::text = '' AS v_empty, b::bytea = '\x' AS b_empty FROM rk_plain WHERE id = 301;
SELECT s IS NULL AND v IS NULL AND c IS NULL AND b IS NULL AS all_null FROM rk_plain WHERE id = 302;
SELECT count(DISTINCT (kms_column_value_info(s)).key_id) AS keys,
	   bool_and((kms_column_value_info(s)).key_id = :'rk'::uuid) AS s_key,
	   bool_and((kms_column_value_info(v)).deterministic) AS v_det,
	   bool_and(NOT (kms_column_value_info(s)).deterministic) AS s_randomized
  FROM rk_plain WHERE id <= 301;
-- equality on the converted deterministic column
SELECT id FROM rk_plain WHERE v = 'v-42';

-- refusals
SELECT regress_try($$SELECT kms_encrypt_column('rk_plain', 'n', 'alias/regress/rekey')$$);
SELECT regress_try($$SELECT kms_encrypt_column('rk_plain', 's', 'alias/regress/rekey')$$);
SELECT regress_try($$SELECT kms_encrypt_column('rk_plain', 'nope', 'alias/regress/rekey')$$);
SELECT regress_try($$SELECT kms_encrypt_column('rk_plain', 'ctid', 'alias/regress/rekey')$$);
SELECT regress_try($$SELECT kms_encrypt_column('kms.keys', 'description', 'alias/regress/rekey')$$);
SELECT regress_try($$SELECT kms_encrypt_column('rk_plain', 'n', 'alias/regress/none')$$);
CREATE TABLE rk_app (id int, s text);
INSERT INTO rk_app VALUES (1, 'app secret');
GRANT ALL ON rk_app TO regress_app;
SET ROLE regress_app;
-- not the table's owner
SELECT regress_try($$SELECT kms_encrypt_column('rk_app', 's', 'alias/regress/rekey')$$);
RESET ROLE;
ALTER TABLE rk_app OWNER TO regress_app;
SET ROLE regress_app;
-- the owner, without Encrypt on the key
SELECT regress_try($$SELECT kms_encrypt_column('rk_app', 's', 'alias/regress/rekey')$$);
RESET ROLE;
SELECT format_type(atttypid, atttypmod) AS still_plain FROM pg_attribute WHERE attrelid = 'rk_app'::regclass AND attname = 's';

-- 2. CALL kms_reencrypt_column: after a rotation every value moves to the
-- key's current version; a deterministic column first moves the version
-- recorded for its column key (other columns sharing it are named), then
-- its values, and equality finds them after
SELECT kms_rotate_key_on_demand('alias/regress/rekey') IS NOT NULL AS rotated;
INSERT INTO rk_plain VALUES (303, 'after rotation', 'v-303', 'z', '\x0303', 3);
SELECT (kms_column_value_info(s)).key_version AS v, count(*) FROM rk_plain GROUP BY 1 ORDER BY 1;
CALL kms_reencrypt_column('rk_plain', 's', 40);
CALL kms_reencrypt_column('rk_plain', 'b');
CREATE TABLE rk_det_other (x encrypted_text('alias/regress/rekey', 'deterministic'));
CALL kms_reencrypt_column('rk_plain', 'v', 40);
SELECT (kms_column_value_info(s)).key_version AS s_v, (kms_column_value_info(b)).key_version AS b_v,
	   (kms_column_value_info(v)).key_version AS v_v, count(*)
  FROM rk_plain WHERE id <> 302 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT count(*) FILTER (WHERE s::text = 's-' || id) AS s_ok, count(*) FILTER (WHERE b::bytea = int4send(id)) AS b_ok
  FROM rk_plain WHERE id <= 300;
SELECT s::text, b::bytea FROM rk_plain WHERE id IN (301, 303) ORDER BY id;
SELECT id FROM rk_plain WHERE v = 'v-42';
SELECT id FROM rk_plain WHERE v = 'v-303';
SELECT det_version FROM kms.column_key WHERE key_ref = 'alias/regress/rekey' AND deterministic;
DROP TABLE rk_det_other;
SELECT table_name, column_name, key_id = :'rk' AS key_ok, key_version, state, pass, rows_done, rows_total,
	   rows_rekeyed, percent_done, eta, batch_size, finished IS NOT NULL AS finished
  FROM kms.column_rekey_progress WHERE table_name = 'rk_plain'::regclass ORDER BY column_name;
SELECT count(*) = 3 AS same_in_function FROM kms_column_rekey_progress() WHERE table_name = 'rk_plain'::regclass;
-- a second run finds nothing to do
CALL kms_reencrypt_column('rk_plain', 's', 1000);
SELECT state, pass, rows_rekeyed FROM kms.column_rekey_progress
 WHERE table_name = 'rk_plain'::regclass AND column_name = 's';
-- start, end and denials are audited, with the table and column
SELECT regress_rekey_wait($$(SELECT count(*) FROM kms.audit WHERE operation = 'ReEncryptColumn'
	AND parameters->>'table' = 'public.rk_plain' AND parameters->>'column' = 's'
	AND parameters->>'phase' IN ('start', 'done') AND outcome = 'success') >= 4$$) AS rekey_audited;
SELECT regress_rekey_wait($$(SELECT count(*) FROM kms.audit WHERE operation = 'EncryptColumn'
	AND parameters->>'table' = 'public.rk_plain' AND outcome = 'success') = 4$$) AS encrypt_column_audited;

-- 3. moving a column to another key online (key =>): the type modifier
-- changes at once, the batches move the values; not for deterministic
-- columns nor where another object depends on the column
CREATE TABLE rk_move (id int PRIMARY KEY, s encrypted_text('alias/regress/rekey'),
	d encrypted_text('alias/regress/rekey', 'deterministic'), w encrypted_bytea('alias/regress/rekey'));
INSERT INTO rk_move SELECT g, 'm-' || g, 'd-' || g, '\x77' FROM generate_series(1, 100) g;
CREATE VIEW rk_move_w AS SELECT w FROM rk_move;
CALL kms_reencrypt_column('rk_move', 's', 30, key => 'alias/regress/rekey2');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'rk_move'::regclass AND attname = 's';
SELECT bool_and((kms_column_value_info(s)).key_id = :'rk2'::uuid) AS all_on_rekey2,
	   count(*) FILTER (WHERE s::text = 'm-' || id) AS readable FROM rk_move;
SELECT key_id = :'rk2' AS progress_key, state, rows_rekeyed FROM kms.column_rekey_progress
 WHERE table_name = 'rk_move'::regclass;
SELECT regress_rekey_wait($$EXISTS (SELECT 1 FROM kms.audit WHERE operation = 'ReEncryptColumn'
	AND parameters->>'table' = 'public.rk_move' AND parameters->>'newKey' = 'alias/regress/rekey2')$$) AS move_audited;
SELECT regress_try($$CALL kms_reencrypt_column('rk_move', 'd', 30, key => 'alias/regress/rekey2')$$);
SELECT regress_try($$CALL kms_reencrypt_column('rk_move', 'w', 30, key => 'alias/regress/rekey2')$$);
SELECT regress_try($$CALL kms_reencrypt_column('rk_move', 's', 30, key => 'alias/regress/none')$$);
SELECT regress_try($$CALL kms_reencrypt_column('rk_move', 's', NULL)$$);
-- an inheritance child cannot move alone: its parent's column keeps its key
CREATE TABLE rk_move_child () INHERITS (rk_move);
SELECT regress_try($$CALL kms_reencrypt_column('rk_move_child', 's', 30, key => 'alias/regress/rekey')$$);
DROP TABLE rk_move_child;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'rk_move'::regclass AND attname IN ('d', 'w') ORDER BY attname;
DROP VIEW rk_move_w;
DROP TABLE rk_move;

-- refusals
SELECT regress_try($$CALL kms_reencrypt_column('rk_plain', 's', 0)$$);
SELECT regress_try($$CALL kms_reencrypt_column('rk_plain', 's', 100001)$$);
SELECT regress_try($$CALL kms_reencrypt_column('rk_plain', 'n')$$);
SELECT regress_try($$CALL kms_reencrypt_column('rk_plain', 'nope')$$);
SELECT regress_try($$CALL kms_reencrypt_column('kms.keys', 'description')$$);
-- batches commit: not in a transaction block
BEGIN;
CALL kms_reencrypt_column('rk_plain', 's');
ROLLBACK;
CREATE TABLE rk_parted (id int, s encrypted_text('alias/regress/rekey')) PARTITION BY RANGE (id);
CREATE TABLE rk_parted_1 PARTITION OF rk_parted FOR VALUES FROM (0) TO (100);
INSERT INTO rk_parted VALUES (1, 'p1');
SELECT regress_try($$CALL kms_reencrypt_column('rk_parted', 's')$$);
CALL kms_reencrypt_column('rk_parted_1', 's');
SELECT s::text, (kms_column_value_info(s)).key_version FROM rk_parted;

-- privileges: UPDATE on the table and Encrypt + Decrypt on the key
CREATE TABLE rk_priv (id int PRIMARY KEY, s encrypted_text('alias/regress/rekey'));
INSERT INTO rk_priv SELECT g, 'p-' || g FROM generate_series(1, 50) g;
GRANT SELECT ON rk_priv TO regress_app;
SET ROLE regress_app;
SELECT regress_try($$CALL kms_reencrypt_column('rk_priv', 's')$$);
RESET ROLE;
GRANT UPDATE ON rk_priv TO regress_app;
SELECT kms_rotate_key_on_demand('alias/regress/rekey') IS NOT NULL AS rotated;
SET ROLE regress_app;
SELECT regress_try($$CALL kms_reencrypt_column('rk_priv', 's')$$);
RESET ROLE;
SELECT kms_create_grant('alias/regress/rekey', 'regress_app', ARRAY['Encrypt']) IS NOT NULL AS granted;
SET ROLE regress_app;
SELECT regress_try($$CALL kms_reencrypt_column('rk_priv', 's')$$);
RESET ROLE;
SELECT kms_create_grant('alias/regress/rekey', 'regress_app', ARRAY['Decrypt']) IS NOT NULL AS granted;
SET ROLE regress_app;
CALL kms_reencrypt_column('rk_priv', 's', 10);
SELECT count(*) FILTER (WHERE (kms_column_value_info(s)).key_version = 3) AS on_v3 FROM rk_priv;
SELECT column_name, state, rows_rekeyed FROM kms.column_rekey_progress WHERE table_name = 'rk_priv'::regclass;
RESET ROLE;
-- a role that may not read the table does not see its job
SET ROLE regress_other;
SELECT count(*) AS others_jobs FROM kms.column_rekey_progress;
RESET ROLE;
-- row level security in the way: hidden rows would keep the old key
ALTER TABLE rk_priv ENABLE ROW LEVEL SECURITY;
CREATE POLICY rk_half ON rk_priv USING (id <= 25);
SET ROLE regress_app;
SELECT regress_try($$CALL kms_reencrypt_column('rk_priv', 's')$$);
RESET ROLE;
-- the job table itself is closed
SET ROLE regress_app;
SELECT regress_try($$SELECT count(*) FROM kms.column_rekey$$);
RESET ROLE;

DROP TABLE rk_plain, rk_app, rk_parted, rk_priv;
-- the next job's start forgets the jobs of dropped tables
SELECT count(*) AS jobs_of_dropped_tables FROM kms.column_rekey r
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = r.relid);
CREATE TABLE rk_last (s encrypted_text('alias/regress/rekey'));
INSERT INTO rk_last VALUES ('last');
CALL kms_reencrypt_column('rk_last', 's');
SELECT count(*) AS jobs_of_dropped_tables FROM kms.column_rekey r
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = r.relid);
SELECT table_name, column_name, state FROM kms.column_rekey_progress;
DROP TABLE rk_last;
DROP FUNCTION regress_rekey_wait(text, int);
