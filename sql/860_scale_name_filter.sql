-- Issue 16, scale: ListSecrets' name filter goes through an index
-- (secret_name_words_idx over the words of each name) and finds exactly
-- what the word-prefix rules of issue 15 find (sql/903): the index is a
-- prefilter, every candidate is checked again by the exact rules, so it
-- may never lose a match.  The names below are the tricky ones: mixed
-- case, digits, every separator, empty words (separators side by side, at
-- the start or the end), and filter values with separators in them.
SELECT count(*) AS made FROM (
	SELECT create_secret(n, 'x') FROM unnest(ARRAY[
		'S16/Mixed.Case_Name', 's16/mixed.case_name', 's16/MIXED-CASE',
		's16/abc123/Def456', 's16/9lives', 's16/2024/q1', 's16/20240+q2',
		's16/a+b=c.d@e-f_g', 's16//double//slash', 's16/-lead', 's16/trail-',
		's16/.../x', 's16/__init__', 's16@corp.example', 's16=eq=val',
		's16x/other', 'S16', 's16'
	]::text[]) n) s;

-- The rules, written again independently in SQL: a value matches a name if
-- it is a prefix of the whole name, or if it has words and each of its
-- words is a prefix of some word of the name (words split on spaces and
-- "/_+=.@-"), case-sensitively.
CREATE FUNCTION s16_words(t text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(array_agg(w), '{}') FROM regexp_split_to_table(t, '[ /_+=.@-]+') w WHERE w <> ''
$$;
CREATE FUNCTION s16_matches(v text, n text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
	SELECT starts_with(n, v) OR
		(cardinality(s16_words(v)) > 0 AND
		 NOT EXISTS (SELECT 1 FROM unnest(s16_words(v)) vw
					  WHERE NOT EXISTS (SELECT 1 FROM unnest(s16_words(n)) nw
										 WHERE starts_with(nw, vw))))
$$;
CREATE FUNCTION s16_listed(f jsonb) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(name ORDER BY name COLLATE "C"), '{}') FROM public.list_secrets(f)
	 WHERE name ~* '^s16'
$$;
CREATE FUNCTION s16_expected(vals text[]) RETURNS text[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(name ORDER BY name COLLATE "C"), '{}') FROM kms.secret
	 WHERE name ~* '^s16' AND deleted_date IS NULL
	   AND EXISTS (SELECT 1 FROM unnest(vals) v WHERE s16_matches(v, name))
$$;

-- One value at a time: what list_secrets finds, and whether it is exactly
-- what the rules find.  The index must be used (no sequential scans).
SET enable_seqscan = off;
SELECT v, cardinality(s16_listed(jsonb_build_array(jsonb_build_object('Key', 'name', 'Values', jsonb_build_array(v))))) AS found,
	   s16_listed(jsonb_build_array(jsonb_build_object('Key', 'name', 'Values', jsonb_build_array(v))))
		 = s16_expected(ARRAY[v]) AS as_the_rules
  FROM unnest(ARRAY[
	'Mixed', 'mixed', 'MIXED', 'Case', 'case_N', 'Case_N', 'Mixed.Case_Name', 'S16/Mixed.C',
	's16', 'S16', 's1', 's16x', 's16/', '9', '9lives', '2024', '202', 'q', 'q2', '20240+q',
	'abc123/Def', 'abc Def4', 'Def4 abc12', '123', 'a+b=c', 'e-f_g', 'g', 'b c d e f',
	'double//slash', 'slash double', '//', '/', '-', '.', '__', '__init', 'init', 'lead',
	'-lead', 'trail-', 'trail', 'x', '...', 'corp', 'corp.example', 'example', '@corp',
	'eq', 'val', '=eq=v', 'a:b', 'zzz', 'mixed case', 'Mixed Case Name', 'Name Mixed'
  ]) v;

-- Several values of one filter are ORed; several filters are ANDed; a
-- negated value excludes (the index narrows only by the positive ones).
SELECT s16_listed('[{"Key":"name","Values":["Mixed","lives","q1"]}]')
	   = s16_expected(ARRAY['Mixed', 'lives', 'q1']) AS ored,
	   s16_listed('[{"Key":"name","Values":["Mixed","lives","q1"]}]') AS ored_names;
SELECT s16_listed('[{"Key":"name","Values":["s16"]},{"Key":"name","Values":["2024"]}]') AS anded;
SELECT s16_listed('[{"Key":"name","Values":["s16"]},{"Key":"name","Values":["!2024","!x"]}]') AS anded_negated;
SELECT s16_listed('[{"Key":"name","Values":["/","9"]}]') AS value_without_words;
SELECT s16_listed('[{"Key":"name","Values":["9"]},{"Key":"description","Values":["nothing"]}]') AS with_other_key;

RESET enable_seqscan;

-- At scale, without forcing the planner: 3000 more secrets (audit off
-- for the setup, a superuser setting), statistics, and the catalog query
-- of a name filter scans secret_name_words_idx; one without a name filter
-- does not.
SET pg_kms.audit = off;
SELECT count(create_secret('s16/bulk/item-' || lpad(g::text, 4, '0'), 'x')) AS bulk
  FROM generate_series(1, 3000) g;
RESET pg_kms.audit;
ANALYZE kms.secret;
CREATE FUNCTION s16_idx_scans() RETURNS bigint LANGUAGE sql AS $$
	SELECT idx_scan FROM pg_stat_user_indexes
	 WHERE schemaname = 'kms' AND indexrelname = 'secret_name_words_idx'
$$;
SELECT pg_stat_force_next_flush();
SELECT s16_idx_scans() AS before \gset
SELECT name FROM list_secrets('[{"Key":"name","Values":["item-0042"]}]');
SELECT pg_stat_force_next_flush();
SELECT s16_idx_scans() - :before AS name_filter_index_scans;
SELECT s16_idx_scans() AS before \gset
SELECT count(*) > 0 AS by_description FROM list_secrets('[{"Key":"description","Values":["x"]}]');
SELECT pg_stat_force_next_flush();
SELECT s16_idx_scans() - :before AS description_filter_index_scans;
-- the expression of the catalog query, as the planner sees it
EXPLAIN (COSTS OFF) SELECT name FROM kms.secret s
 WHERE pg_catalog.array_to_tsvector(pg_catalog.array_remove(pg_catalog.string_to_array(
		pg_catalog.translate(s.name, '/_+=.@-', '       '), ' '), '')) @@ '''0042'':*'::tsquery;

SET pg_kms.audit = off;
SELECT count(delete_secret(name, force_delete_without_recovery => true)) AS deleted
  FROM kms.secret WHERE name ~* '^s16';
RESET pg_kms.audit;
DROP FUNCTION s16_idx_scans(), s16_listed(jsonb), s16_expected(text[]), s16_matches(text, text), s16_words(text);
