/*
 * pg_kms 1.0 -> 1.1.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.1 install script), so that
 * an upgraded database and a fresh 1.1 install have the same objects;
 * test/t/050_upgrade.pl compares the two schema dumps.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.1'" to load this file. \quit

-- audit: two background workers (audit; rotation), kms_worker_status()
-- returns one row for each.
DROP FUNCTION kms_worker_status();
CREATE FUNCTION kms_worker_status(OUT state text, OUT pid int, OUT started timestamptz,
								  OUT last_wake timestamptz, OUT next_wake timestamptz,
								  OUT last_error text, OUT queue_length int,
								  OUT events_written bigint, OUT events_only_logged bigint,
								  OUT next_due timestamptz, OUT worker text,
								  OUT job text, OUT job_started timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status' LANGUAGE C VOLATILE ROWS 2;
COMMENT ON FUNCTION kms_worker_status() IS 'State of the pg_kms background workers, one row each';
REVOKE ALL ON FUNCTION kms_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_worker_status() TO kms_admin;
