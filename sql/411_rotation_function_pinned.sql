-- Custom rotation functions (issue 9, finding 5): the function runs with
-- the configurer's privileges, so it is pinned by OID at configuration and
-- must be owned by the configurer or a superuser, checked at configuration
-- and before every step.  Before: called by name as the configurer, so its
-- owner (or the owner of its schema) could replace it later and run code
-- as, say, a superuser configurer.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;

CREATE FUNCTION regress_pin(q text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(regexp_replace(regress_try(q), '"ARN": "[^"]*"', '"ARN": "<arn>"', 'g'),
						  '"VersionId": "[^"]*"', '"VersionId": "<v>"', 'g')
$$;
CREATE ROLE regress_rot_mallory LOGIN;
CREATE SCHEMA regress_rot_m AUTHORIZATION regress_rot_mallory;

-- A. A plain role's function, configured by a superuser: refused.
SET ROLE regress_rot_mallory;
CREATE FUNCTION regress_rot_m.own_rotator(secret_id text, token text, step text) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
RESET ROLE;
SELECT (create_secret('regress/pin-a', 'a value') ->> 'Name') AS created;
SELECT regress_pin($$SELECT rotate_secret('regress/pin-a', 'regress_rot_m.own_rotator(text,text,text)', '{"AutomaticallyAfterDays": 1}', false)$$);
SELECT regress_pin($$SELECT rotate_secret('regress/pin-a', 'regress_rot_m.own_rotator', '{"AutomaticallyAfterDays": 1}', false)$$);
-- rotation was never configured: DescribeSecret has no RotationEnabled (as AWS)
SELECT describe_secret('regress/pin-a') ? 'RotationEnabled' AS rotation_configured;

-- B. A superuser's function, configured by a superuser, later given to a
-- plain role, who replaces it with code that makes itself a superuser.
CREATE FUNCTION regress_rot_m.given_rotator(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF step = 'createSecret' THEN	-- gives the AWSPENDING version its value; idempotent
		PERFORM public.put_secret_value(secret_id, 'rotated', version_stages => ARRAY['AWSPENDING'], client_request_token => token);
	END IF;
END
$$;
SELECT (create_secret('regress/pin-b', 'b value') ->> 'Name') AS created;
SELECT regress_pin($$SELECT rotate_secret('regress/pin-b', 'regress_rot_m.given_rotator(text,text,text)', '{"AutomaticallyAfterDays": 1}')$$);
ALTER FUNCTION regress_rot_m.given_rotator(text, text, text) OWNER TO regress_rot_mallory;
SET ROLE regress_rot_mallory;
CREATE OR REPLACE FUNCTION regress_rot_m.given_rotator(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	ALTER ROLE regress_rot_mallory SUPERUSER;
	IF step = 'createSecret' THEN	-- gives the AWSPENDING version its value; idempotent
		PERFORM public.put_secret_value(secret_id, 'rotated', version_stages => ARRAY['AWSPENDING'], client_request_token => token);
	END IF;
END
$$;
RESET ROLE;
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_rot_mallory';
SELECT rotation_step, describe_secret('regress/pin-b') ->> 'LastRotationError' AS last_error
  FROM kms.secret WHERE name = 'regress/pin-b';
SELECT regress_pin($$SELECT cancel_rotate_secret('regress/pin-b')$$);
-- the AWSPENDING version rotate_secret made stays after a cancel (as AWS):
-- removed, so that configuring again gets to the function's owner check
SELECT update_secret_version_stage('regress/pin-b', 'AWSPENDING',
		remove_from_version_id => (SELECT version_id FROM kms.secret_stage st JOIN kms.secret s USING (secret_id)
									WHERE s.name = 'regress/pin-b' AND st.stage = 'AWSPENDING')) ? 'ARN' AS pending_removed;
-- and configuring it again is refused as well
SELECT regress_pin($$SELECT rotate_secret('regress/pin-b', 'regress_rot_m.given_rotator(text,text,text)')$$);
ALTER ROLE regress_rot_mallory NOSUPERUSER;

-- C. The owner of the schema drops a superuser's function and puts its own
-- under the same name: the pinned function is gone, nothing else runs.
CREATE FUNCTION regress_rot_m.dropped_rotator(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF step = 'createSecret' THEN	-- gives the AWSPENDING version its value; idempotent
		PERFORM public.put_secret_value(secret_id, 'rotated', version_stages => ARRAY['AWSPENDING'], client_request_token => token);
	END IF;
END
$$;
SELECT (create_secret('regress/pin-c', 'c value') ->> 'Name') AS created;
SELECT regress_pin($$SELECT rotate_secret('regress/pin-c', 'regress_rot_m.dropped_rotator', '{"AutomaticallyAfterDays": 1}')$$);
SET ROLE regress_rot_mallory;
DROP FUNCTION regress_rot_m.dropped_rotator(text, text, text);
CREATE FUNCTION regress_rot_m.dropped_rotator(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	ALTER ROLE regress_rot_mallory SUPERUSER;
	IF step = 'createSecret' THEN	-- gives the AWSPENDING version its value; idempotent
		PERFORM public.put_secret_value(secret_id, 'rotated', version_stages => ARRAY['AWSPENDING'], client_request_token => token);
	END IF;
END
$$;
RESET ROLE;
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'regress_rot_mallory';
SELECT rotation_step, describe_secret('regress/pin-c') ->> 'LastRotationError' AS last_error
  FROM kms.secret WHERE name = 'regress/pin-c';
SELECT regress_pin($$SELECT cancel_rotate_secret('regress/pin-c')$$);
ALTER ROLE regress_rot_mallory NOSUPERUSER;

-- D. A function owned by the configurer itself is fine, and runs as it.
SET ROLE regress_rot_mallory;
CREATE FUNCTION regress_rot_m.mine(secret_id text, token text, step text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'not rotating today (running as %)', current_user;
END
$$;
RESET ROLE;
SELECT (create_secret('regress/pin-d', 'd value') ->> 'Name') AS created;
SELECT secret_create_grant('regress/pin-d', 'regress_rot_mallory', '{RotateSecret}') IS NOT NULL AS granted;
SET ROLE regress_rot_mallory;
SELECT regress_pin($$SELECT rotate_secret('regress/pin-d', 'regress_rot_m.mine', '{"AutomaticallyAfterDays": 1}')$$);
RESET ROLE;
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT describe_secret('regress/pin-d') ->> 'LastRotationError' AS last_error;
SELECT regress_pin($$SELECT cancel_rotate_secret('regress/pin-d')$$);

-- Clean up
SELECT (delete_secret(n, force_delete_without_recovery => true) ->> 'Name') AS dropped
  FROM unnest(ARRAY['regress/pin-a', 'regress/pin-b', 'regress/pin-c', 'regress/pin-d']) n;
DROP SCHEMA regress_rot_m CASCADE;
DROP ROLE regress_rot_mallory;
DROP FUNCTION regress_pin(text);
