-- A restore into a database that already uses pg_kms (issue 11, finding
-- 10): an insert into pg_kms's tables that is not pg_kms's own (a COPY of
-- pg_restore or psql) is refused before it writes anything, naming the
-- conflict and the fix.  (Whole dumps and restores: test/t/08x_*.pl.)
\set VERBOSITY default
SELECT count(*) > 0 AS has_keys FROM kms.key;
-- the account row, loaded first from a dump: refused, this database has keys
INSERT INTO kms.account VALUES (1, '123456789012');
\set VERBOSITY terse
-- and then the rest of this session's restore, even into an empty table
SELECT count(*) AS secret_grants FROM kms.secret_grant;
COPY kms.secret_grant FROM stdin;
\.
-- a table with rows: refused at its first statement, whatever the session
\c
INSERT INTO kms.alias SELECT 'alias/regress-restored', key_id, now(), now() FROM kms.key LIMIT 1;
SELECT count(*) AS restored_alias FROM kms.alias WHERE alias_name = 'alias/regress-restored';
-- the same master key (same key check value) merges; another is refused
INSERT INTO kms.master SELECT * FROM kms.master;
SELECT count(*) AS master_rows FROM kms.master;
INSERT INTO kms.master (id, provider, kcv) VALUES (1, 'local', '\x00');
-- pg_kms's own inserts are not restores
SELECT kms_create_key(description => 'restore guard') AS rk \gset
SELECT kms_create_alias('alias/regress-own-insert', :'rk');
SELECT kms_schedule_key_deletion(:'rk', 7) IS NOT NULL AS scheduled;
SELECT count(*) AS own_alias FROM kms.alias WHERE alias_name = 'alias/regress-own-insert';
