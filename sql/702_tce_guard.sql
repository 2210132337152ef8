-- Transparent column encryption: the holes closed.  A column, domain,
-- array or composite attribute of an encrypted type without a key is
-- refused (it would store plaintext); nothing decrypts by an implicit or
-- assignment cast; error DETAIL/CONTEXT and pg_stats show no plaintext.
SELECT kms_create_key(description => 'tce guard') AS gk \gset
SELECT kms_create_alias('alias/regress/tce-guard', :'gk');
\set VERBOSITY terse

-- refused: no key
CREATE TABLE tce_g1 (v encrypted_text);
CREATE TABLE tce_g1 (v encrypted_bytea);
CREATE TABLE tce_g1 (v encrypted_text[]);
CREATE TABLE tce_g1 (v encrypted_text[][]);
CREATE DOMAIN tce_gd AS encrypted_text;
CREATE DOMAIN tce_gd AS encrypted_bytea[];
CREATE TYPE tce_gt AS (a int, s encrypted_text);
CREATE TABLE tce_g1 AS SELECT 'x'::encrypted_text AS v;
SELECT 'x'::encrypted_text AS v INTO tce_g1;
CREATE MATERIALIZED VIEW tce_g1 AS SELECT 'x'::encrypted_text AS v;
-- a plain view stores nothing: allowed
CREATE VIEW tce_gv AS SELECT 'x'::encrypted_text AS v;
DROP VIEW tce_gv;
CREATE TABLE tce_ok (id int, v encrypted_text('alias/regress/tce-guard'));
ALTER TABLE tce_ok ADD COLUMN w encrypted_text;
ALTER TABLE tce_ok ALTER COLUMN v TYPE encrypted_text;
CREATE TYPE tce_gt_ok AS (a int, s encrypted_text('alias/regress/tce-guard'));
ALTER TYPE tce_gt_ok ADD ATTRIBUTE t encrypted_bytea;
-- nothing of the above exists
SELECT count(*) AS refused_objects_left FROM pg_class WHERE relname = 'tce_g1';
SELECT count(*) AS refused_types_left FROM pg_type WHERE typname IN ('tce_gd', 'tce_gt');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'tce_ok'::regclass AND attnum > 0 ORDER BY attnum;

-- allowed: with a key, everywhere, and values stored sealed
CREATE DOMAIN tce_pii AS encrypted_text('alias/regress/tce-guard');
CREATE DOMAIN tce_pii2 AS tce_pii;
CREATE TABLE tce_paths (
	id int,
	d tce_pii,
	d2 tce_pii2,
	arr encrypted_text('alias/regress/tce-guard')[],
	comp tce_gt_ok);
INSERT INTO tce_paths VALUES (1, 'dom', 'dom2', ARRAY['a1', 'a2'], ROW(1, 'in composite'));
UPDATE tce_paths SET arr[2] = 'a2-new', comp.s = 'comp-new';
SELECT d, d2, arr, comp FROM tce_paths;
SELECT (kms_column_value_info(d)).sealed AS d_sealed, (kms_column_value_info(d2)).sealed AS d2_sealed,
	   (kms_column_value_info(arr[1])).sealed AS a1_sealed, (kms_column_value_info(arr[2])).sealed AS a2_sealed,
	   (kms_column_value_info((comp).s)).sealed AS comp_sealed
  FROM tce_paths;
CREATE TABLE tce_copy AS SELECT * FROM tce_paths;
CREATE TABLE tce_like (LIKE tce_paths INCLUDING ALL);
SELECT v, w FROM (SELECT d AS v, arr AS w FROM tce_copy) s;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'tce_like'::regclass AND attnum > 0 ORDER BY attnum;

-- casts to text are explicit only: no assignment, no implicit
CREATE TABLE tce_plain (t text, vc varchar(50), c char(20), b bytea);
INSERT INTO tce_ok VALUES (1, 'secret-1');
INSERT INTO tce_plain (t) SELECT v FROM tce_ok;
INSERT INTO tce_plain (vc) SELECT v FROM tce_ok;
INSERT INTO tce_plain (c) SELECT v FROM tce_ok;
SELECT v || 'x' FROM tce_ok;
SELECT 'x' || v FROM tce_ok;
SELECT v || 'x'::text FROM tce_ok;
SELECT length(v) FROM tce_ok;
SELECT v = 'secret-1'::text FROM tce_ok;
CREATE TABLE tce_okb (b encrypted_bytea('alias/regress/tce-guard'));
INSERT INTO tce_okb VALUES ('\xdeadbeef');
INSERT INTO tce_plain (b) SELECT b FROM tce_okb;
INSERT INTO tce_plain (t) SELECT b FROM tce_okb;
-- explicit casts work
INSERT INTO tce_plain (t, vc, c) SELECT v::text, v::varchar, v::char(20) FROM tce_ok;
INSERT INTO tce_plain (b, t) SELECT b::bytea, b::text FROM tce_okb;
SELECT t, vc, c, b FROM tce_plain;
-- and from text, assignment works (INSERT ... SELECT, UPDATE from text)
INSERT INTO tce_ok (id, v) SELECT 2, t FROM tce_plain WHERE t = 'secret-1';
UPDATE tce_ok SET v = p.vc FROM tce_plain p WHERE id = 2 AND p.vc IS NOT NULL;
SELECT id, v, (kms_column_value_info(v)).sealed FROM tce_ok ORDER BY id;

-- no statistics: pg_stats would show plaintext and its order
CREATE TABLE tce_stats (id int, v encrypted_text('alias/regress/tce-guard', 'deterministic'));
INSERT INTO tce_stats SELECT g, 'stat-' || (g % 10) FROM generate_series(1, 200) g;
ANALYZE tce_stats;
SELECT attname FROM pg_stats WHERE tablename = 'tce_stats' ORDER BY attname;
-- nor extended statistics (their MCV lists would hold values too)
CREATE STATISTICS tce_stats_mcv (mcv, ndistinct) ON v, id FROM tce_stats;
ANALYZE tce_stats;
SELECT count(*) AS ext_stats_rows FROM pg_statistic_ext_data
 WHERE stxoid = (SELECT oid FROM pg_statistic_ext WHERE stxname = 'tce_stats_mcv');

-- error reports: DETAIL and CONTEXT that may quote values are hidden
\set VERBOSITY default
CREATE UNIQUE INDEX ON tce_stats (v) WHERE id <= 10;
INSERT INTO tce_stats VALUES (3, 'stat-3');
CREATE TABLE tce_nn (id int, v encrypted_text('alias/regress/tce-guard'), n int NOT NULL);
INSERT INTO tce_nn VALUES (1, 'failing-row-secret', NULL);
COPY tce_nn FROM STDIN;
7	copy-line-secret	notanumber
\.
-- an error in a transaction that never touched encrypted values keeps its detail
CREATE TABLE tce_plain_u (t text UNIQUE);
INSERT INTO tce_plain_u VALUES ('visible');
INSERT INTO tce_plain_u VALUES ('visible');
\set VERBOSITY terse

DROP TABLE tce_ok, tce_paths, tce_copy, tce_like, tce_plain, tce_okb, tce_stats, tce_nn, tce_plain_u;
DROP TYPE tce_gt_ok;
DROP DOMAIN tce_pii2, tce_pii;
