-- Setup shared by the KMS tests: the extension, test roles, and a helper
-- that runs a statement and reports its outcome with ids masked, so that
-- expected output does not depend on random key ids.
CREATE EXTENSION pg_kms;

CREATE ROLE regress_kms_admin LOGIN;
GRANT kms_admin TO regress_kms_admin;
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_other LOGIN;
CREATE ROLE regress_group NOLOGIN;
GRANT regress_group TO regress_other;

CREATE FUNCTION regress_try(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE q INTO r;
	RETURN 'ok: ' || coalesce(regexp_replace(r, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g'), '<null>');
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' ||
		regexp_replace(regexp_replace(regexp_replace(SQLERRM, '[0-9a-f]{64}', '<grant>', 'g'),
			'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g'),
			':[0-9]{12}:', ':<acct>:', 'g');
END
$$;
GRANT EXECUTE ON FUNCTION regress_try(text) TO PUBLIC;

-- Functions installed, none granted beyond PUBLIC's EXECUTE; tables closed.
SELECT count(*) > 30 AS many_functions
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname LIKE 'kms\_%';
SELECT count(*) >= 5 AS has_tables,
       count(*) FILTER (WHERE has_table_privilege('regress_app', c.oid, 'SELECT,INSERT,UPDATE,DELETE')) AS app_can_touch
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'kms' AND c.relkind = 'r';
SELECT c.relname AS kms_table_open_to_public
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'kms' AND c.relkind = 'r'
   AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT'));
SELECT has_schema_privilege('regress_app', 'kms', 'CREATE') AS app_can_create_in_kms;
