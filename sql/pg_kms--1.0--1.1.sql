/*
 * pg_kms 1.0 -> 1.1.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.1 install script), so that
 * an upgraded database and a fresh 1.1 install have the same objects;
 * test/t/050_upgrade.pl compares the two schema dumps.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.1'" to load this file. \quit

-- rotation: custom strategies pinned by OID, the clone remembered, the
-- SCRAM login client's self-test (issue 9, findings 1 and 5)
ALTER TABLE kms.secret
	ADD COLUMN rotation_function regprocedure,		-- the custom strategy's function
	ADD COLUMN rotation_clone regrole;				-- the <user>_clone pg_kms created
-- 1.0 stored the function's qualified signature: pin what it names now
-- (its owner is checked before every step all the same).
UPDATE kms.secret SET rotation_function = pg_catalog.to_regprocedure(rotation_strategy)
 WHERE rotation_strategy IS NOT NULL
   AND rotation_strategy NOT IN ('postgres_single_user', 'postgres_alternating_users');

CREATE FUNCTION kms.rotation_login_selftest(host text, port int, username text, password text,
											dbname text, timeout_ms int DEFAULT 5000)
RETURNS text AS 'MODULE_PATHNAME', 'kms_rotation_login_selftest' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) FROM PUBLIC;
COMMENT ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) IS 'Test: the rotation worker''s SCRAM-only login client against host (socket directory or IP address); NULL on success, else why it failed';
