-- Rotation: rotate_secret / cancel_rotate_secret arguments and errors, the
-- four-step machine driven by hand (kms_rotation_run_job, the worker's unit
-- of work) with a custom strategy, automatic key rotation and the end of
-- deletion windows.  The built-in PostgreSQL strategies log in over TCP and
-- are tested in test/t/04*.pl.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;

-- regress_try with the random ARN suffix and account masked
CREATE FUNCTION regress_rot(q text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(regress_try(q), '"ARN": "[^"]*"', '"ARN": "<arn>"', 'g')
$$;
GRANT EXECUTE ON FUNCTION regress_rot(text) TO PUBLIC;

SELECT kms.rotation_scram_selftest('correct horse battery staple') AS scram_ok,
       kms.rotation_scram_selftest('pässwörd ﬁ') AS scram_saslprep_ok;

SELECT (create_secret('regress/rot', '{"engine":"postgres","host":"127.0.0.1","username":"nobody","password":"x"}') ->> 'Name') AS created;

-- Rules, as AWS validates them
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"AutomaticallyAfterDays": 0}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"AutomaticallyAfterDays": 1001}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(4 days)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"Every": 3}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '[1]', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(3 hours)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(1000 days)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(5 minutes)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "every day"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 16 1,15 * *)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 16 1,15 * * *)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 16 ? * ? *)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0,30 16 1 * ? *)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 1,3 1 * ? *)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 16 L * ? *)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 25 1 * ? *)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 0 1 1 ? 2001)"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(10 days)", "Duration": "0h"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(10 days)", "Duration": "25h"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(10 days)", "Duration": "3 hours"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(4 hours)", "Duration": "5h"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 22 ? * MON *)", "Duration": "4h"}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"AutomaticallyAfterDays": 3, "Duration": "25h"}', false)$$);

-- Strategies
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'no_such_strategy', '{"AutomaticallyAfterDays": 3}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'lower(text)', '{"AutomaticallyAfterDays": 3}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', NULL, '{"AutomaticallyAfterDays": 3}', false)$$);
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', NULL, false, 'short')$$);

-- Valid configurations without rotating now: NextRotationDate in UTC
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "3h"}', false)$$);
SELECT d -> 'RotationEnabled' AS enabled, d -> 'RotationRules' AS rules, d -> 'RotationLambdaARN' AS strategy,
       extract(hour FROM (d ->> 'NextRotationDate')::timestamptz AT TIME ZONE 'UTC') AS next_hour_utc,
       extract(day FROM (d ->> 'NextRotationDate')::timestamptz AT TIME ZONE 'UTC') IN (1, 15) AS next_day_ok,
       (d ->> 'NextRotationDate')::timestamptz > now() AS in_future, d ? 'VersionIdsToStages' AS has_versions
  FROM describe_secret('regress/rot') d;
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"schedule_expression": "rate(6 hours)"}', false)$$);
SELECT describe_secret('regress/rot') -> 'RotationRules' AS snake_case_normalized,
       (describe_secret('regress/rot') ->> 'NextRotationDate')::timestamptz - date_trunc('hour', now()) AS six_hours_from_hour;
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"ScheduleExpression": "rate(2 days)"}', false)$$);
SELECT (describe_secret('regress/rot') ->> 'NextRotationDate')::timestamptz AT TIME ZONE 'UTC' = date_trunc('day', now() AT TIME ZONE 'UTC') + interval '2 days' AS midnight_utc;
SELECT regress_rot($$SELECT rotate_secret('regress/rot', 'postgres_single_user', '{"AutomaticallyAfterDays": 30}', false)$$);
SELECT (describe_secret('regress/rot') ->> 'NextRotationDate')::timestamptz BETWEEN now() + interval '30 days' - interval '1 minute' AND now() + interval '30 days' AS thirty_days;
SELECT kms_rotation_next_due() IS NOT NULL AS something_due;

-- Cancel: rotation off, no NextRotationDate
SELECT regress_rot($$SELECT cancel_rotate_secret('regress/rot')$$);
SELECT describe_secret('regress/rot') -> 'RotationEnabled' AS enabled, describe_secret('regress/rot') ? 'NextRotationDate' AS has_next;
SELECT regress_rot($$SELECT cancel_rotate_secret('regress/rot')$$);

-- A built-in strategy on a value that is not RDS-style JSON: the error is
-- recorded (LastRotationError) and never quotes the value.
SELECT (create_secret('regress/notjson', 'not json at all: hunter2') ->> 'Name') AS created;
SELECT regress_rot($$SELECT rotate_secret('regress/notjson', 'postgres_single_user')$$);
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT describe_secret('regress/notjson') ->> 'LastRotationError' AS last_error,
       describe_secret('regress/notjson') ->> 'LastRotationError' LIKE '%hunter2%' AS leaks;
