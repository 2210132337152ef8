-- Transparent column encryption: the types, their typmod, round trips,
-- deterministic equality with an index, inspection without plaintext.
SELECT kms_create_key(description => 'tce pii') AS tk \gset
SELECT kms_create_key(description => 'tce hr') AS tk2 \gset
SELECT kms_create_alias('alias/regress/pii', :'tk');
SELECT kms_create_alias('alias/regress/hr', :'tk2');

CREATE TABLE tce_customers (
	id    bigint PRIMARY KEY,
	email encrypted_text('alias/regress/pii', 'deterministic'),
	ssn   encrypted_text('alias/regress/pii'),
	scan  encrypted_bytea('alias/regress/pii'));
\d tce_customers
CREATE UNIQUE INDEX tce_customers_email ON tce_customers (email);
INSERT INTO tce_customers VALUES (1, 'a@b.c', '123-45-6789', '\x01');
INSERT INTO tce_customers VALUES (2, 'x@y.z', '', '\x');
INSERT INTO tce_customers VALUES (3, NULL, NULL, NULL);
INSERT INTO tce_customers VALUES (4, '', 'ünïcødé ✓', '\x00ff00');
SELECT * FROM tce_customers ORDER BY id;
SELECT ssn FROM tce_customers WHERE email = 'a@b.c';
SELECT id FROM tce_customers WHERE email = '';
SELECT id FROM tce_customers WHERE email <> 'a@b.c' ORDER BY id;
SELECT ssn::text, scan::bytea FROM tce_customers ORDER BY id;
SELECT ssn IS NULL AS ssn_null, email IS NULL AS email_null FROM tce_customers WHERE id = 3;

-- the index is used, for = and IN, with a literal or a parameter
SET enable_seqscan = off;
EXPLAIN (costs off) SELECT ssn FROM tce_customers WHERE email = 'a@b.c';
SELECT ssn FROM tce_customers WHERE email = 'a@b.c';
SELECT id FROM tce_customers WHERE email IN ('a@b.c', 'x@y.z', 'nobody') ORDER BY id;
PREPARE tce_lookup AS SELECT id FROM tce_customers WHERE email = $1;
EXECUTE tce_lookup('x@y.z');
SET plan_cache_mode = force_generic_plan;
EXPLAIN (costs off) EXECUTE tce_lookup('x@y.z');
EXECUTE tce_lookup('x@y.z');
EXECUTE tce_lookup('a@b.c');
RESET plan_cache_mode;
DEALLOCATE tce_lookup;
RESET enable_seqscan;

-- a text operand (a driver typing its parameter as text, a text column)
-- is plaintext sealed for the comparison; the index serves it too
SET enable_seqscan = off;
EXPLAIN (costs off) SELECT id FROM tce_customers WHERE email = 'a@b.c'::text;
SELECT id FROM tce_customers WHERE email = 'a@b.c'::text;
SELECT id FROM tce_customers WHERE 'x@y.z'::text = email;
PREPARE tce_text_param(text) AS SELECT id FROM tce_customers WHERE email = $1;
EXECUTE tce_text_param('x@y.z');
DEALLOCATE tce_text_param;
SELECT count(*) AS others FROM tce_customers WHERE email <> 'a@b.c'::text;
CREATE TEMP TABLE tce_probe (t text);
INSERT INTO tce_probe VALUES ('x@y.z'), ('nobody'), ('');
SELECT c.id FROM tce_probe p JOIN tce_customers c ON c.email = p.t ORDER BY c.id;
RESET enable_seqscan;

-- a join on two deterministic columns of the same key
CREATE TABLE tce_orders (email encrypted_text('alias/regress/pii', 'deterministic'), item text);
INSERT INTO tce_orders VALUES ('a@b.c', 'book'), ('x@y.z', 'pen'), ('q@q.q', 'cup');
SELECT c.id, o.item FROM tce_customers c JOIN tce_orders o ON o.email = c.email ORDER BY c.id;

-- values are self-describing: key, version, mode; kms_decrypt opens a
-- randomized one with the column context
SELECT (kms_column_value_info(email)).key_id = :'tk'::uuid AS email_key,
	   (kms_column_value_info(email)).key_version AS v,
	   (kms_column_value_info(email)).deterministic AS det,
	   (kms_column_value_info(ssn)).deterministic AS ssn_det,
	   (kms_column_value_info(scan)).sealed AS scan_sealed
  FROM tce_customers WHERE id = 1;
