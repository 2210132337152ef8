/* pg_kms install script (the current version), assembled by the Makefile from the files in src/sql. */
\echo Use "CREATE EXTENSION pg_kms" to load this file. \quit
/*
 * Internal state: schema kms, which no ordinary role can write.  Only
 * wrapped (encrypted) key material is ever stored.  The C code reads and
 * writes these tables as the extension owner with a pinned search_path.
 */
CREATE SCHEMA kms;
REVOKE ALL ON SCHEMA kms FROM PUBLIC;
GRANT USAGE ON SCHEMA kms TO PUBLIC;	-- for the read-only views only

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'kms_admin') THEN
		CREATE ROLE kms_admin NOLOGIN;
	END IF;
END
$$;

-- One row: the key check value of the master key that wraps all versions.
CREATE TABLE kms.master (
	id				int PRIMARY KEY CHECK (id = 1),
	provider		text NOT NULL,
	kcv				bytea NOT NULL,
	created			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	rotated			timestamptz
);

CREATE TABLE kms.key (
	key_id			uuid PRIMARY KEY,
	description		text NOT NULL DEFAULT '',
	key_usage		text NOT NULL,
	key_spec		text NOT NULL,
	key_state		text NOT NULL
		CHECK (key_state IN ('Enabled', 'Disabled', 'PendingDeletion', 'Deleted')),
	origin			text NOT NULL DEFAULT 'AWS_KMS',
	owner			regrole NOT NULL,
	creation_date	timestamptz NOT NULL,
	deletion_date	timestamptz,
	pending_window_days int,
	rotation_enabled boolean NOT NULL DEFAULT false,
	rotation_period_days int,
	next_rotation_date timestamptz,
	on_demand_rotations int NOT NULL DEFAULT 0,
	on_demand_rotation_start timestamptz,
	current_version int NOT NULL DEFAULT 1,
	tags			jsonb NOT NULL DEFAULT '{}',
	-- AWS: a key pg_kms manages (named under alias/pg_kms/), which only a
	-- superuser may change; CUSTOMER: every other key
	key_manager		text NOT NULL DEFAULT 'CUSTOMER'
		CHECK (key_manager IN ('CUSTOMER', 'AWS'))
);

-- Key material versions; material is wrapped by the provider, never plain.
CREATE TABLE kms.key_version (
	key_id			uuid NOT NULL REFERENCES kms.key ON DELETE CASCADE,
	version			int NOT NULL CHECK (version > 0),
	material		bytea,			-- NULL once destroyed (crypto-shredding)
	provider		text NOT NULL,
	key_material_id text NOT NULL,
	rotation_type	text CHECK (rotation_type IN ('AUTOMATIC', 'ON_DEMAND')),
	created			timestamptz NOT NULL,
	PRIMARY KEY (key_id, version)
);

CREATE TABLE kms.alias (
	alias_name		text PRIMARY KEY,
	key_id			uuid NOT NULL REFERENCES kms.key ON DELETE CASCADE,
	creation_date	timestamptz NOT NULL,
	last_updated_date timestamptz NOT NULL
);
CREATE INDEX ON kms.alias (key_id);

CREATE TABLE kms.grants (
	grant_id		text PRIMARY KEY,
	key_id			uuid NOT NULL REFERENCES kms.key ON DELETE CASCADE,
	name			text,
	grantee			regrole NOT NULL,
	retiring_principal regrole,
	operations		text[] NOT NULL,
	constraints		jsonb,
	issuing_role	regrole NOT NULL,
	grant_token		text NOT NULL,
	creation_date	timestamptz NOT NULL
);
CREATE INDEX ON kms.grants (key_id);

REVOKE ALL ON ALL TABLES IN SCHEMA kms FROM PUBLIC;

-- Wrapped material only: safe, and needed, in dumps.
SELECT pg_catalog.pg_extension_config_dump('kms.master', '');
SELECT pg_catalog.pg_extension_config_dump('kms.key', '');
SELECT pg_catalog.pg_extension_config_dump('kms.key_version', '');
SELECT pg_catalog.pg_extension_config_dump('kms.alias', '');
SELECT pg_catalog.pg_extension_config_dump('kms.grants', '');
/*
 * KMS API.  Every function checks privileges in C (docs/security.md);
 * EXECUTE stays with PUBLIC so that per-key grants are the one gate.
 */

-- Keys ----------------------------------------------------------------

