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
