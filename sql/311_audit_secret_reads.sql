-- Successful secret reads under pg_kms.audit_secret_reads (issue 16):
-- 'aggregate' (the default) counts the reads of one secret version by one
-- role with the same parameters in one statement into one aggregate event;
-- 'each' keeps one event per read.  Denied and failed reads are events of
-- their own in both modes.  The drain writes its rows in batches, and the
-- hash chain still verifies.  (test.conf: pg_kms.audit_aggregate_interval
-- = 0, so each statement's aggregates are flushed when it ends.)

CREATE FUNCTION regress_reads_wait(cond text, secs int DEFAULT 60) RETURNS boolean
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

SET ROLE regress_kms_admin;
SELECT create_secret('regress/reads/s', 'reads-secret-value') IS NOT NULL AS secret_created;
RESET ROLE;

-- The setting: 'aggregate' by default; superusers only, so that a role
-- cannot change how its own reads are recorded.
SHOW pg_kms.audit_secret_reads;
SET ROLE regress_app;
SELECT regress_try($$SET pg_kms.audit_secret_reads = 'each'$$) AS app_sets_each;
SELECT regress_try($$SELECT set_config('pg_kms.audit_secret_reads', 'each', false)$$) AS app_set_config;
RESET ROLE;
SET ROLE regress_kms_admin;
SELECT regress_try($$SET pg_kms.audit_secret_reads = 'each'$$) AS kms_admin_sets_each;
RESET ROLE;
SELECT regress_try($$SET pg_kms.audit_secret_reads = 'sometimes'$$) AS bad_value;

-- 'aggregate': 50 reads in one statement are one row, count 50; the reads
-- that named a stage are a row of their own (the parameters are part of
-- what is counted together).
SET application_name = 'regress_reads_agg';
SET ROLE regress_kms_admin;
SELECT count(get_secret('regress/reads/s')) AS reads FROM generate_series(1, 50);
SELECT count(get_secret('regress/reads/s', NULL, 'AWSCURRENT')) AS reads_by_stage FROM generate_series(1, 7);
SELECT count(get_secret_value('regress/reads/s')) AS value_reads FROM generate_series(1, 5);
RESET ROLE;
SELECT regress_reads_wait($$(SELECT count(*) = 3 FROM kms.audit WHERE application_name = 'regress_reads_agg'
	AND operation = 'GetSecretValue')$$) AS agg_written;
SELECT event_type, event_count, db_user, outcome, version IS NOT NULL AS has_version,
	   resource_arn LIKE 'arn:aws:secretsmanager:%' AS arn_ok, resource_id = resource_arn AS resource_is_arn,
	   parameters, last_time >= event_time AS times_ok
  FROM kms.audit WHERE application_name = 'regress_reads_agg' AND operation = 'GetSecretValue'
 ORDER BY id;

-- A second statement is a second aggregate (one event per statement here,
-- with the interval at 0).
SET application_name = 'regress_reads_agg2';
SET ROLE regress_kms_admin;
SELECT get_secret('regress/reads/s') = 'reads-secret-value' AS read_ok;
SELECT get_secret('regress/reads/s') = 'reads-secret-value' AS read_ok;
RESET ROLE;
SELECT regress_reads_wait($$(SELECT count(*) = 2 FROM kms.audit WHERE application_name = 'regress_reads_agg2'
	AND operation = 'GetSecretValue')$$) AS agg2_written;
SELECT event_type, event_count FROM kms.audit
 WHERE application_name = 'regress_reads_agg2' AND operation = 'GetSecretValue' ORDER BY id;

-- Denied and failed reads stay individual, also in one statement.
SET application_name = 'regress_reads_denied';
SET ROLE regress_app;
DO $$
BEGIN
	FOR i IN 1 .. 3 LOOP
		BEGIN
			PERFORM get_secret('regress/reads/s');
		EXCEPTION WHEN insufficient_privilege THEN
			NULL;
		END;
	END LOOP;
END
$$;
RESET ROLE;
SET ROLE regress_kms_admin;
DO $$
BEGIN
	FOR i IN 1 .. 2 LOOP
		BEGIN
			PERFORM get_secret('regress/reads/s', NULL, 'NOSUCHSTAGE');
		EXCEPTION WHEN OTHERS THEN
			NULL;
		END;
	END LOOP;
END
$$;
RESET ROLE;
SELECT regress_reads_wait($$(SELECT count(*) = 5 FROM kms.audit WHERE application_name = 'regress_reads_denied'
	AND operation = 'GetSecretValue')$$) AS denied_written;
SELECT event_type, event_count, db_user, outcome, count(*) AS events
  FROM kms.audit WHERE application_name = 'regress_reads_denied' AND operation = 'GetSecretValue'
 GROUP BY 1, 2, 3, 4 ORDER BY 3, 4;

-- batch_get_secret_value: one BatchGetSecretValue event per call; its
-- per-secret reads follow the setting (here: counted together).
SET application_name = 'regress_reads_batch';
SET ROLE regress_kms_admin;
SELECT count(batch_get_secret_value(ARRAY['regress/reads/s'])) AS batches FROM generate_series(1, 4);
RESET ROLE;
SELECT regress_reads_wait($$(SELECT count(*) = 5 FROM kms.audit WHERE application_name = 'regress_reads_batch')$$) AS batch_written;
SELECT operation, event_type, event_count, count(*) AS events
  FROM kms.audit WHERE application_name = 'regress_reads_batch'
 GROUP BY 1, 2, 3 ORDER BY 1;

-- 'each': one event per read, as before pg_kms 1.3; 300 reads in one
-- statement are 300 rows, written by the drain in batches.
SET pg_kms.audit_secret_reads = 'each';
SET application_name = 'regress_reads_each';
SET ROLE regress_kms_admin;
SELECT count(get_secret('regress/reads/s')) AS reads FROM generate_series(1, 300);
SELECT count(batch_get_secret_value(ARRAY['regress/reads/s'])) AS batches FROM generate_series(1, 2);
RESET ROLE;
SELECT regress_reads_wait($$(SELECT count(*) = 304 FROM kms.audit WHERE application_name = 'regress_reads_each')$$) AS each_written;
SELECT operation, event_type, event_count, outcome, count(*) AS events,
	   count(DISTINCT id) AS distinct_ids, max(id) - min(id) + 1 >= count(*) AS ids_ok
  FROM kms.audit WHERE application_name = 'regress_reads_each'
 GROUP BY 1, 2, 3, 4 ORDER BY 1;
RESET pg_kms.audit_secret_reads;
RESET application_name;

-- The chain holds after the batched drains: ids without gaps, each row's
-- prev_hash the row_hash of the one before, every row_hash right.
SELECT kms_audit_verify() IS NULL AS chain_ok;
SELECT count(*) = max(id) - min(id) + 1 AS ids_contiguous FROM kms.audit_log;
SELECT count(*) AS broken_links FROM kms.audit_log a JOIN kms.audit_log b ON b.id = a.id + 1
 WHERE b.prev_hash IS DISTINCT FROM a.row_hash;

-- Never a value in the trail.
SELECT count(*) AS rows_with_secret_value FROM kms.audit_log a
 WHERE a::text LIKE '%reads-secret-value%';

SET ROLE regress_kms_admin;
SELECT (delete_secret('regress/reads/s', force_delete_without_recovery => true) ->> 'Name') AS deleted;
RESET ROLE;
DROP FUNCTION regress_reads_wait(text, int);
