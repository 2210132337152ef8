--
-- Secrets store: who may do what.  Owner and superuser: everything;
-- kms_admin: create and manage, not read; grantees: their operations; a
-- role without access learns nothing (AccessDeniedException for existing
-- and missing secrets alike).  A customer key also needs Encrypt / Decrypt.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set VERBOSITY terse

CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || split_part(SQLERRM, ':', 1);
END $$;

CREATE ROLE regress_sec_admin IN ROLE kms_admin;
CREATE ROLE regress_sec_app;
CREATE ROLE regress_sec_rotator;
CREATE ROLE regress_sec_nobody;
CREATE ROLE regress_sec_team;
GRANT regress_sec_team TO regress_sec_app;

-- only kms_admin members create secrets
SET ROLE regress_sec_nobody;
SELECT create_secret('acc/nope', 'x');
RESET ROLE;

-- a secret owned by the superuser; kms_admin manages it but cannot read it
SELECT create_secret('acc/db', 'pw-1', description => 'db') ? 'ARN' AS created;
SET ROLE regress_sec_admin;
SELECT describe_secret('acc/db')->>'Name' AS described;
SELECT get_secret('acc/db');
SELECT get_secret_value('acc/db');
SELECT put_secret_value('acc/db', 'by admin');
SELECT update_secret('acc/db', 'by admin');
SELECT update_secret('acc/db', description => 'changed by admin') ? 'ARN' AS metadata_updated;
SELECT tag_resource('acc/db', '{"by":"admin"}');
SELECT update_secret_version_stage('acc/db', 'X', move_to_version_id => repeat('a', 32));
SELECT get_secret('acc/missing');
SELECT count(*) AS admin_sees FROM list_secrets('[{"Key":"name","Values":["acc/"]}]');
SELECT jsonb_array_length(batch_get_secret_value(ARRAY['acc/db'])->'Errors') AS batch_errors;
-- a secret kms_admin creates is its own: it reads it
SELECT create_secret('acc/admins', 'admin-pw') ? 'ARN' AS created;
SELECT get_secret('acc/admins');
RESET ROLE;

-- a role without access: AccessDeniedException, whether the secret exists or not
SET ROLE regress_sec_nobody;
SELECT get_secret('acc/db');
SELECT get_secret('acc/missing');
SELECT describe_secret('acc/db');
SELECT describe_secret('acc/missing');
SELECT delete_secret('acc/db');
SELECT delete_secret('acc/missing', force_delete_without_recovery => true);
SELECT put_secret_value('acc/db', 'x');
SELECT tag_resource('acc/db', '{"a":"b"}');
SELECT secret_create_grant('acc/db', 'regress_sec_nobody', '{GetSecretValue}');
SELECT count(*) AS nobody_sees FROM list_secrets();
SELECT count(*) AS nobody_sees_view FROM kms.secrets;
SELECT r->'Errors'->0->>'ErrorCode' AS batch_error FROM batch_get_secret_value(ARRAY['acc/db']) r;
SELECT count(*) FROM kms.secret;
SELECT count(*) FROM kms.secret_version;
RESET ROLE;

-- grants
SELECT secret_create_grant('acc/db', 'regress_sec_team', '{GetSecretValue,DescribeSecret,GetSecretValue}') AS g_team \gset
SELECT secret_create_grant('acc/db', 'regress_sec_rotator',
                           '{DescribeSecret,GetSecretValue,PutSecretValue,UpdateSecretVersionStage}') AS g_rot \gset
SELECT grantee_principal, operations FROM secret_list_grants('acc/db') ORDER BY grantee_principal;
SELECT secret_create_grant('acc/db', 'regress_sec_app', '{Decrypt}');
SELECT secret_create_grant('acc/db', 'regress_sec_app', '{}');
SELECT secret_create_grant('acc/db', 'no_such_role', '{GetSecretValue}');
SELECT secret_create_grant('acc/missing', 'regress_sec_app', '{GetSecretValue}');
SELECT secret_revoke_grant('acc/db', 'no-such-grant');

-- through membership of regress_sec_team
SET ROLE regress_sec_app;
SELECT get_secret('acc/db');
SELECT get_secret('acc/db');
SELECT describe_secret('acc/db')->>'Name' AS described;
SELECT count(*) AS app_sees FROM list_secrets();
SELECT count(*) AS app_sees_view FROM kms.secrets;
SELECT put_secret_value('acc/db', 'by app');
SELECT delete_secret('acc/db');
SELECT secret_list_grants('acc/db');
SELECT secret_create_grant('acc/db', 'regress_sec_app', '{PutSecretValue}');
RESET ROLE;

