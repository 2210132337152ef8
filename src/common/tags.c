/*-------------------------------------------------------------------------
 *
 * tags.c
 *	  Resource tags, shared by KMS keys and secrets: AWS's list form
 *	  ([{"TagKey":..,"TagValue":..}] for KMS, [{"Key":..,"Value":..}] for
 *	  Secrets Manager) or a plain JSON object, validated as TagResource
 *	  does and returned as one jsonb object.  The two services name their
 *	  members and their errors differently; KmsTagStyle says how.
 *
 * Locking: none.
 *
 * IDENTIFICATION
 *	  src/common/tags.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "common/kms_common.h"

const KmsTagStyle KmsKeyTagStyle = {
	"TagKey", "TagValue",
	"ValidationException", KMS_SQLSTATE_VALIDATION,
	"TagException", KMS_SQLSTATE_TAG,
	"LimitExceededException", KMS_SQLSTATE_LIMIT_EXCEEDED,
	"key", 50
};

const KmsTagStyle KmsSecretTagStyle = {
	"Key", "Value",
	"InvalidParameterException", KMS_SQLSTATE_VALIDATION,
	"InvalidParameterException", KMS_SQLSTATE_VALIDATION,
	"InvalidParameterException", KMS_SQLSTATE_VALIDATION,
	"secret", 50
};

static void
KmsTagError(const char *name, int code, const char *msg)
{
	ereport(ERROR,
			(errcode(code), errhidestmt(true),
			 errmsg("%s: %s", name, msg)));
}

static void
KmsBadTagShape(const KmsTagStyle *style)
{
	ereport(ERROR,
			(errcode(style->format_code), errhidestmt(true),
			 errmsg("%s: tags must be a JSON array of {\"%s\", \"%s\"} objects or a JSON object",
					style->format_error, style->key_member, style->value_member)));
}

static void
KmsEmitTag(StringInfo buf, int *count, const KmsTagStyle *style,
		   const char *k, const char *val)
{
	if (strlen(k) < 1 || strlen(k) > 128)
		KmsTagError(style->tag_error, style->tag_code, "tag key must be 1 to 128 characters");
	if (strlen(val) > 256)
		KmsTagError(style->tag_error, style->tag_code, "tag value must be at most 256 characters");
	if (pg_strncasecmp(k, "aws:", 4) == 0)
		KmsTagError(style->tag_error, style->tag_code, "tag keys beginning with \"aws:\" are reserved");
	if ((*count)++ > 0)
		appendStringInfoChar(buf, ',');
	escape_json(buf, k);
	appendStringInfoChar(buf, ':');
	escape_json(buf, val);
}

Jsonb *
KmsParseTags(Jsonb *jb, const KmsTagStyle *style)
{
	StringInfoData buf;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			count = 0;
	bool		is_array;
	char	   *pending_key = NULL;
	char	   *tk = NULL;
	char	   *tv = NULL;
	int			depth = 0;
	Jsonb	   *result;

	if (jb == NULL)
		return NULL;
	if (JB_ROOT_IS_SCALAR(jb))
		KmsBadTagShape(style);
	is_array = JB_ROOT_IS_ARRAY(jb);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
		{
			depth++;
			if (is_array && tok == WJB_BEGIN_OBJECT)
				tk = tv = NULL;
			if ((is_array && depth > 2) || (!is_array && depth > 1) ||
				(is_array && depth == 2 && tok == WJB_BEGIN_ARRAY))
				KmsBadTagShape(style);
			continue;
		}
		if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
		{
			if (is_array && tok == WJB_END_OBJECT)
			{
				if (tk == NULL || tv == NULL)
					ereport(ERROR,
							(errcode(style->format_code), errhidestmt(true),
							 errmsg("%s: each tag needs a %s and a %s",
									style->format_error, style->key_member, style->value_member)));
				KmsEmitTag(&buf, &count, style, tk, tv);
			}
			depth--;
			continue;
		}
		if (tok == WJB_KEY)
		{
			pending_key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok == WJB_ELEM)
			KmsBadTagShape(style);
		if (tok == WJB_VALUE)
		{
			char	   *s;

			if (v.type != jbvString)
				KmsTagError(style->format_error, style->format_code,
							"tag keys and values must be strings");
			s = pnstrdup(v.val.string.val, v.val.string.len);
			if (!is_array)
				KmsEmitTag(&buf, &count, style, pending_key, s);
			else if (strcmp(pending_key, style->key_member) == 0)
				tk = s;
			else if (strcmp(pending_key, style->value_member) == 0)
				tv = s;
			else
				ereport(ERROR,
						(errcode(style->format_code), errhidestmt(true),
						 errmsg("%s: unknown tag member \"%s\"; use %s and %s",
								style->format_error, pending_key,
								style->key_member, style->value_member)));
		}
	}
	appendStringInfoChar(&buf, '}');
	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
	if (JB_ROOT_COUNT(result) > style->max_tags)
		ereport(ERROR,
				(errcode(style->limit_code), errhidestmt(true),
				 errmsg("%s: a %s can have at most %d tags",
						style->limit_error, style->resource, style->max_tags)));
	return result;
}
