
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
