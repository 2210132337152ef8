-- Data-plane counts made in parallel workers reach the leader's aggregate
-- (issue 16): a parallel scan that decrypts N rows makes one aggregate
-- event with event_count N, as the serial scan does.  kms_decrypt is made
-- PARALLEL SAFE here only inside a transaction that is rolled back (the
-- audit events are not transactional: they stay).

CREATE FUNCTION regress_par_wait(cond text, secs int DEFAULT 60) RETURNS boolean
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

-- How many workers a plan launched (EXPLAIN ANALYZE); tried again for up
-- to 10 s while none could start (background worker slots are shared with
-- pg_kms's own workers).
CREATE FUNCTION regress_par_workers(q text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	line text;
	n int := 0;
BEGIN
	FOR i IN 1 .. 100 LOOP
		FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
			IF line ~ 'Workers Launched: [0-9]+' THEN
				n := n + (regexp_match(line, 'Workers Launched: ([0-9]+)'))[1]::int;
			END IF;
		END LOOP;
		EXIT WHEN n > 0;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN n;
END
$$;

SELECT kms_create_key(description => 'regress parallel audit') AS pk \gset
SELECT now() AS t0 \gset
CREATE TABLE regress_par_t AS
	SELECT i, kms_encrypt(:'pk', ('row ' || i)::bytea) AS c FROM generate_series(1, 3000) i;
ANALYZE regress_par_t;

BEGIN;
ALTER FUNCTION kms_decrypt(bytea, jsonb, text, text, boolean) PARALLEL SAFE;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL force_parallel_mode = on;
SET LOCAL parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT count(kms_decrypt(c)) FROM regress_par_t;
-- the statements below each decrypt 3000 rows in workers (the leader
-- does not scan); the EXPLAIN ANALYZE run is an execution too
SELECT regress_par_workers($$SELECT count(kms_decrypt(c)) FROM regress_par_t$$) >= 1 AS workers_launched;
SET LOCAL application_name = 'regress_par_one';
SELECT count(kms_decrypt(c)) AS decrypted FROM regress_par_t;
SET LOCAL application_name = 'regress_par_two';
SELECT count(kms_decrypt(c)) AS decrypted FROM regress_par_t WHERE i <= 1000;
SELECT count(kms_decrypt(c)) AS decrypted FROM regress_par_t WHERE i > 1000;
ROLLBACK;

-- The serial scan, for comparison.
SET application_name = 'regress_par_serial';
SET max_parallel_workers_per_gather = 0;
SELECT count(kms_decrypt(c)) AS decrypted FROM regress_par_t;
RESET max_parallel_workers_per_gather;
RESET application_name;

SELECT regress_par_wait(format($$(SELECT count(*) = 4 FROM kms.audit WHERE application_name LIKE 'regress_par_%%'
	AND operation = 'Decrypt' AND event_time >= %L)$$, :'t0')) AS written;
-- one row per statement, the count of the rows decrypted, from the
-- leader's backend, as the serial one
SELECT application_name, event_type, event_count, outcome, resource_id = :'pk' AS key_ok,
	   backend_pid = pg_backend_pid() AS leader_pid
  FROM kms.audit WHERE application_name LIKE 'regress_par_%' AND operation = 'Decrypt'
   AND event_time >= :'t0'
 ORDER BY id;
SELECT kms_audit_verify() IS NULL AS chain_ok;

DROP TABLE regress_par_t;
SELECT kms_schedule_key_deletion(:'pk', 7) IS NOT NULL AS scheduled;
DROP FUNCTION regress_par_wait(text, int);
DROP FUNCTION regress_par_workers(text);
