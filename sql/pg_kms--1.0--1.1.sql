/*
 * pg_kms 1.0 -> 1.1.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.1 install script), so that
 * an upgraded database and a fresh 1.1 install have the same objects;
 * test/t/050_upgrade.pl compares the two schema dumps.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.1'" to load this file. \quit

-- install checks: warn when PUBLIC may create objects in the API schema
-- (src/sql/060_install_checks.sql).
DO $pg_kms_check$
BEGIN
	IF pg_catalog.has_schema_privilege('public', '@extschema@', 'CREATE') THEN
		RAISE WARNING 'pg_kms: every role may create objects in schema "%", where pg_kms''s functions are installed', '@extschema@'
			USING DETAIL = 'A role that can create functions there can define an overload that unqualified calls resolve to, and read the plaintext passed to it.',
				  HINT = 'Install pg_kms into a schema only trusted roles may create in (CREATE EXTENSION pg_kms SCHEMA ...), or REVOKE CREATE ON SCHEMA ... FROM PUBLIC; call its functions schema-qualified.';
	END IF;
END
$pg_kms_check$;
