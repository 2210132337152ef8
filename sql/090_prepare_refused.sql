--
-- PREPARE TRANSACTION after a change pg_kms publishes at commit is refused
-- (issue 10), as PostgreSQL refuses it after using temporary objects:
-- COMMIT PREPARED would commit the change without publishing it (a new
-- master key check value without the key, cache invalidations nobody sees).
-- A transaction that only reads may still be prepared.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set VERBOSITY terse

-- kms_rotate_master_key() (rewraps under the current key, records its KCV)
BEGIN;
SELECT kms_rotate_master_key() >= 0 AS rotated;
PREPARE TRANSACTION 'pg_kms_rotate';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'pg_kms_rotate';
-- (a server that accepted it: roll it back, it would block what follows)
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts WHERE gid LIKE 'pg_kms_%' \gexec

-- a key change (disabling a key is published: every backend drops its copy)
SELECT kms_create_key(description => 'prepare test') AS key_id \gset
BEGIN;
SELECT kms_disable_key(:'key_id');
PREPARE TRANSACTION 'pg_kms_key';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'pg_kms_key';
-- (a server that accepted it: roll it back, it would block what follows)
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts WHERE gid LIKE 'pg_kms_%' \gexec
SELECT kms_describe_key(:'key_id')->>'KeyState' AS still;
SELECT kms_schedule_key_deletion(:'key_id', 7) IS NOT NULL AS cleaned_up;

-- a secret change
BEGIN;
SELECT (create_secret('prepare/test', 'value'))->>'Name' AS created;
PREPARE TRANSACTION 'pg_kms_secret';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'pg_kms_secret';
-- (a server that accepted it: roll it back, it would block what follows)
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts WHERE gid LIKE 'pg_kms_%' \gexec
SELECT count(*) AS secrets_left FROM kms.secret WHERE name = 'prepare/test';

-- reading is fine: nothing to publish
BEGIN;
SELECT count(*) >= 0 AS listed FROM kms_list_keys();
PREPARE TRANSACTION 'pg_kms_read';
COMMIT PREPARED 'pg_kms_read';

-- none is left prepared (a server that accepted one would be rolled back here)
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts WHERE gid LIKE 'pg_kms_%' \gexec
SELECT count(*) AS left_prepared FROM pg_prepared_xacts;
