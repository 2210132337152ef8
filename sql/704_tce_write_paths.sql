-- Transparent column encryption: every write path seals with the column's
-- key.  Each path writes one marked value; at the end every stored value is
-- checked: sealed, under the column's key, and reading back the plaintext.
-- (test/t/100_tce_byte_scan.pl scans the data files, WAL and log for the
-- same kind of marks.)
SELECT kms_create_key(description => 'tce paths') AS pk \gset
SELECT kms_create_key(description => 'tce paths other') AS pk2 \gset
SELECT kms_create_alias('alias/regress/tce-paths', :'pk');
SELECT kms_create_alias('alias/regress/tce-paths-other', :'pk2');
CREATE TABLE tce_w (id int PRIMARY KEY, v encrypted_text('alias/regress/tce-paths'),
					d encrypted_text('alias/regress/tce-paths', 'deterministic'),
					b encrypted_bytea('alias/regress/tce-paths'),
					dflt encrypted_text('alias/regress/tce-paths') DEFAULT 'path-default');
CREATE TABLE tce_src (id int, t text, vc varchar, b bytea);
INSERT INTO tce_src VALUES (2, 'path-insert-select', 'path-insert-select-d', '\x02');

-- literals; INSERT ... SELECT from text/varchar/bytea
INSERT INTO tce_w VALUES (1, 'path-literal', 'path-literal-d', '\x01');
INSERT INTO tce_w (id, v, d, b) SELECT id, t, vc, b FROM tce_src;
-- UPDATE with a literal and from another table
INSERT INTO tce_w (id) VALUES (3);
UPDATE tce_w SET v = 'path-update', d = 'path-update-d', b = '\x03' WHERE id = 3;
-- COPY text and csv
COPY tce_w (id, v, d, b) FROM STDIN;
4	path-copy-text	path-copy-text-d	\\x04
\.
COPY tce_w (id, v, d, b) FROM STDIN WITH (FORMAT csv);
5,path-copy-csv,path-copy-csv-d,\x05
\.
-- PREPARE / EXECUTE: typed (with and without typmod, text) and untyped
PREPARE p_typed(int, encrypted_text, encrypted_text, encrypted_bytea) AS INSERT INTO tce_w (id, v, d, b) VALUES ($1, $2, $3, $4);
EXECUTE p_typed(6, 'path-prepare-typed', 'path-prepare-typed-d', '\x06');
PREPARE p_text(int, text, varchar, bytea) AS INSERT INTO tce_w (id, v, d, b) VALUES ($1, $2, $3, $4);
EXECUTE p_text(7, 'path-prepare-text', 'path-prepare-text-d', '\x07');
PREPARE p_untyped AS INSERT INTO tce_w (id, v, d, b) VALUES ($1, $2, $3, $4);
EXECUTE p_untyped(8, 'path-prepare-untyped', 'path-prepare-untyped-d', '\x08');
PREPARE p_mod(int, encrypted_text('alias/regress/tce-paths-other')) AS INSERT INTO tce_w (id, v) VALUES ($1, $2);
EXECUTE p_mod(9, 'path-prepare-other-typmod');
DEALLOCATE ALL;
-- ON CONFLICT DO UPDATE (EXCLUDED and a literal)
INSERT INTO tce_w (id, v, d) VALUES (1, 'path-on-conflict', 'path-on-conflict-d')
	ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, d = 'path-on-conflict-lit';
-- MERGE
MERGE INTO tce_w w USING (VALUES (10, 'path-merge-insert'), (2, 'path-merge-update')) s(id, t) ON w.id = s.id
	WHEN MATCHED THEN UPDATE SET v = s.t
	WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.t);
-- a BEFORE trigger assigning NEW.v; a PL/pgSQL variable with the typmod
CREATE FUNCTION tce_w_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = 11 THEN
		NEW.v := 'path-trigger';
		NEW.d := 'path-trigger-d';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER tce_w_trg BEFORE INSERT ON tce_w FOR EACH ROW EXECUTE FUNCTION tce_w_trg();
INSERT INTO tce_w (id) VALUES (11);
DO $$
DECLARE
	x encrypted_text('alias/regress/tce-paths') := 'path-plpgsql-var';
	y tce_w.d%TYPE := 'path-plpgsql-type';
	z text := 'path-plpgsql-using';
BEGIN
	INSERT INTO tce_w (id, v, d) VALUES (12, x, y);
	EXECUTE 'INSERT INTO tce_w (id, v) VALUES ($1, $2)' USING 13, z;
END
$$;
-- record_in, json populate, jsonb_to_record
INSERT INTO tce_w SELECT * FROM json_populate_record(NULL::tce_w, '{"id": 14, "v": "path-json", "d": "path-json-d"}');
INSERT INTO tce_w SELECT ('(15,path-record-in,path-record-in-d,"\\x0f",path-record-dflt)'::tce_w).*;
INSERT INTO tce_w (id, v) SELECT id, v FROM jsonb_to_record('{"id": 16, "v": "path-jsonb"}')
	AS x(id int, v encrypted_text('alias/regress/tce-paths'));
