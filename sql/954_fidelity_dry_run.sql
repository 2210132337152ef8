-- Issue 15, item 6: EncryptionAlgorithm and DryRun.
SELECT kms_create_key(description => 'fid dry run') AS k \gset
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS hk \gset
SELECT kms_encrypt(:'k', 'x'::bytea, '{"a":"1"}') AS c \gset

-- AWS API reference, Encrypt, EncryptionAlgorithm: "This parameter is
-- required only for asymmetric KMS keys. The default value,
-- SYMMETRIC_DEFAULT, is the algorithm used for symmetric encryption KMS
-- keys."  The model's enum: SYMMETRIC_DEFAULT | RSAES_OAEP_SHA_1 |
-- RSAES_OAEP_SHA_256 | SM2PKE.
SELECT kms_decrypt(kms_encrypt(:'k', 'y'::bytea, encryption_algorithm => 'SYMMETRIC_DEFAULT'),
                   encryption_algorithm => 'SYMMETRIC_DEFAULT') = 'y'::bytea AS symmetric_default_ok;
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, encryption_algorithm => %L)::text', :'k', 'y', 'RSAES_OAEP_SHA_256'));
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, encryption_algorithm => %L)::text', :'k', 'y', 'AES_GCM'));
SELECT fid_try(format('SELECT kms_decrypt(%L, %L, encryption_algorithm => %L)::text', :'c', '{"a":"1"}', 'RSAES_OAEP_SHA_1'));
SELECT fid_try(format('SELECT kms_re_encrypt(%L, %L, %L, destination_encryption_algorithm => %L)::text', :'c', :'k', '{"a":"1"}', 'SM2PKE'));
SELECT fid_try(format('SELECT kms_re_encrypt(%L, %L, %L, source_encryption_algorithm => %L)::text', :'c', :'k', '{"a":"1"}', 'bogus'));

-- AWS API reference, DryRunOperationException: "The request was rejected
-- because the DryRun parameter was specified."  The model: DryRun on
-- Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, GenerateMac, VerifyMac,
-- CreateGrant, RetireGrant, RevokeGrant.  A call that would succeed raises
-- it (KM016) and does nothing; one that would fail raises its own error.
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, dry_run => true)::text', :'k', 'y'));
SELECT fid_try(format('SELECT kms_decrypt(%L, %L, dry_run => true)::text', :'c', '{"a":"1"}'));
SELECT fid_try(format('SELECT kms_decrypt(%L, %L, dry_run => true)::text', :'c', '{"a":"2"}'));
SELECT fid_try(format('SELECT kms_decrypt_text(%L, %L, dry_run => true)', :'c', '{"a":"1"}'));
SELECT fid_try(format('SELECT kms_re_encrypt(%L, %L, %L, dry_run => true)::text', :'c', :'k', '{"a":"1"}'));
SELECT fid_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L, %L, dry_run => true)', :'k', 'AES_256'));
SELECT fid_try(format('SELECT ciphertext_blob::text FROM kms_generate_data_key_without_plaintext(%L, number_of_bytes => 8, dry_run => true)', :'k'));
SELECT fid_try(format('SELECT kms_generate_mac(%L, %L::bytea, dry_run => true)::text', :'hk', 'm'));
SELECT fid_try(format('SELECT kms_verify_mac(%L, %L::bytea, kms_generate_mac(%L, %L::bytea), dry_run => true)::text', :'hk', 'm', :'hk', 'm'));
SELECT fid_try(format('SELECT kms_verify_mac(%L, %L::bytea, %L::bytea, dry_run => true)::text', :'hk', 'm', 'wrong'));
SELECT fid_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L], dry_run => true)', :'k', 'fid_app', 'Decrypt'));
SELECT count(*) AS grants_after_dry_run FROM kms_list_grants(:'k');
SELECT grant_id AS g, grant_token AS t FROM kms_create_grant(:'k', 'fid_app', ARRAY['Decrypt']) \gset
SELECT fid_try(format('SELECT kms_revoke_grant(%L, %L, dry_run => true)::text', :'k', :'g'));
SELECT fid_try(format('SELECT kms_revoke_grant(%L, %L, dry_run => true)::text', :'k', 'absent'));
SELECT fid_try(format('SELECT kms_retire_grant(%L, dry_run => true)::text', :'t'));
SELECT count(*) AS grants_after_dry_runs FROM kms_list_grants(:'k');
-- denied stays denied
SET ROLE fid_other;
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, dry_run => true)::text', :'k', 'y'));
RESET ROLE;
-- a disabled key is DisabledException, not a dry run
SELECT kms_disable_key(:'k');
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea, dry_run => true)::text', :'k', 'y'));
