/*
 * pg_kms 1.0 -> 1.1.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.1 install script), so that
 * an upgraded database and a fresh 1.1 install have the same objects;
 * test/t/050_upgrade.pl compares the two schema dumps.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.1'" to load this file. \quit

-- rotation: custom strategies pinned by OID, the clone remembered, the
-- SCRAM login client's self-test (issue 9, findings 1 and 5)
ALTER TABLE kms.secret
	ADD COLUMN rotation_function regprocedure,		-- the custom strategy's function
	ADD COLUMN rotation_clone regrole;				-- the <user>_clone pg_kms created
-- 1.0 stored the function's qualified signature: pin what it names now
-- (its owner is checked before every step all the same).
UPDATE kms.secret SET rotation_function = pg_catalog.to_regprocedure(rotation_strategy)
 WHERE rotation_strategy IS NOT NULL
   AND rotation_strategy NOT IN ('postgres_single_user', 'postgres_alternating_users');

CREATE FUNCTION kms.rotation_login_selftest(host text, port int, username text, password text,
											dbname text, timeout_ms int DEFAULT 5000)
RETURNS text AS 'MODULE_PATHNAME', 'kms_rotation_login_selftest' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) FROM PUBLIC;
COMMENT ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) IS 'Test: the rotation worker''s SCRAM-only login client against host (socket directory or IP address); NULL on success, else why it failed';

-- keys: KeyManager.  The keys pg_kms manages itself (the secrets store's
-- default key, named by an alias under alias/pg_kms/) are changed by a
-- superuser only; existing ones are marked.
ALTER TABLE kms.key ADD COLUMN key_manager text NOT NULL DEFAULT 'CUSTOMER'
	CHECK (key_manager IN ('CUSTOMER', 'AWS'));
UPDATE kms.key SET key_manager = 'AWS'
 WHERE key_id IN (SELECT key_id FROM kms.alias WHERE alias_name LIKE 'alias/pg\_kms/%');

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

-- install checks: name functions of the same names as pg_kms's that are not
-- the extension's (src/sql/060_install_checks.sql).
DO $pg_kms_check$
DECLARE
	clash text;
BEGIN
	SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
												pg_catalog.pg_get_function_identity_arguments(p.oid)), ', ')
	  INTO clash
	  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
	 WHERE p.proname IN (SELECT o.proname FROM pg_catalog.pg_proc o
						  WHERE o.pronamespace = '@extschema@'::pg_catalog.regnamespace)
	   AND p.pronamespace NOT IN ('pg_catalog'::pg_catalog.regnamespace, 'information_schema'::pg_catalog.regnamespace)
	   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
					   WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid
						 AND d.deptype = 'e'
						 AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_kms'));
	IF clash IS NOT NULL THEN
		RAISE WARNING 'pg_kms: functions of the same names as pg_kms''s exist outside the extension: %', clash
			USING DETAIL = 'An unqualified call can resolve to one of them instead of pg_kms''s function (schema "@extschema@"), depending on search_path and argument types.',
				  HINT = 'Rename or drop them, or call pg_kms''s functions schema-qualified.';
	END IF;
END
$pg_kms_check$;
