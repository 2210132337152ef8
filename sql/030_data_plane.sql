-- Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, GenerateRandom, MACs
SELECT kms_create_key(description => 'data') AS k \gset
SELECT kms_create_key(description => 'other') AS k2 \gset
SELECT kms_create_alias('alias/regress/data', :'k');

-- round trips, bytea and text
SELECT kms_decrypt(kms_encrypt(:'k', '\x00ff10'::bytea)) = '\x00ff10'::bytea AS bytea_roundtrip;
SELECT kms_decrypt_text(kms_encrypt('alias/regress/data', 'héllo wörld')) AS text_roundtrip;
SELECT convert_from(kms_decrypt(kms_encrypt(:'k', 'plain text')), 'UTF8') AS text_as_bytes;
SELECT length(kms_encrypt(:'k', 'x'::bytea)) AS blob_len_for_1_byte;
SELECT length(kms_encrypt(:'k', repeat('y', 100)::bytea)) - 100 AS overhead;
SELECT get_byte(kms_encrypt(:'k', 'x'::bytea), 0) AS format_byte;
SELECT kms_encrypt(:'k', 'same'::bytea) <> kms_encrypt(:'k', 'same'::bytea) AS randomized;
-- larger than AWS's 4 KB direct limit: we are envelope encryption
SELECT length(kms_decrypt(kms_encrypt(:'k', convert_to(repeat('z', 100000), 'UTF8')))) AS big;
SELECT kms_encrypt(:'k', NULL::bytea) IS NULL AS null_in_null_out, kms_decrypt(NULL) IS NULL AS null_decrypt;
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'k', ''));
SELECT regress_try($$SELECT kms_encrypt(NULL, 'x'::bytea)::text$$);
SELECT regress_try($$SELECT kms_encrypt('alias/regress/none', 'x'::bytea)::text$$);

-- encryption context: exact match, order-insensitive, case-sensitive
SELECT kms_encrypt(:'k', 'ctx'::bytea, '{"tenant":"a","purpose":"test"}') AS c \gset
SELECT kms_decrypt(:'c', '{"purpose":"test","tenant":"a"}') AS same_context_other_order;
SELECT regress_try(format('SELECT kms_decrypt(%L)::text', :'c'));
SELECT regress_try(format('SELECT kms_decrypt(%L, %L)::text', :'c', '{"tenant":"A","purpose":"test"}'));
SELECT regress_try(format('SELECT kms_decrypt(%L, %L)::text', :'c', '{"tenant":"a"}'));
SELECT regress_try(format('SELECT kms_decrypt(%L, %L)::text', :'c', '{"tenant":"a","purpose":"test","x":"y"}'));
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea, %L)::text', :'k', 'x', '{"n":1}'));
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea, %L)::text', :'k', 'x', '["a"]'));
-- "ab":"c" and "a":"bc" must not collide (length-prefixed encoding)
SELECT regress_try(format('SELECT kms_decrypt(kms_encrypt(%L, %L::bytea, %L), %L)::text', :'k', 'x', '{"ab":"c"}', '{"a":"bc"}'));
SELECT kms_decrypt(kms_encrypt(:'k', 'e'::bytea, '{}'), NULL) AS empty_context_is_no_context;

-- key_id on decrypt: must be the key that encrypted (IncorrectKeyException)
SELECT kms_decrypt(:'c', '{"tenant":"a","purpose":"test"}', 'alias/regress/data') AS right_key;
SELECT regress_try(format('SELECT kms_decrypt(%L, %L, %L)::text', :'c', '{"tenant":"a","purpose":"test"}', :'k2'));
SELECT regress_try(format('SELECT kms_decrypt(%L, %L, %L)::text', :'c', '{"tenant":"a","purpose":"test"}', 'alias/regress/none'));

-- ReEncrypt: to another key and context, plaintext never returned
SELECT kms_re_encrypt(:'c', :'k2', source_encryption_context => '{"tenant":"a","purpose":"test"}',
					  destination_encryption_context => '{"tenant":"b"}') AS rc \gset
