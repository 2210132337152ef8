-- Issue 15, Secrets Manager half (AWS fidelity): setup of tests 901..949.
-- They run after 900_cleanup, so they make the extension (and drop it again
-- in 949_fid_cleanup); each cites the AWS API reference sentence, or the
-- API model member (python3-botocore's secretsmanager service-2.json), it
-- follows.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
CREATE ROLE regress_fid_app LOGIN;

-- Run a statement; its result or "SQLSTATE message", with ARNs and UUIDs
-- masked (they differ from run to run).
CREATE FUNCTION fid_try(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE q INTO r;
	RETURN 'ok: ' || coalesce(regexp_replace(regexp_replace(r, 'arn:aws:secretsmanager:[^"]*', '<arn>', 'g'),
		'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g'), '<null>');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' ||
		regexp_replace(regexp_replace(SQLERRM, 'arn:aws:secretsmanager:[^" ]*', '<arn>', 'g'),
			'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g');
END
$$;
GRANT EXECUTE ON FUNCTION fid_try(text) TO PUBLIC;
