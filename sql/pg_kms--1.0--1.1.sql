/*
 * pg_kms 1.0 -> 1.1.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.1 install script), so that
 * an upgraded database and a fresh 1.1 install have the same objects;
 * test/t/050_upgrade.pl compares the two catalogs.  The Makefile builds
 * sql/pg_kms--1.0--1.1.sql from this file followed by the install checks
 * (src/sql/060_install_checks.sql), which every update runs again.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.1'" to load this file. \quit

-- audit: the role OIDs of each event in kms.audit_log (NULL in older rows),
-- hashed into the chain for the rows that have them; kms.audit matches
-- roles by OID.
ALTER TABLE kms.audit_log ADD COLUMN db_user_oid oid, ADD COLUMN session_user_oid oid;
CREATE OR REPLACE FUNCTION kms.audit_payload(r kms.audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
	SELECT kms.audit_field(r.id::text)
		OPERATOR(pg_catalog.||) kms.audit_field(kms.audit_time_us(r.event_time))
		OPERATOR(pg_catalog.||) kms.audit_field(kms.audit_time_us(r.last_time))
		OPERATOR(pg_catalog.||) kms.audit_field(r.event_count::text)
		OPERATOR(pg_catalog.||) kms.audit_field(r.event_type)
		OPERATOR(pg_catalog.||) kms.audit_field(r.db_user)
		OPERATOR(pg_catalog.||) kms.audit_field(r.session_user_name)
		OPERATOR(pg_catalog.||) kms.audit_field(r.database)
		OPERATOR(pg_catalog.||) kms.audit_field(r.client_addr)
		OPERATOR(pg_catalog.||) kms.audit_field(r.application_name)
		OPERATOR(pg_catalog.||) kms.audit_field(r.backend_pid::text)
		OPERATOR(pg_catalog.||) kms.audit_field(r.query_id::text)
		OPERATOR(pg_catalog.||) kms.audit_field(r.operation)
		OPERATOR(pg_catalog.||) kms.audit_field(r.resource_id)
		OPERATOR(pg_catalog.||) kms.audit_field(r.resource_arn)
		OPERATOR(pg_catalog.||) kms.audit_field(r.version)
		OPERATOR(pg_catalog.||) kms.audit_field(r.outcome)
		OPERATOR(pg_catalog.||) kms.audit_field(r.parameters::text)
		OPERATOR(pg_catalog.||) CASE WHEN r.db_user_oid IS NULL AND r.session_user_oid IS NULL
			THEN '\x'::bytea
			ELSE kms.audit_field(r.db_user_oid::text)
				OPERATOR(pg_catalog.||) kms.audit_field(r.session_user_oid::text) END
$$;
CREATE OR REPLACE VIEW kms.audit WITH (security_barrier) AS
	SELECT a.id, a.event_time, a.last_time, a.event_count, a.event_type,
		   a.db_user, a.session_user_name, a.database, a.client_addr,
		   a.application_name, a.backend_pid, a.query_id, a.operation,
		   a.resource_id, a.resource_arn, a.version, a.outcome, a.parameters,
		   a.prev_hash, a.row_hash, a.db_user_oid, a.session_user_oid
	  FROM kms.audit_log a
	 WHERE pg_catalog.pg_has_role(current_user, 'kms_admin', 'MEMBER')
		OR a.db_user_oid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
												 WHERE r.rolname OPERATOR(pg_catalog.=) current_user)
		OR a.session_user_oid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
													  WHERE r.rolname OPERATOR(pg_catalog.=) current_user);

-- audit: two background workers (audit; rotation), kms_worker_status()
-- returns one row for each.
DROP FUNCTION kms_worker_status();
CREATE FUNCTION kms_worker_status(OUT state text, OUT pid int, OUT started timestamptz,
								  OUT last_wake timestamptz, OUT next_wake timestamptz,
								  OUT last_error text, OUT queue_length int,
								  OUT events_written bigint, OUT events_only_logged bigint,
								  OUT next_due timestamptz, OUT worker text,
								  OUT job text, OUT job_started timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status' LANGUAGE C VOLATILE ROWS 2;
COMMENT ON FUNCTION kms_worker_status() IS 'State of the pg_kms background workers, one row each';
REVOKE ALL ON FUNCTION kms_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_worker_status() TO kms_admin;

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

/*
 * Install-time checks.  The API functions live in the schema chosen at
 * CREATE EXTENSION; a role that may create objects there can define an
 * overload that an unqualified call resolves to first (say kms_encrypt(text,
 * text) against our kms_encrypt(text, bytea) for a string literal), and so
 * read every plaintext passed to it.  Say so when PUBLIC may (docs/security.md,
 * "Where to install").
 */
DO $pg_kms_check$
BEGIN
	IF pg_catalog.has_schema_privilege('public', '@extschema@', 'CREATE') THEN
		RAISE WARNING 'pg_kms: every role may create objects in schema "%", where pg_kms''s functions are installed', '@extschema@'
			USING DETAIL = 'A role that can create functions there can define an overload that unqualified calls resolve to, and read the plaintext passed to it.',
				  HINT = 'Install pg_kms into a schema only trusted roles may create in (CREATE EXTENSION pg_kms SCHEMA ...), or REVOKE CREATE ON SCHEMA ... FROM PUBLIC; call its functions schema-qualified.';
	END IF;
END
$pg_kms_check$;

/*
 * The API's names are generic (create_secret, get_secret, ...).  A function
 * of the same name that is not ours -- in another schema on a caller's
 * search_path, or an overload beside ours -- can be what an unqualified call
 * resolves to: name them, so that the clash is not silent.
 */
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
