-- Automatic rotation settings, RotateKeyOnDemand, ListKeyRotations, versions
SELECT kms_create_key(description => 'rotating') AS k \gset
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS hk \gset

SELECT s->'KeyRotationEnabled', s->>'KeyId' = kms_describe_key(:'k')->>'Arn' AS key_id_is_arn,
       s ? 'RotationPeriodInDays' AS has_period
  FROM kms_get_key_rotation_status(:'k') s;
SELECT kms_enable_key_rotation(:'k');
SELECT s->'KeyRotationEnabled', s->'RotationPeriodInDays',
       ((s->>'NextRotationDate')::timestamptz - now()) BETWEEN interval '364 days' AND interval '366 days' AS next_in_a_year
  FROM kms_get_key_rotation_status(:'k') s;
SELECT kms_enable_key_rotation(:'k', 90);
SELECT kms_get_key_rotation_status(:'k')->'RotationPeriodInDays';
SELECT regress_try(format('SELECT kms_enable_key_rotation(%L, 89)::text', :'k'));
SELECT regress_try(format('SELECT kms_enable_key_rotation(%L, 2561)::text', :'k'));
SELECT kms_enable_key_rotation(:'k', 2560);
SELECT regress_try(format('SELECT kms_enable_key_rotation(%L)::text', :'hk'));
SELECT regress_try(format('SELECT kms_get_key_rotation_status(%L)::text', :'hk'));
SELECT regress_try(format('SELECT kms_rotate_key_on_demand(%L)::text', :'hk'));

-- key state rules
SELECT kms_disable_key(:'k');
SELECT regress_try(format('SELECT kms_enable_key_rotation(%L)::text', :'k'));
SELECT regress_try(format('SELECT kms_disable_key_rotation(%L)::text', :'k'));
SELECT regress_try(format('SELECT kms_rotate_key_on_demand(%L)::text', :'k'));
SELECT kms_enable_key(:'k');
SELECT kms_schedule_key_deletion(:'k')->>'KeyState';
SELECT kms_get_key_rotation_status(:'k')->'KeyRotationEnabled' AS enabled_while_pending_deletion;
SELECT regress_try(format('SELECT kms_rotate_key_on_demand(%L)::text', :'k'));
SELECT kms_cancel_key_deletion(:'k') IS NOT NULL;
SELECT kms_enable_key(:'k');
SELECT kms_get_key_rotation_status(:'k')->'KeyRotationEnabled' AS restored_after_cancel;
SELECT kms_disable_key_rotation(:'k');
SELECT kms_get_key_rotation_status(:'k')->'KeyRotationEnabled';

-- on-demand rotation: old ciphertexts still decrypt, new ones use the newest version
SELECT kms_encrypt(:'k', 'v1'::bytea) AS c1 \gset
-- RotateKeyOnDemand returns KeyId, the key id (AWS API reference example; issue 15)
SELECT kms_rotate_key_on_demand(:'k') = :'k' AS returns_key_id;
SELECT kms_encrypt(:'k', 'v2'::bytea) AS c2 \gset
SELECT kms_decrypt(:'c1') AS old_still_decrypts, kms_decrypt(:'c2') AS new_decrypts;
SELECT get_byte(:'c1'::bytea, 20) AS c1_version, get_byte(:'c2'::bytea, 20) AS c2_version;
SELECT kms_get_key_rotation_status(:'k') ? 'OnDemandRotationStartDate' AS has_on_demand_date;
SELECT key_material_state, rotation_type, key_id = kms_describe_key(:'k')->>'Arn' AS arn,
       length(key_material_id) FROM kms_list_key_rotations(:'k');
SELECT key_material_state, rotation_type FROM kms_list_key_rotations(:'k', 'ALL_KEY_MATERIAL');
SELECT regress_try(format('SELECT count(*)::text FROM kms_list_key_rotations(%L, %L)', :'k', 'SOME'));
SELECT kms_describe_key(:'k')->>'CurrentKeyMaterialId' =
       (SELECT key_material_id FROM kms_list_key_rotations(:'k') WHERE key_material_state = 'CURRENT') AS current_material;

-- at most 25 on-demand rotations per key
SELECT set_config('regress.k', :'k', false) IS NOT NULL;
DO $$
BEGIN
	FOR i IN 2..25 LOOP
		PERFORM kms_rotate_key_on_demand(current_setting('regress.k'));
	END LOOP;
END
$$ LANGUAGE plpgsql;
SELECT count(*) AS rotations FROM kms_list_key_rotations(:'k');
SELECT regress_try(format('SELECT kms_rotate_key_on_demand(%L)::text', :'k'));
-- every version still decrypts its own ciphertext
SELECT kms_decrypt(:'c1') AS v1_after_26_versions;
SELECT kms_decrypt(kms_encrypt(:'k', 'v26'::bytea)) AS newest;
