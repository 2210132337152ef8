-- Issue 15, item 8: calls that fail for reasons other than a denial are
-- audit events (outcome: the AWS exception name), recorded once, and kept
-- when the transaction rolls back; the list and GetKeyRotationStatus calls
-- are audit events too.
SELECT fid_audit_wait($$(SELECT state = 'running' AND pid IS NOT NULL FROM kms_worker_status() WHERE worker = 'audit')$$) AS worker_running;
SELECT kms_create_key(description => 'fid audit') AS k \gset
SELECT kms_encrypt(:'k', 'x'::bytea, '{"a":"1"}') AS c \gset
SELECT set_config('fid.audit_since', clock_timestamp()::text, false) IS NOT NULL AS since_set;

-- a validation error, a bad ciphertext (wrong context), a disabled key, a
-- dry run; one inside a transaction that rolls back
SELECT fid_try(format('SELECT kms_generate_data_key(%L, %L, 7)::text', :'k', 'AES_256'));
SELECT fid_try(format('SELECT kms_decrypt(%L, %L)::text', :'c', '{"a":"2"}'));
BEGIN;
SELECT kms_disable_key(:'k');
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'k', 'y'));
ROLLBACK;
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, dry_run => true)::text', :'k', 'y'));
SELECT fid_try($$SELECT kms_create_alias('alias/bad:name', 'alias/none')::text$$);
SELECT fid_try($$SELECT kms_generate_random(0)::text$$);
-- a denial is one event, not two
SET ROLE fid_other;
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'k', 'y'));
RESET ROLE;
-- reads
SELECT count(*) > 0 AS keys FROM kms_list_keys();
SELECT count(*) AS aliases FROM kms_list_aliases(:'k');
SELECT count(*) AS grants FROM kms_list_grants(:'k');
SELECT count(*) AS retirable FROM kms_list_retirable_grants();
SELECT count(*) AS tags FROM kms_list_resource_tags(:'k');
SELECT count(*) AS rotations FROM kms_list_key_rotations(:'k');
SELECT kms_get_key_rotation_status(:'k')->>'KeyRotationEnabled' AS rotation_enabled;
-- Secrets Manager entry points go through the same mechanism
SELECT fid_try($$SELECT describe_secret('fid/absent')::text$$);
SELECT fid_try($$SELECT get_random_password(0)::text$$);
SELECT fid_try($$SELECT kms_encrypt('alias/fid/last', 'x'::bytea)::text$$);

SELECT fid_audit_wait($$EXISTS (SELECT 1 FROM kms.audit WHERE operation = 'Encrypt' AND resource_id = 'alias/fid/last')$$) AS drained;
SELECT operation, regexp_replace(coalesce(resource_id, '-'), '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>') AS resource,
       outcome, event_count
  FROM kms.audit
 WHERE event_time >= current_setting('fid.audit_since')::timestamptz AND outcome <> 'success'
 ORDER BY event_time, operation;
SELECT operation, count(*) AS events
  FROM kms.audit
 WHERE event_time >= current_setting('fid.audit_since')::timestamptz AND outcome = 'success'
   AND operation IN ('ListKeys', 'ListAliases', 'ListGrants', 'ListRetirableGrants', 'ListResourceTags',
                     'ListKeyRotations', 'GetKeyRotationStatus')
 GROUP BY operation ORDER BY operation;
-- the resource of a failed call is the key named, or the key of the blob
SELECT count(*) FILTER (WHERE resource_id = :'k') AS failures_on_the_key
  FROM kms.audit
 WHERE event_time >= current_setting('fid.audit_since')::timestamptz AND outcome <> 'success';
