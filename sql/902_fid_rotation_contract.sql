-- Issue 15, item 1: the rotation contract of a custom strategy, as AWS runs
-- a rotation Lambda.
--
-- RotateSecret API reference: "Secrets Manager ... creates a new version of
-- the secret, labelled AWSPENDING, and then calls the rotation function"
-- (the version named by ClientRequestToken, without a value: AWS's
-- templates check for it in every step and fail without it), and "If you
-- don't immediately rotate the secret, Secrets Manager tests the rotation
-- configuration by running the testSecret step of the Lambda rotation
-- function. The test creates an AWSPENDING version of the secret and then
-- removes it."  RotationRulesType: Duration goes with AutomaticallyAfterDays
-- as with ScheduleExpression.  An unknown RotationLambdaARN is
-- ResourceNotFoundException.
CREATE TABLE fid_rot_log (step text, pending_there boolean, pending_value text);
GRANT INSERT ON fid_rot_log TO PUBLIC;

-- A function like AWS's templates' prologue: it only looks.  It creates
-- nothing, moves nothing; every step must be called all the same.
CREATE FUNCTION fid_looker(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v text;
BEGIN
	BEGIN
		v := public.get_secret(secret_id, token, 'AWSPENDING');
	EXCEPTION WHEN undefined_object THEN
		v := '<no value>';
	END;
	INSERT INTO public.fid_rot_log
		SELECT step, coalesce(public.describe_secret(secret_id) -> 'VersionIdsToStages' -> token ? 'AWSPENDING', false), v;
	IF step = 'testSecret' AND current_setting('fid.fail_test', true) = 'on' THEN
		RAISE EXCEPTION 'testSecret failed on purpose';
	END IF;
END
$$;

SELECT (create_secret('fid/rot', 'current value') ->> 'Name') AS created;

-- A. Rotate now: the AWSPENDING version exists, without a value, as soon
-- as rotate_secret returns and before createSecret runs.
SELECT fid_try($$SELECT rotate_secret('fid/rot', 'fid_looker', '{"AutomaticallyAfterDays": 7}',
									  client_request_token => 'fid-token-a-aaaaaaaaaaaaaaaaaaaaaaaaaaaa')$$);
SELECT d -> 'VersionIdsToStages' -> 'fid-token-a-aaaaaaaaaaaaaaaaaaaaaaaaaaaa' AS pending_version
  FROM describe_secret('fid/rot') d;
SELECT fid_try($$SELECT get_secret('fid/rot', 'fid-token-a-aaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'AWSPENDING')$$) AS pending_read;
SELECT kms_rotation_run_job('secret rotation') AS s1, kms_rotation_run_job('secret rotation') AS s2,
       kms_rotation_run_job('secret rotation') AS s3, kms_rotation_run_job('secret rotation') AS s4;
-- all four steps were called, each seeing the AWSPENDING version
SELECT step, pending_there, pending_value FROM fid_rot_log;
SELECT rotation_token, rotation_step, rotation_last_error FROM kms.secret WHERE name = 'fid/rot';
-- the function moved nothing: AWSPENDING stays on a version other than
-- AWSCURRENT, so the next RotateSecret says a rotation is not complete
SELECT get_secret('fid/rot') AS current_value;
SELECT fid_try($$SELECT rotate_secret('fid/rot')$$) AS next_rotation;
SELECT (update_secret_version_stage('fid/rot', 'AWSPENDING',
		remove_from_version_id => 'fid-token-a-aaaaaaaaaaaaaaaaaaaaaaaaaaaa') ->> 'Name') AS pending_removed;
TRUNCATE fid_rot_log;

-- B. RotateImmediately = false: testSecret only, on an AWSPENDING copy of
-- AWSCURRENT that is removed afterwards; no rotation starts.
SELECT fid_try($$SELECT rotate_secret('fid/rot', 'fid_looker', '{"AutomaticallyAfterDays": 7}', false,
									  'fid-token-b-bbbbbbbbbbbbbbbbbbbbbbbbbbbb')$$);
SELECT step, pending_there, pending_value FROM fid_rot_log;
SELECT count(*) AS copies_left FROM list_secret_version_ids('fid/rot', true)
 WHERE version_id = 'fid-token-b-bbbbbbbbbbbbbbbbbbbbbbbbbbbb';
SELECT rotation_token, rotation_enabled FROM kms.secret WHERE name = 'fid/rot';
TRUNCATE fid_rot_log;

-- C. A failing test fails the call; nothing of it stays.
SELECT (cancel_rotate_secret('fid/rot') ->> 'Name') AS cancelled;
SET fid.fail_test = on;
SELECT fid_try($$SELECT rotate_secret('fid/rot', 'fid_looker', '{"AutomaticallyAfterDays": 3}', false,
									  'fid-token-c-cccccccccccccccccccccccccccc')$$);
RESET fid.fail_test;
SELECT rotation_enabled, rotation_rules FROM kms.secret WHERE name = 'fid/rot';
SELECT count(*) AS copies_left FROM list_secret_version_ids('fid/rot', true)
 WHERE version_id = 'fid-token-c-cccccccccccccccccccccccccccc';

-- D. A scheduled rotation gets its AWSPENDING version before createSecret too.
SELECT fid_try($$SELECT rotate_secret('fid/rot', 'fid_looker', '{"AutomaticallyAfterDays": 7}', false)$$) AS configured;
TRUNCATE fid_rot_log;
UPDATE kms.secret SET next_rotation_date = now() - interval '1 minute' WHERE name = 'fid/rot';
SELECT kms_rotation_run_job('secret rotation') AS started, kms_rotation_run_job('secret rotation') AS create_step;
SELECT step, pending_there, pending_value FROM fid_rot_log;
SELECT (cancel_rotate_secret('fid/rot') ->> 'Name') AS cancelled;

-- E. Duration with AutomaticallyAfterDays (RotationRulesType).
SELECT (create_secret('fid/dur', 'x') ->> 'Name') AS created;
SELECT fid_try($$SELECT rotate_secret('fid/dur', 'fid_looker', '{"AutomaticallyAfterDays": 3, "Duration": "2h"}', false)$$);
SELECT describe_secret('fid/dur') -> 'RotationRules' AS rules;
SELECT fid_try($$SELECT rotate_secret('fid/dur', 'fid_looker', '{"AutomaticallyAfterDays": 3, "Duration": "25h"}', false)$$);

-- F. A strategy that resolves to nothing: ResourceNotFoundException, as an
-- unknown Lambda ARN is.
SELECT fid_try($$SELECT rotate_secret('fid/dur', 'fid_no_such_function', '{"AutomaticallyAfterDays": 3}')$$);
SELECT fid_try($$SELECT rotate_secret('fid/dur', 'public.fid_no_such_function(text,text,text)', '{"AutomaticallyAfterDays": 3}')$$);

-- G. The testSecret of rotate_immediately => false runs in the caller's
-- session, as the configurer: as a security-restricted operation, so that
-- the session's temporary objects are not the function's (a temporary
-- table cannot even be made there).
CREATE FUNCTION fid_temp_maker(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	CREATE TEMP TABLE fid_tmp (x int);
END
$$;
SELECT fid_try($$SELECT rotate_secret('fid/dur', 'fid_temp_maker', '{"AutomaticallyAfterDays": 3}', false)$$) AS restricted;