-- an updatable view; a SQL function returning SETOF the table
CREATE VIEW tce_w_view AS SELECT id, v FROM tce_w;
INSERT INTO tce_w_view VALUES (17, 'path-view');
CREATE FUNCTION tce_rows() RETURNS SETOF tce_w LANGUAGE sql AS
	$$ SELECT 18, 'path-sql-function'::text, NULL::text, NULL::bytea, NULL::text $$;
INSERT INTO tce_w SELECT * FROM tce_rows();
-- ADD COLUMN with a default (the fast default is sealed too)
ALTER TABLE tce_w ADD COLUMN late encrypted_text('alias/regress/tce-paths') DEFAULT 'path-fast-default';
-- CTAS and SELECT INTO of a typmod'ed column keep the typmod
CREATE TABLE tce_w_ctas AS SELECT id, v FROM tce_w WHERE id = 1;
SELECT id, v INTO tce_w_into FROM tce_w WHERE id = 2;

-- every stored value: sealed, under the column's key, readable
SELECT count(*) AS rows,
	   count(*) FILTER (WHERE v IS NOT NULL AND (kms_column_value_info(v)).sealed
						 AND (kms_column_value_info(v)).key_id = :'pk'::uuid) AS v_sealed,
	   count(v) AS v_set,
	   count(*) FILTER (WHERE d IS NOT NULL AND (kms_column_value_info(d)).deterministic
						 AND (kms_column_value_info(d)).key_id = :'pk'::uuid) AS d_sealed,
	   count(d) AS d_set,
	   count(*) FILTER (WHERE (kms_column_value_info(b)).sealed) AS b_sealed, count(b) AS b_set,
	   count(*) FILTER (WHERE (kms_column_value_info(dflt)).sealed) AS dflt_sealed, count(dflt) AS dflt_set,
	   count(*) FILTER (WHERE (kms_column_value_info(late)).sealed) AS late_sealed, count(late) AS late_set
  FROM tce_w;
SELECT id, v, d, b, dflt, late FROM tce_w ORDER BY id;
SELECT (kms_column_value_info(v)).key_id = :'pk'::uuid AS ctas_sealed FROM tce_w_ctas;
SELECT (kms_column_value_info(v)).key_id = :'pk'::uuid AS into_sealed FROM tce_w_into;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid IN ('tce_w_ctas'::regclass, 'tce_w_into'::regclass) AND attname = 'v';
-- deterministic lookups find the values of every path
SELECT count(*) AS found FROM tce_w WHERE d IN ('path-literal-d', 'path-insert-select-d', 'path-update-d',
	'path-copy-text-d', 'path-copy-csv-d', 'path-prepare-typed-d', 'path-prepare-text-d',
	'path-prepare-untyped-d', 'path-on-conflict-lit', 'path-trigger-d', 'path-plpgsql-type',
	'path-json-d', 'path-record-in-d');

-- ALTER COLUMN TYPE of a text column to a key reference never used before:
-- the rewrite seals with the type modifier the same statement declared
CREATE TABLE tce_conv (t text);
INSERT INTO tce_conv VALUES ('path-alter-type'), ('');
ALTER TABLE tce_conv ALTER COLUMN t TYPE encrypted_text('alias/regress/tce-paths-other', 'deterministic');
SELECT t, (kms_column_value_info(t)).key_id = :'pk2'::uuid AS sealed_other FROM tce_conv ORDER BY t::text;
-- a declaration rolled back leaves nothing behind; declared again, it works
-- (the same typmod number: it is a hash of the reference)
BEGIN;
CREATE TABLE tce_rb (v encrypted_text(:'pk2'));
INSERT INTO tce_rb VALUES ('rolled back');
SELECT atttypmod AS rb_typmod FROM pg_attribute WHERE attrelid = 'tce_rb'::regclass AND attname = 'v' \gset
ROLLBACK;
SELECT count(*) AS rows_after_rollback FROM kms.column_key WHERE key_ref = :'pk2';
CREATE TABLE tce_rb (v encrypted_text(:'pk2'));
INSERT INTO tce_rb VALUES ('declared again');
SELECT v, (SELECT atttypmod FROM pg_attribute WHERE attrelid = 'tce_rb'::regclass AND attname = 'v') = :rb_typmod AS same_typmod
  FROM tce_rb;
DROP TABLE tce_conv, tce_rb;

DROP FUNCTION tce_rows();
DROP TABLE tce_w, tce_src, tce_w_ctas, tce_w_into CASCADE;
DROP FUNCTION tce_w_trg();
