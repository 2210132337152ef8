-- Access control: kms_admin, owners, grants; AccessDeniedException (42501)
-- reveals nothing, not even whether a key exists.
SELECT kms_create_key(description => 'granted') AS k \gset
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS hk \gset
SELECT kms_create_alias('alias/regress/granted', :'k');
SELECT kms_encrypt(:'k', 'secret data'::bytea) AS c \gset
SELECT set_config('regress.k', :'k', false) IS NOT NULL, set_config('regress.c', :'c', false) IS NOT NULL;

-- a role with no grant: denied for existing and missing keys alike
SET ROLE regress_app;
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'k', 'x'));
SELECT regress_try($$SELECT kms_encrypt('00000000-0000-4000-8000-000000000000', 'x'::bytea)::text$$);
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', 'alias/regress/granted', 'x'));
SELECT regress_try($$SELECT kms_encrypt('alias/regress/absent', 'x'::bytea)::text$$);
SELECT regress_try(format('SELECT kms_decrypt(%L)::text', :'c'));
SELECT regress_try(format('SELECT kms_describe_key(%L)::text', :'k'));
SELECT regress_try($$SELECT kms_describe_key('00000000-0000-4000-8000-000000000000')::text$$);
SELECT regress_try(format('SELECT kms_disable_key(%L)::text', :'k'));
SELECT regress_try(format('SELECT kms_schedule_key_deletion(%L)::text', :'k'));
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/regress/mine', :'k'));
SELECT regress_try(format('SELECT kms_delete_alias(%L)::text', 'alias/regress/granted'));
SELECT regress_try(format('SELECT count(*)::text FROM kms_list_grants(%L)', :'k'));
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', :'k', 'regress_app', 'Decrypt'));
SELECT regress_try($$SELECT kms_create_key()$$);
SELECT regress_try($$SELECT kms_rotate_master_key('/nonexistent')::text$$);
SELECT count(*) AS keys_visible FROM kms_list_keys();
SELECT count(*) AS aliases_visible FROM kms_list_aliases();
SELECT count(*) AS view_rows FROM kms.keys;
SELECT regress_try('SELECT count(*)::text FROM kms.key');
SELECT regress_try('SELECT count(*)::text FROM kms.key_version');
SELECT length(kms_generate_random(8)) AS random_needs_no_key;
RESET ROLE;

-- kms_admin: creates and manages keys, describes them, but may not use others' keys
SET ROLE regress_kms_admin;
SELECT kms_create_key(description => 'admin owned') IS NOT NULL AS admin_creates;
SELECT kms_describe_key(current_setting('regress.k'))->>'KeyState' AS admin_describes;
SELECT regress_try($$SELECT kms_describe_key('00000000-0000-4000-8000-000000000000')::text$$);
SELECT regress_try(format('SELECT kms_decrypt(%L)::text', current_setting('regress.c')));
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', current_setting('regress.k'), 'x'));
SELECT kms_disable_key(current_setting('regress.k'));
SELECT kms_enable_key(current_setting('regress.k'));
RESET ROLE;

-- grants: exactly the listed operations, for the grantee and its members
SELECT (kms_create_grant(:'k', 'regress_app', ARRAY['Encrypt', 'DescribeKey'])).grant_id AS g1 \gset
SELECT (kms_create_grant(:'k', 'regress_group', ARRAY['Decrypt'])).grant_id AS g2 \gset
SELECT length(:'g1') AS grant_id_len;
-- KeyId is the key ARN, IssuingAccount arn:aws:iam::<account>:root (AWS's ListGrants example; issue 15)
SELECT key_id = kms_describe_key(:'k')->>'Arn' AS key, grantee_principal, operations, name, retiring_principal,
       issuing_account ~ '^arn:aws:iam::[0-9]{12}:root$' AS account
  FROM kms_list_grants(:'k') ORDER BY grantee_principal;
SET ROLE regress_app;
SELECT length(kms_encrypt(current_setting('regress.k'), 'by grant'::bytea)) > 0 AS app_encrypts;
SELECT length(kms_encrypt('alias/regress/granted', 'by grant'::bytea)) > 0 AS app_encrypts_by_alias;
SELECT kms_describe_key(current_setting('regress.k'))->>'KeyState' AS app_describes;
SELECT regress_try(format('SELECT kms_decrypt(%L)::text', current_setting('regress.c')));
SELECT regress_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L, %L)', current_setting('regress.k'), 'AES_256'));
SELECT count(*) AS keys_visible FROM kms_list_keys();
SELECT count(*) AS view_rows FROM kms.keys;
RESET ROLE;
SET ROLE regress_other;	-- member of regress_group
SELECT kms_decrypt(current_setting('regress.c')::bytea) AS member_decrypts;
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', current_setting('regress.k'), 'x'));
SELECT regress_try(format('SELECT kms_describe_key(%L)::text', current_setting('regress.k')));
RESET ROLE;

