-- A statement that uses many keys makes one aggregate per key (issue 16,
-- scale): a backend holds up to 1024 aggregates, found through a hash
-- index, before it flushes them.  100 keys cycled over 2000 calls in one
-- statement give 100 rows of 20 calls each.  (Before, the table held 32:
-- every new key past the 32nd flushed it, so a scan cycling through many
-- keys made close to one event per call.)  test.conf:
-- pg_kms.audit_aggregate_interval = 0, so the statement's aggregates are
-- flushed when it ends.

CREATE FUNCTION regress_many_wait(cond text, secs int DEFAULT 60) RETURNS boolean
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

CREATE TABLE regress_many AS
	SELECT g, kms_encrypt(k, 'many keys') AS c
	  FROM (SELECT g, kms_create_key(description => 'regress many keys') AS k
			  FROM generate_series(1, 100) g) s;

SET application_name = 'regress_many_keys';
SELECT count(kms_decrypt(c)) AS decrypted FROM generate_series(1, 20), regress_many;
RESET application_name;

SELECT regress_many_wait($$(SELECT coalesce(sum(event_count), 0) = 2000 FROM kms.audit
	WHERE application_name = 'regress_many_keys' AND operation = 'Decrypt')$$) AS drained;
SELECT count(*) AS rows, sum(event_count) AS calls, count(DISTINCT resource_id) AS keys,
	   min(event_count) AS min_count, max(event_count) AS max_count,
	   bool_and(event_type = 'aggregate') AS all_aggregates
  FROM kms.audit WHERE application_name = 'regress_many_keys' AND operation = 'Decrypt';

DROP TABLE regress_many;
DROP FUNCTION regress_many_wait(text, int);
