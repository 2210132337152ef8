/*
 * pg_kms 1.1 -> 1.2.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.2 install script), so that
 * an upgraded database and a fresh 1.2 install have the same objects;
 * test/t/050_upgrade.pl compares the two catalogs (from 1.0 and from 1.1).
 * The Makefile builds sql/pg_kms--1.1--1.2.sql from this file followed by
 * the install checks (src/sql/060_install_checks.sql), which every update
 * runs again.  Released scripts (sql/pg_kms--1.0.sql, sql/pg_kms--1.1.sql,
 * sql/pg_kms--1.0--1.1.sql) are kept as they shipped.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.2'" to load this file. \quit

-- custody/principals: principal columns become oid + <column>_name (issue 11,
-- findings 3 and 4; src/sql/057_principals.sql).  The views that show owners
-- depend on the columns: dropped and made again as in a fresh install.  A
-- principal whose role was dropped under 1.1 (a dangling oid) keeps its old
-- oid as its name, unresolved (kms_unresolved_principals()).
DROP VIEW kms.keys;
DROP VIEW kms.secrets;
ALTER TABLE kms.key
	ALTER COLUMN owner TYPE oid USING owner::oid,
	ALTER COLUMN owner DROP NOT NULL;
ALTER TABLE kms.grants
	ALTER COLUMN grantee TYPE oid USING grantee::oid,
	ALTER COLUMN grantee DROP NOT NULL,
	ALTER COLUMN retiring_principal TYPE oid USING retiring_principal::oid,
	ALTER COLUMN issuing_role TYPE oid USING issuing_role::oid,
	ALTER COLUMN issuing_role DROP NOT NULL;
ALTER TABLE kms.secret
	ALTER COLUMN owner TYPE oid USING owner::oid,
	ALTER COLUMN owner DROP NOT NULL,
	ALTER COLUMN rotation_role TYPE oid USING rotation_role::oid,
	ALTER COLUMN rotation_clone TYPE oid USING rotation_clone::oid;
ALTER TABLE kms.secret_grant
	ALTER COLUMN grantee TYPE oid USING grantee::oid,
	ALTER COLUMN grantee DROP NOT NULL,
	ALTER COLUMN issuing_role TYPE oid USING issuing_role::oid,
	ALTER COLUMN issuing_role DROP NOT NULL;

ALTER TABLE kms.key ADD COLUMN owner_name text;
ALTER TABLE kms.grants
	ADD COLUMN grantee_name text,
	ADD COLUMN retiring_principal_name text,
	ADD COLUMN issuing_role_name text;
ALTER TABLE kms.secret
	ADD COLUMN owner_name text,
	ADD COLUMN rotation_role_name text;
ALTER TABLE kms.secret_grant
	ADD COLUMN grantee_name text,
	ADD COLUMN issuing_role_name text;

CREATE FUNCTION kms.principal_name_1_2(r oid) RETURNS text LANGUAGE sql STABLE
	AS $$ SELECT coalesce((SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = r), r::text) $$;
CREATE FUNCTION kms.principal_oid_1_2(r oid) RETURNS oid LANGUAGE sql STABLE
	AS $$ SELECT oid FROM pg_catalog.pg_roles WHERE oid = r $$;
UPDATE kms.key SET owner_name = kms.principal_name_1_2(owner), owner = kms.principal_oid_1_2(owner);
UPDATE kms.grants SET grantee_name = kms.principal_name_1_2(grantee), grantee = kms.principal_oid_1_2(grantee),
	retiring_principal_name = kms.principal_name_1_2(retiring_principal),
	retiring_principal = kms.principal_oid_1_2(retiring_principal),
	issuing_role_name = kms.principal_name_1_2(issuing_role), issuing_role = kms.principal_oid_1_2(issuing_role);
UPDATE kms.secret SET owner_name = kms.principal_name_1_2(owner), owner = kms.principal_oid_1_2(owner),
	rotation_role_name = kms.principal_name_1_2(rotation_role),
	rotation_role = kms.principal_oid_1_2(rotation_role),
	rotation_clone = kms.principal_oid_1_2(rotation_clone);
UPDATE kms.secret_grant SET grantee_name = kms.principal_name_1_2(grantee), grantee = kms.principal_oid_1_2(grantee),
	issuing_role_name = kms.principal_name_1_2(issuing_role), issuing_role = kms.principal_oid_1_2(issuing_role);
DROP FUNCTION kms.principal_name_1_2(oid);
DROP FUNCTION kms.principal_oid_1_2(oid);
ALTER TABLE kms.key ALTER COLUMN owner_name SET NOT NULL;
ALTER TABLE kms.grants
	ALTER COLUMN grantee_name SET NOT NULL,
	ALTER COLUMN issuing_role_name SET NOT NULL;
ALTER TABLE kms.secret ALTER COLUMN owner_name SET NOT NULL;
ALTER TABLE kms.secret_grant
	ALTER COLUMN grantee_name SET NOT NULL,
	ALTER COLUMN issuing_role_name SET NOT NULL;

CREATE VIEW kms.keys WITH (security_barrier) AS
	SELECT k.key_id, k.description, k.key_usage, k.key_spec, k.key_state,
		   k.creation_date, k.deletion_date, k.rotation_enabled,
		   k.current_version, k.owner::pg_catalog.regrole AS owner
	  FROM kms.key k
	 WHERE @extschema@.kms_key_visible(k.key_id);
GRANT SELECT ON kms.keys TO PUBLIC;
CREATE VIEW kms.secrets WITH (security_barrier) AS
	SELECT s.name, s.arn, s.description, s.owner::pg_catalog.regrole AS owner, s.created_date,
		   s.last_changed_date, s.deleted_date, s.deletion_date,
		   s.rotation_enabled
	  FROM kms.secret s
	 WHERE @extschema@.kms_secret_visible(s.secret_id);
GRANT SELECT ON kms.secrets TO PUBLIC;

CREATE FUNCTION kms.principals_sync()
RETURNS trigger AS 'MODULE_PATHNAME', 'kms_principals_sync' LANGUAGE C;
REVOKE ALL ON FUNCTION kms.principals_sync() FROM PUBLIC;
COMMENT ON FUNCTION kms.principals_sync() IS 'Trigger: keeps each principal''s oid and name in step (a restore resolves names to this cluster''s roles)';

CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.key
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('owner');
CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.grants
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('grantee', 'retiring_principal', 'issuing_role');
CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.secret
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('owner', 'rotation_role', '-rotation_clone');
CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.secret_grant
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('grantee', 'issuing_role');

CREATE FUNCTION kms_unresolved_principals(OUT object_type text, OUT object_id text,
										  OUT role_column text, OUT role_name text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_unresolved_principals' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_unresolved_principals() IS 'kms_admin: owners, grantees and other principals that name no role of this cluster (restored without it, or dropped from another database); they match nobody until resolved';

CREATE FUNCTION kms_resolve_principals()
RETURNS bigint AS 'MODULE_PATHNAME', 'kms_resolve_principals' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_resolve_principals() IS 'kms_admin: give unresolved principals the role of their name, refresh the names of renamed roles, forget dropped ones; returns the principals changed';

CREATE FUNCTION kms_reassign_owned(old_role text, new_role text)
RETURNS bigint AS 'MODULE_PATHNAME', 'kms_reassign_owned' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_reassign_owned(text, text) IS 'REASSIGN OWNED for pg_kms: the keys and secrets of old_role (a role, or an unresolved principal of that name), the grants it issued and the rotations it configured pass to new_role; superuser, or kms_admin with the privileges of both roles';

CREATE FUNCTION kms_drop_owned(role text)
RETURNS bigint AS 'MODULE_PATHNAME', 'kms_drop_owned' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_drop_owned(text) IS 'DROP OWNED for pg_kms: delete the key and secret grants to role (keys and secrets stay); kms_admin';
-- custody/guard: kms.account (the account id kept with the data; 1.1 derived it from the
-- system identifier, which is what is stored here, so ARNs do not change on update), the
-- custody guard trigger function and its triggers (src/sql/058_custody.sql).
CREATE TABLE kms.account (
	id				int PRIMARY KEY CHECK (id = 1),
	account_id		text NOT NULL CHECK (account_id ~ '^[0-9]{12}$'),
	created			timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON kms.account FROM PUBLIC;
INSERT INTO kms.account (id, account_id)
	SELECT 1, pg_catalog.lpad(((s.system_identifier::numeric
								+ CASE WHEN s.system_identifier < 0 THEN 18446744073709551616 ELSE 0 END)
							   % 1000000000000)::text, 12, '0')
	  FROM pg_catalog.pg_control_system() s;
SELECT pg_catalog.pg_extension_config_dump('kms.account', '');

/*
 * Custody guards, one trigger function (C): DELETE of keys, key versions
 * and secrets is refused while any key is not yet destroyed (DROP and
 * TRUNCATE are refused by the utility hook); an insert that is not pg_kms's
 * own -- a restore -- is refused when this database already uses pg_kms;
 * the dump's account id replaces the generated one.
 */
