/*-------------------------------------------------------------------------
 *
 * list_sql.c
 *	  The listing SQL entry points: ListSecrets (list_secrets) with its
 *	  filters, sorting and paging, and ListSecretVersionIds
 *	  (list_secret_version_ids); the filters, the visible-secrets query
 *	  and the NextToken are BatchGetSecretValue's too (read_sql.c).
 *
 * IDENTIFICATION
 *	  src/secrets/list_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "secrets/secrets_internal.h"

/*
 * The words of a secret's name as a tsvector: the expression of
 * secret_name_words_idx (src/sql/030_secrets.sql), spelt exactly so that
 * the planner matches it.  The separators are IsWordSeparator's.
 */
#define SECRET_NAME_WORDS \
	"(pg_catalog.array_to_tsvector(pg_catalog.array_remove(pg_catalog.string_to_array(" \
	"pg_catalog.translate(s.name, '/_+=.@-', '       '), ' '), '')))"

/* ----------------------------------------------------------------
 * ListSecrets filters (also BatchGetSecretValue's)
 * ----------------------------------------------------------------
 */
typedef struct SecretFilter
{
	char	   *key;			/* name, description, tag-key, tag-value, all, ... */
	List	   *values;			/* char *; a leading "!" negates */
} SecretFilter;

List *
ParseFilters(Jsonb *jb)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *filters = NIL;
	SecretFilter *cur = NULL;
	char	   *member = NULL;
	int			depth = 0;

	if (jb == NULL)
		return NIL;
	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "filters must be a JSON array of {\"Key\", \"Values\"} objects");
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				depth++;
				if (depth > 3 || (depth == 3 && strcmp(member, "Values") != 0) || depth == 2)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "filters must be a JSON array of {\"Key\", \"Values\"} objects");
				break;
			case WJB_END_ARRAY:
				depth--;
				break;
			case WJB_BEGIN_OBJECT:
				depth++;
				if (depth != 2)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "filters must be a JSON array of {\"Key\", \"Values\"} objects");
				cur = palloc0(sizeof(SecretFilter));
				break;
			case WJB_END_OBJECT:
				depth--;
				if (cur->key == NULL || cur->values == NIL)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "each filter needs a Key and a non-empty list of Values");
				filters = lappend(filters, cur);
				break;
			case WJB_KEY:
				member = pnstrdup(v.val.string.val, v.val.string.len);
				if (strcmp(member, "Key") != 0 && strcmp(member, "Values") != 0)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "unknown filter member \"%s\"; use Key and Values", member);
				break;
			case WJB_VALUE:
				if (strcmp(member, "Key") != 0 || v.type != jbvString)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter's Key must be a string and its Values a list of strings");
				cur->key = pnstrdup(v.val.string.val, v.val.string.len);
				/* Filter.Key is an enum of the API model: AWS's framework refuses others */
				if (strcmp(cur->key, "name") != 0 && strcmp(cur->key, "description") != 0 &&
					strcmp(cur->key, "tag-key") != 0 && strcmp(cur->key, "tag-value") != 0 &&
					strcmp(cur->key, "primary-region") != 0 &&
					strcmp(cur->key, "owning-service") != 0 && strcmp(cur->key, "all") != 0)
					SecretValidationError(cur->key, psprintf("filters.%d.member.key", list_length(filters) + 1),
										  "Member must satisfy enum value set: [description, name, tag-key, tag-value, primary-region, owning-service, all]");
				break;
			case WJB_ELEM:
				if (depth != 3 || v.type != jbvString)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter's Key must be a string and its Values a list of strings");
				if (v.val.string.len < 1 || v.val.string.len > 512)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter value must be 1 to 512 characters");
				{
					char	   *fv = pnstrdup(v.val.string.val, v.val.string.len);

					/* the model's pattern for a filter value: ^\!?[a-zA-Z0-9 :_@\/\+\=\.\-]*$ */
					for (const char *c = fv[0] == '!' ? fv + 1 : fv; *c; c++)
						if (!isalnum((unsigned char) *c) && strchr(" :_@/+=.-", *c) == NULL)
							SecretValidationError(fv, psprintf("filters.%d.member.values", list_length(filters) + 1),
												  "Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-]*$");
					cur->values = lappend(cur->values, fv);
				}
				if (list_length(cur->values) > 10)
					kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
							  "a filter can have at most 10 values");
				break;
			default:
				break;
		}
	}
	if (list_length(filters) > 10)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "at most 10 filters are allowed");
	return filters;
}