SELECT kms_decrypt_text(kms_column_ciphertext(ssn), '{"pg_kms:column": "encrypted_text"}') AS via_kms_decrypt
  FROM tce_customers WHERE id = 1;
SELECT kms_decrypt(kms_column_ciphertext(scan), '{"pg_kms:column": "encrypted_bytea"}') AS bytea_via_kms_decrypt
  FROM tce_customers WHERE id = 1;
-- ... and a deterministic one (format 0x02) the same way, also with the
-- key named; another context or key is refused as for any blob
SELECT kms_decrypt_text(kms_column_ciphertext(email), '{"pg_kms:column": "encrypted_text"}') AS det_via_kms_decrypt,
	   kms_decrypt_text(kms_column_ciphertext(email), '{"pg_kms:column": "encrypted_text"}', 'alias/regress/pii') AS det_key_named
  FROM tce_customers WHERE id = 1;
SELECT kms_decrypt_text(kms_column_ciphertext(email), '{"pg_kms:column": "encrypted_bytea"}') FROM tce_customers WHERE id = 1;
SELECT kms_decrypt_text(kms_column_ciphertext(email)) FROM tce_customers WHERE id = 1;
SELECT kms_decrypt_text(kms_column_ciphertext(email), '{"pg_kms:column": "encrypted_text", "x": "y"}') FROM tce_customers WHERE id = 1;
SELECT regress_try(format($$SELECT kms_decrypt_text(kms_column_ciphertext(email), '{"pg_kms:column": "encrypted_text"}', %L) FROM tce_customers WHERE id = 1$$, :'tk2'));
SELECT kms_decrypt_text(set_byte(c, 29, get_byte(c, 29) # 1), '{"pg_kms:column": "encrypted_text"}')
  FROM (SELECT kms_column_ciphertext(email) AS c FROM tce_customers WHERE id = 1) x;
SELECT get_byte(kms_column_ciphertext(ssn), 0) AS randomized_format,
	   get_byte(kms_column_ciphertext(email), 0) AS deterministic_format,
	   length(kms_column_ciphertext(ssn)) - octet_length('123-45-6789') AS randomized_overhead,
	   length(kms_column_ciphertext(email)) - octet_length('a@b.c') AS deterministic_overhead
  FROM tce_customers WHERE id = 1;
-- randomized: two writes of one value differ; deterministic: equal
INSERT INTO tce_orders VALUES ('a@b.c', 'book2');
SELECT count(DISTINCT kms_column_ciphertext(email)) AS det_distinct FROM tce_orders WHERE item LIKE 'book%';
CREATE TABLE tce_r (v encrypted_text('alias/regress/pii'));
INSERT INTO tce_r VALUES ('same'), ('same');
SELECT count(DISTINCT kms_column_ciphertext(v)) AS rand_distinct FROM tce_r;
-- a literal without a column is pending (not sealed), and prints as given
SELECT 'lit'::encrypted_text AS pending, (kms_column_value_info('lit'::encrypted_text)).sealed;
SELECT (kms_column_value_info('lit'::encrypted_text('alias/regress/pii'))).sealed AS cast_with_typmod_seals;
SELECT regress_try($$SELECT kms_column_ciphertext('lit'::encrypted_text)::text$$);

-- unique index on ciphertext: a duplicate is refused, its DETAIL hidden
\set VERBOSITY default
INSERT INTO tce_customers VALUES (5, 'a@b.c', 'dup', NULL);
\set VERBOSITY terse
-- randomized values cannot be compared, nor uniquely indexed
SELECT regress_try($$SELECT count(*)::text FROM tce_customers WHERE ssn = '123-45-6789'$$);
SELECT regress_try($$CREATE UNIQUE INDEX ON tce_r (v)$$);

-- rotation: old deterministic values stay readable; the column keeps its
-- deterministic version, so equality still finds them
SELECT kms_rotate_key_on_demand('alias/regress/pii') IS NOT NULL AS rotated;
INSERT INTO tce_customers VALUES (6, 'new@b.c', 'after rotation', NULL);
SELECT id, (kms_column_value_info(email)).key_version AS email_v,
	   (kms_column_value_info(ssn)).key_version AS ssn_v, ssn
  FROM tce_customers WHERE id IN (1, 6) ORDER BY id;
SELECT id FROM tce_customers WHERE email IN ('a@b.c', 'new@b.c') ORDER BY id;
SELECT typmod >= 0 AS has_typmod, key_ref, deterministic, key_id = :'tk'::uuid AS key_ok, det_version
  FROM kms.column_key WHERE key_ref = 'alias/regress/pii' ORDER BY deterministic;

-- a value moved to a column of another key is re-keyed on the way
CREATE TABLE tce_hr (v encrypted_text('alias/regress/hr'), d encrypted_text('alias/regress/hr', 'deterministic'));
INSERT INTO tce_hr SELECT ssn, email FROM tce_customers WHERE id = 1;
SELECT v, d, (kms_column_value_info(v)).key_id = :'tk2'::uuid AS v_rekeyed,
	   (kms_column_value_info(d)).key_id = :'tk2'::uuid AS d_rekeyed,
	   (kms_column_value_info(d)).deterministic AS d_det
  FROM tce_hr;
-- ALTER COLUMN TYPE to another key re-keys every row
ALTER TABLE tce_r ALTER COLUMN v TYPE encrypted_text('alias/regress/hr');
SELECT v, (kms_column_value_info(v)).key_id = :'tk2'::uuid AS rekeyed FROM tce_r;
-- randomized -> deterministic in place
ALTER TABLE tce_r ALTER COLUMN v TYPE encrypted_text('alias/regress/hr', 'deterministic');
SELECT count(DISTINCT kms_column_ciphertext(v)) AS now_equal FROM tce_r;

-- typmod errors
SELECT regress_try($$CREATE TABLE tce_bad (v encrypted_text('alias/regress/pii', 'determinstic'))$$);
SELECT regress_try($$CREATE TABLE tce_bad (v encrypted_text('alias/regress/pii', 'deterministic', 'x'))$$);
SELECT regress_try($$CREATE TABLE tce_bad (v encrypted_text(''))$$);
SELECT regress_try(format('CREATE TABLE tce_bad (v encrypted_text(%L))', repeat('x', 2049)));
SELECT kms_create_key(key_usage => 'GENERATE_VERIFY_MAC', key_spec => 'HMAC_256') AS tmac \gset
SELECT regress_try(format('CREATE TABLE tce_bad (v encrypted_text(%L))', :'tmac'));
-- a key that does not exist yet: declared, but nothing can be written
CREATE TABLE tce_later (v encrypted_text('alias/regress/later'));
SELECT regress_try($$INSERT INTO tce_later VALUES ('x')$$);
SELECT kms_create_alias('alias/regress/later', :'tk2');
INSERT INTO tce_later VALUES ('now');
SELECT v, (kms_column_value_info(v)).key_id = :'tk2'::uuid AS later_key FROM tce_later;
-- the key is recorded at first use: retargeting the alias later moves nothing
SELECT key_id = :'tk2'::uuid AS recorded FROM kms.column_key WHERE key_ref = 'alias/regress/later';
SELECT kms_update_alias('alias/regress/later', :'tk');
INSERT INTO tce_later VALUES ('after retarget');
SELECT count(*) FILTER (WHERE (kms_column_value_info(v)).key_id = :'tk2'::uuid) AS still_first_key FROM tce_later;
-- the key id, alias ARN and key ARN forms name a key too
CREATE TABLE tce_refs (a encrypted_text(:'tk'), b encrypted_bytea('alias/regress/pii', 'randomized'));
INSERT INTO tce_refs VALUES ('by id', '\xbeef');
SELECT a, b, (kms_column_value_info(a)).key_id = :'tk'::uuid AS by_id FROM tce_refs;
SELECT format_type(atttypid, atttypmod) = format('encrypted_text(%L)', :'tk') AS id_ref_printed
  FROM pg_attribute WHERE attrelid = 'tce_refs'::regclass AND attname = 'a';
SELECT kms_describe_key(:'tk')->>'Arn' AS tk_arn \gset
SELECT replace(:'tk_arn', 'key/' || :'tk', 'alias/regress/hr') AS hr_arn \gset
CREATE TABLE tce_arns (a encrypted_text(:'tk_arn'), b encrypted_text(:'hr_arn', 'deterministic'));
INSERT INTO tce_arns VALUES ('key arn', 'alias arn');
SELECT a, b, (kms_column_value_info(a)).key_id = :'tk'::uuid AS key_arn_ok,
	   (kms_column_value_info(b)).key_id = :'tk2'::uuid AS alias_arn_ok
  FROM tce_arns;
-- an ARN of another account names no key here
CREATE TABLE tce_foreign (a encrypted_text('arn:aws:kms:eu-west-1:999999999999:alias/regress/pii'));
SELECT regress_try($$INSERT INTO tce_foreign VALUES ('x')$$);

DROP TABLE tce_customers, tce_orders, tce_r, tce_hr, tce_later, tce_refs, tce_arns, tce_foreign;
