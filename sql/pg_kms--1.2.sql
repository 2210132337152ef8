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
	owner			oid,			-- with owner_name: see 057_principals.sql
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
	grantee			oid,			-- principals: see 057_principals.sql
	retiring_principal oid,
	operations		text[] NOT NULL,
	constraints		jsonb,
	issuing_role	oid,
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

CREATE FUNCTION kms_list_keys("limit" int DEFAULT NULL, marker text DEFAULT NULL,
							  OUT key_id text, OUT key_arn text, OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_keys' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_list_keys(int, text) IS 'ListKeys: the keys the current role may see; limit 1..1000 and marker page them';

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
CREATE FUNCTION kms_list_resource_tags(key_id text, "limit" int DEFAULT NULL, marker text DEFAULT NULL,
									   OUT tag_key text, OUT tag_value text, OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_resource_tags' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_tag_resource(text, jsonb) IS 'TagResource: tags as [{"TagKey":..,"TagValue":..}] or {"key":"value"}';
COMMENT ON FUNCTION kms_untag_resource(text, text[]) IS 'UntagResource';
COMMENT ON FUNCTION kms_list_resource_tags(text, int, text) IS 'ListResourceTags: limit 1..50 and marker page the tags';

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
									   "limit" int DEFAULT NULL, marker text DEFAULT NULL,
									   OUT key_id text, OUT key_material_id text,
									   OUT key_material_state text,
									   OUT rotation_date timestamptz,
									   OUT rotation_type text, OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_key_rotations' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_enable_key_rotation(text, int) IS 'EnableKeyRotation: 90 to 2560 days, default 365';
COMMENT ON FUNCTION kms_disable_key_rotation(text) IS 'DisableKeyRotation';
COMMENT ON FUNCTION kms_get_key_rotation_status(text) IS 'GetKeyRotationStatus';
COMMENT ON FUNCTION kms_rotate_key_on_demand(text) IS 'RotateKeyOnDemand: at most 25 per key; returns the key id';
COMMENT ON FUNCTION kms_list_key_rotations(text, text, int, text) IS 'ListKeyRotations: limit 1..1000 and marker page the rotations';

-- Aliases ---------------------------------------------------------------

CREATE FUNCTION kms_create_alias(alias_name text, target_key_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_create_alias' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_update_alias(alias_name text, target_key_id text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_update_alias' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_delete_alias(alias_name text)
RETURNS void AS 'MODULE_PATHNAME', 'kms_delete_alias' LANGUAGE C VOLATILE;
CREATE FUNCTION kms_list_aliases(key_id text DEFAULT NULL,
								 "limit" int DEFAULT NULL, marker text DEFAULT NULL,
								 OUT alias_name text, OUT alias_arn text,
								 OUT target_key_id text,
								 OUT creation_date timestamptz,
								 OUT last_updated_date timestamptz,
								 OUT next_marker text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_list_aliases' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_create_alias(text, text) IS 'CreateAlias';
COMMENT ON FUNCTION kms_update_alias(text, text) IS 'UpdateAlias';
COMMENT ON FUNCTION kms_delete_alias(text) IS 'DeleteAlias';
COMMENT ON FUNCTION kms_list_aliases(text, int, text) IS 'ListAliases: limit 1..100 and marker page the aliases';

-- Grants ----------------------------------------------------------------

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

-- Data plane ------------------------------------------------------------

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

CREATE FUNCTION kms_generate_random(number_of_bytes int)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_generate_random' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION kms_generate_random(int) IS 'GenerateRandom: 1 to 1024 random bytes';

CREATE FUNCTION kms_generate_mac(key_id text, message bytea, mac_algorithm text DEFAULT 'HMAC_SHA_256',
								 dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_generate_mac' LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION kms_verify_mac(key_id text, message bytea, mac bytea, mac_algorithm text DEFAULT 'HMAC_SHA_256',
							   dry_run boolean DEFAULT false)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_verify_mac' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION kms_generate_mac(text, bytea, text, boolean) IS 'GenerateMac: HMAC with an HMAC key';
COMMENT ON FUNCTION kms_verify_mac(text, bytea, bytea, text, boolean) IS 'VerifyMac: true, or KMSInvalidMacException';

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
		   k.current_version, k.owner::pg_catalog.regrole AS owner
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
	owner			oid,			-- with owner_name: see 057_principals.sql
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
	-- when the label came to this version: labels are listed in that order,
	-- which is the order a request gave them (AWS returns them so)
	attached		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (secret_id, stage),
	FOREIGN KEY (secret_id, version_id) REFERENCES kms.secret_version ON DELETE CASCADE
);
CREATE INDEX ON kms.secret_stage (secret_id, version_id);

CREATE TABLE kms.secret_grant (
	grant_id		text PRIMARY KEY,
	secret_id		uuid NOT NULL REFERENCES kms.secret ON DELETE CASCADE,
	grantee			oid,			-- principals: see 057_principals.sql
	operations		text[] NOT NULL,
	issuing_role	oid,
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
							  client_request_token text DEFAULT NULL,
							  type text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'create_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION create_secret(text, text, bytea, text, text, jsonb, text, text) IS 'CreateSecret: returns {"ARN","Name","VersionId"}';

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
	SELECT s.name, s.arn, s.description, s.owner::pg_catalog.regrole AS owner, s.created_date,
		   s.last_changed_date, s.deleted_date, s.deletion_date,
		   s.rotation_enabled
	  FROM kms.secret s
	 WHERE @extschema@.kms_secret_visible(s.secret_id);
GRANT SELECT ON kms.secrets TO PUBLIC;
/*
 * Audit trail (docs/audit.md).  The audit worker of this database is the
 * only writer of kms.audit_log; each row is chained to the previous one by
 * a SHA-256 hash.  kms.audit is the view roles read.  The table is dumped
 * with its data (pg_extension_config_dump), so a restore keeps the trail
 * and kms_audit_verify() still passes.
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
SELECT pg_catalog.pg_extension_config_dump('kms.audit_log', '');

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
 * One row per background worker of the current database: worker = 'audit'
 * (drain, retention; the queue columns) or 'rotation' (rotations,
 * deletions; next_due).
 */
CREATE FUNCTION kms_worker_status(OUT state text, OUT pid int, OUT started timestamptz,
								  OUT last_wake timestamptz, OUT next_wake timestamptz,
								  OUT last_error text, OUT queue_length int,
								  OUT events_written bigint, OUT events_only_logged bigint,
								  OUT next_due timestamptz, OUT worker text,
								  OUT job text, OUT job_started timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status' LANGUAGE C VOLATILE ROWS 2;
COMMENT ON FUNCTION kms_worker_status() IS 'State of the pg_kms background workers of the current database, one row each';
REVOKE ALL ON FUNCTION kms_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_worker_status() TO kms_admin;

/*
 * Every pg_kms background process of the cluster, for superusers: the
 * launcher (database NULL, worker 'launcher'), then the audit and rotation
 * workers of each database the launcher serves or probes.
 */
CREATE FUNCTION kms_worker_status_all(OUT database text, OUT worker text, OUT state text,
									  OUT pid int, OUT started timestamptz,
									  OUT last_wake timestamptz, OUT next_wake timestamptz,
									  OUT last_error text, OUT next_due timestamptz,
									  OUT job text, OUT job_started timestamptz,
									  OUT restarts bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status_all' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_worker_status_all() IS 'State of the pg_kms launcher and of the workers of every database (superusers only)';
REVOKE ALL ON FUNCTION kms_worker_status_all() FROM PUBLIC;
/*
 * Rotation (docs/rotation.md): RotateSecret, CancelRotateSecret, and the
 * durable state of a rotation in progress, which the worker advances one
 * step per transaction (createSecret, setSecret, testSecret, finishSecret).
 */
ALTER TABLE kms.secret
	ADD COLUMN rotation_role oid,					-- who configured it; runs custom strategies
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
	ADD COLUMN rotation_clone oid;					-- the <user>_clone pg_kms created

CREATE FUNCTION kms.rotation_login_selftest(host text, port int, username text, password text,
											dbname text, timeout_ms int DEFAULT 5000)
RETURNS text AS 'MODULE_PATHNAME', 'kms_rotation_login_selftest' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) FROM PUBLIC;
COMMENT ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) IS 'Test: the rotation worker''s SCRAM-only login client against host (socket directory or IP address); NULL on success, else why it failed';
/*
 * Principals (issue 11, findings 3 and 4).  Each principal column (owner,
 * grantee, retiring_principal, issuing_role, rotation_role) is an oid, the
 * role in THIS cluster that the checks compare (NULL: unresolved, matches
 * nobody), beside <column>_name, the role's name, which is what a dump
 * carries.  The trigger kms.principals_sync makes the oid follow the name
 * on INSERT (a restore's COPY: its oids are another cluster's) and the name
 * follow the oid when the C code writes an oid; src/catalog/principals.c
 * says why.  rotation_clone stays pinned by oid alone (cleared on restore).
 * DROP ROLE of a principal is refused; REASSIGN OWNED and DROP OWNED cover
 * keys, secrets and grants (src/secrets/principals.c, docs/kms.md).
 */
ALTER TABLE kms.key ADD COLUMN owner_name text NOT NULL;
ALTER TABLE kms.grants
	ADD COLUMN grantee_name text NOT NULL,
	ADD COLUMN retiring_principal_name text,
	ADD COLUMN issuing_role_name text NOT NULL;
ALTER TABLE kms.secret
	ADD COLUMN owner_name text NOT NULL,
	ADD COLUMN rotation_role_name text;
ALTER TABLE kms.secret_grant
	ADD COLUMN grantee_name text NOT NULL,
	ADD COLUMN issuing_role_name text NOT NULL;

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
/*
 * Secrets Manager fidelity (issue 15): the secret's Type (CreateSecret and
 * UpdateSecret take it, DescribeSecret returns it), and whether the secret
 * ever had tags (DescribeSecret has no Tags member for a secret that was
 * never tagged, and "Tags": [] once the last tag is removed, as AWS).
 * Added after every other part's columns of kms.secret, so that an updated
 * database has the columns in the same order as a fresh install.
 */
ALTER TABLE kms.secret
	ADD COLUMN secret_type text CHECK (length(secret_type) <= 256),
	ADD COLUMN tagged boolean NOT NULL DEFAULT false;

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
/*
 * Transparent column encryption (src/tce/, docs/column-encryption.md):
 * the types encrypted_text and encrypted_bytea, whose type modifier names
 * a key, ('<key ref>' [, 'deterministic']).
 */

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

/*
 * Remote secrets: AWS Secrets Manager secrets read through links
 * (src/secrets/remote_link.c, docs/providers.md "Remote secrets (AWS
 * Secrets Manager)").  A link is a local secret without a value of its
 * own (it carries the owner and the grants) plus a row here naming the
 * remote ARN; get_secret(<remote ARN>) checks GetSecretValue on the link
 * before it asks AWS.  Values are cached in shared memory only, never in a
 * table.
 */
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
