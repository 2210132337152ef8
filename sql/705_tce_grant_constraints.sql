-- Column encryption under grants with constraints: the column context
-- {"pg_kms:column": "<type name>"} is the request's encryption context, so
-- a grant constrained to it allows writes, reads and lookups of that type's
-- columns, and not of the other type's.
SELECT kms_create_key(description => 'tce constrained grants') AS ck \gset
CREATE ROLE regress_tce_ctx;
CREATE TABLE tce_ctx (id int, d encrypted_text(:'ck', 'deterministic'),
					  r encrypted_text(:'ck'), b encrypted_bytea(:'ck'));
GRANT SELECT, INSERT ON tce_ctx TO regress_tce_ctx;
SELECT (kms_create_grant(:'ck', 'regress_tce_ctx', ARRAY['Encrypt', 'Decrypt'],
		constraints => '{"EncryptionContextSubset": {"pg_kms:column": "encrypted_text"}}')).grant_id AS g1 \gset
SET ROLE regress_tce_ctx;
INSERT INTO tce_ctx VALUES (1, 'one', 'uno', NULL);
SELECT id, d, r FROM tce_ctx WHERE d = 'one';
SELECT r::text AS r_cast FROM tce_ctx WHERE d IN ('one', 'two');
-- encrypted_bytea: its context is {"pg_kms:column": "encrypted_bytea"}
SELECT regress_try($$INSERT INTO tce_ctx VALUES (2, NULL, NULL, '\x02') RETURNING id$$);
RESET ROLE;
INSERT INTO tce_ctx VALUES (3, NULL, NULL, '\x03');
SET ROLE regress_tce_ctx;
SELECT regress_try($$SELECT b::bytea::text FROM tce_ctx WHERE id = 3$$);
RESET ROLE;
-- the grant gone, nothing is allowed
SELECT kms_revoke_grant(:'ck', :'g1');
SET ROLE regress_tce_ctx;
SELECT regress_try($$SELECT r::text FROM tce_ctx WHERE id = 1$$);
SELECT regress_try($$INSERT INTO tce_ctx VALUES (4, 'four', NULL, NULL) RETURNING id$$);
RESET ROLE;
DROP TABLE tce_ctx;
DROP ROLE regress_tce_ctx;