/* Words of an attribute or of a filter value split on spaces and "/_+=.@-". */
static bool
IsWordSeparator(char c)
{
	return c == ' ' || (c != '\0' && strchr("/_+=.@-", c) != NULL);
}

static bool
StartsWith(const char *s, size_t slen, const char *prefix, size_t n, bool nocase)
{
	if (slen < n)
		return false;
	return nocase ? pg_strncasecmp(s, prefix, n) == 0 : strncmp(s, prefix, n) == 0;
}

/* Is word (wlen bytes) a prefix of some word of s? */
static bool
WordPrefixOfAnyWord(const char *s, const char *word, size_t wlen, bool nocase)
{
	const char *p = s;

	while (*p)
	{
		const char *e;

		while (*p && IsWordSeparator(*p))
			p++;
		for (e = p; *e && !IsWordSeparator(*e); e++)
			;
		if (e > p && StartsWith(p, e - p, word, wlen, nocase))
			return true;
		p = e;
	}
	return false;
}

/*
 * Does a filter value match some of the attributes (strings; NULLs
 * skipped)?  As AWS matches: the whole value is a prefix of an attribute,
 * or every word of the value is a prefix of a word of one of them (so
 * "prod" finds "app/prod/db", and "db prod" finds it too).
 */
static bool
ValueMatches(const char *val, List *attrs, bool nocase)
{
	ListCell   *lc;
	const char *p = val;
	bool		any_word = false;

	foreach(lc, attrs)
	{
		const char *a = lfirst(lc);

		if (a && StartsWith(a, strlen(a), val, strlen(val), nocase))
			return true;
	}
	while (*p)
	{
		const char *e;
		bool		found = false;

		while (*p && IsWordSeparator(*p))
			p++;
		for (e = p; *e && !IsWordSeparator(*e); e++)
			;
		if (e == p)
			break;
		any_word = true;
		foreach(lc, attrs)
		{
			const char *a = lfirst(lc);

			if (a && WordPrefixOfAnyWord(a, p, e - p, nocase))
			{
				found = true;
				break;
			}
		}
		if (!found)
			return false;
		p = e;
	}
	return any_word;
}

