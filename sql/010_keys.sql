-- CreateKey, DescribeKey, ListKeys, key states, deletion, descriptions, tags
SELECT kms_create_key(description => 'regress key') AS k \gset
SELECT :'k' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS key_id_is_uuid;

-- KeyMetadata with AWS's field names
SELECT d->>'KeyId' = :'k' AS key_id, d->>'Arn' = 'arn:aws:kms:local:' || (d->>'AWSAccountId') || ':key/' || :'k' AS arn,
       d->>'AWSAccountId' ~ '^[0-9]{12}$' AS account,
       d->'Enabled', d->>'KeyState', d->>'KeyUsage', d->>'KeySpec', d->>'CustomerMasterKeySpec',
       d->>'Origin', d->>'KeyManager', d->'EncryptionAlgorithms', d->'MultiRegion',
       d->>'Description', d ? 'DeletionDate' AS has_deletion_date,
       length(d->>'CurrentKeyMaterialId') AS material_id_len,
       (d->>'CreationDate')::timestamptz <= now() AS created
  FROM kms_describe_key(:'k') d;

-- every reference form: id, key ARN; aliases are in 020_aliases
SELECT kms_describe_key(kms_describe_key(:'k')->>'Arn')->>'KeyId' = :'k' AS by_arn;
SELECT regress_try($$SELECT kms_describe_key('00000000-0000-4000-8000-000000000000')::text$$);
SELECT regress_try($$SELECT kms_describe_key('not-a-key')::text$$);
SELECT regress_try($$SELECT kms_describe_key('')::text$$);
SELECT regress_try($$SELECT kms_describe_key(NULL)::text$$);
SELECT regress_try($$SELECT kms_describe_key('arn:aws:kms:local')::text$$);
SELECT regress_try($$SELECT kms_describe_key('arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab')::text$$);
SELECT regress_try($$SELECT kms_describe_key(repeat('x', 2049))::text$$);

