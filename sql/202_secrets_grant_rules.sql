--
-- Who may grant what on a secret (issue 9, finding 3).  The owner (or a
-- member of it) and superusers grant any operation.  kms_admin manages
-- every secret but never its value: it grants only the management
-- operations it holds itself (DescribeSecret, UpdateSecret, DeleteSecret,
-- TagResource), and never GetSecretValue, PutSecretValue, RotateSecret or
-- UpdateSecretVersionStage: not to itself, not to a role it belongs to,
-- not to anyone else.  A refused grant writes nothing.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set VERBOSITY terse

CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ' ' || split_part(SQLERRM, ':', 1);
END $$;

CREATE ROLE regress_gr_admin IN ROLE kms_admin;
CREATE ROLE regress_gr_mine;				-- a role the admin belongs to
GRANT regress_gr_mine TO regress_gr_admin;
CREATE ROLE regress_gr_app;
CREATE ROLE regress_gr_owner IN ROLE kms_admin;	-- creates (owns) a secret
CREATE ROLE regress_gr_owner_member IN ROLE regress_gr_owner;

SELECT create_secret('gr/db', 'gr-db-value') ? 'ARN' AS created;

-- kms_admin grants itself, or a role it is a member of, nothing of the value
SET ROLE regress_gr_admin;
SELECT secret_create_grant('gr/db', 'regress_gr_admin', '{GetSecretValue}');
SELECT secret_create_grant('gr/db', 'regress_gr_mine', '{GetSecretValue}');
SELECT secret_create_grant('gr/db', 'regress_gr_admin', '{PutSecretValue}');
SELECT secret_create_grant('gr/db', 'regress_gr_admin', '{RotateSecret}');
SELECT secret_create_grant('gr/db', 'regress_gr_admin', '{UpdateSecretVersionStage}');
-- nor to anyone else: the owner decides who uses a secret
SELECT secret_create_grant('gr/db', 'regress_gr_app', '{GetSecretValue}');
SELECT secret_create_grant('gr/db', 'regress_gr_app', '{PutSecretValue}');
-- one refused operation refuses the whole grant
SELECT pg_temp.err($$SELECT secret_create_grant('gr/db', 'regress_gr_app', '{DescribeSecret,GetSecretValue}')$$) AS mixed;
-- and it still cannot read
SELECT pg_temp.err($$SELECT get_secret('gr/db')$$) AS admin_reads;
-- what it holds itself, it may hand on
SELECT secret_create_grant('gr/db', 'regress_gr_app', '{DescribeSecret,TagResource}') IS NOT NULL AS admin_grants_management;
RESET ROLE;

-- nothing of the refused grants was written
SELECT grantee_principal, operations, issuing_role FROM secret_list_grants('gr/db') ORDER BY 1;
SET ROLE regress_gr_mine;
SELECT pg_temp.err($$SELECT get_secret('gr/db')$$) AS mine_reads;
RESET ROLE;

-- a grant from the owner does not let kms_admin pass the value on
SELECT secret_create_grant('gr/db', 'regress_gr_admin', '{GetSecretValue}') IS NOT NULL AS superuser_grants;
SET ROLE regress_gr_admin;
SELECT get_secret('gr/db') AS admin_reads_by_grant;
SELECT pg_temp.err($$SELECT secret_create_grant('gr/db', 'regress_gr_app', '{GetSecretValue}')$$) AS admin_regrants;
SELECT pg_temp.err($$SELECT secret_create_grant('gr/db', 'regress_gr_mine', '{GetSecretValue}')$$) AS admin_regrants_to_mine;
RESET ROLE;

-- the owner, and a member of the owner, grant value operations
SET ROLE regress_gr_owner;
SELECT create_secret('gr/own', 'gr-own-value') ? 'ARN' AS created;
SELECT secret_create_grant('gr/own', 'regress_gr_app', '{GetSecretValue}') IS NOT NULL AS owner_grants;
RESET ROLE;
SET ROLE regress_gr_owner_member;
SELECT secret_create_grant('gr/own', 'regress_gr_app', '{PutSecretValue,RotateSecret,UpdateSecretVersionStage}') IS NOT NULL AS owner_member_grants;
RESET ROLE;
SET ROLE regress_gr_app;
SELECT get_secret('gr/own') AS app_reads;
RESET ROLE;
-- kms_admin still cannot: the owner's secret is not its own
SET ROLE regress_gr_admin;
SELECT pg_temp.err($$SELECT secret_create_grant('gr/own', 'regress_gr_admin', '{GetSecretValue}')$$) AS admin_on_owners;
-- it revokes grants (management), as before
SELECT count(*) AS revoked FROM (SELECT secret_revoke_grant('gr/own', grant_id)
  FROM secret_list_grants('gr/own') WHERE grantee_principal = 'regress_gr_app') r;
RESET ROLE;
SET ROLE regress_gr_app;
SELECT pg_temp.err($$SELECT get_secret('gr/own')$$) AS app_after_revoke;
RESET ROLE;

-- the refusals are audited as denied CreateGrant calls (the worker drains
-- the audit queue into kms.audit of this database)
CREATE FUNCTION pg_temp.audit_wait(cond text) RETURNS boolean LANGUAGE plpgsql AS $$
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
END $$;
SELECT pg_temp.audit_wait($$EXISTS (SELECT 1 FROM kms.audit WHERE operation = 'CreateGrant'
    AND outcome = 'AccessDeniedException' AND resource_id = 'gr/db' AND db_user = 'regress_gr_admin')$$)
    AS denied_grant_audited;

-- clean up
SELECT count(*) AS deleted FROM (SELECT delete_secret(name, force_delete_without_recovery => true)
  FROM list_secrets(include_planned_deletion => true) WHERE name LIKE 'gr/%') d;
DROP ROLE regress_gr_owner_member, regress_gr_owner, regress_gr_app, regress_gr_mine, regress_gr_admin;