-- revoking takes effect at once
SELECT kms_revoke_grant(:'k', :'g2');
SET ROLE regress_other;
SELECT regress_try(format('SELECT kms_decrypt(%L)::text', current_setting('regress.c')));
RESET ROLE;
SELECT regress_try(format('SELECT kms_revoke_grant(%L, %L)::text', :'k', :'g2'));
SELECT regress_try(format('SELECT kms_revoke_grant(%L, %L)::text', :'k', ''));

-- grant validation
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', :'k', 'regress_nobody', 'Decrypt'));
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', :'k', 'regress_app', 'Fly'));
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[]::text[])', :'k', 'regress_app'));
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', :'k', 'regress_app', 'GenerateMac'));
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', :'hk', 'regress_app', 'Decrypt'));
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, NULL)', :'k', 'regress_app'));

-- named grants are idempotent for identical parameters
SELECT (kms_create_grant(:'k', 'regress_app', ARRAY['Decrypt'], name => 'nightly')).grant_id AS n1 \gset
SELECT (kms_create_grant(:'k', 'regress_app', ARRAY['Decrypt'], name => 'nightly')).grant_id AS n2 \gset
SELECT :'n1' = :'n2' AS same_grant;
SELECT count(*) AS grants FROM kms_list_grants(:'k');

-- RetireGrant: by token (retiring principal), or by key and id
SELECT * FROM kms_create_grant(:'k', 'regress_other', ARRAY['Decrypt'], retiring_principal => 'regress_app') \gset
SET ROLE regress_other;
SELECT regress_try(format('SELECT kms_retire_grant(%L)::text', :'grant_token'));
RESET ROLE;
SET ROLE regress_app;
SELECT kms_retire_grant(:'grant_token');
SELECT regress_try(format('SELECT kms_retire_grant(%L)::text', :'grant_token'));
RESET ROLE;
SELECT regress_try('SELECT kms_retire_grant()::text');
SELECT kms_retire_grant(key_id => :'k', grant_id => :'n1');
SELECT count(*) AS grants FROM kms_list_grants(:'k');

-- a grantee holding CreateGrant may pass on only what it holds
SELECT grant_id IS NOT NULL FROM kms_create_grant(:'k', 'regress_app', ARRAY['CreateGrant']);
SET ROLE regress_app;
SELECT grant_id IS NOT NULL AS passes_on_encrypt FROM kms_create_grant(current_setting('regress.k'), 'regress_other', ARRAY['Encrypt']);
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', current_setting('regress.k'), 'regress_other', 'Decrypt'));
RESET ROLE;

-- MAC grants
SELECT grant_id IS NOT NULL FROM kms_create_grant(:'hk', 'regress_app', ARRAY['GenerateMac']);
SET ROLE regress_app;
SELECT length(kms_generate_mac(:'hk', 'm'::bytea)) AS app_macs;
SELECT regress_try(format('SELECT kms_verify_mac(%L, %L::bytea, %L::bytea)::text', :'hk', 'm', '\x00'));
RESET ROLE;

-- the key owner holds every operation; ownership passes through membership
SET ROLE regress_kms_admin;
SELECT kms_create_key(description => 'owned by admin') AS ak \gset
SELECT kms_decrypt(kms_encrypt(:'ak', 'owner'::bytea)) AS owner_uses_own_key;
RESET ROLE;
