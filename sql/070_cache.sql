-- The shared key cache: a warm kms_decrypt makes no provider call.
SELECT kms_create_key(description => 'cache') AS k \gset
CREATE TABLE regress_blobs AS
	SELECT i, kms_encrypt(:'k', convert_to('row ' || i, 'UTF8')) AS c FROM generate_series(1, 5000) i;
SELECT count(*) FROM regress_blobs WHERE kms_decrypt(c) IS NULL;	-- warm-up
SELECT provider_calls AS calls_before, hits AS hits_before FROM kms_cache_stats() \gset
SELECT count(*) AS decrypted FROM regress_blobs WHERE convert_from(kms_decrypt(c), 'UTF8') = 'row ' || i;
SELECT provider_calls - :calls_before AS provider_calls_during_scan,
       hits - :hits_before >= 5000 AS hits_counted,
       capacity, entries > 0 AS has_entries, provider_errors
  FROM kms_cache_stats();

-- disabling a key is seen at once by the same session (and others, see the
-- isolation test); the cached material does not bypass the key state
SELECT kms_disable_key(:'k');
SELECT regress_try('SELECT count(kms_decrypt(c))::text FROM regress_blobs');
SELECT kms_enable_key(:'k');
SELECT count(kms_decrypt(c)) FROM regress_blobs;

-- a rolled-back disable changes nothing
BEGIN;
SELECT kms_disable_key(:'k');
SELECT regress_try('SELECT count(kms_decrypt(c))::text FROM regress_blobs');
ROLLBACK;
SELECT count(kms_decrypt(c)) AS after_rollback FROM regress_blobs;

-- a savepoint rolled back inside a transaction
BEGIN;
SAVEPOINT s;
SELECT kms_disable_key(:'k');
ROLLBACK TO SAVEPOINT s;
SELECT count(kms_decrypt(c)) AS after_savepoint_rollback FROM regress_blobs;
COMMIT;

DROP TABLE regress_blobs;
