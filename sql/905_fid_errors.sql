-- Issue 15, items 4 and 7: exception names and AWS's message texts, our
-- detail in DETAIL/HINT; SQLSTATEs as docs/errors.md lists them.
\set VERBOSITY default
-- PutSecretValue API reference: "You must provide either SecretString or
-- SecretBinary." is InvalidRequestException.
SELECT put_secret_value('fid/shape', NULL);
SELECT fid_try($$SELECT put_secret_value('fid/shape', NULL)$$) AS neither_sqlstate;
SELECT put_secret_value('fid/shape', 'x', '\x01'::bytea);
-- GetSecretValue, DescribeSecret, ...: "Secrets Manager can't find the specified secret."
SELECT get_secret('fid/no-such-secret');
SELECT get_secret('fid/shape', version_stage => 'NOLABEL');
SELECT get_secret('fid/shape', version_id => 'fid-none-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
SELECT create_secret('fid/shape', 'x');
SELECT fid_try($$SELECT update_secret_version_stage('fid/shape', 'AWSCURRENT', move_to_version_id => 'fid-order-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')$$) AS label_elsewhere;
SELECT fid_try($$SELECT delete_secret('fid/shape', 3)$$) AS window_3;
SELECT (delete_secret('fid/typed', 7) ->> 'Name') AS deleted;
SELECT get_secret('fid/typed');
SELECT (restore_secret('fid/typed') ->> 'Name') AS restored;
SELECT fid_try($$SELECT rotate_secret('fid/typed')$$) AS no_strategy;
\set VERBOSITY terse
