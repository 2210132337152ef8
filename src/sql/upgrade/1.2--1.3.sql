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

-- scale (issue 16)
-- ListSecrets' name filter: the words of each name (src/sql/030_secrets.sql)
CREATE INDEX secret_name_words_idx ON kms.secret USING gin
	((pg_catalog.array_to_tsvector(pg_catalog.array_remove(pg_catalog.string_to_array(
		pg_catalog.translate(name, '/_+=.@-', '       '), ' '), ''))));
-- CreateSecret purges secrets whose recovery window ended, on every call
CREATE INDEX secret_deletion_date_idx ON kms.secret (deletion_date)
	WHERE deletion_date IS NOT NULL;
