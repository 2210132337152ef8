/*
 * Rotation (docs/rotation.md): RotateSecret, CancelRotateSecret, and the
 * durable state of a rotation in progress, which the worker advances one
 * step per transaction (createSecret, setSecret, testSecret, finishSecret).
 */
ALTER TABLE kms.secret
	ADD COLUMN rotation_role oid,					-- who configured it; runs custom strategies
	ADD COLUMN rotation_token text,					-- the AWSPENDING version id of the rotation in progress
	ADD COLUMN rotation_step text
		CHECK (rotation_step IN ('createSecret', 'setSecret', 'testSecret', 'finishSecret')),
	ADD COLUMN rotation_started timestamptz,
	ADD COLUMN rotation_attempts int NOT NULL DEFAULT 0,	-- failures of the current step
	ADD COLUMN rotation_next_attempt timestamptz,	-- back-off after a failure
	ADD COLUMN rotation_last_error text,			-- DescribeSecret's LastRotationError
	ADD COLUMN rotation_last_error_date timestamptz,
	ADD CONSTRAINT secret_rotation_state CHECK ((rotation_token IS NULL) = (rotation_step IS NULL));

CREATE FUNCTION rotate_secret(secret_id text,
							  rotation_strategy text DEFAULT NULL,
							  rotation_rules jsonb DEFAULT NULL,
							  rotate_immediately boolean DEFAULT true,
							  client_request_token text DEFAULT NULL)
RETURNS jsonb AS 'MODULE_PATHNAME', 'rotate_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION rotate_secret(text, text, jsonb, boolean, text) IS 'RotateSecret: strategy postgres_single_user | postgres_alternating_users | a function (secret_id text, client_request_token text, step text); rules {"AutomaticallyAfterDays": N} or {"ScheduleExpression": "rate(..)|cron(..)", "Duration": "Nh"}; returns {"ARN","Name"[,"VersionId"]}';

CREATE FUNCTION cancel_rotate_secret(secret_id text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'cancel_rotate_secret' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION cancel_rotate_secret(text) IS 'CancelRotateSecret: turn rotation off and stop a rotation in progress; an AWSPENDING version stays until you remove the label';

CREATE FUNCTION kms_rotation_next_due()
RETURNS timestamptz AS 'MODULE_PATHNAME', 'kms_rotation_next_due' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_rotation_next_due() IS 'When the worker next has rotation or deletion work (kms_admin)';

CREATE FUNCTION kms_rotation_run_job(job text)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_rotation_run_job' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms_rotation_run_job(text) FROM PUBLIC;
COMMENT ON FUNCTION kms_rotation_run_job(text) IS 'Superuser: run one unit of a worker job (''secret rotation'', ''key rotation'', ''deletion'') in this transaction';

CREATE FUNCTION kms.rotation_scram_selftest(password text)
RETURNS boolean AS 'MODULE_PATHNAME', 'kms_rotation_scram_selftest' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms.rotation_scram_selftest(text) FROM PUBLIC;
COMMENT ON FUNCTION kms.rotation_scram_selftest(text) IS 'Test: our SCRAM-SHA-256 verifier of the password passes the server''s own check';

-- A custom strategy is pinned by OID (its name is never resolved again);
-- the clone pg_kms made for alternating users is remembered, so it is
-- never confused with somebody else's role of that name.
ALTER TABLE kms.secret
	ADD COLUMN rotation_function regprocedure,		-- the custom strategy's function
	ADD COLUMN rotation_clone oid;					-- the <user>_clone pg_kms created

CREATE FUNCTION kms.rotation_login_selftest(host text, port int, username text, password text,
											dbname text, timeout_ms int DEFAULT 5000)
RETURNS text AS 'MODULE_PATHNAME', 'kms_rotation_login_selftest' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) FROM PUBLIC;
COMMENT ON FUNCTION kms.rotation_login_selftest(text, int, text, text, text, int) IS 'Test: the rotation worker''s SCRAM-only login client against host (socket directory or IP address); NULL on success, else why it failed';
