-- Transparent column encryption: the ciphertext form.  pg_kms.column_output
-- = ciphertext (and 'auto' inside COPY ... TO or a pg_dump session) prints
-- 'pg_kms:v1:' || base64 of the stored value; input accepts it back in a
-- column of the same key without Decrypt and without re-encrypting; a
-- value for another key, or in the other mode, is refused.
SELECT kms_create_key(description => 'tce ct a') AS ca \gset
SELECT kms_create_key(description => 'tce ct b') AS cb \gset
SELECT kms_create_alias('alias/regress/tce-ct-a', :'ca');
SELECT kms_create_alias('alias/regress/tce-ct-b', :'cb');
CREATE TABLE tce_src (id int, r encrypted_text('alias/regress/tce-ct-a'),
					  d encrypted_text('alias/regress/tce-ct-a', 'deterministic'),
					  b encrypted_bytea('alias/regress/tce-ct-a'));
INSERT INTO tce_src VALUES (1, 'rand', 'det', '\xc0ffee'), (2, '', '', '\x'), (3, NULL, NULL, NULL);
CREATE TABLE tce_dst (LIKE tce_src);
CREATE TABLE tce_dst_b (id int, r encrypted_text('alias/regress/tce-ct-b'),
						d encrypted_text('alias/regress/tce-ct-b', 'deterministic'),
						b encrypted_bytea('alias/regress/tce-ct-b'));
GRANT SELECT, INSERT ON tce_src, tce_dst, tce_dst_b TO regress_kms_admin;

SHOW pg_kms.column_output;
SET pg_kms.column_output = 'ciphertext';
SELECT id, left(r::text, 0) AS x, r IS NULL AS r_null FROM tce_src ORDER BY id;
SELECT r AS r1, d AS d1, b AS b1 FROM tce_src WHERE id = 1 \gset
SELECT left(:'r1', 10) AS r_prefix, left(:'d1', 10) AS d_prefix, left(:'b1', 10) AS b_prefix;
-- a pending value has no ciphertext form
SELECT 'pending'::encrypted_text;
RESET pg_kms.column_output;

-- imported by a role without any right on the key; stored as it was
SET ROLE regress_kms_admin;
SELECT regress_try($$SELECT r FROM tce_src WHERE id = 1$$);
INSERT INTO tce_dst VALUES (1, :'r1', :'d1', :'b1');
RESET ROLE;
SELECT kms_column_ciphertext(s.r) = kms_column_ciphertext(d.r) AS same_bytes_r,
	   kms_column_ciphertext(s.d) = kms_column_ciphertext(d.d) AS same_bytes_d,
	   kms_column_ciphertext(s.b) = kms_column_ciphertext(d.b) AS same_bytes_b
  FROM tce_src s JOIN tce_dst d USING (id);
SELECT r, d, b FROM tce_dst;
-- the imported deterministic value is found by equality
SELECT id FROM tce_dst WHERE d = 'det';
-- a cast with the column's typmod imports as well; a pending-style value
-- with the ciphertext form in it is not plaintext
SELECT (:'r1'::encrypted_text('alias/regress/tce-ct-a'))::text AS cast_import;

-- refused: another key, the other mode, damage, the prefix of plaintext
SELECT regress_try(format('INSERT INTO tce_dst_b VALUES (9, %L) RETURNING id', :'r1'));
SELECT regress_try(format('INSERT INTO tce_dst_b (id, d) VALUES (9, %L) RETURNING id', :'d1'));
SELECT regress_try(format('INSERT INTO tce_dst (id, d) VALUES (9, %L) RETURNING id', :'r1'));
SELECT regress_try(format('INSERT INTO tce_dst (id, r) VALUES (9, %L) RETURNING id', :'d1'));
SELECT regress_try($$INSERT INTO tce_dst (id, r) VALUES (9, 'pg_kms:v1:!!!') RETURNING id$$);
SELECT regress_try($$INSERT INTO tce_dst (id, r) VALUES (9, 'pg_kms:v1:AQ==') RETURNING id$$);
SELECT regress_try($$INSERT INTO tce_dst (id, r) VALUES (9, 'pg_kms:v1:') RETURNING id$$);
SELECT regress_try($$SELECT 'pg_kms:v1:AAAA'::encrypted_text::text$$);
-- a structurally valid value whose tag fails: stored, refused when read
SELECT overlay(:'r1' placing (CASE WHEN substr(:'r1', 60, 1) = 'A' THEN 'B' ELSE 'A' END) from 60 for 1) AS r_bad \gset
INSERT INTO tce_dst (id, r) VALUES (10, :'r_bad');
SELECT regress_try($$SELECT r::text FROM tce_dst WHERE id = 10$$);
-- a value of encrypted_bytea read as encrypted_text: the context differs
INSERT INTO tce_dst (id, r) VALUES (11, :'b1');
SELECT regress_try($$SELECT r::text FROM tce_dst WHERE id = 11$$);
-- rewriting with the other key's column re-keys (Decrypt + Encrypt)
INSERT INTO tce_dst_b SELECT * FROM tce_dst WHERE id = 1;
SELECT r, d, b, (kms_column_value_info(r)).key_id = :'cb'::uuid AS rekeyed FROM tce_dst_b;

