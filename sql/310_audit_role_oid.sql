-- kms.audit matches roles by OID (issue 9, finding 12): a role dropped and
-- created again under the same name is another role and sees none of the
-- old role's rows; a renamed role keeps its own.  The OIDs are in the hash
-- chain: clearing them is named by kms_audit_verify().  Ids and OIDs vary
-- from run to run, so everything is checked as a boolean or a count.

CREATE FUNCTION regress_oid_wait(cond text, secs int DEFAULT 60) RETURNS boolean
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

CREATE ROLE regress_audit_reborn LOGIN;
SELECT oid AS old_oid FROM pg_roles WHERE rolname = 'regress_audit_reborn' \gset
SET ROLE regress_audit_reborn;
SELECT regress_try($$SELECT get_secret('regress/audit/reborn')$$);
RESET ROLE;
SELECT regress_oid_wait($$EXISTS (SELECT 1 FROM kms.audit_log WHERE db_user = 'regress_audit_reborn'
	AND operation = 'GetSecretValue')$$) AS event_written;

-- The row carries both roles' OIDs.
SELECT db_user_oid = :old_oid AS db_user_oid_set,
	   session_user_oid = (SELECT oid FROM pg_roles WHERE rolname = session_user) AS session_user_oid_set
  FROM kms.audit_log WHERE db_user = 'regress_audit_reborn';

-- The role sees its row; renamed, it still does (same OID).
SET ROLE regress_audit_reborn;
SELECT count(*) AS own_rows FROM kms.audit WHERE operation = 'GetSecretValue';
RESET ROLE;
ALTER ROLE regress_audit_reborn RENAME TO regress_audit_renamed;
SET ROLE regress_audit_renamed;
SELECT count(*) AS own_rows_after_rename FROM kms.audit WHERE operation = 'GetSecretValue';
RESET ROLE;
ALTER ROLE regress_audit_renamed RENAME TO regress_audit_reborn;

-- Dropped and created again under the same name: none of the old rows.
DROP ROLE regress_audit_reborn;
CREATE ROLE regress_audit_reborn LOGIN;
SELECT oid <> :old_oid AS new_oid FROM pg_roles WHERE rolname = 'regress_audit_reborn';
SET ROLE regress_audit_reborn;
SELECT count(*) AS old_rows_seen_by_new_role FROM kms.audit;
RESET ROLE;

-- The OIDs are hashed: clearing them breaks the chain at that row, and a
-- row without OIDs (as rows written before 1.1) is shown to kms_admin only.
SELECT kms_audit_verify() IS NULL AS chain_ok;
CREATE TEMP TABLE regress_oid_victim AS
	SELECT * FROM kms.audit_log WHERE db_user = 'regress_app' AND db_user_oid IS NOT NULL
	 ORDER BY id LIMIT 1;
GRANT SELECT ON regress_oid_victim TO PUBLIC;
SELECT count(*) AS victims FROM regress_oid_victim;
UPDATE kms.audit_log SET db_user_oid = NULL, session_user_oid = NULL
 WHERE id = (SELECT id FROM regress_oid_victim);
SELECT kms_audit_verify() = (SELECT id FROM regress_oid_victim) AS cleared_oids_named;
SET ROLE regress_app;
SELECT count(*) AS app_sees_row_without_oids FROM kms.audit WHERE id = (SELECT id FROM regress_oid_victim);
RESET ROLE;
SET ROLE regress_kms_admin;
SELECT count(*) AS admin_sees_row_without_oids FROM kms.audit WHERE id = (SELECT id FROM regress_oid_victim);
RESET ROLE;
UPDATE kms.audit_log SET db_user_oid = v.db_user_oid, session_user_oid = v.session_user_oid
  FROM regress_oid_victim v WHERE kms.audit_log.id = v.id;
SELECT kms_audit_verify() IS NULL AS chain_ok_again;
SET ROLE regress_app;
SELECT count(*) AS app_sees_row_again FROM kms.audit WHERE id = (SELECT id FROM regress_oid_victim);
RESET ROLE;

DROP TABLE regress_oid_victim;
DROP ROLE regress_audit_reborn;
DROP FUNCTION regress_oid_wait(text, int);