-- CreateKey arguments
SELECT regress_try($$SELECT kms_create_key(key_usage => 'SIGN_VERIFY')$$);
SELECT regress_try($$SELECT kms_create_key(key_usage => 'BOGUS')$$);
SELECT regress_try($$SELECT kms_create_key(key_spec => 'RSA_2048')$$);
SELECT regress_try($$SELECT kms_create_key(key_spec => 'NOPE')$$);
SELECT regress_try($$SELECT kms_create_key(key_spec => 'HMAC_256')$$);
SELECT regress_try($$SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC')$$);
SELECT regress_try($$SELECT kms_create_key(description => repeat('d', 8193))$$);
SELECT regress_try($$SELECT kms_create_key(tags => '[{"TagKey":"aws:x","TagValue":"y"}]')$$);
SELECT regress_try($$SELECT kms_create_key(tags => '"scalar"')$$);
SELECT regress_try($$SELECT kms_create_key(tags => '[{"TagKey":"a"}]')$$);
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS hk \gset
SELECT d->>'KeyUsage', d->>'KeySpec', d->'MacAlgorithms', d ? 'EncryptionAlgorithms' AS has_enc_algs
  FROM kms_describe_key(:'hk') d;

-- ListKeys shows both
SELECT count(*) FILTER (WHERE key_id IN (:'k', :'hk')) AS listed,
       bool_and(key_arn = 'arn:aws:kms:local:' || (kms_describe_key(key_id)->>'AWSAccountId') || ':key/' || key_id) AS arns
  FROM kms_list_keys();

-- Disable / enable (idempotent as in AWS)
SELECT kms_disable_key(:'k');
SELECT kms_describe_key(:'k')->>'KeyState' AS state, kms_describe_key(:'k')->'Enabled' AS enabled;
SELECT kms_disable_key(:'k');
SELECT regress_try(format('SELECT encode(kms_encrypt(%L, %L::bytea), %L)', :'k', 'x', 'hex'));
SELECT kms_enable_key(:'k');
SELECT kms_enable_key(:'k');
SELECT kms_describe_key(:'k')->>'KeyState' AS state;

-- ScheduleKeyDeletion: 7..30 days, default 30; CancelKeyDeletion leaves it Disabled
SELECT regress_try(format('SELECT kms_schedule_key_deletion(%L, 6)::text', :'k'));
SELECT regress_try(format('SELECT kms_schedule_key_deletion(%L, 31)::text', :'k'));
SELECT s->>'KeyState' AS state, s->'PendingWindowInDays' AS days,
       s->>'KeyId' = kms_describe_key(:'k')->>'Arn' AS key_id_is_arn,
       ((s->>'DeletionDate')::timestamptz - now()) BETWEEN interval '29 days 23 hours' AND interval '30 days 1 hour' AS in_30_days
  FROM kms_schedule_key_deletion(:'k') s;
SELECT d->>'KeyState', d->'PendingDeletionWindowInDays', d ? 'DeletionDate' AS has_deletion_date, d->'Enabled'
  FROM kms_describe_key(:'k') d;
SELECT regress_try(format('SELECT kms_schedule_key_deletion(%L, 7)::text', :'k'));
SELECT regress_try(format('SELECT encode(kms_encrypt(%L, %L::bytea), %L)', :'k', 'x', 'hex'));
SELECT regress_try(format('SELECT kms_enable_key(%L)::text', :'k'));
SELECT regress_try(format('SELECT kms_disable_key(%L)::text', :'k'));
SELECT regress_try(format('SELECT kms_update_key_description(%L, %L)::text', :'k', 'new'));
SELECT regress_try(format('SELECT kms_tag_resource(%L, %L)::text', :'k', '{"a":"b"}'));
SELECT kms_cancel_key_deletion(:'k') = kms_describe_key(:'k')->>'Arn' AS returns_arn;
SELECT d->>'KeyState', d ? 'DeletionDate' AS has_deletion_date FROM kms_describe_key(:'k') d;
SELECT regress_try(format('SELECT kms_cancel_key_deletion(%L)', :'k'));
SELECT kms_enable_key(:'k');
SELECT s->'PendingWindowInDays' FROM kms_schedule_key_deletion(:'k', 7) s;
SELECT kms_cancel_key_deletion(:'k') IS NOT NULL AS cancelled;
SELECT kms_enable_key(:'k');

-- UpdateKeyDescription
SELECT kms_update_key_description(:'k', 'renamed');
SELECT kms_describe_key(:'k')->>'Description';
SELECT regress_try(format('SELECT kms_update_key_description(%L, repeat(%L, 8193))::text', :'k', 'x'));
SELECT regress_try(format('SELECT kms_update_key_description(%L, NULL)::text', :'k'));

-- Tags: AWS list form and object form; limits and reserved prefix
SELECT kms_tag_resource(:'k', '[{"TagKey":"env","TagValue":"prod"},{"TagKey":"team","TagValue":"db"}]');
SELECT kms_tag_resource(:'k', '{"env":"staging","owner":""}');
SELECT * FROM kms_list_resource_tags(:'k');
SELECT kms_untag_resource(:'k', ARRAY['team', 'absent']);
SELECT * FROM kms_list_resource_tags(:'k');
SELECT regress_try(format('SELECT kms_tag_resource(%L, %L)::text', :'k', '{"aws:reserved":"x"}'));
SELECT regress_try(format('SELECT kms_tag_resource(%L, %L)::text', :'k', jsonb_build_object(repeat('k', 129), 'v')));
SELECT regress_try(format('SELECT kms_tag_resource(%L, %L)::text', :'k', jsonb_build_object('k', repeat('v', 257))));
SELECT regress_try(format('SELECT kms_tag_resource(%L, %L)::text', :'k',
	(SELECT jsonb_object_agg('t' || i, 'v') FROM generate_series(1, 49) i)));
SELECT regress_try(format('SELECT kms_tag_resource(%L, NULL)::text', :'k'));
SELECT kms_create_key(tags => '{"a":"1"}') AS tk \gset
SELECT * FROM kms_list_resource_tags(:'tk');
