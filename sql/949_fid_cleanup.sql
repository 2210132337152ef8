-- Drop what tests 901..948 made (the extension included; see 900_cleanup).
\set VERBOSITY terse
SET client_min_messages = error;
SET pg_kms.allow_unsafe_drop = on;
DROP EXTENSION pg_kms;
RESET pg_kms.allow_unsafe_drop;
RESET client_min_messages;
\set VERBOSITY default
DROP FUNCTION fid_try(text);
DROP FUNCTION fid_looker(text, text, text);
DROP FUNCTION fid_temp_maker(text, text, text);
DROP FUNCTION fid_names(jsonb);
DROP FUNCTION fid_error_of(text);
DROP FUNCTION fid_audit_wait(text);
DROP ROLE regress_fid_app;