/* The tag keys (keys true) or values of a secret's tags object. */
static List *
TagStrings(Jsonb *tags, bool keys)
{
	JsonbIterator *it = JsonbIteratorInit(&tags->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *out = NIL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (((keys && tok == WJB_KEY) || (!keys && tok == WJB_VALUE)) && v.type == jbvString)
			out = lappend(out, pnstrdup(v.val.string.val, v.val.string.len));
	return out;
}

/*
 * Does one (non-negated) value match the secret under this filter key?
 * name, tag-key and tag-value match case-sensitively, description and all
 * not (ListSecrets API reference, Filter).
 */
static bool
FilterValueMatches(const char *fkey, const char *val, const char *name,
				   const char *description, Jsonb *tags)
{
	if (strcmp(fkey, "name") == 0)
		return ValueMatches(val, list_make1((char *) name), false);
	if (strcmp(fkey, "description") == 0)
		return ValueMatches(val, list_make1((char *) description), true);
	if (strcmp(fkey, "tag-key") == 0)
		return ValueMatches(val, TagStrings(tags, true), false);
	if (strcmp(fkey, "tag-value") == 0)
		return ValueMatches(val, TagStrings(tags, false), false);
	if (strcmp(fkey, "all") == 0)
		return ValueMatches(val, list_concat(list_make2((char *) name, (char *) description),
											 list_concat(TagStrings(tags, true),
														 TagStrings(tags, false))),
							true);
	/* primary-region and owning-service: no secret here is replicated or managed */
	return false;
}

static bool
FiltersMatch(List *filters, const char *name, const char *description, Jsonb *tags)
{
	ListCell   *lc;

	foreach(lc, filters)
	{
		SecretFilter *f = lfirst(lc);
		ListCell   *vc;
		bool		any = false;
		bool		negated_fail = false;
		bool		has_positive = false;

		foreach(vc, f->values)
		{
			char	   *val = lfirst(vc);

			if (val[0] == '!')
			{
				if (FilterValueMatches(f->key, val + 1, name, description, tags))
					negated_fail = true;
			}
			else
			{
				has_positive = true;
				if (FilterValueMatches(f->key, val, name, description, tags))
					any = true;
			}
		}
		if (negated_fail || (has_positive && !any))
			return false;
	}
	return true;
}


/* Append word (wlen bytes) to buf as a quoted tsquery prefix operand. */
static void
AppendPrefixOperand(StringInfo buf, const char *word, size_t wlen)
{
	appendStringInfoChar(buf, '\'');
	for (size_t i = 0; i < wlen; i++)
	{
		if (word[i] == '\'' || word[i] == '\\')
			appendStringInfoChar(buf, word[i]);
		appendStringInfoChar(buf, word[i]);
	}
	appendStringInfoString(buf, "':*");
}

/*
 * A tsquery over the words of a secret's name (secret_name_words_idx,
 * src/sql/030_secrets.sql) that every secret matching the name filters
 * matches, or NULL when they give none.  It may let through secrets that
 * do not match (FiltersMatch decides), never the reverse:
 *
 *	- a positive value matches a name only if each of its words is a prefix
 *	  of a word of the name (when the whole value is a prefix of the name,
 *	  so is each of its words: a word boundary of the value is one of the
 *	  name), so the value gives 'w1':* & 'w2':* & ...;
 *	- a filter matches if one of its positive values does: their terms are
 *	  ORed; a value without words (only separators) or a filter with only
 *	  negated values constrains nothing here;
 *	- filters are ANDed.
 *
 * name is matched case-sensitively, as the lexemes are kept; description,
 * tags and "all" are not indexed.
 */
static char *
NamePrefilter(List *filters)
{
	StringInfoData q;
	ListCell   *lc;
	bool		any = false;

	initStringInfo(&q);
	foreach(lc, filters)
	{
		SecretFilter *f = lfirst(lc);
		StringInfoData t;
		ListCell   *vc;
		bool		usable = true;
		bool		first = true;

		if (strcmp(f->key, "name") != 0)
			continue;
		initStringInfo(&t);
		foreach(vc, f->values)
		{
			const char *p = lfirst(vc);
			bool		words = false;

			if (p[0] == '!')
				continue;
			appendStringInfoString(&t, first ? "(" : " | (");
			first = false;
			while (*p)
			{
				const char *e;

				while (*p && IsWordSeparator(*p))
					p++;
				for (e = p; *e && !IsWordSeparator(*e); e++)
					;
				if (e == p)
					break;
				if (words)
					appendStringInfoString(&t, " & ");
				AppendPrefixOperand(&t, p, e - p);
				words = true;
				p = e;
			}
			if (!words)
				usable = false;
			appendStringInfoChar(&t, ')');
		}
		if (!usable || first)
			continue;
		appendStringInfo(&q, "%s(%s)", any ? " & " : "", t.data);
		any = true;
	}
	return any ? q.data : NULL;
}

/*
 * The secrets the current role may see that match the filters, ordered by
 * order_col (then name).  A name filter narrows the catalog query through
 * secret_name_words_idx first.
 */
List *
ListVisible(List *filters, bool include_deleted, bool desc, const char *order_col)
{
	KmsCatalogState st;
	uint64		n;
	List	   *rows = NIL;
	MemoryContext cxt = CurrentMemoryContext;
	SPITupleTable *rowtable;
	char	   *sql;
	char	   *prefilter = NamePrefilter(filters);
	Oid			qtype = TEXTOID;
	Datum		qval = prefilter ? CStringGetTextDatum(prefilter) : (Datum) 0;

	/* Tags as in DescribeSecret: [] once the last tag was removed */
	sql = psprintf("SELECT secret_id, arn, name, owner::oid, deleted_date IS NOT NULL, kms_key_id, "
				   "kms_key_ref IS NULL, description, tags, "
				   "arn, name, description, kms_key_ref, rotation_enabled, created_date, "
				   "last_changed_date, last_rotated_date, next_rotation_date, deleted_date, "
				   "COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('Key', t.key, 'Value', t.value) ORDER BY t.key) "
				   "   FROM pg_catalog.jsonb_each_text(s.tags) t), CASE WHEN %s THEN '[]'::jsonb END), "
				   "(SELECT pg_catalog.jsonb_object_agg(x.version_id, x.stages) FROM "
				   "   (SELECT st.version_id, pg_catalog.jsonb_agg(st.stage ORDER BY %s) AS stages "
				   "      FROM kms.secret_stage st WHERE st.secret_id = s.secret_id GROUP BY st.version_id) x) "
				   "FROM kms.secret s WHERE %s AND %s ORDER BY %s %s, name %s",
				   SecretCatalogHas12() ? "s.tagged" : "false", StageOrderSql("st"),
				   include_deleted ? "true" : "deleted_date IS NULL",
				   prefilter == NULL ? "true" : SECRET_NAME_WORDS " OPERATOR(pg_catalog.@@) $1::pg_catalog.tsquery",
				   order_col, desc ? "DESC" : "ASC", desc ? "DESC" : "ASC");
	KmsCatalogEnter(&st);
	n = KmsExec(sql, prefilter ? 1 : 0, &qtype, &qval, NULL, true, SPI_OK_SELECT);
	rowtable = SPI_tuptable;	/* stays valid until KmsCatalogExit */
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = rowtable->vals[i];
		TupleDesc	td = rowtable->tupdesc;
		MemoryContext spicxt = MemoryContextSwitchTo(cxt);
		ListRow    *r = palloc0(sizeof(ListRow));
		bool		isnull;

		for (int j = 0; j < 12; j++)
		{
			Form_pg_attribute att = TupleDescAttr(td, j + 9);
			Datum		d = heap_getattr(tup, j + 10, td, &r->nulls[j]);

			r->values[j] = r->nulls[j] ? (Datum) 0 :
				datumCopy(d, att->attbyval, att->attlen);
		}
		r->description = SPI_getvalue(tup, td, 8);
		r->tags = DatumGetJsonbPCopy(heap_getattr(tup, 9, td, &isnull));
		rows = lappend(rows, r);
		MemoryContextSwitchTo(spicxt);
		/* runs the grants query, which replaces SPI_tuptable */
		SecretFromTuple(tup, td, &r->meta, cxt);
	}
	KmsCatalogExit(&st);

	{
		List	   *out = NIL;
		ListCell   *lc;

		foreach(lc, rows)
		{
			ListRow    *r = lfirst(lc);

			if (!SecretVisible(&r->meta))
				continue;
			if (!FiltersMatch(filters, r->meta.name, r->description, r->tags))
				continue;
			out = lappend(out, r);
		}
		return out;
	}
}

