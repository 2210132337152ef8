--
-- Remote secrets (AWS Secrets Manager): the links and their access rules,
-- and the error paths that need no AWS endpoint.  A role reads a remote
-- secret only through a link it may read (GetSecretValue on the link, as
-- for a local secret); without one it gets the error of a secret it may
-- not see, and AWS is never called (no endpoint is configured here: a call
-- would fail differently).
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

CREATE ROLE regress_remote_admin IN ROLE kms_admin;
CREATE ROLE regress_remote_app;
CREATE ROLE regress_remote_nobody;

-- the settings, with AWS's caching client defaults
SHOW pg_kms.remote_secret_cache_ttl;
SHOW pg_kms.remote_secret_cache_size;

-- only a superuser links: the link's owner reads the value with the
-- server's credentials, so kms_admin (which creates secrets) may not
SET ROLE regress_remote_admin;
SELECT pg_temp.err($$SELECT kms_link_remote_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
RESET ROLE;
SET ROLE regress_remote_app;
SELECT pg_temp.err($$SELECT kms_link_remote_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
RESET ROLE;

-- ARNs that are not a complete Secrets Manager secret ARN of elsewhere
SELECT a, pg_temp.err(format('SELECT kms_link_remote_secret(%L)', a))
  FROM (VALUES ('prod/db'),
               ('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db'),
               ('arn:aws:secretsmanager:eu-west-1:123456789012:secret:-AbCdEf'),
               ('arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'),
               ('arn:aws:secretsmanager:eu-west-1:12345678901:secret:prod/db-AbCdEf'),
               ('arn:aws:secretsmanager::123456789012:secret:prod/db-AbCdEf'),
               ('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/d!b-AbCdEf'),
               ('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbC_Ef'),
               ('arn:gcp:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')) v(a);
SELECT pg_temp.err($$SELECT kms_link_remote_secret(NULL)$$);

-- an ARN of this database's own secrets (region and account) is local
SELECT r->>'ARN' AS own_arn FROM create_secret('remote/own', 'local value') r \gset
SELECT pg_temp.err(format('SELECT kms_link_remote_secret(%L)', :'own_arn'));
SELECT get_secret(:'own_arn') AS own_read_is_local;

-- a link: a local secret without a value, named after the remote secret
SELECT r->>'Name' AS name,
       r->>'RemoteARN' AS remote_arn,
       r->>'ARN' ~ ('^arn:aws:secretsmanager:' || current_setting('pg_kms.region') ||
                    ':[0-9]{12}:secret:prod/db-[A-Za-z0-9]{6}$') AS local_arn_ok
  FROM kms_link_remote_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf') r;
SELECT d->>'Name' AS name, d->>'Description' AS description, d ? 'VersionIdsToStages' AS has_versions
  FROM describe_secret('prod/db') d;
-- a name of one's own choosing; the same remote secret twice is refused
SELECT r->>'Name' AS name
  FROM kms_link_remote_secret('arn:aws:secretsmanager:us-east-2:210987654321:secret:billing/api-key-Zz09Yy',
                              name => 'billing-api', description => 'the billing API key') r;
SELECT pg_temp.err($$SELECT kms_link_remote_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf', name => 'again')$$);
-- a name taken by a local secret is refused by CreateSecret's rule
SELECT pg_temp.err($$SELECT kms_link_remote_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:remote/own-AbCdEf')$$);
SELECT name, remote_arn, deleted FROM kms_remote_secrets() ORDER BY name;

-- reading: without a link, the error of a secret one may not see (kms_admin
-- learns it does not exist, others are denied), and no call to AWS
SET ROLE regress_remote_app;
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:other-AbCdEf')$$);
SELECT pg_temp.err($$SELECT get_secret_value('arn:aws:secretsmanager:eu-west-1:123456789012:secret:other-AbCdEf')$$);
-- with a link but no grant: denied, no call
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
SELECT pg_temp.err($$SELECT kms_refresh_remote_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
SELECT pg_temp.err($$SELECT kms_refresh_remote_secret('prod/db')$$);
SELECT count(*) AS links_seen FROM kms_remote_secrets();
SELECT pg_temp.err($$SELECT * FROM kms_remote_secret_cache()$$);
RESET ROLE;
SET ROLE regress_remote_admin;
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:other-AbCdEf')$$);
-- kms_admin manages the link but can neither read it nor grant reading
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
SELECT pg_temp.err($$SELECT secret_create_grant('prod/db', 'regress_remote_app', '{GetSecretValue}')$$);
SELECT count(*) AS links_seen FROM kms_remote_secrets();
SELECT count(*) AS cache_rows FROM kms_remote_secret_cache();
RESET ROLE;

-- the owner (a superuser) grants GetSecretValue on the link
SELECT secret_create_grant('prod/db', 'regress_remote_app', '{GetSecretValue}') IS NOT NULL AS granted;
SET ROLE regress_remote_app;
SELECT name FROM kms_remote_secrets();
-- bad version arguments are refused before any call
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf', version_id => 'short')$$);
RESET ROLE;
SET ROLE regress_remote_nobody;
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
RESET ROLE;

-- every refusal above was audited as a GetSecretValue on the remote ARN
-- (the audit worker drains the queue: wait for it)
CREATE FUNCTION pg_temp.audit_wait(n int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 600 LOOP
		IF (SELECT sum(event_count) FROM kms.audit
			 WHERE operation = 'GetSecretValue' AND outcome = 'AccessDeniedException'
			   AND (resource_id LIKE 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:%'
					OR resource_arn LIKE 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:%')) >= n THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN false;
END $$;
SELECT pg_temp.audit_wait(6) AS denied_reads_audited;

-- a link's value lives in AWS: writing a local value to it, or rotating it
-- here, is refused (InvalidRequestException), and nothing is written
SELECT pg_temp.err($$SELECT put_secret_value('prod/db', 'local value')$$);
SELECT pg_temp.err($$SELECT update_secret('prod/db', 'local value')$$);
SELECT pg_temp.err($$SELECT rotate_secret('prod/db', rotation_strategy => 'postgres_single_user')$$);
SELECT count(*) AS versions_of_the_link FROM kms.secret_version v JOIN kms.secret s USING (secret_id)
 WHERE s.name = 'prod/db';

-- a link scheduled for deletion cannot be read; deleted for good, it is gone
SELECT (delete_secret('prod/db'))->>'Name' AS deleting;
SET ROLE regress_remote_app;
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
RESET ROLE;
SELECT (restore_secret('prod/db'))->>'Name' AS restored;
SELECT (delete_secret('prod/db', force_delete_without_recovery => true))->>'Name' AS deleted;
SELECT (delete_secret('billing-api', force_delete_without_recovery => true))->>'Name' AS deleted;
SELECT (delete_secret('remote/own', force_delete_without_recovery => true))->>'Name' AS deleted;
SELECT count(*) AS links_left FROM kms.remote_secret;
SET ROLE regress_remote_app;
SELECT pg_temp.err($$SELECT get_secret('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf')$$);
RESET ROLE;

DROP ROLE regress_remote_admin, regress_remote_app, regress_remote_nobody;
