-- Issue 15, item 6: grant constraints, ListGrants filters,
-- ListRetirableGrants.
SELECT kms_create_key(description => 'fid constraints') AS k \gset
SELECT set_config('fid.k', :'k', false) IS NOT NULL AS k_set;

-- AWS API reference, CreateGrant, Constraints: "The encryption context
-- grant constraints allow the permissions in the grant only when the
-- encryption context in the request matches (EncryptionContextEquals) or
-- includes (EncryptionContextSubset) the encryption context specified in
-- this structure."
SELECT grant_id AS g_eq FROM kms_create_grant(:'k', 'fid_app', ARRAY['Encrypt', 'Decrypt', 'DescribeKey'],
	constraints => '{"EncryptionContextEquals": {"Tenant": "t1"}}') \gset
SELECT grant_id AS g_sub FROM kms_create_grant(:'k', 'fid_other', ARRAY['Encrypt', 'Decrypt', 'GenerateDataKey'],
	constraints => '{"EncryptionContextSubset": {"dept": "hr"}}', retiring_principal => 'fid_app') \gset
SELECT kms_encrypt(:'k', 'x'::bytea, '{"tenant": "t1"}') AS c_t1 \gset
SELECT kms_encrypt(:'k', 'x'::bytea, '{"tenant": "t2"}') AS c_t2 \gset
SELECT kms_encrypt(:'k', 'x'::bytea, '{"dept": "hr", "app": "a"}') AS c_hr \gset
SELECT kms_encrypt(:'k', 'x'::bytea) AS c_none \gset

SET ROLE fid_app;
-- Equals: exactly the constraint's pairs; "in a grant constraint, the key in
-- each key-value pair is not case sensitive, but the value is case sensitive"
SELECT length(kms_encrypt(current_setting('fid.k'), 'y'::bytea, '{"tenant": "t1"}')) > 0 AS eq_encrypt_ok;
SELECT length(kms_encrypt(current_setting('fid.k'), 'y'::bytea, '{"TENANT": "t1"}')) > 0 AS eq_key_case_insensitive;
SELECT kms_decrypt(:'c_t1', '{"tenant": "t1"}') = 'x'::bytea AS eq_decrypt_ok;
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, %L)::text', :'k', 'y', '{"tenant": "T1"}'));
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, %L)::text', :'k', 'y', '{"tenant": "t1", "extra": "1"}'));
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'k', 'y'));
SELECT fid_try(format('SELECT kms_decrypt(%L, %L)::text', :'c_t2', '{"tenant": "t2"}'));
-- "Grants with grant constraints can include the DescribeKey and RetireGrant
-- operations, but the constraint doesn't apply to these operations."
SELECT kms_describe_key(current_setting('fid.k'))->>'KeyState' AS describe_unconstrained;
-- not granted at all: GenerateDataKey
SELECT fid_try(format('SELECT ciphertext_blob::text FROM kms_generate_data_key(%L, %L, encryption_context => %L)', :'k', 'AES_256', '{"tenant": "t1"}'));
RESET ROLE;

SET ROLE fid_other;
-- Subset: the constraint's pairs and any others
SELECT kms_decrypt(:'c_hr', '{"dept": "hr", "app": "a"}') = 'x'::bytea AS subset_decrypt_ok;
SELECT length(ciphertext_blob) > 0 AS subset_gdk_ok
  FROM kms_generate_data_key(current_setting('fid.k'), 'AES_256', encryption_context => '{"Dept": "hr"}');
SELECT fid_try(format('SELECT kms_decrypt(%L)::text', :'c_none'));
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, %L)::text', :'k', 'y', '{"dept": "HR"}'));
RESET ROLE;

-- A constraint applies only to the grant that carries it: the owner, and a
-- role with another grant without constraints, are not limited.
SELECT kms_decrypt(:'c_t2', '{"tenant": "t2"}') = 'x'::bytea AS owner_unconstrained;
SELECT grant_id AS g_free FROM kms_create_grant(:'k', 'fid_app', ARRAY['Decrypt']) \gset
SET ROLE fid_app;
SELECT kms_decrypt(:'c_t2', '{"tenant": "t2"}') = 'x'::bytea AS other_grant_unconstrained;
RESET ROLE;
SELECT kms_revoke_grant(:'k', :'g_free');

-- "If a grant with a grant constraint includes the CreateGrant operation, the
-- constraint requires that any grants created with the CreateGrant
-- permission have an equally strict or stricter encryption context
-- constraint."
SELECT grant_id AS g_cg FROM kms_create_grant(:'k', 'fid_other', ARRAY['CreateGrant', 'Encrypt'],
	constraints => '{"EncryptionContextSubset": {"dept": "hr"}}') \gset
