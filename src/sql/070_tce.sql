/*
 * Transparent column encryption (src/tce/, docs/column-encryption.md):
 * the types encrypted_text and encrypted_bytea, whose type modifier names
 * a key, ('<key ref>' [, 'deterministic']).
 */

-- The typmod map.  Written by src/tce/columnkey.c only; dumped, so that a
-- restore keeps each reference's key (see kms.column_key_restore below).
CREATE TABLE kms.column_key (
	typmod			integer PRIMARY KEY CHECK (typmod >= 0),
	key_ref			text NOT NULL,
	deterministic	boolean NOT NULL,
	key_id			uuid,			-- resolved when first declared; NULL until the key exists
	det_version		integer,		-- deterministic: the key version values are sealed with
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	UNIQUE (key_ref, deterministic)
);
SELECT pg_catalog.pg_extension_config_dump('kms.column_key', '');

/*
 * A restore creates the tables (their typmods: rows made with key_id NULL
 * when the keys are not restored yet) before it loads this table's dumped
 * rows: a dumped row for a reference already here fills in what is missing
 * and is not inserted again.
 */
CREATE FUNCTION kms.column_key_restore() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	cur kms.column_key;
BEGIN
	SELECT * INTO cur FROM kms.column_key c
	 WHERE c.key_ref = NEW.key_ref AND c.deterministic = NEW.deterministic;
	IF NOT FOUND THEN
		IF EXISTS (SELECT 1 FROM kms.column_key c WHERE c.typmod = NEW.typmod) THEN
			-- the number is taken by another reference: probe as typmod_in does
			LOOP
				NEW.typmod := (NEW.typmod + 1) & 1073741823;
				EXIT WHEN NOT EXISTS (SELECT 1 FROM kms.column_key c WHERE c.typmod = NEW.typmod);
			END LOOP;
		END IF;
		RETURN NEW;
	END IF;
	IF cur.key_id IS NULL AND NEW.key_id IS NOT NULL THEN
		UPDATE kms.column_key c SET key_id = NEW.key_id,
			   det_version = coalesce(c.det_version, NEW.det_version)
		 WHERE c.typmod = cur.typmod;
	ELSIF cur.det_version IS NULL AND NEW.det_version IS NOT NULL
		  AND cur.key_id IS NOT DISTINCT FROM NEW.key_id THEN
		UPDATE kms.column_key c SET det_version = NEW.det_version WHERE c.typmod = cur.typmod;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER column_key_restore BEFORE INSERT ON kms.column_key
	FOR EACH ROW EXECUTE FUNCTION kms.column_key_restore();

-- Types ----------------------------------------------------------------

CREATE TYPE encrypted_text;
CREATE TYPE encrypted_bytea;

CREATE FUNCTION encrypted_text_in(cstring, oid, integer) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_out(encrypted_text) RETURNS cstring
	AS 'MODULE_PATHNAME', 'encrypted_text_out' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_recv(internal, oid, integer) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_recv' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_send(encrypted_text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'encrypted_text_send' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_in(cstring, oid, integer) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_in' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_out(encrypted_bytea) RETURNS cstring
	AS 'MODULE_PATHNAME', 'encrypted_bytea_out' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_recv(internal, oid, integer) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_recv' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_send(encrypted_bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_send' LANGUAGE C STABLE STRICT PARALLEL SAFE;