SELECT rotation_step, rotation_attempts, rotation_next_attempt > now() AS backing_off FROM kms.secret WHERE name = 'regress/notjson';
SELECT regress_rot($$SELECT rotate_secret('regress/notjson', 'postgres_single_user')$$);
SELECT regress_rot($$SELECT cancel_rotate_secret('regress/notjson')$$);
SELECT rotation_token IS NULL AS stopped FROM kms.secret WHERE name = 'regress/notjson';

-- A custom strategy: a SQL function called once per step, as the role that
-- configured rotation, like a rotation Lambda.
CREATE TABLE regress_rot_log (step text, who text);
GRANT INSERT ON regress_rot_log TO regress_app;
CREATE FUNCTION regress_rotator(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	cur text;
BEGIN
	INSERT INTO public.regress_rot_log VALUES (step, current_user);
	IF step = 'createSecret' THEN
		-- RotateSecret made the AWSPENDING version; this gives it its value (idempotent)
		PERFORM public.put_secret_value(secret_id, 'rotated value ' || pg_catalog.length(token),
										version_stages => ARRAY['AWSPENDING'], client_request_token => token);
	ELSIF step = 'testSecret' AND current_setting('regress.fail_test', true) = 'on' THEN
		RAISE EXCEPTION 'testSecret failed on purpose';
	ELSIF step = 'finishSecret' THEN
		SELECT version_id INTO cur FROM public.list_secret_version_ids(secret_id) v WHERE 'AWSCURRENT' = ANY (v.version_stages);
		IF cur <> token THEN
			PERFORM public.update_secret_version_stage(secret_id, 'AWSCURRENT', remove_from_version_id => cur, move_to_version_id => token);
		END IF;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION regress_rotator(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION regress_rotator(text, text, text) TO regress_app;

GRANT kms_admin TO regress_app;
SET ROLE regress_app;
SELECT (create_secret('regress/custom', 'first value') ->> 'Name') AS created;
RESET ROLE;
REVOKE kms_admin FROM regress_app;

-- who may configure it: RotateSecret on the secret, EXECUTE on the function
SET ROLE regress_other;
SELECT regress_rot($$SELECT rotate_secret('regress/custom', 'regress_rotator', '{"AutomaticallyAfterDays": 1}')$$);
RESET ROLE;
SET ROLE regress_app;
SELECT regress_rot($$SELECT rotate_secret('regress/custom', 'public.regress_rotator(text,text,text)', '{"AutomaticallyAfterDays": 1}', client_request_token => '00000000-0000-4000-8000-000000000001')$$);
-- the same token again: idempotent; another rotation: refused while one runs
SELECT regress_rot($$SELECT rotate_secret('regress/custom', client_request_token => '00000000-0000-4000-8000-000000000001')$$);
SELECT regress_rot($$SELECT rotate_secret('regress/custom')$$);
RESET ROLE;
SELECT rotation_strategy, rotation_role::regrole AS rotation_role, rotation_step FROM kms.secret WHERE name = 'regress/custom';

SET regress.fail_test = on;
SELECT kms_rotation_run_job('secret rotation'), kms_rotation_run_job('secret rotation'), kms_rotation_run_job('secret rotation');
SELECT rotation_step, rotation_attempts, describe_secret('regress/custom') ->> 'LastRotationError' AS last_error
  FROM kms.secret WHERE name = 'regress/custom';
SELECT stage, version_id FROM kms.secret_stage s JOIN kms.secret k USING (secret_id)
 WHERE k.name = 'regress/custom' AND stage = 'AWSPENDING';
RESET regress.fail_test;
UPDATE kms.secret SET rotation_next_attempt = now() - interval '1 second' WHERE name = 'regress/custom';
SELECT kms_rotation_run_job('secret rotation'), kms_rotation_run_job('secret rotation');
SELECT kms_rotation_run_job('secret rotation') AS more_work;
SELECT step, who FROM regress_rot_log;
SELECT get_secret('regress/custom') AS current_value,
       get_secret('regress/custom', version_stage => 'AWSPREVIOUS') AS previous_value;
SELECT d -> 'RotationEnabled' AS enabled, d ? 'LastRotationError' AS has_error,
       (d ->> 'LastRotatedDate')::timestamptz <= now() AS rotated,
       (d ->> 'NextRotationDate')::timestamptz > now() + interval '23 hours' AS next_tomorrow,
       (SELECT jsonb_agg(s ORDER BY s) FROM jsonb_each(d -> 'VersionIdsToStages') e, jsonb_array_elements_text(e.value) s) AS stages,
       d -> 'VersionIdsToStages' -> '00000000-0000-4000-8000-000000000001' AS new_version
  FROM describe_secret('regress/custom') d;
SELECT rotation_token, rotation_step, rotation_attempts FROM kms.secret WHERE name = 'regress/custom';

-- Due by schedule: the job starts a rotation on its own
UPDATE kms.secret SET next_rotation_date = now() - interval '1 minute' WHERE name = 'regress/custom';
TRUNCATE regress_rot_log;
SELECT kms_rotation_run_job('secret rotation') AS started;
SELECT rotation_step FROM kms.secret WHERE name = 'regress/custom';
SELECT kms_rotation_run_job('secret rotation'), kms_rotation_run_job('secret rotation'),
       kms_rotation_run_job('secret rotation'), kms_rotation_run_job('secret rotation');
SELECT string_agg(step, ',') AS steps FROM regress_rot_log;
SELECT get_secret('regress/custom') AS current_value;

-- A rotation left half-done (AWSPENDING on another version) blocks the next
SELECT (put_secret_value('regress/custom', 'manual pending', version_stages => ARRAY['AWSPENDING']) ->> 'Name') AS put;
SELECT regress_rot($$SELECT rotate_secret('regress/custom')$$);
SELECT regress_rot($$SELECT cancel_rotate_secret('regress/custom')$$);

-- On a secret scheduled for deletion
SELECT (delete_secret('regress/custom', 7) ->> 'Name') AS deleted;
SELECT regress_rot($$SELECT rotate_secret('regress/custom')$$);
SELECT regress_rot($$SELECT cancel_rotate_secret('regress/custom')$$);
SELECT regress_rot($$SELECT rotate_secret('regress/no-such-secret', 'postgres_single_user')$$);
SET ROLE regress_other;
SELECT regress_try($$SELECT kms_rotation_run_job('deletion')$$);
RESET ROLE;
SELECT regress_try($$SELECT kms_rotation_run_job('nothing')$$);

-- Deletion windows: a secret past its recovery window is purged
UPDATE kms.secret SET deletion_date = now() - interval '1 second' WHERE name = 'regress/custom';
SELECT kms_rotation_run_job('deletion') AS purged, kms_rotation_run_job('deletion') AS more;
SELECT count(*) AS left_over FROM kms.secret WHERE name = 'regress/custom';

-- Automatic key rotation: a new version when due, schedule moves on
SELECT kms_create_key(description => 'regress rotation') AS kid \gset
SELECT kms_encrypt(:'kid', 'before'::bytea) AS blob \gset
SELECT regress_try(format($$SELECT kms_enable_key_rotation(%L, 90)$$, :'kid'));
UPDATE kms.key SET next_rotation_date = now() - interval '1 minute' WHERE key_id = :'kid';
SELECT kms_rotation_run_job('key rotation') AS rotated, kms_rotation_run_job('key rotation') AS more;
SELECT current_version, next_rotation_date BETWEEN now() + interval '90 days' - interval '2 minutes' AND now() + interval '90 days' - interval '1 minute' AS anchored
  FROM kms.key WHERE key_id = :'kid';
SELECT version, rotation_type FROM kms.key_version WHERE key_id = :'kid' ORDER BY version;
-- long overdue (e.g. the key was disabled): rotate once, then from now
UPDATE kms.key SET next_rotation_date = now() - interval '400 days' WHERE key_id = :'kid';
SELECT regress_try(format($$SELECT kms_disable_key(%L)$$, :'kid'));
SELECT kms_rotation_run_job('key rotation') AS rotated_while_disabled;
SELECT regress_try(format($$SELECT kms_enable_key(%L)$$, :'kid'));
SELECT kms_rotation_run_job('key rotation') AS rotated_after_enable;
SELECT current_version, next_rotation_date BETWEEN now() + interval '90 days' - interval '1 minute' AND now() + interval '90 days' AS from_now FROM kms.key WHERE key_id = :'kid';
SELECT convert_from(kms_decrypt(:'blob'), 'UTF8') AS old_blob_still_decrypts;

-- Deletion windows: a key past its window is Deleted and its material destroyed
SELECT regress_try(format($$SELECT kms_create_alias('alias/regress/rot', %L)$$, :'kid'));
SELECT kms_schedule_key_deletion(:'kid', 7) ->> 'KeyState' AS state;
UPDATE kms.key SET deletion_date = now() - interval '1 second' WHERE key_id = :'kid';
SELECT kms_rotation_run_job('deletion') AS destroyed;
SELECT key_state, rotation_enabled FROM kms.key WHERE key_id = :'kid';
SELECT count(*) FILTER (WHERE material IS NOT NULL) AS material_left, count(*) AS versions FROM kms.key_version WHERE key_id = :'kid';
SELECT count(*) AS aliases_left FROM kms.alias WHERE key_id = :'kid';
SELECT regress_try(format($$SELECT kms_decrypt(%L::bytea)::text$$, :'blob'));

-- Clean up
SELECT (delete_secret(n, force_delete_without_recovery => true) ->> 'Name') AS dropped
  FROM unnest(ARRAY['regress/rot', 'regress/notjson']) n;
DROP FUNCTION regress_rotator(text, text, text);
DROP TABLE regress_rot_log;
DROP FUNCTION regress_rot(text);
