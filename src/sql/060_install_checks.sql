
/*
 * Install-time checks.  The API functions live in the schema chosen at
 * CREATE EXTENSION; a role that may create objects there can define an
 * overload that an unqualified call resolves to first (say kms_encrypt(text,
 * text) against our kms_encrypt(text, bytea) for a string literal), and so
 * read every plaintext passed to it.  Say so when PUBLIC may (docs/security.md,
 * "Where to install").
 */
DO $pg_kms_check$
BEGIN
	IF pg_catalog.has_schema_privilege('public', '@extschema@', 'CREATE') THEN
		RAISE WARNING 'pg_kms: every role may create objects in schema "%", where pg_kms''s functions are installed', '@extschema@'
			USING DETAIL = 'A role that can create functions there can define an overload that unqualified calls resolve to, and read the plaintext passed to it.',
				  HINT = 'Install pg_kms into a schema only trusted roles may create in (CREATE EXTENSION pg_kms SCHEMA ...), or REVOKE CREATE ON SCHEMA ... FROM PUBLIC; call its functions schema-qualified.';
	END IF;
END
$pg_kms_check$;
