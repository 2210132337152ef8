-- Key privileges that no role gains without being given them (issue 9):
-- grants pass on only what the granter holds, visibility is one rule,
-- aliases do not move between owners, keys pg_kms manages are changed by a
-- superuser only, and small leaks are closed.
CREATE ROLE regress_keys_admin2;
GRANT kms_admin TO regress_keys_admin2;
CREATE ROLE regress_keys_outsider;

-- CreateGrant -------------------------------------------------------------
SELECT kms_create_key(description => 'sec: grants') AS k \gset
SELECT set_config('regress.k', :'k', false) IS NOT NULL;
-- a kms_admin member holding only CreateGrant: passes on only CreateGrant
SELECT grant_id IS NOT NULL AS granted FROM kms_create_grant(:'k', 'regress_kms_admin', ARRAY['CreateGrant']);
SET ROLE regress_kms_admin;
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', current_setting('regress.k'), 'regress_kms_admin', 'Decrypt')) AS grant_itself_decrypt;
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', current_setting('regress.k'), 'regress_app', 'Decrypt')) AS grant_other_decrypt;
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', current_setting('regress.k'), 'regress_app', 'DescribeKey')) AS grant_describe_held_as_admin_only;
SELECT regress_try(format('SELECT length(grant_id)::text FROM kms_create_grant(%L, %L, ARRAY[%L])', current_setting('regress.k'), 'regress_app', 'CreateGrant')) AS pass_on_create_grant;
SELECT regress_try(format('SELECT kms_decrypt(kms_encrypt(%L, %L::bytea))::text', current_setting('regress.k'), 'x')) AS admin_uses_key;
RESET ROLE;
-- a kms_admin member without any grant on a key grants nothing on it
SET ROLE regress_keys_admin2;
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L])', current_setting('regress.k'), 'regress_keys_admin2', 'Decrypt')) AS admin_without_grant;
RESET ROLE;
-- a grantee (through its group) passes on what its grants hold, nothing more
SELECT grant_id IS NOT NULL AS granted FROM kms_create_grant(:'k', 'regress_group', ARRAY['CreateGrant', 'Encrypt']);
SET ROLE regress_other;
SELECT regress_try(format('SELECT length(grant_id)::text FROM kms_create_grant(%L, %L, ARRAY[%L])', current_setting('regress.k'), 'regress_keys_outsider', 'Encrypt')) AS member_passes_on_encrypt;
SELECT regress_try(format('SELECT grant_id FROM kms_create_grant(%L, %L, ARRAY[%L, %L])', current_setting('regress.k'), 'regress_keys_outsider', 'Encrypt', 'Decrypt')) AS member_adds_decrypt;
RESET ROLE;
-- the owner (a member of it) grants anything, kms_admin or not
SET ROLE regress_keys_admin2;
SELECT kms_create_key(description => 'sec: owned by admin2') AS k2 \gset
SELECT length(grant_id) AS owner_grants FROM kms_create_grant(:'k2', 'regress_app', ARRAY['Decrypt', 'Encrypt']);
RESET ROLE;
SELECT grantee_principal, operations FROM kms_list_grants(:'k') ORDER BY 1, 2::text;

-- a named grant retried: the same grant id, and a token that works -------
SELECT * FROM kms_create_grant(:'k', 'regress_app', ARRAY['Decrypt'], name => 'retry',
                               retiring_principal => 'regress_other') \gset r1_
SELECT * FROM kms_create_grant(:'k', 'regress_app', ARRAY['Decrypt'], name => 'retry',
                               retiring_principal => 'regress_other') \gset r2_
SELECT :'r1_grant_id' = :'r2_grant_id' AS same_grant_id;
SET ROLE regress_other;
SELECT regress_try(format('SELECT kms_retire_grant(%L)::text', :'r2_grant_token')) AS retire_with_retry_token;
RESET ROLE;
SELECT count(*) AS retry_grants_left FROM kms_list_grants(:'k') WHERE name = 'retry';
-- another retiring principal is another grant
SELECT (kms_create_grant(:'k', 'regress_app', ARRAY['Decrypt'], name => 'retry2')).grant_id AS r3 \gset
SELECT (kms_create_grant(:'k', 'regress_app', ARRAY['Decrypt'], name => 'retry2', retiring_principal => 'regress_other')).grant_id AS r4 \gset
SELECT :'r3' <> :'r4' AS different_grants;