-- a rotation role: new value as AWSPENDING, then move AWSCURRENT
SET ROLE regress_sec_rotator;
SELECT put_secret_value('acc/db', 'pw-2', version_stages => '{AWSPENDING}',
                        client_request_token => 'rotation-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaa')->'VersionStages' AS stages;
SELECT version_id AS cur FROM list_secret_version_ids('acc/db') WHERE 'AWSCURRENT' = ANY (version_stages) \gset
SELECT update_secret_version_stage('acc/db', 'AWSCURRENT', remove_from_version_id => :'cur',
                                   move_to_version_id => 'rotation-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaa') ? 'ARN' AS finished;
SELECT update_secret_version_stage('acc/db', 'AWSPENDING', remove_from_version_id => 'rotation-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaa') ? 'ARN' AS cleaned;
SELECT get_secret('acc/db') AS current, get_secret('acc/db', version_stage => 'AWSPREVIOUS') AS previous;
SELECT tag_resource('acc/db', '{"a":"b"}');
SELECT update_secret('acc/db', description => 'x');
RESET ROLE;

-- the grantee sees the change at once; a revoked grant is gone at once
SET ROLE regress_sec_app;
SELECT get_secret('acc/db');
RESET ROLE;
SELECT secret_revoke_grant('acc/db', :'g_team');
SET ROLE regress_sec_app;
SELECT get_secret('acc/db');
RESET ROLE;
-- membership is checked on every call, also from this backend's cache
SELECT secret_create_grant('acc/db', 'regress_sec_team', '{GetSecretValue}') IS NOT NULL AS regranted;
SET ROLE regress_sec_app;
SELECT get_secret('acc/db');
RESET ROLE;
REVOKE regress_sec_team FROM regress_sec_app;
SET ROLE regress_sec_app;
SELECT get_secret('acc/db');
RESET ROLE;

-- kms_admin manages grants too
SET ROLE regress_sec_admin;
SELECT count(*) AS grants FROM secret_list_grants('acc/db');
SELECT secret_revoke_grant('acc/db', :'g_rot');
SELECT count(*) AS grants FROM secret_list_grants('acc/db');
RESET ROLE;

-- A customer key: the caller needs Encrypt on it to write, Decrypt to read
SELECT kms_create_key(description => 'regress secrets access key') AS cmk \gset
SET ROLE regress_sec_admin;
SELECT pg_temp.err(format('SELECT create_secret(%L, %L, kms_key_id => %L)', 'acc/cmk', 'x', :'cmk')) AS without_encrypt;
RESET ROLE;
SELECT grant_id IS NOT NULL AS granted FROM kms_create_grant(:'cmk', 'regress_sec_admin', '{Encrypt}');
SET ROLE regress_sec_admin;
SELECT create_secret('acc/cmk', 'under cmk', kms_key_id => :'cmk') ? 'ARN' AS created;
SELECT pg_temp.err($$SELECT get_secret('acc/cmk')$$) AS owner_without_decrypt;
RESET ROLE;
SELECT grant_id IS NOT NULL AS granted FROM kms_create_grant(:'cmk', 'regress_sec_admin', '{Decrypt}');
SET ROLE regress_sec_admin;
SELECT get_secret('acc/cmk');
RESET ROLE;
-- the default key needs no key grant: the secret grant is enough (as aws/secretsmanager)
SELECT secret_create_grant('acc/admins', 'regress_sec_nobody', '{GetSecretValue}') IS NOT NULL AS granted;
SET ROLE regress_sec_nobody;
SELECT get_secret('acc/admins');
RESET ROLE;

-- clean up
SELECT count(*) AS deleted FROM (SELECT delete_secret(name, force_delete_without_recovery => true)
  FROM list_secrets(include_planned_deletion => true)) d;
-- pg_kms refuses DROP ROLE while its keys, secrets or grants name the role
-- (issue 11): REASSIGN OWNED and DROP OWNED hand them over first
REASSIGN OWNED BY regress_sec_admin, regress_sec_app, regress_sec_rotator, regress_sec_nobody, regress_sec_team TO CURRENT_USER;
DROP OWNED BY regress_sec_admin, regress_sec_app, regress_sec_rotator, regress_sec_nobody, regress_sec_team;
DROP ROLE regress_sec_admin, regress_sec_app, regress_sec_rotator, regress_sec_nobody, regress_sec_team;
