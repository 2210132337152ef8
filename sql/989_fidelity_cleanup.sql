-- Drop what the fidelity tests (950 to 988) created.
\set VERBOSITY terse
SET pg_kms.allow_unsafe_drop = on;
DROP EXTENSION pg_kms;
RESET pg_kms.allow_unsafe_drop;
\set VERBOSITY default
DROP ROLE fid_admin, fid_app, fid_other;
DROP FUNCTION fid_try(text);
DROP FUNCTION fid_audit_wait(text, int);
