/*
 * pg_kms 1.0 -> 1.1.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.1 install script), so that
 * an upgraded database and a fresh 1.1 install have the same objects;
 * test/t/050_upgrade.pl compares the two schema dumps.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.1'" to load this file. \quit

-- keys: KeyManager.  The keys pg_kms manages itself (the secrets store's
-- default key, named by an alias under alias/pg_kms/) are changed by a
-- superuser only; existing ones are marked.
ALTER TABLE kms.key ADD COLUMN key_manager text NOT NULL DEFAULT 'CUSTOMER'
	CHECK (key_manager IN ('CUSTOMER', 'AWS'));
UPDATE kms.key SET key_manager = 'AWS'
 WHERE key_id IN (SELECT key_id FROM kms.alias WHERE alias_name LIKE 'alias/pg\_kms/%');
