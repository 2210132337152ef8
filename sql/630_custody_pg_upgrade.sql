-- pg_upgrade refuses reg* columns in user tables: kms_pg_upgrade_prepare()
-- turns kms.secret.rotation_function (the pinned custom rotation functions)
-- into their qualified signatures, kms_pg_upgrade_finish() pins them again.
-- Superusers only; each is a no-op the second time.
CREATE FUNCTION regress_rot_fn(secret_id text, token text, step text) RETURNS void
	LANGUAGE sql AS 'SELECT NULL';
SELECT create_secret('regress/pgupg', 'v1') ->> 'Name' AS created;
SELECT rotate_secret('regress/pgupg', 'public.regress_rot_fn(text,text,text)',
					 '{"AutomaticallyAfterDays": 30}', rotate_immediately => false) ->> 'Name' AS configured;
SELECT kms_pg_upgrade_prepare();
SELECT kms_pg_upgrade_prepare();
SELECT pg_typeof(rotation_function) AS type, rotation_function AS pinned
  FROM kms.secret WHERE name = 'regress/pgupg';
SELECT kms_pg_upgrade_finish();
SELECT kms_pg_upgrade_finish();
SELECT pg_typeof(rotation_function) AS type,
	   rotation_function = 'public.regress_rot_fn(text,text,text)'::regprocedure AS same_function
  FROM kms.secret WHERE name = 'regress/pgupg';
-- not for other roles: EXECUTE is revoked from PUBLIC, and a grant of it
-- still does not let a non-superuser through
SET ROLE regress_app;
SELECT regress_try($$SELECT kms_pg_upgrade_prepare()$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION kms_pg_upgrade_prepare(), kms_pg_upgrade_finish() TO regress_app;
SET ROLE regress_app;
SELECT regress_try($$SELECT kms_pg_upgrade_prepare()$$);
SELECT regress_try($$SELECT kms_pg_upgrade_finish()$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION kms_pg_upgrade_prepare(), kms_pg_upgrade_finish() FROM regress_app;
-- prepared, rotation waits for finish (with a clear error in a session)
SELECT kms_pg_upgrade_prepare();
SELECT regress_try($$SELECT rotate_secret('regress/pgupg')::text$$);
SELECT regress_try($$SELECT cancel_rotate_secret('regress/pgupg')::text$$);
-- a pinned function gone by the time of finish fails it, and nothing changes
UPDATE kms.secret SET rotation_function = 'public.regress_gone(text,text,text)' WHERE name = 'regress/pgupg';
SELECT regress_try($$SELECT kms_pg_upgrade_finish()$$);
SELECT pg_typeof(rotation_function) AS still FROM kms.secret WHERE name = 'regress/pgupg' ;
UPDATE kms.secret SET rotation_function = 'public.regress_rot_fn(text,text,text)' WHERE name = 'regress/pgupg';
SELECT kms_pg_upgrade_finish();
SELECT (delete_secret('regress/pgupg', force_delete_without_recovery => true)) ->> 'Name' AS deleted;
DROP FUNCTION regress_rot_fn(text, text, text);
