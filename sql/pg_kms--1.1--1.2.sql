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

-- fidelity kms: issue 15 items 5, 6, 8 (AWS fidelity of the KMS API): paging
-- (limit, marker, next_marker) on the list operations, ListGrants filters and
-- columns, kms_list_retirable_grants, grant constraints, encryption_algorithm
-- and dry_run; the old signatures are dropped (new parameters have defaults,
-- so old calls keep working)
DROP FUNCTION kms_list_keys();
DROP FUNCTION kms_list_resource_tags(text);
DROP FUNCTION kms_list_key_rotations(text, text);
DROP FUNCTION kms_list_aliases(text);
DROP FUNCTION kms_create_grant(text, text, text[], text, text);
DROP FUNCTION kms_revoke_grant(text, text);
DROP FUNCTION kms_retire_grant(text, text, text);
DROP FUNCTION kms_list_grants(text);
DROP FUNCTION kms_encrypt(text, bytea, jsonb);
DROP FUNCTION kms_encrypt(text, text, jsonb);
DROP FUNCTION kms_decrypt(bytea, jsonb, text);
DROP FUNCTION kms_decrypt_text(bytea, jsonb, text);
DROP FUNCTION kms_re_encrypt(bytea, text, jsonb, jsonb, text);
DROP FUNCTION kms_generate_data_key(text, text, int, jsonb);
DROP FUNCTION kms_generate_data_key_without_plaintext(text, text, int, jsonb);
DROP FUNCTION kms_generate_mac(text, bytea, text);
DROP FUNCTION kms_verify_mac(text, bytea, bytea, text);
CREATE FUNCTION kms_list_keys("limit" int DEFAULT NULL, marker text DEFAULT NULL,
							  OUT key_id text, OUT key_arn text, OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_keys' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_list_keys(int, text) IS 'ListKeys: the keys the current role may see; limit 1..1000 and marker page them';
CREATE FUNCTION kms_list_resource_tags(key_id text, "limit" int DEFAULT NULL, marker text DEFAULT NULL,
									   OUT tag_key text, OUT tag_value text, OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_resource_tags' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_list_resource_tags(text, int, text) IS 'ListResourceTags: limit 1..50 and marker page the tags';
CREATE FUNCTION kms_list_key_rotations(key_id text,
									   include_key_material text DEFAULT 'ROTATIONS_ONLY',
									   "limit" int DEFAULT NULL, marker text DEFAULT NULL,
									   OUT key_id text, OUT key_material_id text,
									   OUT key_material_state text,
									   OUT rotation_date timestamptz,
									   OUT rotation_type text, OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_key_rotations' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_list_key_rotations(text, text, int, text) IS 'ListKeyRotations: limit 1..1000 and marker page the rotations';
CREATE FUNCTION kms_list_aliases(key_id text DEFAULT NULL,
								 "limit" int DEFAULT NULL, marker text DEFAULT NULL,
								 OUT alias_name text, OUT alias_arn text,
								 OUT target_key_id text,
								 OUT creation_date timestamptz,
								 OUT last_updated_date timestamptz,
								 OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_aliases' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_list_aliases(text, int, text) IS 'ListAliases: limit 1..100 and marker page the aliases';
CREATE FUNCTION kms_create_grant(key_id text, grantee_principal text,
								 operations text[], name text DEFAULT NULL,
								 retiring_principal text DEFAULT NULL,
								 constraints jsonb DEFAULT NULL,
								 dry_run boolean DEFAULT false,
								 OUT grant_token text, OUT grant_id text)
RETURNS record AS 'MODULE_PATHNAME', 'kms_create_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_revoke_grant(key_id text, grant_id text, dry_run boolean DEFAULT false)
RETURNS void AS 'MODULE_PATHNAME', 'kms_revoke_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_retire_grant(grant_token text DEFAULT NULL, key_id text DEFAULT NULL,
								 grant_id text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS void AS 'MODULE_PATHNAME', 'kms_retire_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_list_grants(key_id text, grant_id text DEFAULT NULL,
								grantee_principal text DEFAULT NULL,
								"limit" int DEFAULT NULL, marker text DEFAULT NULL,
								OUT key_id text, OUT grant_id text, OUT name text,
								OUT grantee_principal text,
								OUT retiring_principal text,
								OUT issuing_account text,
								OUT operations text[],
								OUT creation_date timestamptz,
								OUT constraints jsonb,
								OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_grants' LANGUAGE C STABLE;
CREATE FUNCTION kms_list_retirable_grants(retiring_principal text DEFAULT NULL,
								"limit" int DEFAULT NULL, marker text DEFAULT NULL,
								OUT key_id text, OUT grant_id text, OUT name text,
								OUT grantee_principal text,
								OUT retiring_principal text,
								OUT issuing_account text,
								OUT operations text[],
								OUT creation_date timestamptz,
								OUT constraints jsonb,
								OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_retirable_grants' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_create_grant(text, text, text[], text, text, jsonb, boolean) IS 'CreateGrant: allow a role the listed operations on a key, optionally only with an encryption context (constraints)';
COMMENT ON FUNCTION kms_revoke_grant(text, text, boolean) IS 'RevokeGrant';
COMMENT ON FUNCTION kms_retire_grant(text, text, text, boolean) IS 'RetireGrant';
COMMENT ON FUNCTION kms_list_grants(text, text, text, int, text) IS 'ListGrants: limit 1..100 and marker page the grants';
COMMENT ON FUNCTION kms_list_retirable_grants(text, int, text) IS 'ListRetirableGrants: the grants a role (default: the current one) may retire';
CREATE FUNCTION kms_encrypt(key_id text, plaintext bytea, encryption_context jsonb DEFAULT NULL,
							encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION kms_encrypt(key_id text, plaintext text, encryption_context jsonb DEFAULT NULL,
							encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_encrypt(text, bytea, jsonb, text, boolean) IS 'Encrypt: AES-256-GCM envelope under the key; returns the ciphertext blob';
COMMENT ON FUNCTION kms_encrypt(text, text, jsonb, text, boolean) IS 'Encrypt a text value (its bytes in the database encoding)';
CREATE FUNCTION kms_decrypt(ciphertext_blob bytea, encryption_context jsonb DEFAULT NULL, key_id text DEFAULT NULL,
							encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_decrypt' LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION kms_decrypt_text(ciphertext_blob bytea, encryption_context jsonb DEFAULT NULL, key_id text DEFAULT NULL,
								 encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS text AS 'MODULE_PATHNAME', 'kms_decrypt_text' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_decrypt(bytea, jsonb, text, text, boolean) IS 'Decrypt: the plaintext of a ciphertext blob';
COMMENT ON FUNCTION kms_decrypt_text(bytea, jsonb, text, text, boolean) IS 'Decrypt to text (validated in the database encoding)';
CREATE FUNCTION kms_re_encrypt(ciphertext_blob bytea, destination_key_id text,
							   source_encryption_context jsonb DEFAULT NULL,
							   destination_encryption_context jsonb DEFAULT NULL,
							   source_key_id text DEFAULT NULL,
							   source_encryption_algorithm text DEFAULT NULL,
							   destination_encryption_algorithm text DEFAULT NULL,
							   dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_re_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_re_encrypt(bytea, text, jsonb, jsonb, text, text, text, boolean) IS 'ReEncrypt: decrypt and encrypt again without exposing the plaintext';
CREATE FUNCTION kms_generate_data_key(key_id text, key_spec text DEFAULT NULL,
									  number_of_bytes int DEFAULT NULL,
									  encryption_context jsonb DEFAULT NULL,
									  dry_run boolean DEFAULT false,
									  OUT plaintext bytea, OUT ciphertext_blob bytea,
									  OUT key_id text)
RETURNS record AS 'MODULE_PATHNAME', 'kms_generate_data_key' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION kms_generate_data_key_without_plaintext(key_id text, key_spec text DEFAULT NULL,
									  number_of_bytes int DEFAULT NULL,
									  encryption_context jsonb DEFAULT NULL,
									  dry_run boolean DEFAULT false,
									  OUT ciphertext_blob bytea, OUT key_id text)
RETURNS record AS 'MODULE_PATHNAME', 'kms_generate_data_key_without_plaintext' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_generate_data_key(text, text, int, jsonb, boolean) IS 'GenerateDataKey: key_spec AES_256 or AES_128, or number_of_bytes 1..1024';
COMMENT ON FUNCTION kms_generate_data_key_without_plaintext(text, text, int, jsonb, boolean) IS 'GenerateDataKeyWithoutPlaintext';
CREATE FUNCTION kms_generate_mac(key_id text, message bytea, mac_algorithm text DEFAULT 'HMAC_SHA_256',
								 dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_generate_mac' LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION kms_verify_mac(key_id text, message bytea, mac bytea, mac_algorithm text DEFAULT 'HMAC_SHA_256',
							   dry_run boolean DEFAULT false)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_verify_mac' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_generate_mac(text, bytea, text, boolean) IS 'GenerateMac: HMAC with an HMAC key';
COMMENT ON FUNCTION kms_verify_mac(text, bytea, bytea, text, boolean) IS 'VerifyMac: true, or KMSInvalidMacException';
COMMENT ON FUNCTION kms_rotate_key_on_demand(text) IS 'RotateKeyOnDemand: at most 25 per key; returns the key id';

-- fidelity secrets: AWS Secrets Manager fidelity (issue 15; src/sql/030_secrets.sql,
-- src/sql/059_secrets_fidelity.sql).  Staging labels are listed in the order
-- they were attached (labels of an updated database keep name order: they
-- all get -infinity); the secret's Type and whether it was ever tagged; new
-- request members: create_secret/update_secret(type), put_secret_value
-- (rotation_token), list_secrets(sort_by, max_results, next_token) and
-- list_secret_version_ids(max_results, next_token), whose rows carry
-- next_page_token.
ALTER TABLE kms.secret_stage ADD COLUMN attached timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE kms.secret_stage ALTER COLUMN attached SET DEFAULT pg_catalog.clock_timestamp();
ALTER TABLE kms.secret
	ADD COLUMN secret_type text CHECK (length(secret_type) <= 256),
	ADD COLUMN tagged boolean NOT NULL DEFAULT false;
UPDATE kms.secret SET tagged = true WHERE tags <> '{}';
DROP FUNCTION create_secret(text, text, bytea, text, text, jsonb, text);
DROP FUNCTION put_secret_value(text, text, bytea, text[], text);
DROP FUNCTION update_secret(text, text, bytea, text, text, text);
DROP FUNCTION list_secrets(jsonb, boolean, text);
DROP FUNCTION list_secret_version_ids(text, boolean);
CREATE FUNCTION create_secret(name text,
							  secret_string text DEFAULT NULL,
							  secret_binary bytea DEFAULT NULL,
							  description text DEFAULT NULL,
							  kms_key_id text DEFAULT NULL,
							  tags jsonb DEFAULT NULL,
							  client_request_token text DEFAULT NULL,
							  type text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'create_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION create_secret(text, text, bytea, text, text, jsonb, text, text) IS 'CreateSecret: returns {"ARN","Name","VersionId"}';

CREATE FUNCTION put_secret_value(secret_id text,
								 secret_string text DEFAULT NULL,
								 secret_binary bytea DEFAULT NULL,
								 version_stages text[] DEFAULT NULL,
								 client_request_token text DEFAULT NULL,
								 rotation_token text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'put_secret_value' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION put_secret_value(text, text, bytea, text[], text, text) IS 'PutSecretValue: returns {"ARN","Name","VersionId","VersionStages"}';

CREATE FUNCTION update_secret(secret_id text,
							  secret_string text DEFAULT NULL,
							  secret_binary bytea DEFAULT NULL,
							  description text DEFAULT NULL,
							  kms_key_id text DEFAULT NULL,
							  client_request_token text DEFAULT NULL,
							  type text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'update_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION update_secret(text, text, bytea, text, text, text, text) IS 'UpdateSecret: returns {"ARN","Name"[,"VersionId"]}';

CREATE FUNCTION list_secrets(filters jsonb DEFAULT NULL,
							 include_planned_deletion boolean DEFAULT false,
							 sort_order text DEFAULT 'asc',
							 sort_by text DEFAULT 'created-date',
							 max_results int DEFAULT NULL,
							 next_token text DEFAULT NULL,
							 OUT arn text, OUT name text, OUT description text,
							 OUT kms_key_id text, OUT rotation_enabled boolean,
							 OUT created_date timestamptz,
							 OUT last_changed_date timestamptz,
							 OUT last_rotated_date timestamptz,
							 OUT next_rotation_date timestamptz,
							 OUT deleted_date timestamptz,
							 OUT tags jsonb,
							 OUT secret_versions_to_stages jsonb,
							 OUT next_page_token text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'list_secrets' LANGUAGE C STABLE;
COMMENT ON FUNCTION list_secrets(jsonb, boolean, text, text, int, text) IS 'ListSecrets: filters [{"Key":"name|description|tag-key|tag-value|all","Values":[..]}]; with max_results, the last row of a page carries the NextToken (next_page_token)';

CREATE FUNCTION list_secret_version_ids(secret_id text,
										include_deprecated boolean DEFAULT false,
										max_results int DEFAULT NULL,
										next_token text DEFAULT NULL,
										OUT version_id text,
										OUT version_stages text[],
										OUT created_date timestamptz,
										OUT next_page_token text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'list_secret_version_ids' LANGUAGE C STABLE;
COMMENT ON FUNCTION list_secret_version_ids(text, boolean, int, text) IS 'ListSecretVersionIds: newest first; with max_results, the last row of a page carries the NextToken (next_page_token)';

-- tce: transparent column encryption (issue 13; src/sql/070_tce.sql, the same objects)
-- The typmod map.  Written by src/tce/columnkey.c only; dumped, so that a
-- restore keeps each reference's key (see kms.column_key_restore below).
CREATE TABLE kms.column_key (
	typmod			integer PRIMARY KEY CHECK (typmod >= 0),
	key_ref			text NOT NULL,
	deterministic	boolean NOT NULL,
	key_id			uuid,			-- resolved when first declared; NULL until the key exists
	det_version		integer,		-- deterministic: the key version values are sealed with
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	UNIQUE (key_ref, deterministic)
);
SELECT pg_catalog.pg_extension_config_dump('kms.column_key', '');

/*
 * A restore creates the tables (their typmods: rows made with key_id NULL
 * when the keys are not restored yet) before it loads this table's dumped
 * rows: a dumped row for a reference already here fills in what is missing
 * and is not inserted again.
 */
CREATE FUNCTION kms.column_key_restore() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	cur kms.column_key;
BEGIN
	SELECT * INTO cur FROM kms.column_key c
	 WHERE c.key_ref = NEW.key_ref AND c.deterministic = NEW.deterministic;
	IF NOT FOUND THEN
		IF EXISTS (SELECT 1 FROM kms.column_key c WHERE c.typmod = NEW.typmod) THEN
			-- the number is taken by another reference: probe as typmod_in does
			LOOP
				NEW.typmod := (NEW.typmod + 1) & 1073741823;
				EXIT WHEN NOT EXISTS (SELECT 1 FROM kms.column_key c WHERE c.typmod = NEW.typmod);
			END LOOP;
		END IF;
		RETURN NEW;
	END IF;
	IF cur.key_id IS NULL AND NEW.key_id IS NOT NULL THEN
		UPDATE kms.column_key c SET key_id = NEW.key_id,
			   det_version = coalesce(c.det_version, NEW.det_version)
		 WHERE c.typmod = cur.typmod;
	ELSIF cur.det_version IS NULL AND NEW.det_version IS NOT NULL
		  AND cur.key_id IS NOT DISTINCT FROM NEW.key_id THEN
		UPDATE kms.column_key c SET det_version = NEW.det_version WHERE c.typmod = cur.typmod;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER column_key_restore BEFORE INSERT ON kms.column_key
	FOR EACH ROW EXECUTE FUNCTION kms.column_key_restore();

-- Types ----------------------------------------------------------------

CREATE TYPE encrypted_text;
CREATE TYPE encrypted_bytea;

CREATE FUNCTION encrypted_text_in(cstring, oid, integer) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_in' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_text_out(encrypted_text) RETURNS cstring
	AS 'MODULE_PATHNAME', 'encrypted_text_out' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_text_recv(internal, oid, integer) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_recv' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_text_send(encrypted_text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'encrypted_text_send' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_bytea_in(cstring, oid, integer) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_in' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_bytea_out(encrypted_bytea) RETURNS cstring
	AS 'MODULE_PATHNAME', 'encrypted_bytea_out' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_bytea_recv(internal, oid, integer) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_recv' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_bytea_send(encrypted_bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_send' LANGUAGE C STABLE STRICT;
-- STABLE for CREATE TYPE, though a new reference adds a row to kms.column_key
CREATE FUNCTION encrypted_column_typmod_in(cstring[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_column_typmod_in' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_column_typmod_out(integer) RETURNS cstring
	AS 'MODULE_PATHNAME', 'encrypted_column_typmod_out' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_column_typanalyze(internal) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_column_typanalyze' LANGUAGE C STRICT;

CREATE TYPE encrypted_text (
	INPUT = encrypted_text_in, OUTPUT = encrypted_text_out,
	RECEIVE = encrypted_text_recv, SEND = encrypted_text_send,
	TYPMOD_IN = encrypted_column_typmod_in, TYPMOD_OUT = encrypted_column_typmod_out,
	ANALYZE = encrypted_column_typanalyze,
	INTERNALLENGTH = VARIABLE, STORAGE = extended, CATEGORY = 'U');
CREATE TYPE encrypted_bytea (
	INPUT = encrypted_bytea_in, OUTPUT = encrypted_bytea_out,
	RECEIVE = encrypted_bytea_recv, SEND = encrypted_bytea_send,
	TYPMOD_IN = encrypted_column_typmod_in, TYPMOD_OUT = encrypted_column_typmod_out,
	ANALYZE = encrypted_column_typanalyze,
	INTERNALLENGTH = VARIABLE, STORAGE = extended, CATEGORY = 'U');
COMMENT ON TYPE encrypted_text IS 'text encrypted under the key its type modifier names: encrypted_text(''<key>'' [, ''deterministic''])';
COMMENT ON TYPE encrypted_bytea IS 'bytea encrypted under the key its type modifier names: encrypted_bytea(''<key>'' [, ''deterministic''])';

-- Casts ----------------------------------------------------------------

-- The length coercion: seals a value for the column's key (every write).
CREATE FUNCTION encrypted_text(encrypted_text, integer, boolean) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_coerce' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea(encrypted_bytea, integer, boolean) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_coerce' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE CAST (encrypted_text AS encrypted_text)
	WITH FUNCTION encrypted_text(encrypted_text, integer, boolean) AS IMPLICIT;
CREATE CAST (encrypted_bytea AS encrypted_bytea)
	WITH FUNCTION encrypted_bytea(encrypted_bytea, integer, boolean) AS IMPLICIT;

-- Plaintext in: assignment (INSERT ... SELECT text, UPDATE SET = text).
CREATE FUNCTION encrypted_text(text, integer, boolean) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_from_text' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea(bytea, integer, boolean) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_from_bytea' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE CAST (text AS encrypted_text)
	WITH FUNCTION encrypted_text(text, integer, boolean) AS ASSIGNMENT;
CREATE CAST (varchar AS encrypted_text)
	WITH FUNCTION encrypted_text(text, integer, boolean) AS ASSIGNMENT;
CREATE CAST (bytea AS encrypted_bytea)
	WITH FUNCTION encrypted_bytea(bytea, integer, boolean) AS ASSIGNMENT;

-- Plaintext out: explicit only (else PostgreSQL's automatic I/O cast to
-- string types would decrypt into text columns on assignment).
CREATE FUNCTION encrypted_text_to_text(encrypted_text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_text_to_text' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_to_bytea(encrypted_bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_to_bytea' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE CAST (encrypted_text AS text)
	WITH FUNCTION encrypted_text_to_text(encrypted_text);
CREATE CAST (encrypted_text AS varchar)
	WITH FUNCTION encrypted_text_to_text(encrypted_text);
CREATE CAST (encrypted_text AS bpchar)
	WITH FUNCTION encrypted_text_to_text(encrypted_text);
CREATE CAST (encrypted_bytea AS bytea)
	WITH FUNCTION encrypted_bytea_to_bytea(encrypted_bytea);
CREATE CAST (encrypted_bytea AS text) WITH INOUT;
CREATE CAST (encrypted_bytea AS varchar) WITH INOUT;
CREATE CAST (encrypted_bytea AS bpchar) WITH INOUT;

-- No || through the output function (types.c, encrypted_column_concat).
CREATE FUNCTION encrypted_column_concat(encrypted_text, text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE;
CREATE FUNCTION encrypted_column_concat(text, encrypted_text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE;
CREATE FUNCTION encrypted_column_concat(encrypted_bytea, text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE;
CREATE FUNCTION encrypted_column_concat(text, encrypted_bytea) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE;
CREATE OPERATOR || (LEFTARG = encrypted_text, RIGHTARG = text, FUNCTION = encrypted_column_concat);
CREATE OPERATOR || (LEFTARG = text, RIGHTARG = encrypted_text, FUNCTION = encrypted_column_concat);
CREATE OPERATOR || (LEFTARG = encrypted_bytea, RIGHTARG = text, FUNCTION = encrypted_column_concat);
CREATE OPERATOR || (LEFTARG = text, RIGHTARG = encrypted_bytea, FUNCTION = encrypted_column_concat);

-- Deterministic equality and btree order, on ciphertext -----------------

CREATE FUNCTION encrypted_text_eq(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_eq' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_ne(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_ne' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_lt(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_lt' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_le(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_le' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_gt(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_gt' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_ge(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_ge' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_cmp(encrypted_text, encrypted_text) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_text_cmp' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_eq(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_eq' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_ne(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_ne' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_lt(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_lt' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_le(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_le' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_gt(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_gt' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_ge(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_ge' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_bytea_cmp(encrypted_bytea, encrypted_bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_bytea_cmp' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;

CREATE OPERATOR = (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_eq, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_ne, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR ~<~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_lt, COMMUTATOR = ~>~, NEGATOR = ~>=~);
CREATE OPERATOR ~<=~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_le, COMMUTATOR = ~>=~, NEGATOR = ~>~);
CREATE OPERATOR ~>~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_gt, COMMUTATOR = ~<~, NEGATOR = ~<=~);
CREATE OPERATOR ~>=~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_ge, COMMUTATOR = ~<=~, NEGATOR = ~<~);
CREATE OPERATOR = (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_eq, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_ne, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR ~<~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_lt, COMMUTATOR = ~>~, NEGATOR = ~>=~);
CREATE OPERATOR ~<=~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_le, COMMUTATOR = ~>=~, NEGATOR = ~>~);
CREATE OPERATOR ~>~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_gt, COMMUTATOR = ~<~, NEGATOR = ~<=~);
CREATE OPERATOR ~>=~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_ge, COMMUTATOR = ~<=~, NEGATOR = ~<~);

-- No hash opclass: a pending operand cannot be hashed like the ciphertext
-- it equals, and '=' is neither HASHES nor MERGES (compare.c).
CREATE OPERATOR CLASS encrypted_text_ops DEFAULT FOR TYPE encrypted_text USING btree AS
	OPERATOR 1 ~<~, OPERATOR 2 ~<=~, OPERATOR 3 =, OPERATOR 4 ~>=~, OPERATOR 5 ~>~,
	FUNCTION 1 encrypted_text_cmp(encrypted_text, encrypted_text);
CREATE OPERATOR CLASS encrypted_bytea_ops DEFAULT FOR TYPE encrypted_bytea USING btree AS
	OPERATOR 1 ~<~, OPERATOR 2 ~<=~, OPERATOR 3 =, OPERATOR 4 ~>=~, OPERATOR 5 ~>~,
	FUNCTION 1 encrypted_bytea_cmp(encrypted_bytea, encrypted_bytea);

-- encrypted_text = text: the text is plaintext to seal (drivers that type
-- their parameters as text); = is in the btree family, so the index serves it.
CREATE FUNCTION encrypted_text_eq_text(encrypted_text, text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_eq_text' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_ne_text(encrypted_text, text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_ne_text' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION text_eq_encrypted_text(text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'text_eq_encrypted_text' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION text_ne_encrypted_text(text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'text_ne_encrypted_text' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION encrypted_text_cmp_text(encrypted_text, text) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_text_cmp_text' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE OPERATOR = (LEFTARG = encrypted_text, RIGHTARG = text,
	FUNCTION = encrypted_text_eq_text, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = encrypted_text, RIGHTARG = text,
	FUNCTION = encrypted_text_ne_text, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR = (LEFTARG = text, RIGHTARG = encrypted_text,
	FUNCTION = text_eq_encrypted_text, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = text, RIGHTARG = encrypted_text,
	FUNCTION = text_ne_encrypted_text, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
ALTER OPERATOR FAMILY encrypted_text_ops USING btree ADD
	OPERATOR 3 = (encrypted_text, text),
	FUNCTION 1 (encrypted_text, text) encrypted_text_cmp_text(encrypted_text, text);

-- Inspection without plaintext --------------------------------------------

CREATE FUNCTION kms_column_value_info(value encrypted_text,
	OUT sealed boolean, OUT key_id uuid, OUT key_version integer, OUT deterministic boolean)
	RETURNS record AS 'MODULE_PATHNAME', 'kms_column_value_info' LANGUAGE C IMMUTABLE STRICT;
CREATE FUNCTION kms_column_value_info(value encrypted_bytea,
	OUT sealed boolean, OUT key_id uuid, OUT key_version integer, OUT deterministic boolean)
	RETURNS record AS 'MODULE_PATHNAME', 'kms_column_value_info' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION kms_column_value_info(encrypted_text) IS 'The key, key version and mode of an encrypted column value, without decrypting it';
COMMENT ON FUNCTION kms_column_value_info(encrypted_bytea) IS 'The key, key version and mode of an encrypted column value, without decrypting it';
CREATE FUNCTION kms_column_ciphertext(value encrypted_text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'kms_column_ciphertext' LANGUAGE C IMMUTABLE STRICT;
CREATE FUNCTION kms_column_ciphertext(value encrypted_bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'kms_column_ciphertext' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION kms_column_ciphertext(encrypted_text) IS 'The stored bytes of an encrypted column value (a randomized one is a ciphertext blob kms_decrypt() opens)';
COMMENT ON FUNCTION kms_column_ciphertext(encrypted_bytea) IS 'The stored bytes of an encrypted column value (a randomized one is a ciphertext blob kms_decrypt() opens)';

-- The DDL guard ----------------------------------------------------------

-- Does type t with modifier tm store encrypted values without a key?
-- (an encrypted type, an array of one, or a domain over one, without typmod)
CREATE FUNCTION kms.column_type_unkeyed(t oid, tm integer) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
	r record;
BEGIN
	LOOP
		SELECT typtype, typelem, typbasetype, typtypmod, typsubscript INTO r
		  FROM pg_type WHERE oid = t;
		IF NOT FOUND THEN
			RETURN false;
		END IF;
		IF r.typtype = 'd' THEN
			IF tm < 0 THEN
				tm := r.typtypmod;
			END IF;
			t := r.typbasetype;
		ELSIF r.typelem <> 0 AND r.typsubscript = 'array_subscript_handler'::regproc THEN
			t := r.typelem;
		ELSE
			EXIT;
		END IF;
	END LOOP;
	RETURN tm < 0 AND t IN ('@extschema@.encrypted_text'::regtype, '@extschema@.encrypted_bytea'::regtype);
END
$$;

CREATE FUNCTION kms.column_ddl_check() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT c.object_identity, a.attname
		  FROM pg_event_trigger_ddl_commands() c
		  JOIN pg_attribute a
			ON a.attrelid = CASE WHEN c.classid = 'pg_class'::regclass THEN c.objid
								 WHEN c.classid = 'pg_type'::regclass
								 THEN (SELECT t.typrelid FROM pg_type t WHERE t.oid = c.objid) END
		 WHERE a.attnum > 0 AND NOT a.attisdropped
		   -- a plain view stores nothing; its writes reach the base table's coercion
		   AND (SELECT rel.relkind FROM pg_class rel WHERE rel.oid = a.attrelid) <> 'v'
		   AND kms.column_type_unkeyed(a.atttypid, a.atttypmod)
	LOOP
		RAISE EXCEPTION 'ValidationException: column "%" of "%" is encrypted without a key', r.attname, r.object_identity
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name the key in the type: encrypted_text(''alias/...'') or encrypted_bytea(''alias/...'').';
	END LOOP;
	FOR r IN
		SELECT c.object_identity
		  FROM pg_event_trigger_ddl_commands() c
		  JOIN pg_type t ON c.classid = 'pg_type'::regclass AND t.oid = c.objid
		 WHERE t.typtype = 'd' AND kms.column_type_unkeyed(t.oid, -1)
	LOOP
		RAISE EXCEPTION 'ValidationException: domain "%" is encrypted without a key', r.object_identity
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name the key in the type: encrypted_text(''alias/...'') or encrypted_bytea(''alias/...'').';
	END LOOP;
END
$$;
CREATE EVENT TRIGGER kms_column_ddl_check ON ddl_command_end
	EXECUTE FUNCTION kms.column_ddl_check();
ALTER EVENT TRIGGER kms_column_ddl_check ENABLE ALWAYS;
-- tce rekey: kms_encrypt_column, kms_reencrypt_column, kms.column_rekey and its progress view (issue 13; the same text as src/sql/072_tce_rekey.sql)

-- ------------------------------------------------------------------
-- tce rekey (issue 13): converting a plaintext column and rekeying an
-- encrypted one online (docs/column-encryption.md, "Converting and
-- rekeying").  kms.column_rekey holds one job per column: where the batches
-- have got to, so that a crash or a cancel resumes there; written only by
-- the C code of src/tce/ (progress.c), read through the progress view.
-- ------------------------------------------------------------------
CREATE TABLE kms.column_rekey (
	relid		oid NOT NULL,			-- the table (pg_class oid)
	attnum		int2 NOT NULL,			-- the column
	table_name	text NOT NULL,			-- as named at the start (the view after a DROP)
	column_name name NOT NULL,
	key_id		text NOT NULL,			-- the column key's id
	key_version int4 NOT NULL,			-- its current version, as of the last batch
	state		text NOT NULL CHECK (state IN ('running', 'done')),
	pass		int4 NOT NULL DEFAULT 1,	-- 1: every block; 2..: the sweeps after it
	next_block	int8 NOT NULL DEFAULT 0,	-- first block of the next batch in this pass
	pass_blocks int8 NOT NULL,			-- blocks of the table at the start of the pass
	batch_blocks int4 NOT NULL,			-- blocks per batch (batch_size / rows per block)
	batch_size	int4 NOT NULL,
	rows_total	int8 NOT NULL,			-- rows of the table at the start
	rows_done	int8 NOT NULL DEFAULT 0,	-- rows examined in this pass
	rows_rekeyed int8 NOT NULL DEFAULT 0,	-- values moved, all passes
	pass_changed int8 NOT NULL DEFAULT 0,	-- values moved or skipped (row locked) in this pass
	run_rows	int8 NOT NULL DEFAULT 0,	-- rows_done when this run (call) started
	run_pass	int4 NOT NULL DEFAULT 1,	-- pass when this run started
	started_by	oid NOT NULL,			-- role of the first call
	pid			int4 NOT NULL,			-- backend of the last call
	started		timestamptz NOT NULL,
	run_started timestamptz NOT NULL,	-- start of the last call (rate, ETA)
	updated		timestamptz NOT NULL,	-- end of the last batch
	finished	timestamptz,
	PRIMARY KEY (relid, attnum)
);
REVOKE ALL ON kms.column_rekey FROM PUBLIC;

CREATE FUNCTION kms.column_value_stale(value encrypted_text, typmod integer)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_column_value_stale' LANGUAGE C STABLE STRICT;
CREATE FUNCTION kms.column_value_stale(value encrypted_bytea, typmod integer)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_column_value_stale' LANGUAGE C STABLE STRICT;
CREATE FUNCTION kms.column_reseal(value encrypted_text, typmod integer)
RETURNS encrypted_text AS 'MODULE_PATHNAME', 'kms_column_reseal_text' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION kms.column_reseal(value encrypted_bytea, typmod integer)
RETURNS encrypted_bytea AS 'MODULE_PATHNAME', 'kms_column_reseal_bytea' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION kms.column_value_stale(encrypted_text, integer) IS 'Internal: is the value not on the current version of the key of the column type modifier typmod names';
COMMENT ON FUNCTION kms.column_value_stale(encrypted_bytea, integer) IS 'Internal: is the value not on the current version of the key of the column type modifier typmod names';
COMMENT ON FUNCTION kms.column_reseal(encrypted_text, integer) IS 'Internal: the value sealed again with the current version of the key typmod names (Decrypt and Encrypt)';
COMMENT ON FUNCTION kms.column_reseal(encrypted_bytea, integer) IS 'Internal: the value sealed again with the current version of the key typmod names (Decrypt and Encrypt)';

CREATE FUNCTION kms.column_rekey_begin(tbl regclass, col name, batch_size integer, key text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_column_rekey_begin' LANGUAGE C VOLATILE;
CREATE FUNCTION kms.column_rekey_batch(tbl regclass, col name)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_column_rekey_batch' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION kms.column_rekey_begin(regclass, name, integer, text) IS 'Internal: start or resume the rekey job of a column (CALL kms_reencrypt_column)';
COMMENT ON FUNCTION kms.column_rekey_batch(regclass, name) IS 'Internal: one batch of the rekey job of a column; false when it is done';

/*
 * A procedure, so that each batch commits on its own: locks are held for one
 * batch only and a crash or cancel loses at most one batch.  CALL it outside
 * a transaction block.  No SET clause (it would forbid the COMMITs): every
 * name is schema-qualified instead.
 */
CREATE PROCEDURE kms_reencrypt_column(tbl regclass, col name, batch_size integer DEFAULT 1000,
									  key text DEFAULT NULL)
LANGUAGE plpgsql AS $pg_kms$
BEGIN
	IF tbl IS NULL OR col IS NULL OR batch_size IS NULL THEN
		RAISE EXCEPTION 'ValidationException: table, column and batch_size must not be null'
			USING ERRCODE = '22023';
	END IF;
	PERFORM kms.column_rekey_begin(tbl, col, batch_size, key);
	COMMIT;
	WHILE kms.column_rekey_batch(tbl, col) LOOP
		COMMIT;
	END LOOP;
	COMMIT;
END
$pg_kms$;
COMMENT ON PROCEDURE kms_reencrypt_column(regclass, name, integer, text) IS 'Move every value of an encrypted column to its key''s current version (with key: first move the column to that key), in batches committed one by one; resumes an interrupted run';

CREATE FUNCTION kms_encrypt_column(tbl regclass, col name, key text, deterministic boolean DEFAULT false)
RETURNS void AS 'MODULE_PATHNAME', 'kms_encrypt_column' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION kms_encrypt_column(regclass, name, text, boolean) IS 'Convert a plaintext text or bytea column to encrypted_text / encrypted_bytea with key (rewrites the table under ACCESS EXCLUSIVE)';

/*
 * Progress, pg_stat_progress style: one row per column rekey job of a table
 * the caller may read.  running: the backend of the last call is still
 * running a statement; interrupted: it is not (crash, cancel, error: CALL
 * kms_reencrypt_column again to resume); done.
 */
CREATE VIEW kms.column_rekey_progress AS
SELECT r.relid::pg_catalog.regclass AS table_name,
	   r.column_name,
	   r.key_id,
	   r.key_version,
	   CASE WHEN r.state OPERATOR(pg_catalog.=) 'done' THEN 'done'
			WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(r.pid) a
						 WHERE a.state OPERATOR(pg_catalog.=) 'active'
						   AND a.backend_start OPERATOR(pg_catalog.<=) r.run_started)
			THEN 'running' ELSE 'interrupted' END AS state,
	   r.pass,
	   r.rows_done,
	   GREATEST(r.rows_total, r.rows_done) AS rows_total,
	   r.rows_rekeyed,
	   CASE WHEN r.state OPERATOR(pg_catalog.=) 'done' THEN 100::numeric
			WHEN r.pass_blocks OPERATOR(pg_catalog.>) 0
			THEN pg_catalog.round(100 OPERATOR(pg_catalog.*) LEAST(r.next_block, r.pass_blocks)::numeric
								  OPERATOR(pg_catalog./) r.pass_blocks, 1)
			ELSE 0::numeric END AS percent_done,
	   CASE WHEN r.updated OPERATOR(pg_catalog.>) r.run_started
				 AND r.pass OPERATOR(pg_catalog.=) r.run_pass
			THEN pg_catalog.round(((r.rows_done OPERATOR(pg_catalog.-) r.run_rows)::numeric
								   OPERATOR(pg_catalog./) EXTRACT(epoch FROM r.updated OPERATOR(pg_catalog.-) r.run_started)), 1)
			END AS rows_per_second,
	   CASE WHEN r.state OPERATOR(pg_catalog.=) 'done' THEN interval '0'
			WHEN r.updated OPERATOR(pg_catalog.>) r.run_started
				 AND r.pass OPERATOR(pg_catalog.=) r.run_pass
				 AND r.rows_done OPERATOR(pg_catalog.>) r.run_rows
			THEN (r.updated OPERATOR(pg_catalog.-) r.run_started)
				 OPERATOR(pg_catalog.*) (GREATEST(r.rows_total OPERATOR(pg_catalog.-) r.rows_done, 0)::float8
										 OPERATOR(pg_catalog./) (r.rows_done OPERATOR(pg_catalog.-) r.run_rows))
			END AS eta,
	   r.batch_size,
	   r.pid,
	   r.started,
	   r.updated,
	   r.finished
  FROM kms.column_rekey r
 WHERE pg_catalog.has_table_privilege(r.relid, 'SELECT')
	OR pg_catalog.pg_has_role(r.started_by, 'MEMBER');
GRANT SELECT ON kms.column_rekey_progress TO PUBLIC;

CREATE FUNCTION kms_column_rekey_progress()
RETURNS SETOF kms.column_rekey_progress
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $pg_kms$ SELECT * FROM kms.column_rekey_progress $pg_kms$;
COMMENT ON FUNCTION kms_column_rekey_progress() IS 'Progress of the column rekey jobs (kms.column_rekey_progress): rows done / total, rate, ETA, state';

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

-- custody: pg_upgrade (kms_pg_upgrade_prepare / _finish; src/sql/058_custody.sql)

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
