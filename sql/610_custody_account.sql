-- Account id kept with the data (issue 11, finding 5): chosen at CREATE
-- EXTENSION from the system identifier (as 1.1 derived it, so ARNs do not
-- change), stored in kms.account, which pg_dump dumps; ARNs use it.
SELECT account_id ~ '^[0-9]{12}$' AS twelve_digits,
       account_id = lpad(((system_identifier::numeric
                           + CASE WHEN system_identifier < 0 THEN 18446744073709551616 ELSE 0 END)
                          % 1000000000000)::text, 12, '0') AS derived_from_system_identifier
  FROM kms.account, pg_control_system();
SELECT count(*) AS dumped FROM pg_extension e, unnest(e.extconfig) c
 WHERE e.extname = 'pg_kms' AND c = 'kms.account'::regclass;
SELECT kms_create_key(description => 'account key') AS ak \gset
SELECT (kms_describe_key(:'ak')->>'AWSAccountId') = (SELECT account_id FROM kms.account) AS arn_uses_stored;

-- the stored value is what ARNs show (changed and rolled back here; a
-- restore changes it the same way), also in an already-running session
BEGIN;
UPDATE kms.account SET account_id = '111122223333';
SELECT kms_describe_key(:'ak')->>'Arn' = 'arn:aws:kms:local:111122223333:key/' || :'ak' AS arn_follows;
SELECT kms_describe_key('arn:aws:kms:local:111122223333:key/' || :'ak')->>'KeyId' = :'ak' AS resolves;
SELECT create_secret('regress/account', secret_string => 'v')->>'ARN' LIKE 'arn:aws:secretsmanager:local:111122223333:secret:regress/account-%' AS secret_arn;
ROLLBACK;
SELECT (kms_describe_key(:'ak')->>'AWSAccountId') = (SELECT account_id FROM kms.account) AS back;
SELECT regress_try($$UPDATE kms.account SET account_id = 'x' RETURNING 1$$);
SELECT regress_try($$INSERT INTO kms.account VALUES (2, '000000000000') RETURNING 1$$);
SELECT kms_schedule_key_deletion(:'ak', 7) IS NOT NULL AS scheduled;