CREATE FUNCTION kms.guard_trigger() RETURNS trigger
AS 'MODULE_PATHNAME', 'kms_guard_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION kms.guard_trigger() FROM PUBLIC;

CREATE TRIGGER guard_delete BEFORE DELETE ON kms.key
	FOR EACH ROW EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_delete BEFORE DELETE ON kms.key_version
	FOR EACH ROW EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_delete BEFORE DELETE ON kms.secret
	FOR EACH ROW EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_delete BEFORE DELETE ON kms.secret_version
	FOR EACH ROW EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_delete BEFORE DELETE ON kms.secret_stage
	FOR EACH ROW EXECUTE FUNCTION kms.guard_trigger();

CREATE TRIGGER guard_restore BEFORE INSERT ON kms.account
	FOR EACH ROW EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_changed AFTER INSERT OR UPDATE OR DELETE ON kms.account
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.master
	FOR EACH ROW EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.key
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.key_version
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.alias
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.grants
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.secret
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.secret_version
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.secret_stage
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.secret_grant
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();

-- Without shared_preload_libraries there is no utility hook (and every call
-- of pg_kms fails): the drops are refused by this event trigger then, and
-- TRUNCATE by the triggers below; with it, both pass to the utility hook.
CREATE FUNCTION kms.guard_event_trigger() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'kms_guard_event_trigger' LANGUAGE C;
REVOKE ALL ON FUNCTION kms.guard_event_trigger() FROM PUBLIC;
CREATE EVENT TRIGGER pg_kms_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP TABLE', 'DROP OWNED', 'DROP TRIGGER', 'ALTER TABLE')
	EXECUTE FUNCTION kms.guard_event_trigger();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON kms.key
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON kms.key_version
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON kms.secret
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON kms.secret_version
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON kms.secret_stage
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();
-- worker/audit: every database is served (issue 12), the audit trail is dumped (issue 11, finding 9)
SELECT pg_catalog.pg_extension_config_dump('kms.audit_log', '');
COMMENT ON FUNCTION kms_worker_status() IS 'State of the pg_kms background workers of the current database, one row each';
CREATE FUNCTION kms_worker_status_all(OUT database text, OUT worker text, OUT state text,
									  OUT pid int, OUT started timestamptz,
									  OUT last_wake timestamptz, OUT next_wake timestamptz,
									  OUT last_error text, OUT next_due timestamptz,
									  OUT job text, OUT job_started timestamptz,
									  OUT restarts bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status_all' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_worker_status_all() IS 'State of the pg_kms launcher and of the workers of every database (superusers only)';
REVOKE ALL ON FUNCTION kms_worker_status_all() FROM PUBLIC;

-- custody/guard: the audit trail is dumped (above), so a restore into a
-- database with its own trail is refused like the other tables
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();

-- remote secrets: links to AWS Secrets Manager secrets (issue 14; src/sql/075_remote_secrets.sql)
CREATE TABLE kms.remote_secret (
	secret_id		uuid PRIMARY KEY REFERENCES kms.secret ON DELETE CASCADE,
	remote_arn		text NOT NULL UNIQUE
					CHECK (remote_arn ~ '^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+-[A-Za-z0-9]{6}$'),
	created_date	timestamptz NOT NULL
);
REVOKE ALL ON kms.remote_secret FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('kms.remote_secret', '');
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.remote_secret
	FOR EACH STATEMENT EXECUTE FUNCTION kms.guard_trigger();

CREATE FUNCTION kms_link_remote_secret(secret_arn text, name text DEFAULT NULL,
									   description text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'kms_link_remote_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_link_remote_secret(text, text, text) IS 'Link an AWS Secrets Manager secret (superusers): returns {"ARN","Name","RemoteARN"}; grant GetSecretValue on the link to let a role read it';

CREATE FUNCTION kms_remote_secrets(OUT name text, OUT arn text, OUT remote_arn text,
								   OUT created_date timestamptz, OUT deleted boolean)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_remote_secrets' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_remote_secrets() IS 'The links to remote secrets the caller may see';

CREATE FUNCTION kms_refresh_remote_secret(secret_id text)
RETURNS integer AS 'MODULE_PATHNAME', 'kms_refresh_remote_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_refresh_remote_secret(text) IS 'Fetch a remote secret''s cached versions from AWS now; returns how many';

CREATE FUNCTION kms_remote_secret_cache(OUT secret_arn text, OUT version_id text,
										OUT version_stage text, OUT fetched_at timestamptz,
										OUT expires_at timestamptz, OUT failures integer,
										OUT last_error text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_remote_secret_cache' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_remote_secret_cache() IS 'What the shared remote secret cache holds (never a value); superusers and kms_admin';
