--
-- A key, alias or grant made earlier in a statement is visible later in the
-- same statement (issue 11, finding 11): the VOLATILE entry points look
-- keys up with a new command id, as a VOLATILE PL/pgSQL function's queries
-- do.  STABLE ones (kms_decrypt, kms_describe_key, ...) keep the
-- statement's snapshot.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_same_stmt;

-- errors whose message names something random: SQLSTATE and AWS name only
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || split_part(SQLERRM, ':', 1);
END $$;

-- CreateAlias on a key created in the same statement
SELECT kms_create_alias('alias/regress-same-stmt', kms_create_key(description => 'same statement'));
SELECT kms_describe_key('alias/regress-same-stmt')->>'Description' AS described;

-- UpdateAlias to a key created in the same statement
SELECT kms_update_alias('alias/regress-same-stmt', kms_create_key(description => 'same statement 2'));
SELECT kms_describe_key('alias/regress-same-stmt')->>'Description' AS moved;

-- (kms_decrypt is STABLE: it reads with the statement's snapshot, so the
-- ciphertexts made below are decrypted by the next statement)
CREATE TEMP TABLE made (what text, c bytea);

-- CreateAlias, then Encrypt through that alias, in one statement
INSERT INTO made
SELECT 'alias', kms_encrypt('alias/regress-same-stmt-2', 'through a new alias')
FROM (SELECT kms_create_alias('alias/regress-same-stmt-2', kms_create_key())) AS m;

-- Encrypt under a key created in the same statement
INSERT INTO made SELECT 'new key', kms_encrypt(kms_create_key(), 'fresh key');

-- GenerateDataKey under a key created in the same statement
SELECT length(plaintext) AS data_key_bytes
FROM kms_generate_data_key(kms_create_key(), key_spec => 'AES_256');

-- Encrypt under a version rotated in the same statement: version 2
SELECT kms_create_key() AS rot_key \gset
INSERT INTO made
SELECT 'rotated', kms_encrypt(:'rot_key', 'rotated: ' || (kms_rotate_key_on_demand(:'rot_key') IS NOT NULL));
SELECT what, kms_decrypt_text(c) AS plaintext,
	   substring(c FROM 18 FOR 4) AS version_in_header
FROM made ORDER BY what;

-- CreateGrant on a key created in the same statement
SELECT grant_id AS g_id
FROM kms_create_grant(kms_create_key(description => 'same statement'),
					  'regress_same_stmt', ARRAY['Encrypt', 'Decrypt']) \gset
SELECT count(*) AS grants_made FROM kms.grants WHERE grant_id::text = :'g_id';
SELECT count(*) AS revoked FROM (
	SELECT kms_revoke_grant(key_id::text, grant_id::text)
	FROM kms.grants WHERE grant_id::text = :'g_id') AS r;
SELECT count(*) AS grants_left FROM kms.grants WHERE grant_id::text = :'g_id';

-- A key created and disabled in one statement, then used: DisabledException
SELECT kms_create_key() AS dis_key \gset
SELECT pg_temp.err(format($$SELECT kms_encrypt(%L, 'x' || kms_disable_key(%L)::text)$$,
						  :'dis_key', :'dis_key')) AS disabled_in_statement;

-- Secrets: a secret under a key created in the same statement, read back
SELECT create_secret('regress/same-stmt', secret_string => 'under a new key',
					 kms_key_id => kms_create_key()) ? 'ARN' AS secret_created;
SELECT get_secret('regress/same-stmt') AS secret_value;

-- clean up
SELECT delete_secret('regress/same-stmt', force_delete_without_recovery => true) ? 'ARN' AS secret_deleted;
SELECT count(*) > 0 AS cleaned FROM (
	SELECT kms_schedule_key_deletion(key_id::text, 7)
	FROM kms.key WHERE description IN ('same statement', 'same statement 2')
	   OR key_id::text IN (:'rot_key', :'dis_key')) AS s;
DROP OWNED BY regress_same_stmt;
DROP ROLE regress_same_stmt;
