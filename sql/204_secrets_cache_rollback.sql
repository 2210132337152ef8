--
-- The per-backend GetSecretValue cache after a rollback (issue 10): it is
-- dropped whenever the key cache's generation moves, which covers this
-- backend's own writes, subtransaction aborts and aborts, so a value read
-- inside a rolled-back (sub)transaction is never served afterwards.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set VERBOSITY terse

SELECT (create_secret('cache/rollback', 'one'))->>'Name' AS created;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS before;

-- a subtransaction writes, reads its write, rolls back
BEGIN;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS cached;
SAVEPOINT s;
SELECT (put_secret_value('cache/rollback', 'two'))->>'Name' AS put;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS after_rollback_to;
COMMIT;

-- a transaction writes, reads its write, rolls back
BEGIN;
SELECT (put_secret_value('cache/rollback', 'three'))->>'Name' AS put;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS in_xact;
ROLLBACK;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS after_rollback;

-- a failed statement inside a transaction after a write it made
BEGIN;
SELECT (put_secret_value('cache/rollback', 'four'))->>'Name' AS put;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS in_xact;
SELECT 1 / 0;
ROLLBACK;
SELECT get_secret_value('cache/rollback')->>'SecretString' AS after_error;

SELECT (delete_secret('cache/rollback', force_delete_without_recovery => true))->>'Name' AS deleted;