-- STABLE for CREATE TYPE, though a new reference adds a row to kms.column_key
CREATE FUNCTION encrypted_column_typmod_in(cstring[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_column_typmod_in' LANGUAGE C STABLE STRICT;
CREATE FUNCTION encrypted_column_typmod_out(integer) RETURNS cstring
	AS 'MODULE_PATHNAME', 'encrypted_column_typmod_out' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_column_typanalyze(internal) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_column_typanalyze' LANGUAGE C STRICT;

CREATE TYPE encrypted_text (
	INPUT = encrypted_text_in, OUTPUT = encrypted_text_out,
	RECEIVE = encrypted_text_recv, SEND = encrypted_text_send,
	TYPMOD_IN = encrypted_column_typmod_in, TYPMOD_OUT = encrypted_column_typmod_out,
	ANALYZE = encrypted_column_typanalyze,
	INTERNALLENGTH = VARIABLE, STORAGE = extended, CATEGORY = 'U');
CREATE TYPE encrypted_bytea (
	INPUT = encrypted_bytea_in, OUTPUT = encrypted_bytea_out,
	RECEIVE = encrypted_bytea_recv, SEND = encrypted_bytea_send,
	TYPMOD_IN = encrypted_column_typmod_in, TYPMOD_OUT = encrypted_column_typmod_out,
	ANALYZE = encrypted_column_typanalyze,
	INTERNALLENGTH = VARIABLE, STORAGE = extended, CATEGORY = 'U');
COMMENT ON TYPE encrypted_text IS 'text encrypted under the key its type modifier names: encrypted_text(''<key>'' [, ''deterministic''])';
COMMENT ON TYPE encrypted_bytea IS 'bytea encrypted under the key its type modifier names: encrypted_bytea(''<key>'' [, ''deterministic''])';

-- Casts ----------------------------------------------------------------

-- The length coercion: seals a value for the column's key (every write).
CREATE FUNCTION encrypted_text(encrypted_text, integer, boolean) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_coerce' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea(encrypted_bytea, integer, boolean) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_coerce' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (encrypted_text AS encrypted_text)
	WITH FUNCTION encrypted_text(encrypted_text, integer, boolean) AS IMPLICIT;
CREATE CAST (encrypted_bytea AS encrypted_bytea)
	WITH FUNCTION encrypted_bytea(encrypted_bytea, integer, boolean) AS IMPLICIT;

-- Plaintext in: assignment (INSERT ... SELECT text, UPDATE SET = text).
CREATE FUNCTION encrypted_text(text, integer, boolean) RETURNS encrypted_text
	AS 'MODULE_PATHNAME', 'encrypted_text_from_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea(bytea, integer, boolean) RETURNS encrypted_bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_from_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (text AS encrypted_text)
	WITH FUNCTION encrypted_text(text, integer, boolean) AS ASSIGNMENT;
CREATE CAST (varchar AS encrypted_text)
	WITH FUNCTION encrypted_text(text, integer, boolean) AS ASSIGNMENT;
CREATE CAST (bytea AS encrypted_bytea)
	WITH FUNCTION encrypted_bytea(bytea, integer, boolean) AS ASSIGNMENT;

-- Plaintext out: explicit only (else PostgreSQL's automatic I/O cast to
-- string types would decrypt into text columns on assignment).
CREATE FUNCTION encrypted_text_to_text(encrypted_text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_text_to_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_to_bytea(encrypted_bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'encrypted_bytea_to_bytea' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE CAST (encrypted_text AS text)
	WITH FUNCTION encrypted_text_to_text(encrypted_text);
CREATE CAST (encrypted_text AS varchar)
	WITH FUNCTION encrypted_text_to_text(encrypted_text);
CREATE CAST (encrypted_text AS bpchar)
	WITH FUNCTION encrypted_text_to_text(encrypted_text);
CREATE CAST (encrypted_bytea AS bytea)
	WITH FUNCTION encrypted_bytea_to_bytea(encrypted_bytea);
CREATE CAST (encrypted_bytea AS text) WITH INOUT;
CREATE CAST (encrypted_bytea AS varchar) WITH INOUT;
CREATE CAST (encrypted_bytea AS bpchar) WITH INOUT;

-- No || through the output function (types.c, encrypted_column_concat).
CREATE FUNCTION encrypted_column_concat(encrypted_text, text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION encrypted_column_concat(text, encrypted_text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION encrypted_column_concat(encrypted_bytea, text) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION encrypted_column_concat(text, encrypted_bytea) RETURNS text
	AS 'MODULE_PATHNAME', 'encrypted_column_concat' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OPERATOR || (LEFTARG = encrypted_text, RIGHTARG = text, FUNCTION = encrypted_column_concat);
CREATE OPERATOR || (LEFTARG = text, RIGHTARG = encrypted_text, FUNCTION = encrypted_column_concat);
CREATE OPERATOR || (LEFTARG = encrypted_bytea, RIGHTARG = text, FUNCTION = encrypted_column_concat);
CREATE OPERATOR || (LEFTARG = text, RIGHTARG = encrypted_bytea, FUNCTION = encrypted_column_concat);

-- Deterministic equality and btree order, on ciphertext -----------------

CREATE FUNCTION encrypted_text_eq(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_eq' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_ne(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_ne' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_lt(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_lt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_le(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_le' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_gt(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_gt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_ge(encrypted_text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_ge' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_cmp(encrypted_text, encrypted_text) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_text_cmp' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_eq(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_eq' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_ne(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_ne' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_lt(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_lt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_le(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_le' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_gt(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_gt' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_ge(encrypted_bytea, encrypted_bytea) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_bytea_ge' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_bytea_cmp(encrypted_bytea, encrypted_bytea) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_bytea_cmp' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OPERATOR = (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_eq, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_ne, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR ~<~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_lt, COMMUTATOR = ~>~, NEGATOR = ~>=~);
CREATE OPERATOR ~<=~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_le, COMMUTATOR = ~>=~, NEGATOR = ~>~);
CREATE OPERATOR ~>~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_gt, COMMUTATOR = ~<~, NEGATOR = ~<=~);
CREATE OPERATOR ~>=~ (LEFTARG = encrypted_text, RIGHTARG = encrypted_text,
	FUNCTION = encrypted_text_ge, COMMUTATOR = ~<=~, NEGATOR = ~<~);
CREATE OPERATOR = (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_eq, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_ne, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR ~<~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_lt, COMMUTATOR = ~>~, NEGATOR = ~>=~);
CREATE OPERATOR ~<=~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_le, COMMUTATOR = ~>=~, NEGATOR = ~>~);
CREATE OPERATOR ~>~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_gt, COMMUTATOR = ~<~, NEGATOR = ~<=~);
CREATE OPERATOR ~>=~ (LEFTARG = encrypted_bytea, RIGHTARG = encrypted_bytea,
	FUNCTION = encrypted_bytea_ge, COMMUTATOR = ~<=~, NEGATOR = ~<~);

-- No hash opclass: a pending operand cannot be hashed like the ciphertext
-- it equals, and '=' is neither HASHES nor MERGES (compare.c).
CREATE OPERATOR CLASS encrypted_text_ops DEFAULT FOR TYPE encrypted_text USING btree AS
	OPERATOR 1 ~<~, OPERATOR 2 ~<=~, OPERATOR 3 =, OPERATOR 4 ~>=~, OPERATOR 5 ~>~,
	FUNCTION 1 encrypted_text_cmp(encrypted_text, encrypted_text);
CREATE OPERATOR CLASS encrypted_bytea_ops DEFAULT FOR TYPE encrypted_bytea USING btree AS
	OPERATOR 1 ~<~, OPERATOR 2 ~<=~, OPERATOR 3 =, OPERATOR 4 ~>=~, OPERATOR 5 ~>~,
	FUNCTION 1 encrypted_bytea_cmp(encrypted_bytea, encrypted_bytea);

-- encrypted_text = text: the text is plaintext to seal (drivers that type
-- their parameters as text); = is in the btree family, so the index serves it.
CREATE FUNCTION encrypted_text_eq_text(encrypted_text, text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_eq_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_ne_text(encrypted_text, text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'encrypted_text_ne_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION text_eq_encrypted_text(text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'text_eq_encrypted_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION text_ne_encrypted_text(text, encrypted_text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'text_ne_encrypted_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION encrypted_text_cmp_text(encrypted_text, text) RETURNS integer
	AS 'MODULE_PATHNAME', 'encrypted_text_cmp_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE OPERATOR = (LEFTARG = encrypted_text, RIGHTARG = text,
	FUNCTION = encrypted_text_eq_text, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = encrypted_text, RIGHTARG = text,
	FUNCTION = encrypted_text_ne_text, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR = (LEFTARG = text, RIGHTARG = encrypted_text,
	FUNCTION = text_eq_encrypted_text, COMMUTATOR = =, NEGATOR = <>,
	RESTRICT = eqsel, JOIN = eqjoinsel);
CREATE OPERATOR <> (LEFTARG = text, RIGHTARG = encrypted_text,
	FUNCTION = text_ne_encrypted_text, COMMUTATOR = <>, NEGATOR = =,
	RESTRICT = neqsel, JOIN = neqjoinsel);
ALTER OPERATOR FAMILY encrypted_text_ops USING btree ADD
	OPERATOR 3 = (encrypted_text, text),
	FUNCTION 1 (encrypted_text, text) encrypted_text_cmp_text(encrypted_text, text);

-- Inspection without plaintext --------------------------------------------

CREATE FUNCTION kms_column_value_info(value encrypted_text,
	OUT sealed boolean, OUT key_id uuid, OUT key_version integer, OUT deterministic boolean)
	RETURNS record AS 'MODULE_PATHNAME', 'kms_column_value_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION kms_column_value_info(value encrypted_bytea,
	OUT sealed boolean, OUT key_id uuid, OUT key_version integer, OUT deterministic boolean)
	RETURNS record AS 'MODULE_PATHNAME', 'kms_column_value_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION kms_column_value_info(encrypted_text) IS 'The key, key version and mode of an encrypted column value, without decrypting it';
COMMENT ON FUNCTION kms_column_value_info(encrypted_bytea) IS 'The key, key version and mode of an encrypted column value, without decrypting it';
CREATE FUNCTION kms_column_ciphertext(value encrypted_text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'kms_column_ciphertext' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION kms_column_ciphertext(value encrypted_bytea) RETURNS bytea
	AS 'MODULE_PATHNAME', 'kms_column_ciphertext' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION kms_column_ciphertext(encrypted_text) IS 'The stored bytes of an encrypted column value (a randomized one is a ciphertext blob kms_decrypt() opens)';
COMMENT ON FUNCTION kms_column_ciphertext(encrypted_bytea) IS 'The stored bytes of an encrypted column value (a randomized one is a ciphertext blob kms_decrypt() opens)';

-- The DDL guard ----------------------------------------------------------

-- Does type t with modifier tm store encrypted values without a key?
-- (an encrypted type, an array of one, or a domain over one, without typmod)
CREATE FUNCTION kms.column_type_unkeyed(t oid, tm integer) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
	r record;
BEGIN
	LOOP
		SELECT typtype, typelem, typbasetype, typtypmod, typsubscript INTO r
		  FROM pg_type WHERE oid = t;
		IF NOT FOUND THEN
			RETURN false;
		END IF;
		IF r.typtype = 'd' THEN
			IF tm < 0 THEN
				tm := r.typtypmod;
			END IF;
			t := r.typbasetype;
		ELSIF r.typelem <> 0 AND r.typsubscript = 'array_subscript_handler'::regproc THEN
			t := r.typelem;
		ELSE
			EXIT;
		END IF;
	END LOOP;
	RETURN tm < 0 AND t IN ('@extschema@.encrypted_text'::regtype, '@extschema@.encrypted_bytea'::regtype);
END
$$;

CREATE FUNCTION kms.column_ddl_check() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
	r record;
BEGIN
	FOR r IN
		SELECT c.object_identity, a.attname
		  FROM pg_event_trigger_ddl_commands() c
		  JOIN pg_attribute a
			ON a.attrelid = CASE WHEN c.classid = 'pg_class'::regclass THEN c.objid
								 WHEN c.classid = 'pg_type'::regclass
								 THEN (SELECT t.typrelid FROM pg_type t WHERE t.oid = c.objid) END
		 WHERE a.attnum > 0 AND NOT a.attisdropped
		   -- a plain view stores nothing; its writes reach the base table's coercion
		   AND (SELECT rel.relkind FROM pg_class rel WHERE rel.oid = a.attrelid) <> 'v'
		   AND kms.column_type_unkeyed(a.atttypid, a.atttypmod)
	LOOP
		RAISE EXCEPTION 'ValidationException: column "%" of "%" is encrypted without a key', r.attname, r.object_identity
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name the key in the type: encrypted_text(''alias/...'') or encrypted_bytea(''alias/...'').';
	END LOOP;
	FOR r IN
		SELECT c.object_identity
		  FROM pg_event_trigger_ddl_commands() c
		  JOIN pg_type t ON c.classid = 'pg_type'::regclass AND t.oid = c.objid
		 WHERE t.typtype = 'd' AND kms.column_type_unkeyed(t.oid, -1)
	LOOP
		RAISE EXCEPTION 'ValidationException: domain "%" is encrypted without a key', r.object_identity
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name the key in the type: encrypted_text(''alias/...'') or encrypted_bytea(''alias/...'').';
	END LOOP;
END
$$;
CREATE EVENT TRIGGER kms_column_ddl_check ON ddl_command_end
	EXECUTE FUNCTION kms.column_ddl_check();
ALTER EVENT TRIGGER kms_column_ddl_check ENABLE ALWAYS;
