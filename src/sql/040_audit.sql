/*
 * Audit trail (docs/audit.md).  The audit worker of this database is the
 * only writer of kms.audit_log; each row is chained to the previous one by
 * a SHA-256 hash.  kms.audit is the view roles read.  The table is dumped
 * with its data (pg_extension_config_dump), so a restore keeps the trail
 * and kms_audit_verify() still passes.
 */
CREATE TABLE kms.audit_log (
	id				bigint PRIMARY KEY,
	event_time		timestamptz NOT NULL,	-- the call; an aggregate's first call
	last_time		timestamptz NOT NULL,	-- an aggregate's last call
	event_count		bigint NOT NULL,		-- calls in this row (1 unless aggregated)
	event_type		text NOT NULL,			-- 'call' or 'aggregate'
	db_user			text,					-- current_user at the call
	session_user_name text,					-- session_user at the call
	database		text,
	client_addr		text,					-- NULL for background processes, [local] for sockets
	application_name text,
	backend_pid		int,
	query_id		bigint,					-- top-level query id (compute_query_id)
	operation		text NOT NULL,			-- AWS operation name
	resource_id		text,					-- key id, alias name, secret ARN or name
	resource_arn	text,
	version			text,					-- key version or secret version id
	outcome			text NOT NULL,			-- 'success' or the AWS exception name
	parameters		jsonb,					-- request parameters that are safe to show
	prev_hash		bytea NOT NULL,
	row_hash		bytea NOT NULL,
	-- the roles of db_user and session_user_name (since 1.1; NULL in rows
	-- written before), so that a re-created role name is another role
	db_user_oid		oid,
	session_user_oid oid
);
CREATE INDEX ON kms.audit_log (event_time);
REVOKE ALL ON kms.audit_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('kms.audit_log', '');

/*
 * The hash chain, in SQL: the same definition the worker computes in C.
 * A field is its UTF-8 text as a 4-byte big-endian length and the bytes,
 * or ff ff ff ff for NULL; times are microseconds since 1970-01-01 UTC.
 * The role OIDs are fields 19 and 20 of the rows that have them (rows
 * written before 1.1 have 18 fields, so they verify as they did).
 */
