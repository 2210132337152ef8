-- Issue 15, item 3: result shapes and request members.
--
-- DescribeSecret API reference: RotationEnabled is returned once rotation
-- was configured ("Secrets Manager ... omits fields that have no value");
-- moto and AWS return no RotationEnabled for a secret never rotated.
SELECT (create_secret('fid/shape', 'v1') ->> 'Name') AS created;
SELECT describe_secret('fid/shape') ? 'RotationEnabled' AS rotation_enabled_before;
SELECT fid_try($$SELECT rotate_secret('fid/shape', 'fid_looker', '{"AutomaticallyAfterDays": 30}', false)$$) AS configured;
SELECT describe_secret('fid/shape') -> 'RotationEnabled' AS rotation_enabled_configured;
SELECT (cancel_rotate_secret('fid/shape') ->> 'Name') AS cancelled;
SELECT describe_secret('fid/shape') -> 'RotationEnabled' AS rotation_enabled_after_cancel;

-- PutSecretValue VersionStages: the labels come back in request order
-- (PutSecretValue, GetSecretValue, DescribeSecret's VersionIdsToStages,
-- ListSecretVersionIds).
SELECT put_secret_value('fid/shape', 'v2', version_stages => '{ZETA,ALPHA,MID}',
						client_request_token => 'fid-order-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') -> 'VersionStages' AS put_stages;
SELECT get_secret_value('fid/shape', 'fid-order-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') -> 'VersionStages' AS get_stages;
SELECT describe_secret('fid/shape') -> 'VersionIdsToStages' -> 'fid-order-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' AS describe_stages;
SELECT version_stages FROM list_secret_version_ids('fid/shape') WHERE version_id = 'fid-order-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

-- TagResource / UntagResource: no Tags member for a secret never tagged;
-- "Tags": [] once the last tag is removed.
SELECT describe_secret('fid/shape') ? 'Tags' AS tags_before;
SELECT tag_resource('fid/shape', '{"k":"v"}');
SELECT describe_secret('fid/shape') -> 'Tags' AS tags_tagged;
SELECT untag_resource('fid/shape', '{k}');
SELECT describe_secret('fid/shape') -> 'Tags' AS tags_after_untag;
SELECT tags FROM list_secrets('[{"Key":"name","Values":["fid/shape"]}]');

-- BatchGetSecretValue APIErrorType: ErrorCode is the exception name,
-- Message the message alone.
SELECT e -> 'ErrorCode' AS error_code, e -> 'Message' AS message
  FROM jsonb_array_elements(batch_get_secret_value(ARRAY['fid/no-such-secret']) -> 'Errors') e;

-- SecretId: "If the secret ... you can use ... a partial ARN" (without the
-- "-" and six random characters).
SELECT get_secret(left(describe_secret('fid/shape') ->> 'ARN', -7)) AS by_partial_arn;
SELECT fid_try($$SELECT get_secret(left(describe_secret('fid/shape') ->> 'ARN', -8))$$) AS by_shorter_prefix;

-- UpdateSecret ClientRequestToken: SDKs send one on every call, also
-- without a new value; it is accepted (and makes no version).
SELECT update_secret('fid/shape', description => 'd',
					 client_request_token => 'fid-upd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') ? 'VersionId' AS made_a_version;

-- Type (CreateSecret, UpdateSecret, DescribeSecret).
SELECT (create_secret('fid/typed', 'x', type => 'my-type') ->> 'Name') AS created;
SELECT describe_secret('fid/typed') -> 'Type' AS type_created;
SELECT update_secret('fid/typed', type => 'other-type') ? 'ARN' AS updated;
SELECT describe_secret('fid/typed') -> 'Type' AS type_updated;
SELECT describe_secret('fid/shape') ? 'Type' AS untyped_has_type;

-- PutSecretValue RotationToken (RotationTokenType: 36..256, ^[a-zA-Z0-9\-]+$).
SELECT put_secret_value('fid/shape', 'v3', rotation_token => '00000000-0000-4000-8000-000000000042') ? 'VersionId' AS put_with_rotation_token;
SELECT fid_try($$SELECT put_secret_value('fid/shape', 'v4', rotation_token => 'short')$$) AS short_rotation_token;
SELECT fid_try($$SELECT put_secret_value('fid/shape', 'v4', rotation_token => repeat('x', 35) || '!')$$) AS bad_rotation_token;

-- ListSecrets SortBy (created-date, last-accessed-date, last-changed-date, name)
SELECT string_agg(name, ' ') AS by_name_desc FROM list_secrets('[{"Key":"name","Values":["fid/"]}]', sort_order => 'desc', sort_by => 'name');
SELECT fid_try($$SELECT count(*) FROM list_secrets(sort_by => 'size')$$) AS bad_sort_by;

-- MaxResults / NextToken on ListSecrets and ListSecretVersionIds: the last
-- row of a page carries the NextToken (next_page_token).
SELECT name, next_page_token FROM list_secrets('[{"Key":"name","Values":["fid/"]}]', sort_by => 'name', max_results => 2);
SELECT name, next_page_token FROM list_secrets('[{"Key":"name","Values":["fid/"]}]', sort_by => 'name', max_results => 2, next_token => 'pgkms1:2');
SELECT name, next_page_token FROM list_secrets('[{"Key":"name","Values":["fid/"]}]', sort_by => 'name', max_results => 2, next_token => 'pgkms1:6');
SELECT fid_try($$SELECT count(*) FROM list_secrets(max_results => 101)$$) AS max_results_101;
SELECT fid_try($$SELECT count(*) FROM list_secrets(next_token => 'nonsense')$$) AS bad_next_token;
SELECT count(*) AS all_versions, count(next_page_token) AS tokens FROM list_secret_version_ids('fid/shape', true);
SELECT (SELECT count(*) FROM list_secret_version_ids('fid/shape', true, 1)) AS page_one,
       (SELECT next_page_token FROM list_secret_version_ids('fid/shape', true, 1)) AS token_one,
       (SELECT count(*) FROM list_secret_version_ids('fid/shape', true, 2, 'pgkms1:2')) AS last_page;
