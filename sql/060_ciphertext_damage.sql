-- Corrupt, truncated, foreign or forged ciphertext: InvalidCiphertextException
-- (SQLSTATE KM003), never a crash, never wrong plaintext.
SELECT kms_create_key(description => 'damage') AS k \gset
SELECT kms_create_key(description => 'other') AS k2 \gset
SELECT kms_encrypt(:'k', 'sample plaintext'::bytea, '{"a":"b"}') AS c \gset
SELECT length(:'c'::bytea) AS blob_len;

-- every byte position, two flips each
SELECT flip, count(*) AS positions, r AS outcome
  FROM (SELECT f.flip, regress_try(format('SELECT encode(kms_decrypt(%L, %L), %L)',
			set_byte(:'c'::bytea, i, get_byte(:'c'::bytea, i) # f.flip), '{"a":"b"}', 'hex')) AS r
		  FROM generate_series(0, length(:'c'::bytea) - 1) i, (VALUES (1), (255)) f(flip)) s
 GROUP BY flip, r ORDER BY flip, r;

-- truncated at every length, 0 .. len-1, and with a byte appended
SELECT count(*) AS lengths, r AS outcome
  FROM (SELECT regress_try(format('SELECT encode(kms_decrypt(%L, %L), %L)',
			substring(:'c'::bytea FROM 1 FOR n), '{"a":"b"}', 'hex')) AS r
		  FROM generate_series(0, length(:'c'::bytea) - 1) n) s
 GROUP BY r;
SELECT regress_try(format('SELECT encode(kms_decrypt(%L, %L), %L)', :'c'::bytea || '\x00'::bytea, '{"a":"b"}', 'hex'));

-- empty, garbage, other format byte
SELECT regress_try($$SELECT encode(kms_decrypt(''::bytea), 'hex')$$);
SELECT regress_try($$SELECT encode(kms_decrypt('\x00'::bytea), 'hex')$$);
SELECT regress_try(format('SELECT encode(kms_decrypt(%L), %L)', set_byte(:'c'::bytea, 0, 2), 'hex'));
SELECT regress_try(format('SELECT encode(kms_decrypt(%L), %L)', kms_generate_random(200), 'hex'));

-- a blob from another cluster: unknown key id
SELECT regress_try(format('SELECT encode(kms_decrypt(%L), %L)',
	'\x01'::bytea || uuid_send(gen_random_uuid()) || substring(:'c'::bytea FROM 18), 'hex'));

-- a forged blob: another key's id spliced into the header
SELECT regress_try(format('SELECT encode(kms_decrypt(%L, %L), %L)',
	'\x01'::bytea || uuid_send(:'k2'::uuid) || substring(:'c'::bytea FROM 18), '{"a":"b"}', 'hex'));

-- a version that does not exist yet
SELECT regress_try(format('SELECT encode(kms_decrypt(%L, %L), %L)', set_byte(:'c'::bytea, 20, 9), '{"a":"b"}', 'hex'));

-- the original is intact
SELECT kms_decrypt(:'c', '{"a":"b"}') AS original;
