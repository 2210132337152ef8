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

-- scale (issue 16)
/*
 * ListSecrets' name filter matches word prefixes (list_sql.c: the words of
 * a name are split on spaces and "/_+=.@-", and every word of a filter value
 * must be a prefix of one of them).  This index holds each name's words as
 * the lexemes of a tsvector, exactly as split (array_to_tsvector: no parser,
 * no dictionary, case kept), so that a prefix tsquery 'word':* finds every
 * name that can match; list_sql.c rechecks each candidate with the exact
 * rules.  A GIN index over a tsvector rather than a side table of words: no
 * trigger to keep in step, and prefix search comes with GIN.
 */
CREATE INDEX secret_name_words_idx ON kms.secret USING gin
	((pg_catalog.array_to_tsvector(pg_catalog.array_remove(pg_catalog.string_to_array(
		pg_catalog.translate(name, '/_+=.@-', '       '), ' '), ''))));
-- CreateSecret purges secrets whose recovery window ended, on every call
CREATE INDEX secret_deletion_date_idx ON kms.secret (deletion_date)
	WHERE deletion_date IS NOT NULL;
