-- Audit trail: events reach kms.audit through the worker (pg_kms.database
-- is this database in the test configuration), survive rollbacks,
-- data-plane calls are aggregated per statement, visibility follows roles,
-- and the hash chain detects an edited row.  Ids and times vary from run
-- to run, so everything is checked as a boolean.

-- Wait until a condition on the audit trail holds (the worker drains the
-- queue every second or when it is half full).
CREATE FUNCTION regress_audit_wait(cond text, secs int DEFAULT 60) RETURNS boolean
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

-- The worker is up and draining in this database.
SELECT regress_audit_wait($$(SELECT state = 'running' AND pid IS NOT NULL FROM kms_worker_status() WHERE worker = 'audit')$$) AS worker_running;
SELECT worker_draining FROM kms_audit_stats();

-- A management call inside a transaction that rolls back is still an event.
SET ROLE regress_kms_admin;
BEGIN;
SELECT kms_create_key(description => 'regress audit rolled back') IS NOT NULL AS created;
ROLLBACK;
RESET ROLE;
SELECT regress_audit_wait($$EXISTS (SELECT 1 FROM kms.audit WHERE operation = 'CreateKey'
	AND parameters->>'description' = 'regress audit rolled back'
	AND db_user = 'regress_kms_admin' AND outcome = 'success' AND version = '1'
	AND resource_arn LIKE 'arn:aws:kms:%:key/' || resource_id)$$) AS rolled_back_create_key_audited;
SELECT count(*) AS key_rows_after_rollback FROM kms.keys WHERE description = 'regress audit rolled back';

-- A denied get_secret inside a transaction that then rolls back.
SET ROLE regress_kms_admin;
SELECT create_secret('regress/audit/s1', 'audit-test-secret-value') IS NOT NULL AS secret_created;
RESET ROLE;
SET ROLE regress_app;
BEGIN;
SELECT get_secret('regress/audit/s1');
ROLLBACK;
RESET ROLE;
SELECT regress_audit_wait($$EXISTS (SELECT 1 FROM kms.audit WHERE operation = 'GetSecretValue'
	AND db_user = 'regress_app' AND outcome = 'AccessDeniedException'
	AND resource_id = 'regress/audit/s1' AND event_type = 'call' AND event_count = 1)$$) AS denied_get_secret_audited;

-- A secret read by an allowed role is an event too; no value in the trail.
SET ROLE regress_kms_admin;
SELECT get_secret('regress/audit/s1') = 'audit-test-secret-value' AS read_ok;
RESET ROLE;
SELECT regress_audit_wait($$EXISTS (SELECT 1 FROM kms.audit WHERE operation = 'GetSecretValue'
	AND db_user = 'regress_kms_admin' AND outcome = 'success' AND resource_arn LIKE 'arn:aws:secretsmanager:%')$$) AS get_secret_audited;
SELECT count(*) AS rows_with_secret_value FROM kms.audit_log a
 WHERE a::text LIKE '%audit-test-secret-value%';

-- Data plane: 100,000 decrypts in one statement are one aggregated row.
SET ROLE regress_kms_admin;
CREATE TEMP TABLE regress_audit_k AS SELECT kms_create_key(description => 'regress audit data') AS k;
CREATE TEMP TABLE regress_audit_c AS SELECT kms_encrypt(k, 'x') AS c FROM regress_audit_k;
GRANT SELECT ON regress_audit_k, regress_audit_c TO PUBLIC;
SELECT count(kms_decrypt(c)) AS decrypts FROM regress_audit_c, generate_series(1, 100000);
-- ... and a PL/pgSQL loop of 1000 encrypts in one DO statement is one row.
DO $$
DECLARE
	key text := (SELECT k FROM regress_audit_k);
BEGIN
	FOR i IN 1 .. 1000 LOOP
		PERFORM kms_encrypt(key, 'y');
	END LOOP;
END
$$;
RESET ROLE;
SELECT regress_audit_wait($$(SELECT count(*) = 1 AND min(event_count) = 100000
	FROM kms.audit a, regress_audit_k WHERE a.resource_id = k AND operation = 'Decrypt'
	AND event_type = 'aggregate' AND event_count > 1)$$) AS decrypt_aggregated;
