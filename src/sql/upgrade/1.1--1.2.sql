/*
 * pg_kms 1.1 -> 1.2.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.2 install script), so that
 * an upgraded database and a fresh 1.2 install have the same objects;
 * test/t/050_upgrade.pl compares the two catalogs (from 1.0 and from 1.1).
 * The Makefile builds sql/pg_kms--1.1--1.2.sql from this file followed by
 * the install checks (src/sql/060_install_checks.sql), which every update
 * runs again.  Released scripts (sql/pg_kms--1.0.sql, sql/pg_kms--1.1.sql,
 * sql/pg_kms--1.0--1.1.sql) are kept as they shipped.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.2'" to load this file. \quit

-- worker/audit: every database is served (issue 12), the audit trail is dumped (issue 11, finding 9)
SELECT pg_catalog.pg_extension_config_dump('kms.audit_log', '');
COMMENT ON FUNCTION kms_worker_status() IS 'State of the pg_kms background workers of the current database, one row each';
CREATE FUNCTION kms_worker_status_all(OUT database text, OUT worker text, OUT state text,
									  OUT pid int, OUT started timestamptz,
									  OUT last_wake timestamptz, OUT next_wake timestamptz,
									  OUT last_error text, OUT next_due timestamptz,
									  OUT job text, OUT job_started timestamptz,
									  OUT restarts bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status_all' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_worker_status_all() IS 'State of the pg_kms launcher and of the workers of every database (superusers only)';
REVOKE ALL ON FUNCTION kms_worker_status_all() FROM PUBLIC;
