/*
 * pg_kms 1.2 -> 1.3.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.3 install script), so that
 * an updated database and a fresh 1.3 install have the same objects;
 * test/t/050_upgrade.pl compares the two catalogs (from 1.0, 1.1 and 1.2).
 * The Makefile builds sql/pg_kms--1.2--1.3.sql from this file followed by
 * the install checks (src/sql/060_install_checks.sql), which every update
 * runs again.  Released scripts (sql/pg_kms--1.0.sql, 1.1, 1.2 and the
 * updates between them) are kept as they shipped.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.3'" to load this file. \quit

-- parallel query (issue 16) ---------------------------------------------------
-- The data plane's Encrypt and Decrypt and the functions of encrypted
-- columns run in parallel workers (src/sql/020_kms_api.sql, 070_tce.sql,
-- 072_tce_rekey.sql; docs/kms.md and docs/column-encryption.md, "Parallel
-- query").  encrypted_column_typmod_in stays PARALLEL UNSAFE: it adds rows
-- to kms.column_key.
ALTER FUNCTION @extschema@.kms_encrypt(text, bytea, jsonb, text, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.kms_encrypt(text, text, jsonb, text, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.kms_decrypt(bytea, jsonb, text, text, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.kms_decrypt_text(bytea, jsonb, text, text, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_in(cstring, oid, integer) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_out(@extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_recv(internal, oid, integer) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_send(@extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_in(cstring, oid, integer) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_out(@extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_recv(internal, oid, integer) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_send(@extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_column_typmod_out(integer) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text(@extschema@.encrypted_text, integer, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea(@extschema@.encrypted_bytea, integer, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text(text, integer, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea(bytea, integer, boolean) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_to_text(@extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_to_bytea(@extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_column_concat(@extschema@.encrypted_text, text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_column_concat(text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_column_concat(@extschema@.encrypted_bytea, text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_column_concat(text, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_eq(@extschema@.encrypted_text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_ne(@extschema@.encrypted_text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_lt(@extschema@.encrypted_text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_le(@extschema@.encrypted_text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_gt(@extschema@.encrypted_text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_ge(@extschema@.encrypted_text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_cmp(@extschema@.encrypted_text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_eq(@extschema@.encrypted_bytea, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_ne(@extschema@.encrypted_bytea, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_lt(@extschema@.encrypted_bytea, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_le(@extschema@.encrypted_bytea, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_gt(@extschema@.encrypted_bytea, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_ge(@extschema@.encrypted_bytea, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_bytea_cmp(@extschema@.encrypted_bytea, @extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_eq_text(@extschema@.encrypted_text, text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_ne_text(@extschema@.encrypted_text, text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.text_eq_encrypted_text(text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.text_ne_encrypted_text(text, @extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.encrypted_text_cmp_text(@extschema@.encrypted_text, text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.kms_column_value_info(@extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.kms_column_value_info(@extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION @extschema@.kms_column_ciphertext(@extschema@.encrypted_text) PARALLEL SAFE;
ALTER FUNCTION @extschema@.kms_column_ciphertext(@extschema@.encrypted_bytea) PARALLEL SAFE;
ALTER FUNCTION kms.column_value_stale(@extschema@.encrypted_text, integer) PARALLEL SAFE;
ALTER FUNCTION kms.column_value_stale(@extschema@.encrypted_bytea, integer) PARALLEL SAFE;

-- scale (issue 16)
-- ListSecrets' name filter: the words of each name (src/sql/030_secrets.sql)
CREATE INDEX secret_name_words_idx ON kms.secret USING gin
	((pg_catalog.array_to_tsvector(pg_catalog.array_remove(pg_catalog.string_to_array(
		pg_catalog.translate(name, '/_+=.@-', '       '), ' '), ''))));
-- CreateSecret purges secrets whose recovery window ended, on every call
CREATE INDEX secret_deletion_date_idx ON kms.secret (deletion_date)
	WHERE deletion_date IS NOT NULL;