/*
 * NextToken of the list operations: "pgkms1:<offset>" (opaque to callers);
 * anything else is InvalidNextTokenException.
 */
long
ParseNextToken(const char *next_token)
{
	char	   *end;
	long		offset;

	if (next_token == NULL)
		return 0;
	if (strncmp(next_token, "pgkms1:", 7) != 0)
		kms_error(InvalidNextTokenException, KMS_SQLSTATE_INVALID_NEXT_TOKEN,
				  "The NextToken value is invalid.");
	errno = 0;
	offset = strtol(next_token + 7, &end, 10);
	if (errno != 0 || *end != '\0' || end == next_token + 7 || offset < 0)
		kms_error(InvalidNextTokenException, KMS_SQLSTATE_INVALID_NEXT_TOKEN,
				  "The NextToken value is invalid.");
	return offset;
}

/* MaxResults against the model's range (AWS's framework: ValidationException). */
int
ArgMaxResults(FunctionCallInfo fcinfo, int n, int max)
{
	int			v;

	if (n >= PG_NARGS() || PG_ARGISNULL(n))
		return 0;
	v = PG_GETARG_INT32(n);
	if (v < 1 || v > max)
		SecretValidationError(psprintf("%d", v), "maxResults",
							  psprintf("Member must have value between 1 and %d", max));
	return v;
}

