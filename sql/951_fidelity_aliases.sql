-- Issue 15, item 5: alias names, RotateKeyOnDemand's result, ListGrants'
-- KeyId and IssuingAccount.
SELECT kms_create_key(description => 'fid aliases') AS k \gset

-- AWS API reference, CreateAlias, AliasName: "It can contain only
-- alphanumeric characters, forward slashes (/), underscores (_), and dashes
-- (-)."  A name outside that rule (':' included, which the model's pattern
-- ^[a-zA-Z0-9:/_-]+$ admits but the documented rule does not) and a name of
-- more than 256 characters (the model: string[1..256]) fail AWS's request
-- validation: ValidationException (22023).
SELECT fid_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/with:colon', :'k'));
SELECT fid_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/with space', :'k'));
SELECT fid_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/' || repeat('a', 251), :'k'));
SELECT fid_try(format('SELECT kms_update_alias(%L, %L)::text', 'alias/a b', :'k'));
SELECT fid_try(format('SELECT kms_delete_alias(%L)::text', 'alias/a b'));
-- an alias with ':' made before 1.2 can still be moved and deleted (the
-- model's pattern admits ':'); only its creation is refused
SELECT fid_try(format('SELECT kms_delete_alias(%L)::text', 'alias/a:b'));
-- "Alias must start with the prefix "alias/"" is AWS's ValidationException text
SELECT fid_try(format('SELECT kms_create_alias(%L, %L)::text', 'fid/app', :'k'));
SELECT fid_try(format('SELECT kms_delete_alias(%L)::text', 'fid/app'));
-- the documented characters pass
SELECT kms_create_alias('alias/fid/Mixed_Chars-1', :'k');
SELECT alias_name FROM kms_list_aliases(:'k');

-- AWS API reference, RotateKeyOnDemand response, KeyId: "Identifies the
-- symmetric encryption KMS key that you initiated on-demand rotation on";
-- AWS's example returns the key id, not the ARN.
SELECT kms_rotate_key_on_demand(:'k') = :'k' AS rotate_returns_key_id;

-- AWS API reference, ListGrants example: "KeyId":
-- "arn:aws:kms:...:key/...", "IssuingAccount": "arn:aws:iam::111122223333:root".
SELECT grant_id AS g FROM kms_create_grant(:'k', 'fid_app', ARRAY['Decrypt']) \gset
SELECT key_id = kms_describe_key(:'k')->>'Arn' AS key_id_is_arn,
       issuing_account = 'arn:aws:iam::' || (kms_describe_key(:'k')->>'AWSAccountId') || ':root' AS issuing_account_is_root_arn,
       constraints IS NULL AS no_constraints, next_marker IS NULL AS no_marker
  FROM kms_list_grants(:'k');
