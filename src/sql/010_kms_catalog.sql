/*
 * Internal state: schema kms, which no ordinary role can write.  Only
 * wrapped (encrypted) key material is ever stored.  The C code reads and
 * writes these tables as the extension owner with a pinned search_path.
 */
CREATE SCHEMA kms;
REVOKE ALL ON SCHEMA kms FROM PUBLIC;
GRANT USAGE ON SCHEMA kms TO PUBLIC;	-- for the read-only views only

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'kms_admin') THEN
		CREATE ROLE kms_admin NOLOGIN;
	END IF;
END
$$;

-- One row: the key check value of the master key that wraps all versions.
CREATE TABLE kms.master (
	id				int PRIMARY KEY CHECK (id = 1),
	provider		text NOT NULL,
	kcv				bytea NOT NULL,
	created			timestamptz NOT NULL DEFAULT pg_catalog.now(),
	rotated			timestamptz
);

CREATE TABLE kms.key (
	key_id			uuid PRIMARY KEY,
	description		text NOT NULL DEFAULT '',
	key_usage		text NOT NULL,
	key_spec		text NOT NULL,
	key_state		text NOT NULL
		CHECK (key_state IN ('Enabled', 'Disabled', 'PendingDeletion', 'Deleted')),
	origin			text NOT NULL DEFAULT 'AWS_KMS',
	owner			oid,			-- with owner_name: see 057_principals.sql
	creation_date	timestamptz NOT NULL,
	deletion_date	timestamptz,
	pending_window_days int,
	rotation_enabled boolean NOT NULL DEFAULT false,
	rotation_period_days int,
	next_rotation_date timestamptz,
	on_demand_rotations int NOT NULL DEFAULT 0,
	on_demand_rotation_start timestamptz,
	current_version int NOT NULL DEFAULT 1,
	tags			jsonb NOT NULL DEFAULT '{}',
	-- AWS: a key pg_kms manages (named under alias/pg_kms/), which only a
	-- superuser may change; CUSTOMER: every other key
	key_manager		text NOT NULL DEFAULT 'CUSTOMER'
		CHECK (key_manager IN ('CUSTOMER', 'AWS'))
);

-- Key material versions; material is wrapped by the provider, never plain.
CREATE TABLE kms.key_version (
	key_id			uuid NOT NULL REFERENCES kms.key ON DELETE CASCADE,
	version			int NOT NULL CHECK (version > 0),
	material		bytea,			-- NULL once destroyed (crypto-shredding)
	provider		text NOT NULL,
	key_material_id text NOT NULL,
	rotation_type	text CHECK (rotation_type IN ('AUTOMATIC', 'ON_DEMAND')),
	created			timestamptz NOT NULL,
	PRIMARY KEY (key_id, version)
);

CREATE TABLE kms.alias (
	alias_name		text PRIMARY KEY,
	key_id			uuid NOT NULL REFERENCES kms.key ON DELETE CASCADE,
	creation_date	timestamptz NOT NULL,
	last_updated_date timestamptz NOT NULL
);
CREATE INDEX ON kms.alias (key_id);

CREATE TABLE kms.grants (
	grant_id		text PRIMARY KEY,
	key_id			uuid NOT NULL REFERENCES kms.key ON DELETE CASCADE,
	name			text,
	grantee			oid,			-- principals: see 057_principals.sql
	retiring_principal oid,
	operations		text[] NOT NULL,
	constraints		jsonb,
	issuing_role	oid,
	grant_token		text NOT NULL,
	creation_date	timestamptz NOT NULL
);
CREATE INDEX ON kms.grants (key_id);

REVOKE ALL ON ALL TABLES IN SCHEMA kms FROM PUBLIC;

-- Wrapped material only: safe, and needed, in dumps.
SELECT pg_catalog.pg_extension_config_dump('kms.master', '');
SELECT pg_catalog.pg_extension_config_dump('kms.key', '');
SELECT pg_catalog.pg_extension_config_dump('kms.key_version', '');
SELECT pg_catalog.pg_extension_config_dump('kms.alias', '');
SELECT pg_catalog.pg_extension_config_dump('kms.grants', '');