SELECT regress_audit_wait($$(SELECT count(*) = 1 AND min(event_count) = 1000
	FROM kms.audit a, regress_audit_k WHERE a.resource_id = k AND operation = 'Encrypt'
	AND event_type = 'aggregate' AND event_count > 1)$$) AS encrypt_loop_aggregated;
SELECT last_time >= event_time AS times_ordered, db_user, version IS NULL AS decrypt_version_null
  FROM kms.audit a, regress_audit_k WHERE a.resource_id = k AND operation = 'Decrypt';

-- A denied data-plane call is an event of its own.
SET ROLE regress_app;
SELECT regress_try($$SELECT kms_decrypt(c)::text FROM regress_audit_c$$);
RESET ROLE;
SELECT regress_audit_wait($$EXISTS (SELECT 1 FROM kms.audit a, regress_audit_k WHERE a.resource_id = k
	AND operation = 'Decrypt' AND outcome = 'AccessDeniedException' AND db_user = 'regress_app')$$) AS denied_decrypt_audited;

-- Visibility: kms_admin sees everything, another role only its own events.
SET ROLE regress_kms_admin;
SELECT count(*) = (SELECT count(*) FROM kms.audit_log) AS admin_sees_all FROM kms.audit;
RESET ROLE;
SET ROLE regress_app;
SELECT count(*) > 0 AS app_sees_own,
	   bool_and(db_user = 'regress_app' OR session_user_name = 'regress_app') AS app_sees_only_own
  FROM kms.audit;
SELECT regress_try('SELECT count(*)::text FROM kms.audit_log');
SELECT regress_try('SELECT state FROM kms_worker_status()');
SELECT regress_try('SELECT queue_length::text FROM kms_audit_stats()');
SELECT regress_try('SELECT kms_audit_verify()::text');
RESET ROLE;

-- Tamper evidence: the chain holds; an edited row is named; restored, it holds.
SELECT kms_audit_verify() IS NULL AS chain_ok;
CREATE TEMP TABLE regress_audit_victim AS
	SELECT * FROM kms.audit_log WHERE operation = 'GetSecretValue'
	   AND outcome = 'AccessDeniedException' AND db_user = 'regress_app' LIMIT 1;
UPDATE kms.audit_log SET outcome = 'success'
 WHERE id = (SELECT id FROM regress_audit_victim);
SELECT kms_audit_verify() = (SELECT id FROM regress_audit_victim) AS edited_row_named;
UPDATE kms.audit_log SET outcome = v.outcome FROM regress_audit_victim v
 WHERE kms.audit_log.id = v.id;
SELECT kms_audit_verify() IS NULL AS chain_ok_again;
-- A deleted row: the next row is named (its prev_hash no longer matches).
DELETE FROM kms.audit_log WHERE id = (SELECT id FROM regress_audit_victim);
SELECT kms_audit_verify() = (SELECT min(id) FROM kms.audit_log WHERE id > (SELECT id FROM regress_audit_victim))
	AS row_after_deleted_named;
-- Putting it back by hand is an outside insert, which the custody guard
-- takes for a restore into a used database and refuses; the test turns
-- that check off for its one row.
INSERT INTO kms.audit_log SELECT * FROM regress_audit_victim;
SET pg_kms.allow_unsafe_drop = on;
ALTER TABLE kms.audit_log DISABLE TRIGGER guard_restore;
RESET pg_kms.allow_unsafe_drop;
INSERT INTO kms.audit_log SELECT * FROM regress_audit_victim;
ALTER TABLE kms.audit_log ENABLE TRIGGER guard_restore;
SELECT kms_audit_verify() IS NULL AS chain_ok_restored;

-- Nothing was only logged in this run, and the queue drains.
SELECT events_only_logged = 0 AS none_only_logged FROM kms_audit_stats();
SELECT regress_audit_wait($$(SELECT queue_length = 0 FROM kms_audit_stats())$$) AS queue_drained;

-- Clean up
SET ROLE regress_kms_admin;
SELECT delete_secret('regress/audit/s1', force_delete_without_recovery => true) IS NOT NULL AS secret_deleted;
RESET ROLE;
DROP TABLE regress_audit_k, regress_audit_c, regress_audit_victim;
DROP FUNCTION regress_audit_wait(text, int);
