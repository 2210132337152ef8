--
-- Re-keying a secret (update_secret with kms_key_id; issue 9, finding 10).
-- Every version that has a label (AWS's three and custom ones) is
-- re-encrypted under the new key, so it stays readable to whoever may read
-- the secret and use its key.  A version without a label stays under the
-- key that wrote it, and that key's rule decides who reads it: the default
-- key needs no key grant, a customer key needs Decrypt on it, whatever key
-- the secret uses now.  No error names the default key's id.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set VERBOSITY terse

CREATE ROLE regress_rk_owner IN ROLE kms_admin;
CREATE ROLE regress_rk_reader;		-- GetSecretValue; Decrypt on the keys as granted below
CREATE ROLE regress_rk_nokey;		-- GetSecretValue, no key grant at all

-- the default key exists (the first secret makes it); remember its id
SELECT create_secret('rk/first', 'x') ? 'ARN' AS created;
SELECT key_id::text AS defkey FROM kms.alias WHERE alias_name = 'alias/pg_kms/secrets' \gset

-- outcome of a statement: its result, or SQLSTATE and AWS name; and
-- whether the message names the default key
CREATE FUNCTION pg_temp.try(q text, defkey text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE q INTO r;
	RETURN 'ok: ' || coalesce(r, '<null>');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || split_part(SQLERRM, ':', 1) ||
		CASE WHEN position(defkey IN SQLERRM) > 0 THEN ' (NAMES THE DEFAULT KEY)' ELSE '' END;
END $$;

SET ROLE regress_rk_owner;
SELECT create_secret('rk/a', 'v1') ? 'ARN' AS created;
SELECT put_secret_value('rk/a', 'v2') ? 'ARN' AS put;
SELECT put_secret_value('rk/a', 'v-custom', version_stages => '{MyLabel}') ? 'ARN' AS put_custom;
-- a version without a label, under the default key
SELECT put_secret_value('rk/a', 'v-unlabelled-default', version_stages => '{Tmp}',
                        client_request_token => 'rk-unlabelled-default-aaaaaaaaaaaaaaaa') ? 'ARN' AS put_tmp;
SELECT update_secret_version_stage('rk/a', 'Tmp', remove_from_version_id => 'rk-unlabelled-default-aaaaaaaaaaaaaaaa') ? 'ARN' AS unlabelled;
SELECT kms_create_key(description => 'regress rekey k1') AS k1 \gset
SELECT kms_create_key(description => 'regress rekey k2') AS k2 \gset
SELECT secret_create_grant('rk/a', 'regress_rk_reader', '{GetSecretValue}') IS NOT NULL AS granted;
SELECT secret_create_grant('rk/a', 'regress_rk_nokey', '{GetSecretValue}') IS NOT NULL AS granted;
RESET ROLE;

-- default key -> customer key k1: the owner still reads every version
SET ROLE regress_rk_owner;
SELECT update_secret('rk/a', kms_key_id => :'k1') ? 'ARN' AS rekeyed_to_k1;
SELECT pg_temp.try($$SELECT get_secret('rk/a')$$, :'defkey') AS current;
SELECT pg_temp.try($$SELECT get_secret('rk/a', version_stage => 'AWSPREVIOUS')$$, :'defkey') AS previous;
SELECT pg_temp.try($$SELECT get_secret('rk/a', version_stage => 'MyLabel')$$, :'defkey') AS custom;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-default-aaaaaaaaaaaaaaaa')$$, :'defkey') AS unlabelled;
SELECT grant_id IS NOT NULL AS reader_may_decrypt_k2 FROM kms_create_grant(:'k2', 'regress_rk_reader', '{Decrypt}');
-- a version without a label, under k1
SELECT put_secret_value('rk/a', 'v-unlabelled-k1', version_stages => '{Tmp}',
                        client_request_token => 'rk-unlabelled-k1-aaaaaaaaaaaaaaaaaaaaa') ? 'ARN' AS put_tmp;
SELECT update_secret_version_stage('rk/a', 'Tmp', remove_from_version_id => 'rk-unlabelled-k1-aaaaaaaaaaaaaaaaaaaaa') ? 'ARN' AS unlabelled;
RESET ROLE;

-- a reader without Decrypt on k1: the versions under k1 are closed to it,
-- the one left under the default key is not
SET ROLE regress_rk_nokey;
SELECT pg_temp.try($$SELECT get_secret('rk/a', version_stage => 'MyLabel')$$, :'defkey') AS custom;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-default-aaaaaaaaaaaaaaaa')$$, :'defkey') AS unlabelled_default;
RESET ROLE;

-- customer key k1 -> customer key k2: a reader with Decrypt on k2 alone
-- reads every labelled version; the unlabelled one stays under k1
SET ROLE regress_rk_owner;
SELECT update_secret('rk/a', kms_key_id => :'k2') ? 'ARN' AS rekeyed_to_k2;
RESET ROLE;
SET ROLE regress_rk_reader;
SELECT pg_temp.try($$SELECT get_secret('rk/a')$$, :'defkey') AS current;
SELECT pg_temp.try($$SELECT get_secret('rk/a', version_stage => 'AWSPREVIOUS')$$, :'defkey') AS previous;
SELECT pg_temp.try($$SELECT get_secret('rk/a', version_stage => 'MyLabel')$$, :'defkey') AS custom;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-default-aaaaaaaaaaaaaaaa')$$, :'defkey') AS unlabelled_default;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-k1-aaaaaaaaaaaaaaaaaaaaa')$$, :'defkey') AS unlabelled_k1;
RESET ROLE;
SET ROLE regress_rk_owner;
SELECT grant_id IS NOT NULL AS reader_may_decrypt_k1 FROM kms_create_grant(:'k1', 'regress_rk_reader', '{Decrypt}');
RESET ROLE;
SET ROLE regress_rk_reader;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-k1-aaaaaaaaaaaaaaaaaaaaa')$$, :'defkey') AS unlabelled_k1_with_grant;
RESET ROLE;

