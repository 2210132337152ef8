--
-- Secrets store (AWS Secrets Manager): create, read, versions and staging
-- labels, idempotency, limits, deletion, tags, listing, passwords.
-- Nothing printed here varies between runs: ids, ARNs and dates are
-- checked by pattern.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set VERBOSITY terse

-- errors whose message names something random: SQLSTATE and AWS name only
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || split_part(SQLERRM, ':', 1);
END $$;

-- CreateSecret ------------------------------------------------------------
SELECT r ? 'ARN' AND r ? 'Name' AND r ? 'VersionId' AS has_fields,
       r->>'ARN' ~ '^arn:aws:secretsmanager:[^:]+:[0-9]{12}:secret:app/db-[A-Za-z0-9]{6}$' AS arn_ok,
       r->>'Name' AS name,
       r->>'VersionId' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS version_is_uuid
  FROM create_secret('app/db', '{"username":"app","password":"s3cr3t"}',
                     description => 'database credentials') r;

-- the default key was created on first use, owned by the extension owner
SELECT count(*) AS default_aliases FROM kms.alias WHERE alias_name = 'alias/pg_kms/secrets';
SELECT k.description, k.key_state, k.owner = e.extowner::regrole AS owned_by_extension_owner
  FROM kms.alias a JOIN kms.key k USING (key_id), pg_extension e
 WHERE a.alias_name = 'alias/pg_kms/secrets' AND e.extname = 'pg_kms';

-- only ciphertext is stored
SELECT value_type, position('s3cr3t'::bytea IN ciphertext) = 0 AS no_plaintext
  FROM kms.secret_version v JOIN kms.secret s USING (secret_id) WHERE s.name = 'app/db';

SELECT get_secret('app/db');
SELECT get_secret('app/db')::jsonb ->> 'password' AS password;
SELECT describe_secret('app/db')->>'ARN' AS arn \gset
SELECT get_secret(:'arn') AS by_arn;

-- a secret without a value has no version yet
SELECT create_secret('app/empty') ? 'VersionId' AS has_version;
SELECT get_secret('app/empty');
SELECT put_secret_value('app/empty', 'first')->'VersionStages' AS stages;
SELECT get_secret('app/empty');

-- binary values
SELECT create_secret('app/bin', secret_binary => '\x00ff10'::bytea) ? 'VersionId' AS created;
SELECT get_secret('app/bin') IS NULL AS no_secret_string;
SELECT r->>'SecretBinary' AS secret_binary, r ? 'SecretString' AS has_string
  FROM get_secret_value('app/bin') r;

-- argument errors
SELECT create_secret('app/db', 'x');
SELECT create_secret('', 'x');
SELECT create_secret('bad name!', 'x');
SELECT create_secret(repeat('n', 513), 'x');
SELECT create_secret('app/both', 'x', '\x01'::bytea);
SELECT create_secret('app/emptystr', '');
SELECT create_secret('app/big', repeat('x', 65537));
SELECT create_secret('app/short-token', 'x', client_request_token => 'too-short');
SELECT create_secret('app/desc', 'x', description => repeat('d', 2049));
SELECT create_secret('app/tags', 'x', tags => '[{"Key":"aws:x","Value":"v"}]');
SELECT create_secret('app/tags', 'x', tags => '[{"TagKey":"a","TagValue":"v"}]');
SELECT create_secret('app/tags', 'x', tags => '"scalar"');
SELECT pg_temp.err($$SELECT create_secret('app/nokey', 'x', kms_key_id => 'alias/does-not-exist')$$);
-- the limits themselves are allowed
SELECT create_secret(repeat('n', 512), 'x') ? 'ARN' AS name_512_ok;
SELECT create_secret('app/big', repeat('x', 65536)) ? 'ARN' AS value_64k_ok;
SELECT length(get_secret('app/big')) AS big_length;

