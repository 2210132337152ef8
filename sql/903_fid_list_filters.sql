-- Issue 15, item 2: ListSecrets filters.
--
-- ListSecrets API reference ("Find secrets"): values match by prefix, and
-- Secrets Manager breaks names, descriptions, tag keys and values into
-- words (split on spaces and on / _ + = . @ -), so a value matches a prefix
-- of any word; name, tag-key and tag-value match case-sensitively,
-- description and all not.  Several filters are ANDed, with the same key
-- too.  Filter.Key is an enum and Filter.Values a pattern of the API model
-- (FilterNameStringType, FilterValueStringType): others are AWS's
-- framework's ValidationException.
SELECT count(*) AS made FROM (
	SELECT create_secret('fid/prod/db-main', 'x', description => 'Main Database of Billing',
						 tags => '{"team": "blue-squad", "cost.center": "CC_42"}')
	UNION ALL SELECT create_secret('fid/test/db-replica', 'x', description => 'replica for tests',
						 tags => '{"team": "red-squad"}')
	UNION ALL SELECT create_secret('fid/prod/cache', 'x', description => 'Cache')) s;

CREATE FUNCTION fid_names(f jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(name, ' ' ORDER BY name), '<none>') FROM public.list_secrets(f)
	 WHERE name LIKE 'fid/%'
$$;

-- name: a prefix of any word of the name, case-sensitively
SELECT fid_names('[{"Key":"name","Values":["prod"]}]') AS name_prod;
SELECT fid_names('[{"Key":"name","Values":["db"]}]') AS name_db;
SELECT fid_names('[{"Key":"name","Values":["repl"]}]') AS name_repl;
SELECT fid_names('[{"Key":"name","Values":["Prod"]}]') AS name_Prod_case;
SELECT fid_names('[{"Key":"name","Values":["rod"]}]') AS name_inside_a_word;
SELECT fid_names('[{"Key":"name","Values":["fid/prod/db"]}]') AS name_whole_prefix;
SELECT fid_names('[{"Key":"name","Values":["!prod"]}]') AS name_not_prod;
-- description: words, case-insensitively
SELECT fid_names('[{"Key":"description","Values":["billing"]}]') AS description_billing;
SELECT fid_names('[{"Key":"description","Values":["data"]}]') AS description_data;
-- tag keys and values: words, case-sensitively
SELECT fid_names('[{"Key":"tag-value","Values":["squad"]}]') AS tag_value_squad;
SELECT fid_names('[{"Key":"tag-value","Values":["blue"]}]') AS tag_value_blue;
SELECT fid_names('[{"Key":"tag-value","Values":["42"]}]') AS tag_value_42;
SELECT fid_names('[{"Key":"tag-key","Values":["center"]}]') AS tag_key_center;
SELECT fid_names('[{"Key":"tag-value","Values":["Blue"]}]') AS tag_value_Blue_case;
-- all: every attribute, case-insensitively; each word of the value must match
SELECT fid_names('[{"Key":"all","Values":["BLUE"]}]') AS all_blue;
SELECT fid_names('[{"Key":"all","Values":["cache"]}]') AS all_cache;
SELECT fid_names('[{"Key":"all","Values":["prod billing"]}]') AS all_two_words;
-- several filters with the same key are ANDed; values of one filter ORed
SELECT fid_names('[{"Key":"name","Values":["prod"]},{"Key":"name","Values":["db"]}]') AS name_prod_and_db;
SELECT fid_names('[{"Key":"name","Values":["cache","replica"]}]') AS name_cache_or_replica;
-- model violations: ValidationException (SQLSTATE 22023)
SELECT fid_try($$SELECT fid_names('[{"Key":"color","Values":["x"]}]')$$) AS unknown_key;
SELECT fid_try($$SELECT fid_names('[{"Key":"name","Values":["a*b"]}]')$$) AS bad_value;
SELECT fid_try($$SELECT fid_names('[{"Key":"name","Values":["!ok-value"]}]')$$) AS negated_ok;
-- BatchGetSecretValue's filters match the same way
SELECT jsonb_array_length(batch_get_secret_value(filters => '[{"Key":"name","Values":["replica"]}]') -> 'SecretValues') AS batch_by_word;
