-- Key custody (issue 11, finding 2): DROP EXTENSION, DROP SCHEMA kms, DROP
-- TABLE, TRUNCATE, DROP OWNED and DELETE destroy keys outside the deletion
-- window; refused while any key is not yet destroyed, by the owner (here a
-- superuser) too, with a hint naming the way out.  pg_kms's own writes
-- (deletion of secrets, aliases, grants) still work.
SELECT kms_create_key(description => 'custody key') AS ck \gset
SELECT create_secret('regress/custody', secret_string => 'custody-value') IS NOT NULL AS secret_created;
SELECT count(*) > 0 AS live_keys FROM kms.key WHERE key_state <> 'Deleted';

-- the refusal, in full once (the number of live keys masked)
DO $$
DECLARE
	st text; msg text; det text; hint text;
BEGIN
	DROP EXTENSION pg_kms;
	RAISE NOTICE 'not refused';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RAISE NOTICE E'%\n%\n%\n%', st, msg, regexp_replace(det, '^[0-9]+ ', 'N '), hint;
END
$$;
\set VERBOSITY terse
DROP EXTENSION pg_kms;
DROP EXTENSION pg_kms CASCADE;
DROP EXTENSION IF EXISTS pg_kms, plpgsql;
DROP SCHEMA kms CASCADE;
DROP TABLE kms.key CASCADE;
DROP TABLE kms.key_version;
TRUNCATE kms.key CASCADE;
TRUNCATE kms.key_version;
TRUNCATE kms.secret_version;
TRUNCATE kms.alias;
BEGIN;
SET LOCAL search_path = kms, public;
TRUNCATE key_version;
ROLLBACK;
DELETE FROM kms.key WHERE key_id = :'ck';
DELETE FROM kms.key;
DELETE FROM kms.key_version WHERE key_id = :'ck';
DELETE FROM kms.secret WHERE name = 'regress/custody';
DELETE FROM kms.secret_version;
DELETE FROM kms.secret_stage;
-- nor by taking the guard away first
DROP TRIGGER guard_delete ON kms.key;
ALTER TABLE kms.key DISABLE TRIGGER guard_delete;
ALTER TABLE kms.key_version DISABLE TRIGGER ALL;
ALTER TABLE kms.secret ENABLE REPLICA TRIGGER guard_delete;
SELECT count(*) AS guard_triggers_enabled FROM pg_trigger
 WHERE tgname = 'guard_delete' AND tgenabled = 'O';
\set VERBOSITY default

-- nothing was lost
SELECT count(*) FROM kms.key WHERE key_id = :'ck';
SELECT count(*) FROM kms.key_version WHERE key_id = :'ck' AND material IS NOT NULL;
SELECT get_secret_value('regress/custody')->>'SecretString' AS still_readable;

-- unrelated statements are not affected
CREATE TABLE regress_custody_t (x int);
TRUNCATE regress_custody_t;
DROP TABLE regress_custody_t;
CREATE SCHEMA regress_custody_s;
CREATE TABLE regress_custody_s.key (x int);
DROP SCHEMA regress_custody_s CASCADE;

-- pg_kms's own deletes pass: an alias, a secret deleted at once
SELECT kms_create_alias('alias/regress-custody', :'ck');
SELECT kms_delete_alias('alias/regress-custody');
SELECT delete_secret('regress/custody', force_delete_without_recovery => true) ? 'DeletionDate' AS secret_deleted;
SELECT count(*) AS secret_rows_left FROM kms.secret WHERE name = 'regress/custody';

-- the override is superuser-only and off by default
SHOW pg_kms.allow_unsafe_drop;
SET ROLE regress_kms_admin;
SET pg_kms.allow_unsafe_drop = on;
RESET ROLE;
SELECT setting, context FROM pg_settings WHERE name = 'pg_kms.allow_unsafe_drop';
-- nor can anybody mark a statement as pg_kms's own
SET pg_kms.internal_write = on;

-- with the override, DELETE goes through (rolled back here)
BEGIN;
SET LOCAL pg_kms.allow_unsafe_drop = on;
DELETE FROM kms.key WHERE key_id = :'ck';
SELECT count(*) AS deleted_in_xact FROM kms.key WHERE key_id = :'ck';
ROLLBACK;
SELECT count(*) AS back_after_rollback FROM kms.key WHERE key_id = :'ck';

-- an error inside pg_kms caught by a savepoint leaves nothing marked as its own
BEGIN;
SAVEPOINT a;
SELECT kms_describe_key('00000000-0000-4000-8000-000000000000');
ROLLBACK TO a;
\set VERBOSITY terse
DELETE FROM kms.key WHERE key_id = :'ck';
\set VERBOSITY default
ROLLBACK;

-- a destroyed key (Deleted, material NULL) no longer counts: simulated on
-- every key here inside a rolled-back transaction, as the deletion job does
BEGIN;
UPDATE kms.key SET key_state = 'Deleted';
UPDATE kms.key_version SET material = NULL;
DELETE FROM kms.key_version WHERE key_id = :'ck';
TRUNCATE kms.alias;
ROLLBACK;
SELECT count(*) AS versions_kept FROM kms.key_version WHERE key_id = :'ck';