SELECT kms_decrypt(:'rc', '{"tenant":"b"}', :'k2') AS re_encrypted;
SELECT regress_try(format('SELECT kms_re_encrypt(%L, %L)::text', :'c', :'k2'));
SELECT regress_try(format('SELECT kms_re_encrypt(%L, %L, %L, NULL, %L)::text', :'c', :'k2', '{"tenant":"a","purpose":"test"}', :'k2'));
SELECT regress_try(format('SELECT kms_re_encrypt(NULL, %L)::text', :'k2'));

-- GenerateDataKey
SELECT length(plaintext) AS pt_len, kms_decrypt(ciphertext_blob) = plaintext AS wraps_plaintext,
       key_id = kms_describe_key(:'k')->>'Arn' AS key_id_is_arn
  FROM kms_generate_data_key(:'k', key_spec => 'AES_256');
SELECT length(plaintext) FROM kms_generate_data_key(:'k', key_spec => 'AES_128');
SELECT length(plaintext) FROM kms_generate_data_key(:'k', number_of_bytes => 1);
SELECT length(plaintext) FROM kms_generate_data_key(:'k', number_of_bytes => 1024);
SELECT length(kms_decrypt(ciphertext_blob, '{"k":"v"}')) FROM kms_generate_data_key(:'k', 'AES_256', NULL, '{"k":"v"}');
SELECT regress_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L)', :'k'));
SELECT regress_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L, %L, 16)', :'k', 'AES_256'));
SELECT regress_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L, %L)', :'k', 'AES_512'));
SELECT regress_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L, NULL, 0)', :'k'));
SELECT regress_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L, NULL, 1025)', :'k'));
SELECT length(kms_decrypt(ciphertext_blob)), key_id = kms_describe_key(:'k')->>'Arn'
  FROM kms_generate_data_key_without_plaintext(:'k', 'AES_256');
SELECT regress_try(format('SELECT ciphertext_blob::text FROM kms_generate_data_key_without_plaintext(%L)', :'k'));

-- GenerateRandom
SELECT length(kms_generate_random(1)), length(kms_generate_random(1024));
SELECT kms_generate_random(32) <> kms_generate_random(32) AS random;
SELECT regress_try('SELECT kms_generate_random(0)::text');
SELECT regress_try('SELECT kms_generate_random(1025)::text');
SELECT regress_try('SELECT kms_generate_random(NULL)::text');

-- GenerateMac / VerifyMac on HMAC keys
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS hk \gset
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_512') AS hk512 \gset
SELECT length(kms_generate_mac(:'hk', 'message'::bytea)) AS mac_len;
SELECT kms_generate_mac(:'hk', 'message'::bytea) = kms_generate_mac(:'hk', 'message'::bytea, 'HMAC_SHA_256') AS deterministic;
SELECT kms_verify_mac(:'hk', 'message'::bytea, kms_generate_mac(:'hk', 'message'::bytea)) AS verifies;
SELECT regress_try(format('SELECT kms_verify_mac(%L, %L::bytea, kms_generate_mac(%L, %L::bytea))::text', :'hk', 'massage', :'hk', 'message'));
SELECT regress_try(format('SELECT kms_verify_mac(%L, %L::bytea, %L::bytea)::text', :'hk', 'message', '\x00'));
SELECT length(kms_generate_mac(:'hk512', 'm'::bytea, 'HMAC_SHA_512')) AS mac512_len;
SELECT regress_try(format('SELECT kms_generate_mac(%L, %L::bytea, %L)::text', :'hk512', 'm', 'HMAC_SHA_256'));
SELECT regress_try(format('SELECT kms_generate_mac(%L, %L::bytea, %L)::text', :'hk', 'm', 'HMAC_MD5'));
SELECT regress_try(format('SELECT kms_generate_mac(%L, %L::bytea)::text', :'hk', ''));
SELECT regress_try(format('SELECT kms_generate_mac(%L, %L::bytea)::text', :'hk', repeat('m', 4097)));
SELECT regress_try(format('SELECT kms_generate_mac(%L, %L::bytea)::text', :'k', 'm'));
SELECT regress_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'hk', 'm'));
SELECT regress_try(format('SELECT plaintext::text FROM kms_generate_data_key(%L, %L)', :'hk', 'AES_256'));
-- different messages, different MACs
SELECT kms_generate_mac(:'hk', 'a'::bytea) <> kms_generate_mac(:'hk', 'b'::bytea) AS distinct_macs;
