-- Drop what the tests created outside the extension.
-- Keys the tests made are live: DROP EXTENSION is refused (it would destroy
-- them outside the deletion window) until pg_kms.allow_unsafe_drop is on.
\set VERBOSITY terse
DROP EXTENSION pg_kms;
SET pg_kms.allow_unsafe_drop = on;
DROP EXTENSION pg_kms;
RESET pg_kms.allow_unsafe_drop;
\set VERBOSITY default
SELECT count(*) AS kms_schema_left FROM pg_namespace WHERE nspname = 'kms';
DROP ROLE regress_kms_admin, regress_app, regress_other, regress_group;
DROP FUNCTION regress_try(text);
