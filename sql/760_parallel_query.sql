-- Parallel query (issue 16): kms_encrypt, kms_decrypt, kms_decrypt_text and
-- the column-encryption functions are PARALLEL SAFE.  Plans are forced
-- parallel, the leader does not take part (so the functions run in the
-- workers), and every result is compared with the serial one.  Workers
-- check the leader's role, see a revoked grant at the next statement, keep
-- nonces unique, output the leader's form, and count their calls in the
-- audit trail.

-- The markings.
SELECT p.oid::regprocedure AS function, p.proparallel
  FROM pg_proc p
 WHERE p.proname IN ('kms_encrypt', 'kms_decrypt', 'kms_decrypt_text',
					 'encrypted_column_typmod_in', 'encrypted_column_typmod_out')
	OR 'encrypted_text'::regtype = ANY (p.proargtypes::oid[] || p.prorettype)
	OR 'encrypted_bytea'::regtype = ANY (p.proargtypes::oid[] || p.prorettype)
 ORDER BY 1;

-- Helpers: did a parallel query launch workers; a statement's outcome,
-- ids masked, and whether its error came from a parallel worker.
CREATE FUNCTION regress_par_workers(q text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	plan jsonb;
BEGIN
	EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || q INTO plan;
	RETURN (jsonb_path_query_first(plan, 'strict $.**."Workers Launched"'))::int > 0;
END
$$;
CREATE FUNCTION regress_par_try(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	r text;
	ctx text;
BEGIN
	EXECUTE q INTO r;
	RETURN 'ok: ' || coalesce(r, '<null>');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS ctx = PG_EXCEPTION_CONTEXT;
	RETURN SQLSTATE || ' ' ||
		regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g') ||
		CASE WHEN ctx LIKE '%parallel worker%' THEN ' (in a parallel worker)' ELSE '' END;
END
$$;
GRANT EXECUTE ON FUNCTION regress_par_workers(text), regress_par_try(text) TO PUBLIC;
CREATE FUNCTION regress_par_audit_wait(cond text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	ok boolean;
BEGIN
	FOR i IN 1 .. 600 LOOP
		EXECUTE 'SELECT ' || cond INTO ok;
		IF ok THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN false;
END
$$;

SELECT kms_create_key(description => 'regress parallel') AS pk \gset
SELECT kms_create_alias('alias/regress/par', :'pk');
CREATE TABLE par_blobs (id int, c bytea);
INSERT INTO par_blobs SELECT g, kms_encrypt('alias/regress/par', 'row ' || g,
	CASE WHEN g % 2 = 0 THEN '{"half": "even"}'::jsonb END) FROM generate_series(1, 3000) g;
CREATE TABLE par_cust (
	id    int,
	email encrypted_text('alias/regress/par', 'deterministic'),
	ssn   encrypted_text('alias/regress/par'),
	scan  encrypted_bytea('alias/regress/par'));
INSERT INTO par_cust SELECT g, 'user' || g || '@example.com', 'ssn-' || g, convert_to('scan ' || g, 'UTF8')
  FROM generate_series(1, 3000) g;
CREATE INDEX par_cust_email ON par_cust (email);
ANALYZE par_blobs, par_cust;
GRANT SELECT ON par_blobs, par_cust TO regress_app;

-- The serial answers.
SET max_parallel_workers_per_gather = 0;
SELECT sum(length(kms_decrypt(c, CASE WHEN id % 2 = 0 THEN '{"half": "even"}'::jsonb END))) AS s_decrypt,
	   md5(string_agg(kms_decrypt_text(c, CASE WHEN id % 2 = 0 THEN '{"half": "even"}'::jsonb END), ',' ORDER BY id)) AS s_text
  FROM par_blobs \gset
SELECT count(*) FILTER (WHERE ssn::text LIKE 'ssn-1%') AS s_like,
	   sum(length(scan::bytea)) AS s_scan,
	   count(*) FILTER (WHERE email = 'user77@example.com') AS s_eq,
	   count(*) FILTER (WHERE email ~>~ 'user77@example.com') AS s_order
  FROM par_cust \gset

-- Forced parallel plans, all rows in the workers.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET min_parallel_index_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;

-- Decrypt below the Gather.
EXPLAIN (COSTS OFF, VERBOSE)
SELECT sum(length(kms_decrypt(c, CASE WHEN id % 2 = 0 THEN '{"half": "even"}'::jsonb END))) FROM par_blobs;
SELECT regress_par_workers($$SELECT sum(length(kms_decrypt(c, CASE WHEN id % 2 = 0 THEN '{"half": "even"}'::jsonb END))) FROM par_blobs$$) AS workers_decrypt;
SELECT sum(length(kms_decrypt(c, CASE WHEN id % 2 = 0 THEN '{"half": "even"}'::jsonb END))) = :s_decrypt AS decrypt_as_serial
  FROM par_blobs;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT kms_decrypt_text(c, CASE WHEN id % 2 = 0 THEN '{"half": "even"}'::jsonb END) FROM par_blobs;
SELECT md5(string_agg(t, ',' ORDER BY id)) = :'s_text' AS decrypt_text_as_serial
  FROM (SELECT id, kms_decrypt_text(c, CASE WHEN id % 2 = 0 THEN '{"half": "even"}'::jsonb END) AS t FROM par_blobs) s;

-- Encrypted columns: scans, casts, deterministic equality, the btree order.
EXPLAIN (COSTS OFF, VERBOSE)
SELECT count(*) FROM par_cust WHERE ssn::text LIKE 'ssn-1%';
SELECT regress_par_workers($$SELECT count(*) FROM par_cust WHERE ssn::text LIKE 'ssn-1%'$$) AS workers_cast;
SELECT count(*) = :s_like AS like_as_serial FROM par_cust WHERE ssn::text LIKE 'ssn-1%';
SELECT sum(length(scan::bytea)) = :s_scan AS bytea_as_serial FROM par_cust;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT id FROM par_cust WHERE email = 'user77@example.com';
SELECT id FROM par_cust WHERE email = 'user77@example.com';
SELECT id FROM par_cust WHERE email = 'user77@example.com'::text;
SELECT regress_par_workers($$SELECT id FROM par_cust WHERE email = 'user77@example.com'$$) AS workers_lookup;
RESET enable_indexscan;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT count(*) FROM par_cust WHERE email ~>~ 'user77@example.com';
SELECT regress_par_workers($$SELECT count(*) FROM par_cust WHERE email ~>~ 'user77@example.com'$$) AS workers_index;
SELECT count(*) = :s_order AS order_as_serial FROM par_cust WHERE email ~>~ 'user77@example.com';
RESET enable_seqscan;
RESET enable_bitmapscan;

-- Encrypt in the workers: distinct ciphertexts, unique (salt, nonce) pairs,
-- each decrypts to its plaintext.
EXPLAIN (COSTS OFF, VERBOSE)
CREATE TABLE par_enc AS SELECT id, kms_encrypt('alias/regress/par', 'v' || id) AS x FROM par_blobs;
SELECT regress_par_workers($$SELECT kms_encrypt('alias/regress/par', 'v' || id) FROM par_blobs$$) AS workers_encrypt;
CREATE TABLE par_enc AS SELECT id, kms_encrypt('alias/regress/par', 'v' || id) AS x FROM par_blobs;
SELECT count(*) AS rows, count(DISTINCT x) AS distinct_blobs,
	   count(DISTINCT substr(x, 22, 24)) AS distinct_salt_nonce,
	   count(*) FILTER (WHERE kms_decrypt_text(x) = 'v' || id) AS decrypt_ok
  FROM par_enc;

-- A role without Decrypt is refused in the worker (42501), for kms_decrypt
-- and for an encrypted column; with force_parallel_mode too.
SET ROLE regress_app;
SELECT regress_par_try($$SELECT sum(length(kms_decrypt(c))) FROM par_blobs WHERE id % 2 = 1$$);
SELECT regress_par_try($$SELECT count(*) FROM par_cust WHERE ssn::text LIKE 'ssn-1%'$$);
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT regress_par_try($$SELECT count(*) FROM par_cust WHERE email = 'user77@example.com'$$);
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET ROLE;
-- force_parallel_mode: a plan that would not be parallel runs in one worker
RESET min_parallel_table_scan_size;
SET force_parallel_mode = on;
EXPLAIN (COSTS OFF)
SELECT kms_decrypt_text(c) FROM par_blobs WHERE id = 7;
SELECT kms_decrypt_text(c) FROM par_blobs WHERE id = 7;
SELECT id FROM par_cust WHERE ssn::text = 'ssn-8' AND email = 'user8@example.com';
SET ROLE regress_app;
SELECT regress_par_try($$SELECT kms_decrypt_text(c) FROM par_blobs WHERE id = 7$$);
RESET ROLE;
RESET force_parallel_mode;
SET min_parallel_table_scan_size = 0;

-- A grant and a role membership revoked between two statements: refused at
-- the next, in the workers and in a leader that cached the key (leader
-- taking part).
SELECT grant_id AS par_grant FROM kms_create_grant(:'pk', 'regress_app', ARRAY['Decrypt']) \gset
SET ROLE regress_app;
SELECT regress_par_try($$SELECT count(*) FILTER (WHERE convert_from(kms_decrypt(c), 'UTF8') LIKE 'row %')::text FROM par_blobs WHERE id % 2 = 1$$) AS with_grant;
SELECT regress_par_try($$SELECT count(*)::text FROM par_cust WHERE ssn::text LIKE 'ssn-1%'$$) AS with_grant_column;
RESET ROLE;
SELECT kms_revoke_grant(:'pk', :'par_grant');
SET ROLE regress_app;
SELECT regress_par_try($$SELECT sum(length(kms_decrypt(c)))::text FROM par_blobs WHERE id % 2 = 1$$) AS after_revoke;
SELECT regress_par_try($$SELECT count(*)::text FROM par_cust WHERE ssn::text LIKE 'ssn-1%'$$) AS after_revoke_column;
RESET ROLE;
SET parallel_leader_participation = on;
SELECT grant_id AS par_grant FROM kms_create_grant(:'pk', 'regress_app', ARRAY['Decrypt']) \gset
SET ROLE regress_app;
SELECT regress_try($$SELECT count(*)::text FROM par_cust WHERE ssn::text LIKE 'ssn-1%'$$) AS leader_with_grant;
RESET ROLE;
SELECT kms_revoke_grant(:'pk', :'par_grant');
SET ROLE regress_app;
SELECT regress_try($$SELECT count(*)::text FROM par_cust WHERE ssn::text LIKE 'ssn-1%'$$) AS leader_after_revoke;
RESET ROLE;
SET parallel_leader_participation = off;
SET ROLE regress_kms_admin;
SELECT kms_create_key(description => 'regress parallel owned') AS ok \gset
SELECT kms_encrypt(:'ok', 'owned')::text AS okblob \gset
RESET ROLE;
CREATE TABLE par_owned AS SELECT g AS id, :'okblob'::bytea AS c FROM generate_series(1, 500) g;
ANALYZE par_owned;
GRANT SELECT ON par_owned TO regress_app;
GRANT regress_kms_admin TO regress_app;
SET ROLE regress_app;
SELECT regress_par_try($$SELECT count(*) FILTER (WHERE kms_decrypt_text(c) = 'owned')::text FROM par_owned$$) AS as_member;
RESET ROLE;
REVOKE regress_kms_admin FROM regress_app;
SET ROLE regress_app;
SELECT regress_par_try($$SELECT count(*) FILTER (WHERE kms_decrypt_text(c) = 'owned')::text FROM par_owned$$) AS membership_revoked;
RESET ROLE;

-- The leader's output form reaches its workers: a COPY gives the ciphertext
-- form, whichever process runs the output function (a cast through text, a
-- whole row); a SELECT gives plaintext.
EXPLAIN (COSTS OFF, VERBOSE)
SELECT count(*) FROM par_cust WHERE scan::text LIKE 'pg_kms:v1:%' AND par_cust::text LIKE '%pg_kms:v1:%';
COPY (SELECT count(*) FROM par_cust WHERE scan::text LIKE 'pg_kms:v1:%' AND par_cust::text LIKE '%pg_kms:v1:%') TO STDOUT;
-- (a whole row alone was parallel before issue 16 already: record_out is
-- PARALLEL SAFE and calls the column's output function in the worker)
EXPLAIN (COSTS OFF)
SELECT count(*) FROM par_cust WHERE par_cust::text LIKE '%pg_kms:v1:%';
COPY (SELECT count(*) FROM par_cust WHERE par_cust::text LIKE '%pg_kms:v1:%') TO STDOUT;
SELECT count(*) AS ciphertext_in_select FROM par_cust WHERE scan::text LIKE 'pg_kms:v1:%' OR par_cust::text LIKE '%pg_kms:v1:%';

-- An error raised in the leader, in a transaction whose workers handled
-- encrypted values, loses its DETAIL and CONTEXT as if the leader had
-- handled them; so does a worker's error.
CREATE FUNCTION regress_par_json(t text) RETURNS json
LANGUAGE plpgsql PARALLEL RESTRICTED AS $$ BEGIN RETURN t::json; END $$;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT regress_par_json(x) FROM (SELECT ssn::text AS x FROM par_cust WHERE id = 5 OFFSET 0) s;
SELECT regress_par_json(x) FROM (SELECT ssn::text AS x FROM par_cust WHERE id = 5 OFFSET 0) s;
SELECT regress_par_json(x) FROM (SELECT par_cust::text AS x FROM par_cust WHERE id = 5 OFFSET 0) s;
SELECT (ssn::text)::json FROM par_cust WHERE id = 5;
-- (an error of a transaction that handled none keeps them)
SELECT regress_par_json('ssn-5');

-- Audit: the calls made by the workers are counted; the sum over the
-- statement's aggregate rows is the number of calls (one row once the
-- workers' counts reach the leader's aggregate).
SELECT kms_create_key(description => 'regress parallel audit') AS ak \gset
CREATE TABLE par_audit AS SELECT g AS id, kms_encrypt(:'ak', 'a' || g) AS c FROM generate_series(1, 2000) g;
ANALYZE par_audit;
SELECT count(kms_decrypt(c)) AS audited_decrypts FROM par_audit;
SELECT regress_par_audit_wait(format($$(SELECT coalesce(sum(event_count), 0) = 2000 FROM kms.audit
	WHERE operation = 'Decrypt' AND resource_id = %L AND event_type = 'aggregate' AND outcome = 'success')$$, :'ak'))
	AS audit_sum_is_calls;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET min_parallel_index_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE par_blobs, par_cust, par_enc, par_owned, par_audit;
DROP FUNCTION regress_par_workers(text), regress_par_try(text), regress_par_audit_wait(text),
	regress_par_json(text);
