/*
 * Key custody (src/catalog/guard.c, docs/operations.md).
 *
 * The account id of ARNs is chosen once, here (twelve digits derived from
 * the system identifier, as pg_kms 1.1 computed it), and kept with the data:
 * kms.account is dumped, so that after a restore into another cluster ARNs
 * are the ones saved before.  pg_kms.account_id, if set, still overrides it.
 */
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
-- the audit trail is dumped too (040_audit.sql): a restore into a database
-- with its own trail would break both hash chains
CREATE TRIGGER guard_restore BEFORE INSERT ON kms.audit_log
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

-- pg_upgrade (docs/operations.md, "Major version upgrades: pg_upgrade").
-- kms.secret.rotation_function pins a custom rotation function by OID
-- (regprocedure), and pg_upgrade refuses reg* columns in user tables
-- (function OIDs are not preserved).  Before pg_upgrade the column takes its
-- text form (the schema-qualified signature); after it, the text is resolved
-- again in the new cluster, as a dump and restore does.  Superusers only.
CREATE FUNCTION kms_pg_upgrade_prepare() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $pg_kms$
BEGIN
	IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		RAISE EXCEPTION 'AccessDeniedException: only a superuser may prepare pg_kms for pg_upgrade'
			USING ERRCODE = '42501';
	END IF;
	IF (SELECT atttypid FROM pg_catalog.pg_attribute
		 WHERE attrelid = 'kms.secret'::pg_catalog.regclass AND attname = 'rotation_function')
	   = 'pg_catalog.regprocedure'::pg_catalog.regtype THEN
		ALTER TABLE kms.secret ALTER COLUMN rotation_function TYPE text
			USING rotation_function::text;
	END IF;
END $pg_kms$;
REVOKE ALL ON FUNCTION kms_pg_upgrade_prepare() FROM PUBLIC;
COMMENT ON FUNCTION kms_pg_upgrade_prepare() IS 'Before pg_upgrade: the custom rotation functions pinned by OID are kept as their qualified signatures (superusers)';

CREATE FUNCTION kms_pg_upgrade_finish() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $pg_kms$
BEGIN
	IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		RAISE EXCEPTION 'AccessDeniedException: only a superuser may finish the pg_upgrade of pg_kms'
			USING ERRCODE = '42501';
	END IF;
	IF (SELECT atttypid FROM pg_catalog.pg_attribute
		 WHERE attrelid = 'kms.secret'::pg_catalog.regclass AND attname = 'rotation_function')
	   = 'pg_catalog.text'::pg_catalog.regtype THEN
		ALTER TABLE kms.secret ALTER COLUMN rotation_function TYPE pg_catalog.regprocedure
			USING rotation_function::pg_catalog.regprocedure;
	END IF;
END $pg_kms$;
REVOKE ALL ON FUNCTION kms_pg_upgrade_finish() FROM PUBLIC;
COMMENT ON FUNCTION kms_pg_upgrade_finish() IS 'After pg_upgrade: the custom rotation functions are pinned again by their qualified signatures (superusers)';