SET ROLE fid_other;
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', :'k', 'fid_app', 'Encrypt'));
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'k', 'fid_app', 'Encrypt', '{"EncryptionContextSubset": {"team": "x"}}'));
SELECT fid_try(format('SELECT length(grant_id)::text FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'k', 'fid_app', 'Encrypt', '{"EncryptionContextSubset": {"dept": "hr", "team": "x"}}'));
SELECT fid_try(format('SELECT length(grant_id)::text FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'k', 'fid_app', 'Encrypt', '{"EncryptionContextEquals": {"dept": "hr"}}'));
RESET ROLE;

-- Validation: "Each constraint value can include up to 8 encryption context
-- pairs. The encryption context value in each constraint cannot exceed 384
-- characters."; HMAC keys "don't support an encryption context".
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'k', 'fid_app', 'Encrypt', '{"EncryptionContextLike": {}}'));
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'k', 'fid_app', 'Encrypt',
	'{"EncryptionContextSubset": {"1":"a","2":"a","3":"a","4":"a","5":"a","6":"a","7":"a","8":"a","9":"a"}}'));
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'k', 'fid_app', 'Encrypt',
	jsonb_build_object('EncryptionContextEquals', jsonb_build_object('k', repeat('v', 385)))));
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'k', 'fid_app', 'Encrypt', '{"EncryptionContextSubset": {"k": 1}}'));
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS hk \gset
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L], constraints => %L)', :'hk', 'fid_app', 'GenerateMac', '{"EncryptionContextSubset": {"k": "v"}}'));

-- GrantListEntry.Constraints; a retry of a named grant with the same
-- constraints is the same grant, with other constraints a new one.
SELECT name, constraints FROM kms_list_grants(:'k') WHERE grant_id = :'g_eq';
SELECT grant_id AS n1 FROM kms_create_grant(:'k', 'fid_app', ARRAY['Encrypt'], name => 'fid-named',
	constraints => '{"EncryptionContextEquals": {"a": "1"}}') \gset
SELECT grant_id AS n2 FROM kms_create_grant(:'k', 'fid_app', ARRAY['Encrypt'], name => 'fid-named',
	constraints => '{"EncryptionContextEquals": {"a": "1"}}') \gset
SELECT grant_id AS n3 FROM kms_create_grant(:'k', 'fid_app', ARRAY['Encrypt'], name => 'fid-named',
	constraints => '{"EncryptionContextEquals": {"a": "2"}}') \gset
SELECT :'n1' = :'n2' AS same_constraints_same_grant, :'n1' <> :'n3' AS other_constraints_new_grant;

-- ListGrants filters (AWS API reference, ListGrants, GrantId: "Returns only
-- the grant with the specified grant ID"; GranteePrincipal: "Returns only
-- grants where the specified principal is the grantee principal")
SELECT count(*) AS all_grants FROM kms_list_grants(:'k');
SELECT grantee_principal, operations FROM kms_list_grants(:'k', grant_id => :'g_sub');
SELECT count(*) AS fid_other_grants FROM kms_list_grants(:'k', grantee_principal => 'fid_other');
SELECT count(*) AS no_such_grant FROM kms_list_grants(:'k', grant_id => 'absent');
SELECT fid_try(format('SELECT count(*)::text FROM kms_list_grants(%L, grant_id => %L)', :'k', repeat('g', 129)));

-- ListRetirableGrants: "Returns information about all grants in the AWS
-- account and Region that have the specified retiring principal."
SELECT key_id = kms_describe_key(:'k')->>'Arn' AS key_arn, grant_id = :'g_sub' AS is_g_sub, grantee_principal,
       retiring_principal, issuing_account LIKE 'arn:aws:iam::%:root' AS account
  FROM kms_list_retirable_grants('fid_app');
SET ROLE fid_app;
SELECT count(*) AS own_retirable FROM kms_list_retirable_grants();
SELECT fid_try($$SELECT count(*)::text FROM kms_list_retirable_grants('fid_other')$$);
RESET ROLE;
SELECT fid_try($$SELECT count(*)::text FROM kms_list_retirable_grants('no_such_role')$$);

-- ReEncrypt: ReEncryptFrom is checked against the source context,
-- ReEncryptTo against the destination context.
SELECT kms_create_key(description => 'fid constraints 2') AS k2 \gset
SELECT grant_id AS g_re1 FROM kms_create_grant(:'k', 'fid_app', ARRAY['ReEncryptFrom'],
	constraints => '{"EncryptionContextSubset": {"stage": "old"}}') \gset
SELECT grant_id AS g_re2 FROM kms_create_grant(:'k2', 'fid_app', ARRAY['ReEncryptTo'],
	constraints => '{"EncryptionContextSubset": {"stage": "new"}}') \gset
SELECT kms_encrypt(:'k', 'z'::bytea, '{"stage": "old"}') AS c_old \gset
SET ROLE fid_app;
SELECT length(kms_re_encrypt(:'c_old', :'k2', '{"stage": "old"}', '{"stage": "new"}')) > 0 AS re_encrypt_ok;
SELECT fid_try(format('SELECT kms_re_encrypt(%L, %L, %L, %L)::text', :'c_old', :'k2', '{"stage": "old"}', '{"stage": "other"}'));
RESET ROLE;