CREATE FUNCTION kms_create_key(description text DEFAULT '',
							   key_usage text DEFAULT 'ENCRYPT_DECRYPT',
							   key_spec text DEFAULT 'SYMMETRIC_DEFAULT',
							   tags jsonb DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'kms_create_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_create_key(text, text, text, jsonb) IS 'CreateKey: create a KMS key and return its key id';

CREATE FUNCTION kms_describe_key(key_id text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'kms_describe_key' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_describe_key(text) IS 'DescribeKey: the KeyMetadata of a key';

CREATE FUNCTION kms_list_keys(OUT key_id text, OUT key_arn text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_keys' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_list_keys() IS 'ListKeys: the keys the current role may see';

CREATE FUNCTION kms_enable_key(key_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_enable_key' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_disable_key(key_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_disable_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_enable_key(text) IS 'EnableKey';
COMMENT ON FUNCTION kms_disable_key(text) IS 'DisableKey';

CREATE FUNCTION kms_schedule_key_deletion(key_id text, pending_window_in_days int DEFAULT 30)
RETURNS jsonb AS 'MODULE_PATHNAME', 'kms_schedule_key_deletion' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_cancel_key_deletion(key_id text)
RETURNS text AS 'MODULE_PATHNAME', 'kms_cancel_key_deletion' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_schedule_key_deletion(text, int) IS 'ScheduleKeyDeletion: 7 to 30 days, default 30';
COMMENT ON FUNCTION kms_cancel_key_deletion(text) IS 'CancelKeyDeletion: the key is left Disabled';

CREATE FUNCTION kms_update_key_description(key_id text, description text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_update_key_description' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_update_key_description(text, text) IS 'UpdateKeyDescription';

CREATE FUNCTION kms_tag_resource(key_id text, tags jsonb)
RETURNS void AS 'MODULE_PATHNAME', 'kms_tag_resource' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_untag_resource(key_id text, tag_keys text[])
RETURNS void AS 'MODULE_PATHNAME', 'kms_untag_resource' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_list_resource_tags(key_id text, OUT tag_key text, OUT tag_value text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_resource_tags' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_tag_resource(text, jsonb) IS 'TagResource: tags as [{"TagKey":..,"TagValue":..}] or {"key":"value"}';
COMMENT ON FUNCTION kms_untag_resource(text, text[]) IS 'UntagResource';
COMMENT ON FUNCTION kms_list_resource_tags(text) IS 'ListResourceTags';

-- Rotation --------------------------------------------------------------

CREATE FUNCTION kms_enable_key_rotation(key_id text, rotation_period_in_days int DEFAULT 365)
RETURNS void AS 'MODULE_PATHNAME', 'kms_enable_key_rotation' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_disable_key_rotation(key_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_disable_key_rotation' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_get_key_rotation_status(key_id text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'kms_get_key_rotation_status' LANGUAGE C STABLE;
CREATE FUNCTION kms_rotate_key_on_demand(key_id text)
RETURNS text AS 'MODULE_PATHNAME', 'kms_rotate_key_on_demand' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_list_key_rotations(key_id text,
									   include_key_material text DEFAULT 'ROTATIONS_ONLY',
									   OUT key_id text, OUT key_material_id text,
									   OUT key_material_state text,
									   OUT rotation_date timestamptz,
									   OUT rotation_type text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_key_rotations' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_enable_key_rotation(text, int) IS 'EnableKeyRotation: 90 to 2560 days, default 365';
COMMENT ON FUNCTION kms_disable_key_rotation(text) IS 'DisableKeyRotation';
COMMENT ON FUNCTION kms_get_key_rotation_status(text) IS 'GetKeyRotationStatus';
COMMENT ON FUNCTION kms_rotate_key_on_demand(text) IS 'RotateKeyOnDemand: at most 25 per key';
COMMENT ON FUNCTION kms_list_key_rotations(text, text) IS 'ListKeyRotations';

-- Aliases ---------------------------------------------------------------

CREATE FUNCTION kms_create_alias(alias_name text, target_key_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_create_alias' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_update_alias(alias_name text, target_key_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_update_alias' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_delete_alias(alias_name text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_delete_alias' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_list_aliases(key_id text DEFAULT NULL,
								 OUT alias_name text, OUT alias_arn text,
								 OUT target_key_id text,
								 OUT creation_date timestamptz,
								 OUT last_updated_date timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_aliases' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_create_alias(text, text) IS 'CreateAlias';
COMMENT ON FUNCTION kms_update_alias(text, text) IS 'UpdateAlias';
COMMENT ON FUNCTION kms_delete_alias(text) IS 'DeleteAlias';
COMMENT ON FUNCTION kms_list_aliases(text) IS 'ListAliases';

-- Grants ----------------------------------------------------------------

CREATE FUNCTION kms_create_grant(key_id text, grantee_principal text,
								 operations text[], name text DEFAULT NULL,
								 retiring_principal text DEFAULT NULL,
								 OUT grant_token text, OUT grant_id text)
RETURNS record AS 'MODULE_PATHNAME', 'kms_create_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_revoke_grant(key_id text, grant_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_revoke_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_retire_grant(grant_token text DEFAULT NULL, key_id text DEFAULT NULL,
								 grant_id text DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'kms_retire_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_list_grants(key_id text,
								OUT key_id text, OUT grant_id text, OUT name text,
								OUT grantee_principal text,
								OUT retiring_principal text,
								OUT issuing_account text,
								OUT operations text[],
								OUT creation_date timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_grants' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_create_grant(text, text, text[], text, text) IS 'CreateGrant: allow a role the listed operations on a key';
COMMENT ON FUNCTION kms_revoke_grant(text, text) IS 'RevokeGrant';
COMMENT ON FUNCTION kms_retire_grant(text, text, text) IS 'RetireGrant';
COMMENT ON FUNCTION kms_list_grants(text) IS 'ListGrants';

-- Data plane ------------------------------------------------------------

CREATE FUNCTION kms_encrypt(key_id text, plaintext bytea, encryption_context jsonb DEFAULT NULL)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION kms_encrypt(key_id text, plaintext text, encryption_context jsonb DEFAULT NULL)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_encrypt(text, bytea, jsonb) IS 'Encrypt: AES-256-GCM envelope under the key; returns the ciphertext blob';
COMMENT ON FUNCTION kms_encrypt(text, text, jsonb) IS 'Encrypt a text value (its bytes in the database encoding)';

CREATE FUNCTION kms_decrypt(ciphertext_blob bytea, encryption_context jsonb DEFAULT NULL, key_id text DEFAULT NULL)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_decrypt' LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION kms_decrypt_text(ciphertext_blob bytea, encryption_context jsonb DEFAULT NULL, key_id text DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'kms_decrypt_text' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_decrypt(bytea, jsonb, text) IS 'Decrypt: the plaintext of a ciphertext blob';
COMMENT ON FUNCTION kms_decrypt_text(bytea, jsonb, text) IS 'Decrypt to text (validated in the database encoding)';

CREATE FUNCTION kms_re_encrypt(ciphertext_blob bytea, destination_key_id text,
							   source_encryption_context jsonb DEFAULT NULL,
							   destination_encryption_context jsonb DEFAULT NULL,
							   source_key_id text DEFAULT NULL)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_re_encrypt' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_re_encrypt(bytea, text, jsonb, jsonb, text) IS 'ReEncrypt: decrypt and encrypt again without exposing the plaintext';

CREATE FUNCTION kms_generate_data_key(key_id text, key_spec text DEFAULT NULL,
									  number_of_bytes int DEFAULT NULL,
									  encryption_context jsonb DEFAULT NULL,
									  OUT plaintext bytea, OUT ciphertext_blob bytea,
									  OUT key_id text)
RETURNS record AS 'MODULE_PATHNAME', 'kms_generate_data_key' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION kms_generate_data_key_without_plaintext(key_id text, key_spec text DEFAULT NULL,
									  number_of_bytes int DEFAULT NULL,
									  encryption_context jsonb DEFAULT NULL,
									  OUT ciphertext_blob bytea, OUT key_id text)
RETURNS record AS 'MODULE_PATHNAME', 'kms_generate_data_key_without_plaintext' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_generate_data_key(text, text, int, jsonb) IS 'GenerateDataKey: key_spec AES_256 or AES_128, or number_of_bytes 1..1024';
COMMENT ON FUNCTION kms_generate_data_key_without_plaintext(text, text, int, jsonb) IS 'GenerateDataKeyWithoutPlaintext';

CREATE FUNCTION kms_generate_random(number_of_bytes int)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_generate_random' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION kms_generate_random(int) IS 'GenerateRandom: 1 to 1024 random bytes';

CREATE FUNCTION kms_generate_mac(key_id text, message bytea, mac_algorithm text DEFAULT 'HMAC_SHA_256')
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_generate_mac' LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION kms_verify_mac(key_id text, message bytea, mac bytea, mac_algorithm text DEFAULT 'HMAC_SHA_256')
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_verify_mac' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_generate_mac(text, bytea, text) IS 'GenerateMac: HMAC with an HMAC key';
COMMENT ON FUNCTION kms_verify_mac(text, bytea, bytea, text) IS 'VerifyMac: true, or KMSInvalidMacException';

-- Master key and cache --------------------------------------------------

CREATE FUNCTION kms_rotate_master_key(new_master_key_file text DEFAULT NULL)
RETURNS int AS 'MODULE_PATHNAME', 'kms_rotate_master_key' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_rotate_master_key(text) IS 'Rewrap every key version of this database under a new master key (from the file), or under the current one (without), in one transaction; superuser only';
REVOKE ALL ON FUNCTION kms_rotate_master_key(text) FROM PUBLIC;

CREATE FUNCTION kms_cache_stats(OUT capacity int, OUT entries int,
								OUT hits bigint, OUT misses bigint,
								OUT evictions bigint, OUT provider_calls bigint,
								OUT provider_errors bigint,
								OUT provider_avg_ms float8, OUT provider_max_ms float8,
								OUT key_derivations bigint, OUT salt_rollovers bigint)
RETURNS record AS 'MODULE_PATHNAME', 'kms_cache_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_cache_stats() IS 'Shared key cache statistics since server start';

CREATE FUNCTION kms_key_visible(key_id uuid)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_key_visible' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION kms_key_visible(uuid) IS 'True if the current role may describe the key';

CREATE VIEW kms.keys WITH (security_barrier) AS
	SELECT k.key_id, k.description, k.key_usage, k.key_spec, k.key_state,
		   k.creation_date, k.deletion_date, k.rotation_enabled,
		   k.current_version, k.owner
	  FROM kms.key k
	 WHERE @extschema@.kms_key_visible(k.key_id);
GRANT SELECT ON kms.keys TO PUBLIC;
/*
 * Secrets store (AWS Secrets Manager).  A secret's versions hold only the
 * ciphertext of their values, encrypted under the secret's KMS key with the
 * encryption context {"SecretARN": arn, "SecretVersionId": version id}.
 * Staging labels live in their own table, one row per (secret, label), so a
 * label is on at most one version by construction; writers lock the secret
 * row first, so AWSCURRENT stays on exactly one version.  docs/secrets.md.
 */
CREATE TABLE kms.secret (
	secret_id		uuid PRIMARY KEY,
	name			text NOT NULL UNIQUE,
	arn				text NOT NULL UNIQUE,
	description		text,
	kms_key_id		uuid NOT NULL REFERENCES kms.key,
	kms_key_ref		text,			-- as given; NULL: the default key alias/pg_kms/secrets
	owner			regrole NOT NULL,
	tags			jsonb NOT NULL DEFAULT '{}',
	created_date	timestamptz NOT NULL,
	last_changed_date timestamptz NOT NULL,
	deleted_date	timestamptz,	-- when DeleteSecret was called
	deletion_date	timestamptz,	-- when it may be purged
	-- rotation (RotateSecret, a later part); kept here so DescribeSecret shows it
	rotation_enabled boolean NOT NULL DEFAULT false,
	rotation_lambda_arn text,
	rotation_rules	jsonb,
	rotation_strategy text,
	last_rotated_date timestamptz,
	next_rotation_date timestamptz
);

CREATE TABLE kms.secret_version (
	secret_id		uuid NOT NULL REFERENCES kms.secret ON DELETE CASCADE,
	version_id		text NOT NULL CHECK (length(version_id) BETWEEN 32 AND 64),
	value_type		text NOT NULL CHECK (value_type IN ('SecretString', 'SecretBinary')),
	ciphertext		bytea NOT NULL,	-- never the plaintext
	created_date	timestamptz NOT NULL,
	PRIMARY KEY (secret_id, version_id)
);

CREATE TABLE kms.secret_stage (
	secret_id		uuid NOT NULL,
	stage			text NOT NULL CHECK (length(stage) BETWEEN 1 AND 256),
	version_id		text NOT NULL,
	PRIMARY KEY (secret_id, stage),
	FOREIGN KEY (secret_id, version_id) REFERENCES kms.secret_version ON DELETE CASCADE
);
CREATE INDEX ON kms.secret_stage (secret_id, version_id);

CREATE TABLE kms.secret_grant (
	grant_id		text PRIMARY KEY,
	secret_id		uuid NOT NULL REFERENCES kms.secret ON DELETE CASCADE,
	grantee			regrole NOT NULL,
	operations		text[] NOT NULL,
	issuing_role	regrole NOT NULL,
	creation_date	timestamptz NOT NULL
);
CREATE INDEX ON kms.secret_grant (secret_id);

REVOKE ALL ON kms.secret, kms.secret_version, kms.secret_stage, kms.secret_grant FROM PUBLIC;

-- Ciphertext only: safe, and needed, in dumps.
SELECT pg_catalog.pg_extension_config_dump('kms.secret', '');
SELECT pg_catalog.pg_extension_config_dump('kms.secret_version', '');
SELECT pg_catalog.pg_extension_config_dump('kms.secret_stage', '');
SELECT pg_catalog.pg_extension_config_dump('kms.secret_grant', '');

/*
 * Secrets Manager API.  Privileges are checked in C; EXECUTE stays with
 * PUBLIC so that ownership, kms_admin and per-secret grants are the one gate.
 * Pass values as bind parameters, not literals (docs/secrets.md).
 */

CREATE FUNCTION create_secret(name text,
							  secret_string text DEFAULT NULL,
							  secret_binary bytea DEFAULT NULL,
							  description text DEFAULT NULL,
							  kms_key_id text DEFAULT NULL,
							  tags jsonb DEFAULT NULL,
							  client_request_token text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'create_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION create_secret(text, text, bytea, text, text, jsonb, text) IS 'CreateSecret: returns {"ARN","Name","VersionId"}';

CREATE FUNCTION get_secret(secret_id text, version_id text DEFAULT NULL,
						   version_stage text DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME', 'get_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION get_secret(text, text, text) IS 'GetSecretValue, SecretString only (AWSCURRENT by default); NULL for a SecretBinary version';

CREATE FUNCTION get_secret_value(secret_id text, version_id text DEFAULT NULL,
								 version_stage text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'get_secret_value' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION get_secret_value(text, text, text) IS 'GetSecretValue: {"ARN","Name","VersionId","SecretString"|"SecretBinary" (base64),"VersionStages","CreatedDate"}';

CREATE FUNCTION batch_get_secret_value(secret_id_list text[] DEFAULT NULL,
									   filters jsonb DEFAULT NULL,
									   max_results int DEFAULT NULL,
									   next_token text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'batch_get_secret_value' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION batch_get_secret_value(text[], jsonb, int, text) IS 'BatchGetSecretValue: {"SecretValues":[..],"Errors":[..],"NextToken"}';

CREATE FUNCTION put_secret_value(secret_id text,
								 secret_string text DEFAULT NULL,
								 secret_binary bytea DEFAULT NULL,
								 version_stages text[] DEFAULT NULL,
								 client_request_token text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'put_secret_value' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION put_secret_value(text, text, bytea, text[], text) IS 'PutSecretValue: returns {"ARN","Name","VersionId","VersionStages"}';

CREATE FUNCTION update_secret(secret_id text,
							  secret_string text DEFAULT NULL,
							  secret_binary bytea DEFAULT NULL,
							  description text DEFAULT NULL,
							  kms_key_id text DEFAULT NULL,
							  client_request_token text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'update_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION update_secret(text, text, bytea, text, text, text) IS 'UpdateSecret: returns {"ARN","Name"[,"VersionId"]}';

CREATE FUNCTION update_secret_version_stage(secret_id text, version_stage text,
											remove_from_version_id text DEFAULT NULL,
											move_to_version_id text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'update_secret_version_stage' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION update_secret_version_stage(text, text, text, text) IS 'UpdateSecretVersionStage: move or remove a staging label';

CREATE FUNCTION describe_secret(secret_id text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'describe_secret' LANGUAGE C STABLE;
COMMENT ON FUNCTION describe_secret(text) IS 'DescribeSecret: the secret''s metadata with AWS field names';

CREATE FUNCTION list_secrets(filters jsonb DEFAULT NULL,
							 include_planned_deletion boolean DEFAULT false,
							 sort_order text DEFAULT 'asc',
							 OUT arn text, OUT name text, OUT description text,
							 OUT kms_key_id text, OUT rotation_enabled boolean,
							 OUT created_date timestamptz,
							 OUT last_changed_date timestamptz,
							 OUT last_rotated_date timestamptz,
							 OUT next_rotation_date timestamptz,
							 OUT deleted_date timestamptz,
							 OUT tags jsonb,
							 OUT secret_versions_to_stages jsonb)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'list_secrets' LANGUAGE C STABLE;
COMMENT ON FUNCTION list_secrets(jsonb, boolean, text) IS 'ListSecrets: filters [{"Key":"name|description|tag-key|tag-value|all","Values":[..]}]';

CREATE FUNCTION list_secret_version_ids(secret_id text,
										include_deprecated boolean DEFAULT false,
										OUT version_id text,
										OUT version_stages text[],
										OUT created_date timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'list_secret_version_ids' LANGUAGE C STABLE;
COMMENT ON FUNCTION list_secret_version_ids(text, boolean) IS 'ListSecretVersionIds: newest first';

CREATE FUNCTION delete_secret(secret_id text,
							  recovery_window_in_days int DEFAULT NULL,
							  force_delete_without_recovery boolean DEFAULT false)
RETURNS jsonb AS 'MODULE_PATHNAME', 'delete_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION delete_secret(text, int, boolean) IS 'DeleteSecret: recovery window 7 to 30 days (default 30), or force_delete_without_recovery';

CREATE FUNCTION restore_secret(secret_id text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'restore_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION restore_secret(text) IS 'RestoreSecret: cancel a scheduled deletion';

CREATE FUNCTION tag_resource(secret_id text, tags jsonb)
RETURNS void AS 'MODULE_PATHNAME', 'tag_resource' LANGUAGE C VOLATILE;
CREATE FUNCTION untag_resource(secret_id text, tag_keys text[])
RETURNS void AS 'MODULE_PATHNAME', 'untag_resource' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tag_resource(text, jsonb) IS 'TagResource: tags as [{"Key":..,"Value":..}] or {"key":"value"}';
COMMENT ON FUNCTION untag_resource(text, text[]) IS 'UntagResource';

CREATE FUNCTION get_random_password(password_length bigint DEFAULT 32,
									exclude_characters text DEFAULT '',
									exclude_numbers boolean DEFAULT false,
									exclude_punctuation boolean DEFAULT false,
									exclude_uppercase boolean DEFAULT false,
									exclude_lowercase boolean DEFAULT false,
									include_space boolean DEFAULT false,
									require_each_included_type boolean DEFAULT true)
RETURNS text AS 'MODULE_PATHNAME', 'get_random_password' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION get_random_password(bigint, text, boolean, boolean, boolean, boolean, boolean, boolean) IS 'GetRandomPassword';

-- Per-secret grants ------------------------------------------------------

CREATE FUNCTION secret_create_grant(secret_id text, grantee_principal text, operations text[])
RETURNS text AS 'MODULE_PATHNAME', 'secret_create_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION secret_revoke_grant(secret_id text, grant_id text)
RETURNS void AS 'MODULE_PATHNAME', 'secret_revoke_grant' LANGUAGE C VOLATILE;
CREATE FUNCTION secret_list_grants(secret_id text,
								   OUT grant_id text, OUT grantee_principal text,
								   OUT operations text[], OUT issuing_role text,
								   OUT creation_date timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'secret_list_grants' LANGUAGE C STABLE;
COMMENT ON FUNCTION secret_create_grant(text, text, text[]) IS 'Allow a role operations on a secret (GetSecretValue, PutSecretValue, DescribeSecret, UpdateSecret, UpdateSecretVersionStage, DeleteSecret, RotateSecret, TagResource); returns the grant id';
COMMENT ON FUNCTION secret_revoke_grant(text, text) IS 'Revoke a secret grant';
COMMENT ON FUNCTION secret_list_grants(text) IS 'The grants on a secret';

CREATE FUNCTION kms_secret_visible(secret_id uuid)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_secret_visible' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION kms_secret_visible(uuid) IS 'True if the current role may see the secret in listings';

CREATE VIEW kms.secrets WITH (security_barrier) AS
	SELECT s.name, s.arn, s.description, s.owner, s.created_date,
		   s.last_changed_date, s.deleted_date, s.deletion_date,
		   s.rotation_enabled
	  FROM kms.secret s
	 WHERE @extschema@.kms_secret_visible(s.secret_id);
GRANT SELECT ON kms.secrets TO PUBLIC;
/*
 * Audit trail (docs/audit.md).  The audit worker (connected to
 * pg_kms.database) is the only writer of kms.audit_log; each row is chained
 * to the previous one by a SHA-256 hash.  kms.audit is the view roles read.
 */
CREATE TABLE kms.audit_log (
	id				bigint PRIMARY KEY,
	event_time		timestamptz NOT NULL,	-- the call; an aggregate's first call
	last_time		timestamptz NOT NULL,	-- an aggregate's last call
	event_count		bigint NOT NULL,		-- calls in this row (1 unless aggregated)
	event_type		text NOT NULL,			-- 'call' or 'aggregate'
	db_user			text,					-- current_user at the call
	session_user_name text,					-- session_user at the call
	database		text,
	client_addr		text,					-- NULL for background processes, [local] for sockets
	application_name text,
	backend_pid		int,
	query_id		bigint,					-- top-level query id (compute_query_id)
	operation		text NOT NULL,			-- AWS operation name
	resource_id		text,					-- key id, alias name, secret ARN or name
	resource_arn	text,
	version			text,					-- key version or secret version id
	outcome			text NOT NULL,			-- 'success' or the AWS exception name
	parameters		jsonb,					-- request parameters that are safe to show
	prev_hash		bytea NOT NULL,
	row_hash		bytea NOT NULL,
	-- the roles of db_user and session_user_name (since 1.1; NULL in rows
	-- written before), so that a re-created role name is another role
	db_user_oid		oid,
	session_user_oid oid
);
CREATE INDEX ON kms.audit_log (event_time);
REVOKE ALL ON kms.audit_log FROM PUBLIC;

/*
 * The hash chain, in SQL: the same definition the worker computes in C.
 * A field is its UTF-8 text as a 4-byte big-endian length and the bytes,
 * or ff ff ff ff for NULL; times are microseconds since 1970-01-01 UTC.
 * The role OIDs are fields 19 and 20 of the rows that have them (rows
 * written before 1.1 have 18 fields, so they verify as they did).
 */
CREATE FUNCTION kms.audit_field(t text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
	SELECT CASE WHEN t IS NULL THEN '\xffffffff'::bytea
		   ELSE pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to(t, 'UTF8')))
				OPERATOR(pg_catalog.||) pg_catalog.convert_to(t, 'UTF8') END
$$;

CREATE FUNCTION kms.audit_time_us(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
	SELECT ((EXTRACT(epoch FROM t) OPERATOR(pg_catalog.*) 1000000)::bigint)::text
$$;

CREATE FUNCTION kms.audit_payload(r kms.audit_log) RETURNS bytea
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
REVOKE ALL ON FUNCTION kms.audit_field(text), kms.audit_time_us(timestamptz),
	kms.audit_payload(kms.audit_log) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms.audit_field(text), kms.audit_time_us(timestamptz),
	kms.audit_payload(kms.audit_log) TO kms_admin;
-- kms_admin reads the whole trail anyway (kms.audit); it may not change it.
GRANT SELECT ON kms.audit_log TO kms_admin;

/*
 * kms_audit_verify(): the id of the first row whose hash does not match its
 * contents or whose prev_hash is not the previous row's row_hash; NULL if
 * the whole chain holds.  The first remaining row's prev_hash is taken as
 * given (retention deletes the oldest rows).
 */
CREATE FUNCTION kms_audit_verify() RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
	r		kms.audit_log;
	prev	bytea;
	first	boolean := true;
BEGIN
	FOR r IN SELECT * FROM kms.audit_log ORDER BY id LOOP
		IF NOT first AND r.prev_hash IS DISTINCT FROM prev THEN
			RETURN r.id;
		END IF;
		IF pg_catalog.sha256(r.prev_hash OPERATOR(pg_catalog.||) kms.audit_payload(r))
			IS DISTINCT FROM r.row_hash THEN
			RETURN r.id;
		END IF;
		prev := r.row_hash;
		first := false;
	END LOOP;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION kms_audit_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_audit_verify() TO kms_admin;
COMMENT ON FUNCTION kms_audit_verify() IS 'Id of the first kms.audit row that breaks the hash chain, NULL if none';

/*
 * What a role may read: kms_admin members everything, others their own,
 * matched by role OID (a role dropped and created again under the same
 * name is another role).  Rows without OIDs (written before 1.1) are
 * kms_admin's only.
 */
CREATE VIEW kms.audit WITH (security_barrier) AS
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
GRANT SELECT ON kms.audit TO PUBLIC;

CREATE FUNCTION kms_audit_stats(OUT queue_capacity int, OUT queue_length int,
								OUT queue_bytes_capacity bigint, OUT queue_bytes bigint,
								OUT events_queued bigint, OUT events_written bigint,
								OUT events_only_logged bigint, OUT producer_waits bigint,
								OUT worker_draining boolean)
RETURNS record AS 'MODULE_PATHNAME', 'kms_audit_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_audit_stats() IS 'Audit queue statistics since server start; events_only_logged reached the server log but not kms.audit';
REVOKE ALL ON FUNCTION kms_audit_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_audit_stats() TO kms_admin;

/*
 * One row per background worker: worker = 'audit' (drain, retention; the
 * queue columns) or 'rotation' (rotations, deletions; next_due).
 */
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
/*
 * Rotation (docs/rotation.md): RotateSecret, CancelRotateSecret, and the
 * durable state of a rotation in progress, which the worker advances one
 * step per transaction (createSecret, setSecret, testSecret, finishSecret).
 */
ALTER TABLE kms.secret
	ADD COLUMN rotation_role regrole,				-- who configured it; runs custom strategies
	ADD COLUMN rotation_token text,					-- the AWSPENDING version id of the rotation in progress
	ADD COLUMN rotation_step text
		CHECK (rotation_step IN ('createSecret', 'setSecret', 'testSecret', 'finishSecret')),
	ADD COLUMN rotation_started timestamptz,
	ADD COLUMN rotation_attempts int NOT NULL DEFAULT 0,	-- failures of the current step
	ADD COLUMN rotation_next_attempt timestamptz,	-- back-off after a failure
	ADD COLUMN rotation_last_error text,			-- DescribeSecret's LastRotationError
	ADD COLUMN rotation_last_error_date timestamptz,
	ADD CONSTRAINT secret_rotation_state CHECK ((rotation_token IS NULL) = (rotation_step IS NULL));

CREATE FUNCTION rotate_secret(secret_id text,
							  rotation_strategy text DEFAULT NULL,
							  rotation_rules jsonb DEFAULT NULL,
							  rotate_immediately boolean DEFAULT true,
							  client_request_token text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'rotate_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION rotate_secret(text, text, jsonb, boolean, text) IS 'RotateSecret: strategy postgres_single_user | postgres_alternating_users | a function (secret_id text, client_request_token text, step text); rules {"AutomaticallyAfterDays": N} or {"ScheduleExpression": "rate(..)|cron(..)", "Duration": "Nh"}; returns {"ARN","Name"[,"VersionId"]}';

CREATE FUNCTION cancel_rotate_secret(secret_id text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'cancel_rotate_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cancel_rotate_secret(text) IS 'CancelRotateSecret: turn rotation off and stop a rotation in progress; an AWSPENDING version stays until you remove the label';

CREATE FUNCTION kms_rotation_next_due()
RETURNS timestamptz AS 'MODULE_PATHNAME', 'kms_rotation_next_due' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_rotation_next_due() IS 'When the worker next has rotation or deletion work (kms_admin)';

CREATE FUNCTION kms_rotation_run_job(job text)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_rotation_run_job' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms_rotation_run_job(text) FROM PUBLIC;
COMMENT ON FUNCTION kms_rotation_run_job(text) IS 'Superuser: run one unit of a worker job (''secret rotation'', ''key rotation'', ''deletion'') in this transaction';

CREATE FUNCTION kms.rotation_scram_selftest(password text)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_rotation_scram_selftest' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms.rotation_scram_selftest(text) FROM PUBLIC;
COMMENT ON FUNCTION kms.rotation_scram_selftest(text) IS 'Test: our SCRAM-SHA-256 verifier of the password passes the server''s own check';

-- A custom strategy is pinned by OID (its name is never resolved again);
-- the clone pg_kms made for alternating users is remembered, so it is
-- never confused with somebody else's role of that name.
ALTER TABLE kms.secret
	ADD COLUMN rotation_function regprocedure,		-- the custom strategy's function
	ADD COLUMN rotation_clone regrole;				-- the <user>_clone pg_kms created

CREATE FUNCTION kms.rotation_login_selftest(host text, port int, username text, password text,
											dbname text, timeout_ms int DEFAULT 5000)
RETURNS text AS 'MODULE_PATHNAME', 'kms_rotation_login_selftest' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) FROM PUBLIC;
COMMENT ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) IS 'Test: the rotation worker''s SCRAM-only login client against host (socket directory or IP address); NULL on success, else why it failed';

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