-- customer key k2 -> the default key: a version left under k1 still needs
-- Decrypt on k1; the secret's default key does not open it
SET ROLE regress_rk_owner;
SELECT update_secret('rk/a', kms_key_id => 'alias/pg_kms/secrets') ? 'ARN' AS rekeyed_to_default;
RESET ROLE;
SET ROLE regress_rk_nokey;
SELECT pg_temp.try($$SELECT get_secret('rk/a')$$, :'defkey') AS current;
SELECT pg_temp.try($$SELECT get_secret('rk/a', version_stage => 'MyLabel')$$, :'defkey') AS custom;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-k1-aaaaaaaaaaaaaaaaaaaaa')$$, :'defkey') AS unlabelled_k1;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-default-aaaaaaaaaaaaaaaa')$$, :'defkey') AS unlabelled_default;
RESET ROLE;
SELECT pg_temp.try($$SELECT get_secret('rk/a', 'rk-unlabelled-k1-aaaaaaaaaaaaaaaaaaaaa')$$, :'defkey') AS superuser_unlabelled_k1;

-- a disabled default key: the error does not name it
SET client_min_messages = error;
SELECT kms_disable_key(:'defkey');
RESET client_min_messages;
SET ROLE regress_rk_nokey;
SELECT pg_temp.try($$SELECT get_secret('rk/a')$$, :'defkey') AS default_key_disabled;
RESET ROLE;
SET ROLE regress_rk_owner;
SELECT pg_temp.try($$SELECT put_secret_value('rk/a', 'while disabled')::text$$, :'defkey') AS write_default_key_disabled;
RESET ROLE;
SET client_min_messages = error;
SELECT kms_enable_key(:'defkey');
RESET client_min_messages;
SET ROLE regress_rk_nokey;
SELECT pg_temp.try($$SELECT get_secret('rk/a')$$, :'defkey') AS default_key_enabled;
RESET ROLE;

-- clean up
SELECT count(*) AS deleted FROM (SELECT delete_secret(name, force_delete_without_recovery => true)
  FROM list_secrets(include_planned_deletion => true) WHERE name LIKE 'rk/%') d;
SELECT kms_schedule_key_deletion(:'k1', 7) IS NOT NULL AS k1_scheduled,
       kms_schedule_key_deletion(:'k2', 7) IS NOT NULL AS k2_scheduled;
-- pg_kms refuses DROP ROLE while its keys, secrets or grants name the role
-- (issue 11): REASSIGN OWNED and DROP OWNED hand them over first
REASSIGN OWNED BY regress_rk_owner, regress_rk_reader, regress_rk_nokey TO CURRENT_USER;
DROP OWNED BY regress_rk_owner, regress_rk_reader, regress_rk_nokey;
DROP ROLE regress_rk_owner, regress_rk_reader, regress_rk_nokey;
