-- Built-in rotation strategies (issue 9, finding 1): which roles a rotation
-- may change.  Only plain login roles of this cluster that the rotation's
-- configurer may administer by PostgreSQL's own rule for ALTER ROLE ...
-- PASSWORD; checked by rotate_secret and again before every step; a
-- secret's host must be this server.  (Logins are tested in test/t/043.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;

CREATE FUNCTION regress_roles(q text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(regexp_replace(regress_try(q), '"ARN": "[^"]*"', '"ARN": "<arn>"', 'g'),
						  '"VersionId": "[^"]*"', '"VersionId": "<v>"', 'g')
$$;
GRANT EXECUTE ON FUNCTION regress_roles(text) TO PUBLIC;
-- an RDS-style secret value for user on this server
CREATE FUNCTION regress_cred(u text, host text DEFAULT '127.0.0.1', port text DEFAULT current_setting('port'))
RETURNS text LANGUAGE sql AS $$
	SELECT format('{"engine":"postgres","host":"%s","port":%s,"username":"%s","password":"not-checked-here","dbname":"contrib_regression"}',
				  host, port, u)
$$;

CREATE ROLE regress_rot_victim LOGIN;
CREATE ROLE regress_rot_base LOGIN;
CREATE ROLE regress_rot_cr LOGIN CREATEROLE;
CREATE ROLE regress_rot_su LOGIN SUPERUSER;
CREATE ROLE regress_rot_repl LOGIN REPLICATION;
CREATE ROLE regress_rot_brls LOGIN BYPASSRLS;
CREATE ROLE regress_rot_nologin NOLOGIN;
CREATE ROLE regress_rot_via LOGIN IN ROLE regress_rot_su;
CREATE ROLE regress_rot_files LOGIN IN ROLE pg_read_server_files;
-- somebody's role that merely has the name a clone of regress_rot_victim would get
CREATE ROLE regress_rot_victim_clone LOGIN;

SELECT (create_secret('regress/roles/' || u, regress_cred(u)) ->> 'Name') AS created
  FROM unnest(ARRAY['regress_rot_victim', 'regress_rot_base', 'regress_rot_su', 'regress_rot_cr',
					'regress_rot_repl', 'regress_rot_brls', 'regress_rot_nologin', 'regress_rot_via',
					'regress_rot_files', 'kms_admin', 'regress_app']) u;
SELECT count(secret_create_grant('regress/roles/' || u, 'regress_app', '{RotateSecret}')) AS granted
  FROM unnest(ARRAY['regress_rot_victim', 'regress_app']) u;
SELECT count(secret_create_grant('regress/roles/regress_rot_victim', 'regress_rot_cr', '{RotateSecret}')) AS granted;

-- A plain role may rotate its own password, not another role's
SET ROLE regress_app;
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_victim', 'postgres_single_user', '{"AutomaticallyAfterDays": 7}', false)$$);
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_victim', 'postgres_alternating_users', '{"AutomaticallyAfterDays": 7}', false)$$);
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_app', 'postgres_single_user', '{"AutomaticallyAfterDays": 7}', false)$$);
-- alternating users creates a role: CREATEROLE is needed
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_app', 'postgres_alternating_users', '{"AutomaticallyAfterDays": 7}', false)$$);
RESET ROLE;
SELECT rotation_role::regrole AS rotation_role FROM kms.secret WHERE name = 'regress/roles/regress_app';

-- Never a privileged role, a member of one, or a NOLOGIN role, even for a superuser
SELECT u, regress_roles(format($$SELECT rotate_secret('regress/roles/%s', 'postgres_single_user', '{"AutomaticallyAfterDays": 7}', false)$$, u)) AS result
  FROM unnest(ARRAY['regress_rot_su', 'regress_rot_cr', 'regress_rot_repl', 'regress_rot_brls',
					'regress_rot_nologin', 'regress_rot_via', 'regress_rot_files', 'kms_admin']) u;
SELECT count(*) FILTER (WHERE rotation_enabled) AS enabled FROM kms.secret WHERE name LIKE 'regress/roles/%';

-- Alternating users: a role with the clone's name that pg_kms did not make
-- for this secret is not taken over ("victim_clone")
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_victim', 'postgres_alternating_users', '{"AutomaticallyAfterDays": 7}', false)$$);
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_base', 'postgres_alternating_users', '{"AutomaticallyAfterDays": 7}', false)$$);
-- the other way round: a current user that is no clone of the base
SELECT (put_secret_value('regress/roles/regress_rot_victim', regress_cred('regress_rot_victim_clone')) ->> 'Name') AS put;
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_victim', 'postgres_alternating_users', '{"AutomaticallyAfterDays": 7}', false)$$);
SELECT (put_secret_value('regress/roles/regress_rot_victim', regress_cred('regress_rot_victim')) ->> 'Name') AS put;

-- PG 15: CREATEROLE may set other roles' passwords; checked again at every
-- step, so revoking CREATEROLE stops the rotation it configured
SET ROLE regress_rot_cr;
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_victim', 'postgres_single_user')$$);
RESET ROLE;
ALTER ROLE regress_rot_cr NOCREATEROLE;
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT rotation_step, describe_secret('regress/roles/regress_rot_victim') ->> 'LastRotationError' AS last_error,
       (SELECT count(*) FROM list_secret_version_ids('regress/roles/regress_rot_victim', true)) AS versions
  FROM kms.secret WHERE name = 'regress/roles/regress_rot_victim';
SELECT regress_roles($$SELECT cancel_rotate_secret('regress/roles/regress_rot_victim')$$);
ALTER ROLE regress_rot_cr CREATEROLE;

-- The secret's host and port must be this server's: the worker never logs
-- in elsewhere, so another server cannot vouch for a role of this cluster
SELECT (put_secret_value('regress/roles/regress_rot_base', regress_cred('regress_rot_base', 'evil.example.com', '5432')) ->> 'Name') AS put;
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_base', 'postgres_single_user')$$);
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT rotation_step, describe_secret('regress/roles/regress_rot_base') ->> 'LastRotationError' AS last_error,
       (SELECT count(*) FROM list_secret_version_ids('regress/roles/regress_rot_base', true)) AS versions
  FROM kms.secret WHERE name = 'regress/roles/regress_rot_base';
SELECT regress_roles($$SELECT cancel_rotate_secret('regress/roles/regress_rot_base')$$);
SELECT (put_secret_value('regress/roles/regress_rot_base', regress_cred('regress_rot_base', '127.0.0.1', '1')) ->> 'Name') AS put;
SELECT regress_roles($$SELECT rotate_secret('regress/roles/regress_rot_base', 'postgres_single_user')$$);
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT rotation_step, replace(describe_secret('regress/roles/regress_rot_base') ->> 'LastRotationError', current_setting('port'), '<port>') AS last_error
  FROM kms.secret WHERE name = 'regress/roles/regress_rot_base';
SELECT regress_roles($$SELECT cancel_rotate_secret('regress/roles/regress_rot_base')$$);

-- A secret under a key the configurer may not Decrypt: rotate_secret cannot
-- read the role, so it cannot refuse early; the worker checks before the
-- first step all the same
SELECT kms_create_key(description => 'regress rotation roles') AS rkid \gset
SELECT (create_secret('regress/roles/keyed', regress_cred('regress_rot_victim'), kms_key_id => :'rkid') ->> 'Name') AS created;
SELECT count(secret_create_grant('regress/roles/keyed', 'regress_app', '{RotateSecret}')) AS granted;
SET ROLE regress_app;
SELECT regress_roles($$SELECT rotate_secret('regress/roles/keyed', 'postgres_single_user')$$);
RESET ROLE;
SELECT kms_rotation_run_job('secret rotation') AS ran;
SELECT rotation_step, describe_secret('regress/roles/keyed') ->> 'LastRotationError' AS last_error,
       (SELECT count(*) FROM list_secret_version_ids('regress/roles/keyed', true)) AS versions
  FROM kms.secret WHERE name = 'regress/roles/keyed';
SELECT regress_roles($$SELECT cancel_rotate_secret('regress/roles/keyed')$$);

-- Clean up
SELECT count(delete_secret(name, force_delete_without_recovery => true)) AS dropped
  FROM kms.secret WHERE name LIKE 'regress/roles/%';
DROP ROLE regress_rot_victim, regress_rot_base, regress_rot_cr, regress_rot_via, regress_rot_files, regress_rot_su,
	regress_rot_repl, regress_rot_brls, regress_rot_nologin, regress_rot_victim_clone;
SELECT kms_schedule_key_deletion(:'rkid', 7) ->> 'KeyState' AS key_state;
DROP FUNCTION regress_cred(text, text, text);
DROP FUNCTION regress_roles(text);