-- one visibility rule: kms_list_keys(), kms.keys and kms_list_aliases()
-- show a key to exactly the roles that may DescribeKey it ------------------
SET ROLE regress_keys_admin2;
SELECT kms_create_key(description => 'sec: visibility') AS kv \gset
SELECT kms_create_alias('alias/regress/visibility', :'kv');
SELECT length(grant_id) FROM kms_create_grant(:'kv', 'regress_app', ARRAY['Encrypt']);
SELECT length(grant_id) FROM kms_create_grant(:'kv', 'regress_other', ARRAY['DescribeKey']);
RESET ROLE;
CREATE FUNCTION pg_temp.seen(r name, k text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	a int; b int; c int; d text;
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	SELECT count(*) INTO a FROM kms_list_keys() WHERE key_id = k;
	SELECT count(*) INTO b FROM kms.keys WHERE key_id = k::uuid;
	SELECT count(*) INTO c FROM kms_list_aliases() WHERE target_key_id = k;
	BEGIN
		PERFORM kms_describe_key(k);
		d := 'describes';
	EXCEPTION WHEN insufficient_privilege THEN
		d := 'denied';
	END;
	RESET ROLE;
	RETURN format('list_keys=%s view=%s aliases=%s %s', a, b, c, d);
END $$;
SELECT r AS role, pg_temp.seen(r, :'kv') AS sees
  FROM unnest(ARRAY['regress_keys_admin2', 'regress_kms_admin', 'regress_other',
                    'regress_app', 'regress_keys_outsider']::name[]) r;

-- aliases do not move between owners but by a role owning both -----------
SELECT kms_create_key(description => 'sec: application key') AS ka \gset
SELECT kms_create_key(description => 'sec: application key 2') AS ka2 \gset
SELECT kms_create_alias('alias/regress/application', :'ka');
SET ROLE regress_keys_admin2;
SELECT kms_create_key(description => 'sec: admin2 key 2') AS km2 \gset
-- a kms_admin member may not point another owner's alias at its own key,
-- nor delete it (and create it again for its own key)
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/regress/application', :'k2')) AS move_to_own_key;
SELECT regress_try(format('SELECT kms_delete_alias(%L)::text', 'alias/regress/application')) AS delete_others_alias;
-- nor move its own alias to another owner's key
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/regress/visibility', :'ka')) AS move_to_others_key;
-- between keys of one owner it may (managing those keys is its duty)
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/regress/application', :'ka2')) AS move_same_owner;
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/regress/visibility', :'km2')) AS move_own_alias;
SELECT regress_try(format('SELECT kms_delete_alias(%L)::text', 'alias/regress/visibility')) AS delete_own_alias;
RESET ROLE;
SELECT kms_describe_key('alias/regress/application')->>'Description' AS application_alias_names;
-- a superuser owns neither key, and may
SELECT kms_update_alias('alias/regress/application', :'k2');
SELECT kms_delete_alias('alias/regress/application');

-- keys pg_kms manages: the secrets store's default key --------------------
-- (in a transaction rolled back at the end, so later tests find no
-- default key yet)
SELECT kms_describe_key(:'k')->>'KeyManager' AS customer_key;
BEGIN;
SELECT create_secret('regress/keys/managed', 'managed') ? 'ARN' AS secret_created;
SELECT key_id AS dk FROM kms.alias WHERE alias_name = 'alias/pg_kms/secrets' \gset
SELECT kms_describe_key(:'dk')->>'KeyManager' AS default_key_manager;
SET ROLE regress_kms_admin;
SELECT kms_describe_key(:'dk')->>'KeyManager' AS admin_describes;
SELECT count(*) AS admin_lists FROM kms_list_keys() WHERE key_id = :'dk';
SELECT regress_try(format('SELECT kms_disable_key(%L)::text', :'dk')) AS disable;
SELECT regress_try(format('SELECT kms_schedule_key_deletion(%L, 7)::text', :'dk')) AS schedule_deletion;
SELECT regress_try(format('SELECT kms_update_key_description(%L, %L)::text', :'dk', 'mine')) AS describe_as;
SELECT regress_try(format('SELECT kms_tag_resource(%L, %L)::text', :'dk', '{"a":"b"}')) AS tag;
SELECT regress_try(format('SELECT kms_disable_key_rotation(%L)::text', :'dk')) AS rotation_setting;
SELECT regress_try(format('SELECT kms_rotate_key_on_demand(%L)::text', :'dk')) AS rotate;
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/regress/default', :'dk')) AS add_alias;
SELECT regress_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/pg_kms/secrets', current_setting('regress.k'))) AS realias;
SELECT regress_try(format('SELECT kms_delete_alias(%L)::text', 'alias/pg_kms/secrets')) AS delete_alias;
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/pg_kms/mine', current_setting('regress.k'))) AS reserved_name;
SELECT regress_try(format('SELECT kms_decrypt(kms_encrypt(%L, %L::bytea))::text', :'dk', 'x')) AS use_default_key;
RESET ROLE;
SELECT regress_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/pg_kms/mine', :'k')) AS reserved_for_superuser_too;
-- a superuser may, and is told what it does (the key, in the detail)
\set VERBOSITY terse
SELECT kms_disable_key(:'dk');
SELECT kms_enable_key(:'dk');
SELECT (kms_schedule_key_deletion(:'dk', 7))->>'KeyState' AS scheduled;
SELECT kms_cancel_key_deletion(:'dk') IS NOT NULL AS cancelled;
SELECT kms_update_alias('alias/pg_kms/secrets', :'k');
SELECT kms_delete_alias('alias/pg_kms/secrets');
ROLLBACK;
\set VERBOSITY default

-- kms_decrypt_text of bytes that are not text: no bytes in the error -----
SELECT regress_try(format('SELECT kms_decrypt_text(%L)', kms_encrypt(:'k', '\xc328a0ff'::bytea))) AS invalid_utf8;
SELECT regress_try(format('SELECT kms_decrypt_text(%L)', kms_encrypt(:'k', '\x610062'::bytea))) AS nul_byte;
SELECT kms_decrypt_text(kms_encrypt(:'k', 'valid text')) AS valid;

-- pg_kms refuses DROP ROLE while its keys, secrets or grants name the role
-- (issue 11): REASSIGN OWNED and DROP OWNED hand them over first
REASSIGN OWNED BY regress_keys_admin2, regress_keys_outsider TO CURRENT_USER;
DROP OWNED BY regress_keys_admin2, regress_keys_outsider;
DROP ROLE regress_keys_admin2, regress_keys_outsider;
