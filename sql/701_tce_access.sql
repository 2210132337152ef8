-- Transparent column encryption: who may write, read and look up.
-- Writing seals: Encrypt on the column's key.  Reading plaintext: Decrypt on
-- the value's own key, else AccessDeniedException (42501): never ciphertext
-- presented as text, never a silent NULL.  A lookup (deterministic =)
-- seals its operand: Encrypt or Decrypt.  The ciphertext form needs neither.
SELECT kms_create_key(description => 'tce access') AS ak \gset
SELECT kms_create_alias('alias/regress/tce-access', :'ak');
CREATE TABLE tce_acc (id int, d encrypted_text('alias/regress/tce-access', 'deterministic'),
					  r encrypted_text('alias/regress/tce-access'), b encrypted_bytea('alias/regress/tce-access'));
GRANT SELECT, INSERT, UPDATE ON tce_acc TO regress_app, regress_other, regress_kms_admin;
CREATE UNIQUE INDEX tce_acc_d ON tce_acc (d);
INSERT INTO tce_acc VALUES (1, 'one', 'uno', '\x01');

SELECT (kms_create_grant(:'ak', 'regress_app', ARRAY['Encrypt'])).grant_id IS NOT NULL AS app_encrypt;
SELECT (kms_create_grant(:'ak', 'regress_other', ARRAY['Decrypt'])).grant_id IS NOT NULL AS other_decrypt;

-- Encrypt only: writes, looks up, cannot read
SET ROLE regress_app;
INSERT INTO tce_acc VALUES (2, 'two', 'dos', '\x02');
SELECT regress_try($$SELECT r FROM tce_acc WHERE id = 2$$);
SELECT regress_try($$SELECT r::text FROM tce_acc WHERE id = 2$$);
SELECT regress_try($$SELECT b::bytea::text FROM tce_acc WHERE id = 2$$);
SELECT regress_try($$SELECT d::text FROM tce_acc WHERE id = 1$$);
SELECT regress_try($$SELECT format('%s', r) FROM tce_acc WHERE id = 1$$);
SELECT regress_try($$SELECT row_to_json(t)::text FROM tce_acc t WHERE id = 1$$);
SELECT id FROM tce_acc WHERE d = 'two';
SELECT id FROM tce_acc WHERE d IN ('one', 'two') ORDER BY id;
-- a duplicate on the unique index is a unique violation (23505), not a
-- failure to decrypt the key for its DETAIL (which is hidden anyway)
SELECT regress_try($$INSERT INTO tce_acc VALUES (20, 'two', NULL, NULL) RETURNING id$$);
\set VERBOSITY default
INSERT INTO tce_acc VALUES (20, 'two', NULL, NULL);
\set VERBOSITY terse
INSERT INTO tce_acc VALUES (21, 'twenty-one', NULL, NULL) ON CONFLICT DO NOTHING;
-- the ciphertext form needs no Decrypt
SET pg_kms.column_output = 'ciphertext';
SELECT r AS rc, d AS dc, b AS bc FROM tce_acc WHERE id = 1 \gset
SELECT left(:'rc', 10) AS r_form, left(:'dc', 10) AS d_form, left(:'bc', 10) AS b_form;
SELECT left(format('%s', r), 10) AS via_output FROM tce_acc WHERE id = 1;
-- an explicit cast to text is a request for plaintext whatever the mode
SELECT regress_try($$SELECT r::text FROM tce_acc WHERE id = 1$$);
RESET pg_kms.column_output;
RESET ROLE;

-- Decrypt only: reads and looks up, cannot write
SET ROLE regress_other;
SELECT id, d, r, b FROM tce_acc ORDER BY id;
SELECT r FROM tce_acc WHERE d = 'one';
SELECT regress_try($$INSERT INTO tce_acc VALUES (3, 'three', NULL, NULL) RETURNING id$$);
SELECT regress_try($$UPDATE tce_acc SET r = 'changed' WHERE id = 1 RETURNING id$$);
-- copying a value inside its own key needs no Encrypt: no re-encryption
UPDATE tce_acc SET r = r WHERE id = 1;
RESET ROLE;

-- kms_admin without grants: neither reads nor looks up
SET ROLE regress_kms_admin;
SELECT regress_try($$SELECT r FROM tce_acc WHERE id = 1$$);
SELECT regress_try($$SELECT id::text FROM tce_acc WHERE d = 'one'$$);
SELECT regress_try($$INSERT INTO tce_acc VALUES (4, 'four', NULL, NULL) RETURNING id$$);
-- NULLs need no key
INSERT INTO tce_acc VALUES (5, NULL, NULL, NULL);
SELECT count(*) FILTER (WHERE r IS NULL) AS null_rows FROM tce_acc;
RESET ROLE;

-- a disabled key: no writes, no reads, no lookups
SELECT kms_disable_key(:'ak');
SELECT regress_try($$SELECT r FROM tce_acc WHERE id = 1$$);
SELECT regress_try($$INSERT INTO tce_acc VALUES (6, 'six', NULL, NULL) RETURNING id$$);
SELECT regress_try($$SELECT id::text FROM tce_acc WHERE d = 'one'$$);
SELECT kms_enable_key(:'ak');
SELECT r FROM tce_acc WHERE id = 1;

-- the data plane's audit aggregate counts column reads and writes: one
-- row per statement, key and operation, no event per row
CREATE FUNCTION regress_tce_wait(cond text) RETURNS boolean
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
INSERT INTO tce_acc SELECT g, 'k' || g, 'v' || g, NULL FROM generate_series(10, 59) g;
SELECT count(r) AS fifty FROM (SELECT r::text AS r FROM tce_acc WHERE id >= 10) s;
SELECT regress_tce_wait(format($$(SELECT count(*) = 1 FROM kms.audit_log
	WHERE resource_id = %L AND operation = 'Encrypt' AND event_type = 'aggregate' AND event_count = 100)$$, :'ak'))
	AS encrypts_aggregated;
SELECT regress_tce_wait(format($$(SELECT count(*) = 1 FROM kms.audit_log
	WHERE resource_id = %L AND operation = 'Decrypt' AND event_type = 'aggregate' AND event_count = 50)$$, :'ak'))
	AS decrypts_aggregated;
DROP FUNCTION regress_tce_wait(text);

DROP TABLE tce_acc;
