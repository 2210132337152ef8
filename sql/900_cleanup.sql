-- Drop what the tests created outside the extension.
DROP EXTENSION pg_kms;
SELECT count(*) AS kms_schema_left FROM pg_namespace WHERE nspname = 'kms';
DROP ROLE regress_kms_admin, regress_app, regress_other, regress_group;
DROP FUNCTION regress_try(text);
