-- CreateAlias, UpdateAlias, DeleteAlias, ListAliases; alias rules as AWS
SELECT kms_create_key(description => 'alias target 1') AS k1 \gset
SELECT kms_create_key(description => 'alias target 2') AS k2 \gset
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS hk \gset

SELECT kms_create_alias('alias/regress/app', :'k1');
SELECT kms_describe_key('alias/regress/app')->>'KeyId' = :'k1' AS by_alias;
SELECT kms_describe_key('arn:aws:kms:local:' || (kms_describe_key(:'k1')->>'AWSAccountId') || ':alias/regress/app')->>'KeyId' = :'k1' AS by_alias_arn;
SELECT regress_try(format('SELECT kms_describe_key(%L)::text', 'arn:aws:kms:us-east-1:' || (kms_describe_key(:'k1')->>'AWSAccountId') || ':alias/regress/app'));

-- name rules
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/regress/app', :'k2'));
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'regress/app', :'k2'));
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/', :'k2'));
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/aws/s3', :'k2'));
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/has space', :'k2'));
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/' || repeat('a', 251), :'k2'));
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/' || repeat('a', 250), :'k2'));
SELECT regress_try(format('SELECT kms_create_alias(NULL, %L)::text', :'k2'));
SELECT regress_try($$SELECT kms_create_alias('alias/x', '00000000-0000-4000-8000-000000000000')::text$$);
-- ':' is outside AWS's documented rule since 1.2 (issue 15): ValidationException
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/Mixed:Chars_ok-1/2', :'k2'));
SELECT kms_create_alias('alias/Mixed_Chars_ok-1/2', :'k2');

-- an alias on a key pending deletion cannot be created
SELECT kms_create_key() AS kd \gset
SELECT (kms_schedule_key_deletion(:'kd'))->>'KeyState';
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/regress/doomed', :'kd'));

-- UpdateAlias: same key usage only; target must exist
SELECT kms_update_alias('alias/regress/app', :'k2');
SELECT kms_describe_key('alias/regress/app')->>'KeyId' = :'k2' AS moved;
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/regress/app', :'hk'));
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/regress/none', :'k1'));
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/regress/app', :'kd'));

-- ListAliases, all and per key
SELECT alias_name, target_key_id = :'k2' AS to_k2, alias_arn LIKE 'arn:aws:kms:local:%:' || alias_name AS arn_ok,
       last_updated_date >= creation_date AS dates
  FROM kms_list_aliases() WHERE alias_name LIKE 'alias/regress/%' OR alias_name LIKE 'alias/Mixed%' ORDER BY 1;
SELECT count(*) AS aliases_of_k1 FROM kms_list_aliases(:'k1');
SELECT count(*) AS aliases_of_k2 FROM kms_list_aliases(:'k2');

-- DeleteAlias
SELECT kms_delete_alias('alias/Mixed_Chars_ok-1/2');
SELECT regress_try($$SELECT kms_delete_alias('alias/Mixed_Chars_ok-1/2')::text$$);
SELECT regress_try($$SELECT kms_describe_key('alias/Mixed_Chars_ok-1/2')::text$$);
SELECT regress_try($$SELECT kms_delete_alias('nope')::text$$);

-- one key, many aliases; an alias can be reused after deletion
SELECT kms_create_alias('alias/regress/second', :'k2');
SELECT count(*) FROM kms_list_aliases(:'k2');
SELECT kms_delete_alias('alias/regress/second');
SELECT kms_create_alias('alias/regress/second', :'k1');
SELECT kms_describe_key('alias/regress/second')->>'KeyId' = :'k1' AS reused;

-- encrypt through an alias, decrypt naming the key by alias ARN
SELECT kms_decrypt_text(kms_encrypt('alias/regress/app', 'via alias'),
	key_id => 'arn:aws:kms:local:' || (kms_describe_key(:'k1')->>'AWSAccountId') || ':alias/regress/app');
