-- Issue 15, item 7: KMS error messages in AWS's words after the exception
-- name (SQLSTATEs unchanged); pg_kms's own explanation is in DETAIL.
\set VERBOSITY default
SELECT kms_create_key(description => 'fid messages') AS k \gset
SELECT kms_create_alias('alias/fid/msg', :'k');

-- NotFoundException: AWS answers "Invalid keyId <ref>" for what is not a key
-- id, ARN or alias, "Key '<key>' does not exist" for an unknown key, and
-- "Alias <alias ARN> is not found." for an unknown alias.
SELECT fid_try($$SELECT kms_describe_key('not-a-key')::text$$);
SELECT fid_try($$SELECT kms_describe_key('00000000-0000-4000-8000-000000000000')::text$$);
SELECT fid_try($$SELECT kms_encrypt('alias/fid/none', 'x'::bytea)::text$$);
SELECT fid_try($$SELECT kms_delete_alias('alias/fid/none')::text$$);
-- AlreadyExistsException: "An alias with the name <alias ARN> already exists"
SELECT fid_try(format('SELECT kms_create_alias(%L, %L)::text', 'alias/fid/msg', :'k'));
-- DisabledException: "<key ARN> is disabled." (the key state table's footnote)
SELECT kms_disable_key(:'k');
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'k', 'x'));
-- KMSInvalidStateException: "<key ARN> is pending deletion.", "... is not pending deletion."
SELECT fid_try(format('SELECT kms_cancel_key_deletion(%L)::text', :'k'));
SELECT (kms_schedule_key_deletion(:'k'))->>'KeyState' AS state;
SELECT fid_try(format('SELECT kms_encrypt(%L, %L::bytea)::text', :'k', 'x'));
SELECT fid_try(format('SELECT kms_enable_key(%L)::text', :'k'));
SELECT fid_try($$SELECT kms_describe_key('not-a-key')::text$$) LIKE '42704 NotFoundException: Invalid keyId not-a-key' AS aws_text;
-- the DETAIL keeps pg_kms's explanation
SELECT kms_describe_key('not-a-key');
