-- Issue 15, item 6: Limit / Marker paging of the KMS list operations
-- (AWS API reference, e.g. ListAliases: "Use this parameter to specify the
-- maximum number of items to return. ... it must be between 1 and 100,
-- inclusive"; Marker: "Use this parameter in a subsequent request after
-- you receive a response with truncated results. Set it to the value of
-- NextMarker from the truncated response you just received.").
SELECT kms_create_key(description => 'fid paging') AS k \gset
SELECT count(kms_create_alias('alias/fid/page/' || i, :'k')) AS aliases FROM generate_series(1, 5) i;
SELECT kms_tag_resource(:'k', '{"t1":"a","t2":"b","t3":"c"}');
SELECT count(kms_rotate_key_on_demand(:'k')) AS rotations FROM generate_series(1, 3);

-- pages of two: every alias exactly once, in order, the last page without a marker
WITH RECURSIVE pages(n, names, marker) AS (
	SELECT 1, (SELECT array_agg(alias_name) FROM kms_list_aliases(:'k', 2)),
	       (SELECT next_marker FROM kms_list_aliases(:'k', 2) WHERE next_marker IS NOT NULL)
	UNION ALL
	SELECT n + 1, (SELECT array_agg(alias_name) FROM kms_list_aliases(:'k', 2, marker)),
	       (SELECT next_marker FROM kms_list_aliases(:'k', 2, marker) WHERE next_marker IS NOT NULL)
	  FROM pages WHERE marker IS NOT NULL)
SELECT n, names, marker IS NOT NULL AS truncated FROM pages ORDER BY n;

-- the marker is on the last row of a truncated page only
SELECT alias_name, next_marker IS NOT NULL AS has_marker FROM kms_list_aliases(:'k', 3);
-- no limit and no marker: everything, no marker
SELECT count(*) AS all_aliases, count(next_marker) AS markers FROM kms_list_aliases(:'k');

-- ListKeys, ListResourceTags, ListKeyRotations, ListGrants page the same way
SELECT kms_create_key() AS k2 \gset
SELECT count(*) AS keys_page, count(next_marker) AS keys_marker FROM kms_list_keys(1);
SELECT (SELECT key_id FROM kms_list_keys(1, (SELECT next_marker FROM kms_list_keys(1) WHERE next_marker IS NOT NULL)))
       <> (SELECT key_id FROM kms_list_keys(1)) AS second_key_page_differs;
SELECT tag_key, next_marker IS NOT NULL AS more FROM kms_list_resource_tags(:'k', 2);
SELECT tag_key FROM kms_list_resource_tags(:'k', 2, (SELECT next_marker FROM kms_list_resource_tags(:'k', 2) WHERE next_marker IS NOT NULL));
SELECT rotation_type, next_marker IS NOT NULL AS more FROM kms_list_key_rotations(:'k', 'ROTATIONS_ONLY', 2);
SELECT count(*) AS rest FROM kms_list_key_rotations(:'k', 'ROTATIONS_ONLY', 2,
	(SELECT next_marker FROM kms_list_key_rotations(:'k', 'ROTATIONS_ONLY', 2) WHERE next_marker IS NOT NULL));
SELECT grant_id FROM kms_create_grant(:'k', 'fid_app', ARRAY['Decrypt']) \gset
SELECT grant_id FROM kms_create_grant(:'k', 'fid_other', ARRAY['Decrypt']) \gset
SELECT grantee_principal, next_marker IS NOT NULL AS more FROM kms_list_grants(:'k', "limit" => 1);
SELECT grantee_principal FROM kms_list_grants(:'k', "limit" => 1,
	marker => (SELECT next_marker FROM kms_list_grants(:'k', "limit" => 1) WHERE next_marker IS NOT NULL));

-- a marker of another list, or not a marker at all: InvalidMarkerException
-- (KM008); limits outside the operation's range: ValidationException
SELECT fid_try(format('SELECT count(*)::text FROM kms_list_aliases(%L, 2, %L)', :'k',
	(SELECT next_marker FROM kms_list_resource_tags(:'k', 2) WHERE next_marker IS NOT NULL)));
SELECT fid_try(format('SELECT count(*)::text FROM kms_list_aliases(%L, 2, %L)', :'k', 'not a marker!'));
SELECT fid_try($$SELECT count(*)::text FROM kms_list_keys(1, 'bm90LWEtbGlzdA==')$$);
SELECT fid_try($$SELECT count(*)::text FROM kms_list_keys(0)$$);
SELECT fid_try($$SELECT count(*)::text FROM kms_list_keys(1001)$$);
SELECT fid_try(format('SELECT count(*)::text FROM kms_list_aliases(%L, 101)', :'k'));
SELECT fid_try(format('SELECT count(*)::text FROM kms_list_resource_tags(%L, 51)', :'k'));
SELECT fid_try(format('SELECT count(*)::text FROM kms_list_aliases(%L, 2, %L)', :'k', ''));
