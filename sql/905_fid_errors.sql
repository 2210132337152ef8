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
-- DecryptionFailure / EncryptionFailure: the API model's texts; which key
-- and why in the DETAIL (key ids masked).
SELECT kms_create_key(description => 'fid errors') AS fid_key \gset
SELECT (create_secret('fid/keyed', 'x', kms_key_id => :'fid_key') ->> 'Name') AS created;
SELECT kms_disable_key(:'fid_key') IS NULL AS disabled;
\set VERBOSITY terse
CREATE FUNCTION fid_error_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
	m text;
	d text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
	RETURN m || E'\nDETAIL: ' || regexp_replace(d, 'arn:aws:kms:[^"]*', '<key arn>', 'g');
END
$f$;
SELECT fid_error_of($$SELECT get_secret('fid/keyed')$$) AS read_disabled_detail;
SELECT fid_error_of($$SELECT put_secret_value('fid/keyed', 'y')$$) AS write_disabled_detail;
\set VERBOSITY terse
