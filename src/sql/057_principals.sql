/*
 * Principals (issue 11, findings 3 and 4).  Each principal column (owner,
 * grantee, retiring_principal, issuing_role, rotation_role) is an oid, the
 * role in THIS cluster that the checks compare (NULL: unresolved, matches
 * nobody), beside <column>_name, the role's name, which is what a dump
 * carries.  The trigger kms.principals_sync makes the oid follow the name
 * on INSERT (a restore's COPY: its oids are another cluster's) and the name
 * follow the oid when the C code writes an oid; src/catalog/principals.c
 * says why.  rotation_clone stays pinned by oid alone (cleared on restore).
 * DROP ROLE of a principal is refused; REASSIGN OWNED and DROP OWNED cover
 * keys, secrets and grants (src/secrets/principals.c, docs/kms.md).
 */
ALTER TABLE kms.key ADD COLUMN owner_name text NOT NULL;
ALTER TABLE kms.grants
	ADD COLUMN grantee_name text NOT NULL,
	ADD COLUMN retiring_principal_name text,
	ADD COLUMN issuing_role_name text NOT NULL;
ALTER TABLE kms.secret
	ADD COLUMN owner_name text NOT NULL,
	ADD COLUMN rotation_role_name text;
ALTER TABLE kms.secret_grant
	ADD COLUMN grantee_name text NOT NULL,
	ADD COLUMN issuing_role_name text NOT NULL;

CREATE FUNCTION kms.principals_sync()
RETURNS trigger AS 'MODULE_PATHNAME', 'kms_principals_sync' LANGUAGE C;
REVOKE ALL ON FUNCTION kms.principals_sync() FROM PUBLIC;
COMMENT ON FUNCTION kms.principals_sync() IS 'Trigger: keeps each principal''s oid and name in step (a restore resolves names to this cluster''s roles)';

CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.key
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('owner');
CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.grants
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('grantee', 'retiring_principal', 'issuing_role');
CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.secret
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('owner', 'rotation_role', '-rotation_clone');
CREATE TRIGGER principals BEFORE INSERT OR UPDATE ON kms.secret_grant
	FOR EACH ROW EXECUTE FUNCTION kms.principals_sync('grantee', 'issuing_role');

CREATE FUNCTION kms_unresolved_principals(OUT object_type text, OUT object_id text,
										  OUT role_column text, OUT role_name text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'kms_unresolved_principals' LANGUAGE C STABLE;
COMMENT ON FUNCTION kms_unresolved_principals() IS 'kms_admin: owners, grantees and other principals that name no role of this cluster (restored without it, or dropped from another database); they match nobody until resolved';

CREATE FUNCTION kms_resolve_principals()
RETURNS bigint AS 'MODULE_PATHNAME', 'kms_resolve_principals' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_resolve_principals() IS 'kms_admin: give unresolved principals the role of their name, refresh the names of renamed roles, forget dropped ones; returns the principals changed';

CREATE FUNCTION kms_reassign_owned(old_role text, new_role text)
RETURNS bigint AS 'MODULE_PATHNAME', 'kms_reassign_owned' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_reassign_owned(text, text) IS 'REASSIGN OWNED for pg_kms: the keys and secrets of old_role (a role, or an unresolved principal of that name), the grants it issued and the rotations it configured pass to new_role; superuser, or kms_admin with the privileges of both roles';

CREATE FUNCTION kms_drop_owned(role text)
RETURNS bigint AS 'MODULE_PATHNAME', 'kms_drop_owned' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION kms_drop_owned(text) IS 'DROP OWNED for pg_kms: delete the key and secret grants to role (keys and secrets stay); kms_admin';