-- 'auto': COPY ... TO writes the ciphertext form (text, csv, binary);
-- COPY ... FROM loads it without re-encrypting
SELECT '/tmp/pg_kms_regress_tce_' || pg_backend_pid() AS f \gset
COPY (SELECT r, d, b FROM tce_src WHERE id = 1) TO :'f';
SELECT pg_read_file(:'f') LIKE 'pg_kms:v1:%	pg_kms:v1:%	pg_kms:v1:%' AS text_copy_ciphertext,
	   position('rand' in pg_read_file(:'f')) = 0 AS no_plaintext;
COPY tce_src TO :'f' WITH (FORMAT csv);
CREATE TABLE tce_reload (LIKE tce_src);
COPY tce_reload FROM :'f' WITH (FORMAT csv);
SELECT count(*) FILTER (WHERE kms_column_ciphertext(s.r) = kms_column_ciphertext(l.r)
						  AND kms_column_ciphertext(s.b) = kms_column_ciphertext(l.b)) AS csv_same_bytes,
	   count(*) FILTER (WHERE s.d = l.d) AS det_equal
  FROM tce_src s JOIN tce_reload l USING (id);
TRUNCATE tce_reload;
COPY tce_src TO :'f' WITH (FORMAT binary);
SELECT position(convert_to('rand', 'UTF8') in pg_read_binary_file(:'f')) = 0 AS binary_no_plaintext;
COPY tce_reload FROM :'f' WITH (FORMAT binary);
SELECT id, l.r, l.d, l.b, kms_column_ciphertext(s.r) = kms_column_ciphertext(l.r) AS binary_same_bytes
  FROM tce_reload l JOIN tce_src s USING (id) ORDER BY id;
-- a binary COPY into a column of another key is refused like text
SELECT regress_try(format('COPY tce_dst_b FROM %L WITH (FORMAT binary)', :'f'));
COPY (SELECT WHERE false) TO :'f';
-- 'plaintext' forces plaintext: a migration out by a role with Decrypt
SET pg_kms.column_output = 'plaintext';
COPY (SELECT r, d, b FROM tce_src WHERE id = 1) TO STDOUT;
RESET pg_kms.column_output;
-- a pg_dump session (application_name) gets the ciphertext form too
SET application_name = 'pg_dump';
SELECT left(r::text, 0) || left(format('%s', r), 10) AS in_pg_dump FROM tce_src WHERE id = 1;
SET application_name = 'pg_dumpall';
SELECT left(format('%s', r), 10) AS in_pg_dumpall FROM tce_src WHERE id = 1;
RESET application_name;
SELECT format('%s', r) AS plaintext_otherwise FROM tce_src WHERE id = 1;
-- 'plaintext' forces plaintext even in a pg_dump session (migration mode)
SET application_name = 'pg_dump';
SET pg_kms.column_output = 'plaintext';
SELECT format('%s', r) AS forced_plaintext FROM tce_src WHERE id = 1;
RESET pg_kms.column_output;
RESET application_name;
SELECT regress_try($$SET pg_kms.column_output = 'sometimes'$$);

DROP TABLE tce_src, tce_dst, tce_dst_b, tce_reload;
