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

-- Encrypt and Decrypt are PARALLEL SAFE (issue 16): a parallel worker checks
-- the leader's role (PostgreSQL restores it there) against the catalog on the
-- statement's snapshot, shares the key cache and its nonce counters, and
-- counts its calls in the audit (docs/kms.md, "Parallel query").  ReEncrypt,
-- GenerateDataKey* and the MACs stay PARALLEL RESTRICTED: the same paths,
-- but not yet tested in parallel workers.

CREATE FUNCTION kms_encrypt(key_id text, plaintext bytea, encryption_context jsonb DEFAULT NULL,
							encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_encrypt' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE FUNCTION kms_encrypt(key_id text, plaintext text, encryption_context jsonb DEFAULT NULL,
							encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_encrypt' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION kms_encrypt(text, bytea, jsonb, text, boolean) IS 'Encrypt: AES-256-GCM envelope under the key; returns the ciphertext blob';
COMMENT ON FUNCTION kms_encrypt(text, text, jsonb, text, boolean) IS 'Encrypt a text value (its bytes in the database encoding)';

CREATE FUNCTION kms_decrypt(ciphertext_blob bytea, encryption_context jsonb DEFAULT NULL, key_id text DEFAULT NULL,
							encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS bytea AS 'MODULE_PATHNAME', 'kms_decrypt' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION kms_decrypt_text(ciphertext_blob bytea, encryption_context jsonb DEFAULT NULL, key_id text DEFAULT NULL,
								 encryption_algorithm text DEFAULT NULL, dry_run boolean DEFAULT false)
RETURNS text AS 'MODULE_PATHNAME', 'kms_decrypt_text' LANGUAGE C STABLE PARALLEL SAFE;
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
