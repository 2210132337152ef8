-- Setup of the KMS fidelity tests (issue 15, items 5 to 8), which run after
-- 900_cleanup: the extension again, roles of their own, and helpers that
-- mask random ids (fid_try) and wait for the audit worker (fid_audit_wait).
CREATE EXTENSION pg_kms;

CREATE ROLE fid_admin LOGIN;
GRANT kms_admin TO fid_admin;
CREATE ROLE fid_app LOGIN;
CREATE ROLE fid_other LOGIN;

CREATE FUNCTION fid_try(q text) RETURNS text
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
GRANT EXECUTE ON FUNCTION fid_try(text) TO PUBLIC;

CREATE FUNCTION fid_audit_wait(cond text, secs int DEFAULT 60) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	ok boolean;
BEGIN
	FOR i IN 1 .. secs * 10 LOOP
		EXECUTE 'SELECT ' || cond INTO ok;
		IF ok THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN false;
END
$$;