KMS_AUDITED_ENTRY(list_secrets, "ListSecrets", KMS_AUDIT_NO_RESOURCE)
{
	Jsonb	   *fj = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	bool		include_deleted = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	char	   *order = KmsArgText(fcinfo, 2);
	char	   *sort_by = ArgTextOpt(fcinfo, 3);
	int			max = ArgMaxResults(fcinfo, 4, 100);
	char	   *next_token = ArgTextOpt(fcinfo, 5);
	const char *order_col = "created_date";
	long		offset;
	List	   *filters;
	List	   *rows;
	ListCell   *lc;
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	long		i = 0;
	StringInfoData p;

	SecretCacheCheck();
	if (order == NULL)
		order = "asc";
	/* SortOrder and SortBy are enums of the API model */
	if (strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		SecretValidationError(order, "sortOrder", "Member must satisfy enum value set: [asc, desc]");
	if (sort_by == NULL || strcmp(sort_by, "created-date") == 0)
		order_col = "created_date";
	else if (strcmp(sort_by, "last-changed-date") == 0)
		order_col = "last_changed_date";
	else if (strcmp(sort_by, "last-accessed-date") == 0)
		order_col = "created_date";		/* no access dates are kept: docs/secrets.md */
	else if (strcmp(sort_by, "name") == 0)
		order_col = "name";
	else
		SecretValidationError(sort_by, "sortBy",
							  "Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]");
	offset = ParseNextToken(next_token);
	filters = ParseFilters(fj);

	ts = KmsStartSRF(fcinfo, &tupdesc);
	rows = ListVisible(filters, include_deleted, strcmp(order, "desc") == 0, order_col);

	foreach(lc, rows)
	{
		ListRow    *r = lfirst(lc);
		Datum		values[13];
		bool		nulls[13];

		if (i < offset || (max > 0 && i >= offset + max))
		{
			i++;
			continue;
		}
		memcpy(values, r->values, sizeof(r->values));
		memcpy(nulls, r->nulls, sizeof(r->nulls));
		/* the last row of a page that has a next one carries its token */
		nulls[12] = true;
		if (max > 0 && i == offset + max - 1 && offset + max < list_length(rows))
		{
			values[12] = CStringGetTextDatum(psprintf("pgkms1:%ld", offset + max));
			nulls[12] = false;
		}
		Assert(tupdesc->natts == 12 || tupdesc->natts == 13);
		tuplestore_putvalues(ts, tupdesc, values, nulls);
		i++;
	}
	initStringInfo(&p);
	if (fj)
		SecretAuditParam(&p, "filters", JsonbToCString(NULL, &fj->root, VARSIZE(fj)));
	if (include_deleted)
		SecretAuditParam(&p, "includePlannedDeletion", "true");
	SecretAuditParam(&p, "sortBy", sort_by);
	SecretAuditParam(&p, "sortOrder", order);
	if (max > 0)
		KmsAuditParamInt(&p, "maxResults", max);
	SecretAuditParam(&p, "nextToken", next_token);
	KmsAuditEx("ListSecrets", "*", NULL, "success", KmsAuditParams(&p));
	return (Datum) 0;
}

KMS_AUDITED_ENTRY(list_secret_version_ids, "ListSecretVersionIds", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	bool		include_deprecated = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	int			max = ArgMaxResults(fcinfo, 2, 100);
	char	   *next_token = ArgTextOpt(fcinfo, 3);
	long		offset = ParseNextToken(next_token);
	SecretMeta	m;
	TupleDesc	tupdesc;
	Tuplestorestate *ts;
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;
	uint64		n;
	StringInfoData p;

	SecretCacheCheck();
	SecretResolve(ref, SEC_OP_DESCRIBE_SECRET, &m);
	ts = KmsStartSRF(fcinfo, &tupdesc);
	v = KmsUuidDatum(m.id);
	KmsCatalogEnter(&st);
	n = KmsExec(psprintf("SELECT v.version_id, "
						 "COALESCE(pg_catalog.array_agg(s.stage ORDER BY %s) FILTER (WHERE s.stage IS NOT NULL), '{}'), "
						 "v.created_date "
						 "FROM kms.secret_version v LEFT JOIN kms.secret_stage s USING (secret_id, version_id) "
						 "WHERE v.secret_id = $1 GROUP BY v.version_id, v.created_date %s "
						 "ORDER BY v.created_date DESC, v.version_id",
						 StageOrderSql("s"),
						 include_deprecated ? "" : "HAVING count(s.stage) > 0"),
				1, &t, &v, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4];

		if ((long) i < offset || (max > 0 && (long) i >= offset + max))
			continue;
		for (int j = 0; j < 3; j++)
			values[j] = SpiDatum(i, j + 1, &nulls[j]);
		nulls[3] = true;
		if (max > 0 && (long) i == offset + max - 1 && (uint64) (offset + max) < n)
		{
			values[3] = CStringGetTextDatum(psprintf("pgkms1:%ld", offset + max));
			nulls[3] = false;
		}
		tuplestore_putvalues(ts, tupdesc, values, nulls);
	}
	KmsCatalogExit(&st);
	initStringInfo(&p);
	if (include_deprecated)
		SecretAuditParam(&p, "includeDeprecated", "true");
	if (max > 0)
		KmsAuditParamInt(&p, "maxResults", max);
	SecretAuditParam(&p, "nextToken", next_token);
	KmsAuditEx("ListSecretVersionIds", m.arn, NULL, "success", KmsAuditParams(&p));
	return (Datum) 0;
}