-- GetSecretValue ----------------------------------------------------------
SELECT array(SELECT jsonb_object_keys(get_secret_value('app/db')) ORDER BY 1) AS fields;
SELECT r->'VersionStages' AS stages, r->>'CreatedDate' ~ '^\d{4}-\d\d-\d\dT' AS iso_date
  FROM get_secret_value('app/db') r;
SELECT get_secret('app/missing');
SELECT get_secret('app/db', version_stage => 'AWSPENDING');
SELECT get_secret('app/db', version_id => 'short');
SELECT get_secret('app/db', version_id => '00000000-0000-4000-8000-000000000000');
SELECT get_secret('app/db', version_stage => '');
SELECT get_secret('');
SELECT get_secret(NULL);

-- PutSecretValue, labels, idempotency -------------------------------------
SELECT create_secret('app/labels', 'v1', client_request_token => 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')->>'VersionId' AS v1;
SELECT put_secret_value('app/labels', 'v2', client_request_token => 'token-v2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') - 'ARN' AS put_v2;
SELECT get_secret('app/labels') AS current, get_secret('app/labels', version_stage => 'AWSPREVIOUS') AS previous;
-- same token, same value: nothing new
SELECT put_secret_value('app/labels', 'v2', client_request_token => 'token-v2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')->>'VersionId' AS same;
SELECT count(*) AS versions FROM list_secret_version_ids('app/labels', true);
-- same token, another value: ResourceExistsException
SELECT put_secret_value('app/labels', 'other', client_request_token => 'token-v2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
-- AWSPENDING does not touch AWSCURRENT
SELECT put_secret_value('app/labels', 'v3', version_stages => '{AWSPENDING}',
                        client_request_token => 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')->'VersionStages' AS stages;
SELECT get_secret('app/labels') AS current, get_secret('app/labels', version_stage => 'AWSPENDING') AS pending;
SELECT get_secret('app/labels', 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'AWSPENDING') AS both_match;
SELECT get_secret('app/labels', 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'AWSCURRENT');
SELECT version_id, version_stages FROM list_secret_version_ids('app/labels') ORDER BY version_id;
-- moving AWSCURRENT needs the version that has it
SELECT update_secret_version_stage('app/labels', 'AWSCURRENT',
                                   move_to_version_id => 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT update_secret_version_stage('app/labels', 'AWSCURRENT',
                                   remove_from_version_id => 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
                                   move_to_version_id => 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT update_secret_version_stage('app/labels', 'AWSCURRENT',
                                   remove_from_version_id => 'token-v2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
                                   move_to_version_id => 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') ? 'ARN' AS moved;
-- AWSPREVIOUS followed; v1 lost its label (deprecated)
SELECT version_id, version_stages FROM list_secret_version_ids('app/labels') ORDER BY version_id;
SELECT version_id, version_stages FROM list_secret_version_ids('app/labels', include_deprecated => true) ORDER BY version_id;
SELECT get_secret('app/labels') AS current, get_secret('app/labels', version_stage => 'AWSPREVIOUS') AS previous;
-- exactly one AWSCURRENT
SELECT count(*) AS awscurrent FROM kms.secret_stage st JOIN kms.secret s USING (secret_id)
 WHERE s.name = 'app/labels' AND st.stage = 'AWSCURRENT';
-- a deprecated version is still readable by id
SELECT get_secret('app/labels', 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') AS deprecated_v1;
-- removing labels
SELECT update_secret_version_stage('app/labels', 'AWSCURRENT',
                                   remove_from_version_id => 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT update_secret_version_stage('app/labels', 'AWSPENDING',
                                   remove_from_version_id => 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT update_secret_version_stage('app/labels', 'AWSPENDING',
                                   remove_from_version_id => 'token-v3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') ? 'ARN' AS removed;
SELECT update_secret_version_stage('app/labels', 'AWSPENDING');
SELECT update_secret_version_stage('app/labels', 'MYLABEL',
                                   move_to_version_id => 'token-zz-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT update_secret_version_stage('app/labels', repeat('L', 257),
                                   move_to_version_id => 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
-- custom labels; at most 20 per version
SELECT update_secret_version_stage('app/labels', 'MYLABEL',
                                   move_to_version_id => 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') ? 'ARN' AS labelled;
SELECT get_secret('app/labels', version_stage => 'MYLABEL') AS mylabel;
SELECT put_secret_value('app/labels', 'v4', version_stages => (SELECT array_agg('L' || i) FROM generate_series(1, 21) i));
SELECT put_secret_value('app/labels', 'v4', version_stages => '{}');
SELECT put_secret_value('app/labels', 'v4', version_stages => '{AWSPENDING,NULL}');
DO $$
BEGIN
	FOR i IN 1..19 LOOP
		PERFORM update_secret_version_stage('app/labels', 'L' || i,
			move_to_version_id => 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
	END LOOP;
END $$;
SELECT update_secret_version_stage('app/labels', 'L20',
                                   move_to_version_id => 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT put_secret_value('app/labels', NULL);
SELECT put_secret_value('app/labels', 'x', '\x01'::bytea);
SELECT put_secret_value('app/missing', 'x');

-- the first version gets AWSCURRENT even if other labels were asked for
SELECT create_secret('app/first') ? 'ARN' AS created;
SELECT put_secret_value('app/first', 'p', version_stages => '{AWSPENDING}')->'VersionStages' AS stages;

-- UpdateSecret ------------------------------------------------------------
SELECT update_secret('app/db', description => 'new description') ? 'VersionId' AS new_version;
SELECT describe_secret('app/db')->>'Description' AS description;
SELECT update_secret('app/db', '{"username":"app","password":"n3w"}') ? 'VersionId' AS new_version;
SELECT get_secret('app/db')::jsonb->>'password' AS current,
       get_secret('app/db', version_stage => 'AWSPREVIOUS')::jsonb->>'password' AS previous;
-- a token without a value is accepted and ignored (AWS SDKs send one on every call)
SELECT update_secret('app/db', client_request_token => 'token-u1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') - 'ARN' AS updated;
SELECT update_secret('app/db', description => repeat('d', 2049));

-- A customer key: Encrypt to write, Decrypt to read, re-encryption -----------
SELECT kms_create_key(description => 'regress secrets key') AS cmk \gset
SELECT create_secret('app/cmk', 'under a customer key', kms_key_id => :'cmk') ? 'ARN' AS created;
SELECT describe_secret('app/cmk')->>'KmsKeyId' = :'cmk' AS kms_key_id_shown,
       describe_secret('app/db') ? 'KmsKeyId' AS default_key_shown;
SELECT get_secret('app/cmk');
SELECT update_secret('app/db', kms_key_id => :'cmk') ? 'ARN' AS rekeyed;
SELECT count(*) FILTER (WHERE k.key_id = :'cmk'::uuid) AS under_cmk, count(*) AS labelled
  FROM kms.secret s JOIN kms.secret_version v USING (secret_id)
  JOIN kms.key k ON k.key_id = (SELECT key_id FROM kms.alias WHERE alias_name = 'alias/pg_kms/secrets') OR k.key_id = :'cmk'::uuid
 WHERE s.name = 'app/db' AND EXISTS (SELECT 1 FROM kms.secret_stage st WHERE st.secret_id = v.secret_id AND st.version_id = v.version_id)
   AND substring(v.ciphertext FROM 2 FOR 16) = decode(replace(k.key_id::text, '-', ''), 'hex');
SELECT get_secret('app/db')::jsonb->>'password' AS current,
       get_secret('app/db', version_stage => 'AWSPREVIOUS')::jsonb->>'password' AS previous;
SELECT update_secret('app/db', kms_key_id => 'alias/pg_kms/secrets') ? 'ARN' AS back_to_default;
SELECT get_secret('app/db')::jsonb->>'password' AS current;
-- a disabled key: DecryptionFailure on read, EncryptionFailure on write
SELECT kms_disable_key(:'cmk');
SELECT pg_temp.err($$SELECT get_secret('app/cmk')$$) AS read;
SELECT pg_temp.err($$SELECT put_secret_value('app/cmk', 'x')$$) AS write;
SELECT pg_temp.err(format('SELECT create_secret(%L, %L, kms_key_id => %L)', 'app/cmk2', 'x', :'cmk')) AS create;
SELECT kms_enable_key(:'cmk');
SELECT get_secret('app/cmk');
-- a ciphertext that was altered: DecryptionFailure, never wrong plaintext
BEGIN;
UPDATE kms.secret_version v SET ciphertext = set_byte(ciphertext, length(ciphertext) - 1,
                                                    get_byte(ciphertext, length(ciphertext) - 1) # 1)
  FROM kms.secret s WHERE s.secret_id = v.secret_id AND s.name = 'app/cmk';
-- (by ARN: a cached read would not see a change made behind the API's back)
SELECT pg_temp.err(format('SELECT get_secret(%L)', describe_secret('app/cmk')->>'ARN')) AS tampered;
ROLLBACK;
-- the ciphertext is bound to its secret and version (encryption context)
BEGIN;
UPDATE kms.secret_version v SET ciphertext = (SELECT ciphertext FROM kms.secret_version v2 JOIN kms.secret s2 USING (secret_id)
                                                 WHERE s2.name = 'app/labels' AND v2.version_id = 'token-v2-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')
  FROM kms.secret s WHERE s.secret_id = v.secret_id AND s.name = 'app/labels' AND v.version_id = 'token-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
SELECT pg_temp.err($$SELECT get_secret('app/labels', version_stage => 'MYLABEL')$$) AS swapped;
ROLLBACK;

-- DescribeSecret ----------------------------------------------------------
SELECT create_secret('app/desc', 'x', description => 'Desc', tags => '[{"Key":"env","Value":"prod"},{"Key":"team","Value":"db"}]') ? 'ARN' AS created;
SELECT array(SELECT jsonb_object_keys(describe_secret('app/desc')) ORDER BY 1) AS fields;
SELECT d->'Tags' AS tags, d->'RotationEnabled' AS rotation_enabled, d->>'Description' AS description,
       jsonb_typeof(d->'VersionIdsToStages') AS versions_to_stages,
       d->>'CreatedDate' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d' AS created_iso
  FROM describe_secret('app/desc') d;
SELECT describe_secret('app/missing');

-- TagResource, UntagResource ----------------------------------------------
SELECT tag_resource('app/desc', '{"owner":"alice","env":"test"}');
SELECT describe_secret('app/desc')->'Tags' AS tags;
SELECT untag_resource('app/desc', '{owner,nosuch}');
SELECT describe_secret('app/desc')->'Tags' AS tags;
SELECT tag_resource('app/desc', (SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 49) i));
SELECT tag_resource('app/desc', '[{"Key":"","Value":"v"}]');
SELECT tag_resource('app/desc', NULL);
SELECT untag_resource('app/desc', '{NULL}');

-- ListSecrets -------------------------------------------------------------
SELECT name FROM list_secrets() WHERE name LIKE 'app/%' AND length(name) < 100 ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"name","Values":["app/d"]}]') ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"name","Values":["APP/D"]}]') ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"name","Values":["app/","!app/l","!app/e"]}, {"Key":"name","Values":["app/b","app/c"]}]') ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"description","Values":["NEW"]}]') ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"tag-key","Values":["en"]}]') ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"tag-value","Values":["tes"]}]') ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"all","Values":["TEST"]}]') ORDER BY name;
SELECT name FROM list_secrets('[{"Key":"primary-region","Values":["x"]}]') ORDER BY name;
SELECT name, tags, secret_versions_to_stages IS NOT NULL AS has_versions
  FROM list_secrets('[{"Key":"name","Values":["app/desc"]}]');
SELECT name FROM list_secrets('[{"Key":"color","Values":["x"]}]');
SELECT name FROM list_secrets('{"Key":"name"}');
SELECT name FROM list_secrets('[{"Key":"name","Values":[]}]');
SELECT name FROM list_secrets(sort_order => 'sideways');
SELECT (array_agg(name))[1] AS first_desc FROM list_secrets('[{"Key":"name","Values":["app/d","app/b"]}]', sort_order => 'desc');

-- DeleteSecret, RestoreSecret ----------------------------------------------
SELECT delete_secret('app/first', recovery_window_in_days => 6);
SELECT delete_secret('app/first', recovery_window_in_days => 31);
SELECT delete_secret('app/first', recovery_window_in_days => 7, force_delete_without_recovery => true);
SELECT r->>'Name' AS name, (r->>'DeletionDate')::timestamptz - now() AS window
  FROM delete_secret('app/first', recovery_window_in_days => 7) r;
SELECT delete_secret('app/first');
SELECT get_secret('app/first');
SELECT get_secret_value('app/first');
SELECT put_secret_value('app/first', 'x');
SELECT update_secret('app/first', description => 'x');
SELECT update_secret_version_stage('app/first', 'X', move_to_version_id => repeat('a', 32));
SELECT tag_resource('app/first', '{"a":"b"}');
SELECT create_secret('app/first', 'x');
SELECT describe_secret('app/first') ? 'DeletedDate' AS has_deleted_date;
SELECT count(*) AS listed FROM list_secrets('[{"Key":"name","Values":["app/first"]}]');
SELECT count(*) AS listed_with_planned, bool_and(deleted_date IS NOT NULL) AS deleted
  FROM list_secrets('[{"Key":"name","Values":["app/first"]}]', include_planned_deletion => true);
SELECT restore_secret('app/first') - 'ARN' AS restored;
SELECT describe_secret('app/first') ? 'DeletedDate' AS has_deleted_date;
SELECT get_secret('app/first');
SELECT delete_secret('app/first', force_delete_without_recovery => true) - 'ARN' - 'DeletionDate' AS forced;
SELECT get_secret('app/first');
SELECT count(*) AS versions_left FROM kms.secret_version v WHERE NOT EXISTS (SELECT 1 FROM kms.secret s WHERE s.secret_id = v.secret_id);
-- a forced delete of a missing secret is not an error (AWS)
SELECT delete_secret('app/never', force_delete_without_recovery => true)->>'Name' AS name;
SELECT restore_secret('app/never');
-- the name is free again
SELECT create_secret('app/first', 'again') ? 'ARN' AS recreated;
SELECT get_secret('app/first');
-- a name whose recovery window has passed is purged on the next CreateSecret
SELECT delete_secret('app/first', recovery_window_in_days => 7) ? 'ARN' AS scheduled;
UPDATE kms.secret SET deletion_date = now() - interval '1 second' WHERE name = 'app/first';
SELECT create_secret('app/first', 'third') ? 'ARN' AS recreated_after_window;
SELECT get_secret('app/first');

-- Version pruning: labelless versions beyond 100, older than 24 hours ------
SELECT create_secret('app/many', 'v0') ? 'ARN' AS created;
DO $$
BEGIN
	FOR i IN 1..101 LOOP
		PERFORM put_secret_value('app/many', 'v' || i);
	END LOOP;
END $$;
SELECT count(*) AS versions FROM list_secret_version_ids('app/many', include_deprecated => true);
UPDATE kms.secret_version v SET created_date = v.created_date - interval '2 days'
  FROM kms.secret s WHERE s.secret_id = v.secret_id AND s.name = 'app/many';
SELECT put_secret_value('app/many', 'v102') ? 'VersionId' AS put;
SELECT count(*) AS versions, count(*) FILTER (WHERE cardinality(version_stages) > 0) AS labelled
  FROM list_secret_version_ids('app/many', include_deprecated => true);
SELECT get_secret('app/many') AS current, get_secret('app/many', version_stage => 'AWSPREVIOUS') AS previous;

-- BatchGetSecretValue -----------------------------------------------------
SELECT jsonb_array_length(r->'SecretValues') AS values, r->'Errors'->0->>'ErrorCode' AS error,
       r->'Errors'->0->>'SecretId' AS secret_id, r ? 'NextToken' AS has_next
  FROM batch_get_secret_value(ARRAY['app/db', 'app/labels', 'app/nope']) r;
SELECT array(SELECT v->>'Name' FROM jsonb_array_elements(r->'SecretValues') v) AS names, r->>'NextToken' AS next
  FROM batch_get_secret_value(filters => '[{"Key":"name","Values":["app/"]}]', max_results => 3) r;
SELECT array(SELECT v->>'Name' FROM jsonb_array_elements(r->'SecretValues') v) AS names, r->>'NextToken' AS next
  FROM batch_get_secret_value(filters => '[{"Key":"name","Values":["app/"]}]', max_results => 3, next_token => 'pgkms1:3') r;
SELECT batch_get_secret_value(filters => '[{"Key":"name","Values":["app/"]}]', next_token => 'garbage');
SELECT batch_get_secret_value(filters => '[{"Key":"name","Values":["app/"]}]', max_results => 21);
SELECT batch_get_secret_value(ARRAY['app/db'], '[{"Key":"name","Values":["app/"]}]');
SELECT batch_get_secret_value();
SELECT batch_get_secret_value((SELECT array_agg('s' || i) FROM generate_series(1, 21) i));
SELECT batch_get_secret_value(ARRAY['app/db'], max_results => 5);

-- GetRandomPassword -------------------------------------------------------
SELECT length(p) AS len, p ~ '[A-Z]' AND p ~ '[a-z]' AND p ~ '[0-9]' AND p ~ '[^A-Za-z0-9]' AS each_type,
       p !~ ' ' AS no_space
  FROM get_random_password() p;
SELECT p ~ '^[a-z]{20}$' AS only_lower
  FROM get_random_password(20, exclude_numbers => true, exclude_punctuation => true, exclude_uppercase => true) p;
SELECT length(p) = 4096 AND p ~ '^[0-9]+$' AS digits_4096
  FROM get_random_password(4096, exclude_punctuation => true, exclude_uppercase => true, exclude_lowercase => true) p;
SELECT bool_and(p !~ '[abc123]') AS excluded
  FROM (SELECT get_random_password(64, exclude_characters => 'abc123') p FROM generate_series(1, 20)) s;
SELECT bool_or(p ~ ' ') AS space_seen
  FROM (SELECT get_random_password(64, include_space => true) p FROM generate_series(1, 20)) s;
SELECT bool_and(p ~ '[A-Z]' AND p ~ '[a-z]' AND p ~ '[0-9]' AND p ~ '[^A-Za-z0-9]') AS four_of_four
  FROM (SELECT get_random_password(4) p FROM generate_series(1, 200)) s;
SELECT length(get_random_password(1, require_each_included_type => false)) AS len1;
SELECT count(DISTINCT get_random_password()) AS distinct_of_50 FROM generate_series(1, 50);
SELECT get_random_password(0);
SELECT get_random_password(4097);
SELECT get_random_password(3);
SELECT get_random_password(exclude_numbers => true, exclude_punctuation => true, exclude_uppercase => true, exclude_lowercase => true);
SELECT get_random_password(exclude_characters => repeat('x', 4097));

-- A read-only transaction (and a standby) reads but does not write --------
BEGIN READ ONLY;
SELECT get_secret('app/empty');
SELECT put_secret_value('app/empty', 'x');
ROLLBACK;

-- This session's cache follows its own writes -------------------------------
SELECT get_secret('app/empty');
SELECT put_secret_value('app/empty', 'second') ? 'VersionId' AS put;
SELECT get_secret('app/empty');
BEGIN;
SELECT put_secret_value('app/empty', 'rolled back') ? 'VersionId' AS put;
SELECT get_secret('app/empty');
ROLLBACK;
SELECT get_secret('app/empty');

-- clean up
SELECT count(*) AS deleted FROM (SELECT delete_secret(name, force_delete_without_recovery => true)
  FROM list_secrets(include_planned_deletion => true)) d;