CREATE FUNCTION kms.audit_field(t text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
	SELECT CASE WHEN t IS NULL THEN '\xffffffff'::bytea
		   ELSE pg_catalog.int4send(pg_catalog.octet_length(pg_catalog.convert_to(t, 'UTF8')))
				OPERATOR(pg_catalog.||) pg_catalog.convert_to(t, 'UTF8') END
$$;

CREATE FUNCTION kms.audit_time_us(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
	SELECT ((EXTRACT(epoch FROM t) OPERATOR(pg_catalog.*) 1000000)::bigint)::text
$$;

CREATE FUNCTION kms.audit_payload(r kms.audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog
AS $$
	SELECT kms.audit_field(r.id::text)
		OPERATOR(pg_catalog.||) kms.audit_field(kms.audit_time_us(r.event_time))
		OPERATOR(pg_catalog.||) kms.audit_field(kms.audit_time_us(r.last_time))
		OPERATOR(pg_catalog.||) kms.audit_field(r.event_count::text)
		OPERATOR(pg_catalog.||) kms.audit_field(r.event_type)
		OPERATOR(pg_catalog.||) kms.audit_field(r.db_user)
		OPERATOR(pg_catalog.||) kms.audit_field(r.session_user_name)
		OPERATOR(pg_catalog.||) kms.audit_field(r.database)
		OPERATOR(pg_catalog.||) kms.audit_field(r.client_addr)
		OPERATOR(pg_catalog.||) kms.audit_field(r.application_name)
		OPERATOR(pg_catalog.||) kms.audit_field(r.backend_pid::text)
		OPERATOR(pg_catalog.||) kms.audit_field(r.query_id::text)
		OPERATOR(pg_catalog.||) kms.audit_field(r.operation)
		OPERATOR(pg_catalog.||) kms.audit_field(r.resource_id)
		OPERATOR(pg_catalog.||) kms.audit_field(r.resource_arn)
		OPERATOR(pg_catalog.||) kms.audit_field(r.version)
		OPERATOR(pg_catalog.||) kms.audit_field(r.outcome)
		OPERATOR(pg_catalog.||) kms.audit_field(r.parameters::text)
		OPERATOR(pg_catalog.||) CASE WHEN r.db_user_oid IS NULL AND r.session_user_oid IS NULL
			THEN '\x'::bytea
			ELSE kms.audit_field(r.db_user_oid::text)
				OPERATOR(pg_catalog.||) kms.audit_field(r.session_user_oid::text) END
$$;
REVOKE ALL ON FUNCTION kms.audit_field(text), kms.audit_time_us(timestamptz),
	kms.audit_payload(kms.audit_log) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms.audit_field(text), kms.audit_time_us(timestamptz),
	kms.audit_payload(kms.audit_log) TO kms_admin;
-- kms_admin reads the whole trail anyway (kms.audit); it may not change it.
GRANT SELECT ON kms.audit_log TO kms_admin;

/*
 * kms_audit_verify(): the id of the first row whose hash does not match its
 * contents or whose prev_hash is not the previous row's row_hash; NULL if
 * the whole chain holds.  The first remaining row's prev_hash is taken as
 * given (retention deletes the oldest rows).
 */
CREATE FUNCTION kms_audit_verify() RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
DECLARE
	r		kms.audit_log;
	prev	bytea;
	first	boolean := true;
BEGIN
	FOR r IN SELECT * FROM kms.audit_log ORDER BY id LOOP
		IF NOT first AND r.prev_hash IS DISTINCT FROM prev THEN
			RETURN r.id;
		END IF;
		IF pg_catalog.sha256(r.prev_hash OPERATOR(pg_catalog.||) kms.audit_payload(r))
			IS DISTINCT FROM r.row_hash THEN
			RETURN r.id;
		END IF;
		prev := r.row_hash;
		first := false;
	END LOOP;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION kms_audit_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_audit_verify() TO kms_admin;
COMMENT ON FUNCTION kms_audit_verify() IS 'Id of the first kms.audit row that breaks the hash chain, NULL if none';

/*
 * What a role may read: kms_admin members everything, others their own,
 * matched by role OID (a role dropped and created again under the same
 * name is another role).  Rows without OIDs (written before 1.1) are
 * kms_admin's only.
 */
CREATE VIEW kms.audit WITH (security_barrier) AS
	SELECT a.id, a.event_time, a.last_time, a.event_count, a.event_type,
		   a.db_user, a.session_user_name, a.database, a.client_addr,
		   a.application_name, a.backend_pid, a.query_id, a.operation,
		   a.resource_id, a.resource_arn, a.version, a.outcome, a.parameters,
		   a.prev_hash, a.row_hash, a.db_user_oid, a.session_user_oid
	  FROM kms.audit_log a
	 WHERE pg_catalog.pg_has_role(current_user, 'kms_admin', 'MEMBER')
		OR a.db_user_oid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
												 WHERE r.rolname OPERATOR(pg_catalog.=) current_user)
		OR a.session_user_oid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
													  WHERE r.rolname OPERATOR(pg_catalog.=) current_user);
GRANT SELECT ON kms.audit TO PUBLIC;

CREATE FUNCTION kms_audit_stats(OUT queue_capacity int, OUT queue_length int,
								OUT queue_bytes_capacity bigint, OUT queue_bytes bigint,
								OUT events_queued bigint, OUT events_written bigint,
								OUT events_only_logged bigint, OUT producer_waits bigint,
								OUT worker_draining boolean)
RETURNS record AS 'MODULE_PATHNAME', 'kms_audit_stats' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_audit_stats() IS 'Audit queue statistics since server start; events_only_logged reached the server log but not kms.audit';
REVOKE ALL ON FUNCTION kms_audit_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_audit_stats() TO kms_admin;

/*
 * One row per background worker of the current database: worker = 'audit'
 * (drain, retention; the queue columns) or 'rotation' (rotations,
 * deletions; next_due).
 */
CREATE FUNCTION kms_worker_status(OUT state text, OUT pid int, OUT started timestamptz,
								  OUT last_wake timestamptz, OUT next_wake timestamptz,
								  OUT last_error text, OUT queue_length int,
								  OUT events_written bigint, OUT events_only_logged bigint,
								  OUT next_due timestamptz, OUT worker text,
								  OUT job text, OUT job_started timestamptz)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status' LANGUAGE C VOLATILE ROWS 2;
COMMENT ON FUNCTION kms_worker_status() IS 'State of the pg_kms background workers of the current database, one row each';
REVOKE ALL ON FUNCTION kms_worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kms_worker_status() TO kms_admin;

/*
 * Every pg_kms background process of the cluster, for superusers: the
 * launcher (database NULL, worker 'launcher'), then the audit and rotation
 * workers of each database the launcher serves or probes.
 */
CREATE FUNCTION kms_worker_status_all(OUT database text, OUT worker text, OUT state text,
									  OUT pid int, OUT started timestamptz,
									  OUT last_wake timestamptz, OUT next_wake timestamptz,
									  OUT last_error text, OUT next_due timestamptz,
									  OUT job text, OUT job_started timestamptz,
									  OUT restarts bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_worker_status_all' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_worker_status_all() IS 'State of the pg_kms launcher and of the workers of every database (superusers only)';
REVOKE ALL ON FUNCTION kms_worker_status_all() FROM PUBLIC;
