-- Rotation rules (issue 9, finding 12): every number is range-checked and
-- every error reachable from rules parsing is InvalidParameterException,
-- never a silent wrap-around (rate(4294967297 days) was 1 day) nor a bare
-- PostgreSQL error (numeric overflow).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;

CREATE FUNCTION regress_rules(rules text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(regress_try(format($q$SELECT rotate_secret('regress/rules', 'postgres_single_user', %L, false)$q$, rules)),
						  '"ARN": "[^"]*"', '"ARN": "<arn>"', 'g')
$$;

SELECT (create_secret('regress/rules', '{"engine":"postgres","host":"127.0.0.1","username":"regress_rules_nobody","password":"x"}') ->> 'Name') AS created;

-- rate(): numbers past int range wrap no more
SELECT regress_rules('{"ScheduleExpression": "rate(4294967297 days)"}');
SELECT regress_rules('{"ScheduleExpression": "rate(4294967297 hours)"}');
SELECT regress_rules('{"ScheduleExpression": "rate(2147483648 days)"}');
SELECT regress_rules('{"ScheduleExpression": "rate(99999999999999999999999 days)"}');
SELECT regress_rules('{"ScheduleExpression": "rate(-1 days)"}');
SELECT regress_rules('{"ScheduleExpression": "rate(1 days) "}');
SELECT regress_rules('{"ScheduleExpression": "rate(10 days)x"}');
SELECT regress_rules('{"ScheduleExpression": "rate(23977 hours)"}');
SELECT regress_rules('{"ScheduleExpression": "rate(23976 hours)"}');
SELECT regress_rules('{"ScheduleExpression": "rate(999 days)"}');
SELECT describe_secret('regress/rules') -> 'RotationRules' AS rules;

-- AutomaticallyAfterDays: whole numbers 1..1000, whatever the JSON
SELECT regress_rules('{"AutomaticallyAfterDays": 4294967297}');
SELECT regress_rules('{"AutomaticallyAfterDays": 1e100}');
SELECT regress_rules('{"AutomaticallyAfterDays": 30.5}');
SELECT regress_rules('{"AutomaticallyAfterDays": -4294967295}');
SELECT regress_rules('{"AutomaticallyAfterDays": "4294967297"}');
SELECT regress_rules('{"AutomaticallyAfterDays": "99999999999999999999999"}');
SELECT regress_rules('{"AutomaticallyAfterDays": "7 days"}');
SELECT regress_rules('{"AutomaticallyAfterDays": true}');
SELECT regress_rules('{"AutomaticallyAfterDays": "30"}');
SELECT regress_rules('{"AutomaticallyAfterDays": 1000}');
SELECT describe_secret('regress/rules') -> 'RotationRules' AS rules;

-- cron(): numbers past long range, names, steps
SELECT regress_rules('{"ScheduleExpression": "cron(99999999999999999999999 16 1 * ? *)"}');
SELECT regress_rules('{"ScheduleExpression": "cron(0 4294967312 1 * ? *)"}');
SELECT regress_rules('{"ScheduleExpression": "cron(0 16 1/4294967297 * ? *)"}');
SELECT regress_rules('{"ScheduleExpression": "cron(0 16 1 * ? 4294967297)"}');
SELECT regress_rules('{"ScheduleExpression": "cron(0 16 ? * XYZ *)"}');
SELECT regress_rules('{"ScheduleExpression": "cron(0 16 1,,2 * ? *)"}');
SELECT regress_rules('{"ScheduleExpression": "cron()"}');

-- Duration
SELECT regress_rules('{"ScheduleExpression": "rate(10 days)", "Duration": "4294967297h"}');
SELECT regress_rules('{"ScheduleExpression": "rate(10 days)", "Duration": "1e1h"}');
SELECT regress_rules('{"ScheduleExpression": "rate(10 days)", "Duration": 3}');

SELECT (delete_secret('regress/rules', force_delete_without_recovery => true) ->> 'Name') AS dropped;
DROP FUNCTION regress_rules(text);
