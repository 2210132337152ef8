-- Issue 15, item 8 (secrets): the audit event of a Secrets Manager call
-- holds its safe request parameters (ids, version ids, stages, filters,
-- never a value), as CloudTrail's requestParameters do.
CREATE FUNCTION fid_audit_wait(cond text) RETURNS boolean
LANGUAGE plpgsql AS $$
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
END
$$;
SELECT (create_secret('fid/audited', 'audit value 1', description => 'a', type => 'audit-type',
					  client_request_token => 'fid-audit-1-aaaaaaaaaaaaaaaaaaaaaaaaaaaa') ->> 'Name') AS created;
SELECT (put_secret_value('fid/audited', 'audit value 2', version_stages => '{AWSPENDING}',
						 client_request_token => 'fid-audit-2-aaaaaaaaaaaaaaaaaaaaaaaaaaaa') ->> 'Name') AS put;
SELECT get_secret('fid/audited', version_stage => 'AWSPENDING') IS NOT NULL AS read;
SELECT (update_secret_version_stage('fid/audited', 'AWSPENDING',
		remove_from_version_id => 'fid-audit-2-aaaaaaaaaaaaaaaaaaaaaaaaaaaa') ->> 'Name') AS removed;
SELECT count(*) AS listed FROM list_secrets('[{"Key":"name","Values":["fid/audited"]}]', max_results => 5);
SELECT count(*) AS versions FROM list_secret_version_ids('fid/audited', true);
SELECT jsonb_array_length(batch_get_secret_value(ARRAY['fid/audited']) -> 'SecretValues') AS batch_read;
SELECT (delete_secret('fid/audited', 7) ->> 'Name') AS deleted;
SELECT fid_audit_wait($$(SELECT count(DISTINCT operation) = 8 FROM kms.audit WHERE resource_id LIKE '%fid/audited%'
	OR (operation = 'ListSecrets' AND parameters ->> 'filters' LIKE '%fid/audited%')
	OR (operation = 'BatchGetSecretValue' AND parameters ->> 'secretIdList' LIKE '%fid/audited%'))$$) AS all_audited;
SELECT operation, version, parameters FROM kms.audit
 WHERE resource_id LIKE '%fid/audited%' OR (operation = 'ListSecrets' AND parameters ->> 'filters' LIKE '%fid/audited%')
	OR (operation = 'BatchGetSecretValue' AND parameters ->> 'secretIdList' LIKE '%fid/audited%')
 ORDER BY id;
-- never a value
SELECT count(*) AS events_with_a_value FROM kms.audit
 WHERE parameters::text LIKE '%audit value%';
