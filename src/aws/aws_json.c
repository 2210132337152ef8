/*-------------------------------------------------------------------------
 *
 * aws_json.c
 *	  Small JSON helpers for AWS JSON 1.1 bodies: string literals, reading
 *	  top-level members of an answer (parsed with PostgreSQL's jsonb after
 *	  a validation pass, so a malformed answer is a false return, never an
 *	  error from the parser), standard base64.
 *
 * IDENTIFICATION
 *	  src/aws/aws_json.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "common/base64.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "aws/aws_internal.h"

void
KmsAwsJsonAppendString(StringInfo buf, const char *s)
{
	escape_json(buf, s);
}

/* Is json a well-formed JSON object? */
bool
KmsAwsJsonIsObject(const char *json, size_t len)
{
	JsonLexContext *lex;
	size_t		i = 0;

	while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\r' || json[i] == '\n'))
		i++;
	if (i >= len || json[i] != '{' || len > (size_t) INT_MAX)
		return false;
	lex = makeJsonLexContextCstringLen(unconstify(char *, json), (int) len, PG_UTF8, true);
	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

static JsonbValue *
json_member(const char *json, const char *member)
{
	Jsonb	   *jb;
	JsonbValue	key;

	if (json == NULL || !KmsAwsJsonIsObject(json, strlen(json)))
		return NULL;
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	if (!JB_ROOT_IS_OBJECT(jb))
		return NULL;
	key.type = jbvString;
	key.val.string.val = unconstify(char *, member);
	key.val.string.len = strlen(member);
	return findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &key);
}

char *
KmsAwsJsonGetString(const char *json, const char *member)
{
	JsonbValue *v = json_member(json, member);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* a JSON number member (epoch seconds etc.); false if absent */
bool
KmsAwsJsonGetNumber(const char *json, const char *member, double *out)
{
	JsonbValue *v = json_member(json, member);

	if (v == NULL || v->type != jbvNumeric)
		return false;
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
											  NumericGetDatum(v->val.numeric)));
	return true;
}

bytea *
KmsAwsJsonGetBlob(const char *json, const char *member)
{
	JsonbValue *v = json_member(json, member);
	bytea	   *res;
	int			declen;

	if (v == NULL || v->type != jbvString)
		return NULL;
	res = palloc(VARHDRSZ + pg_b64_dec_len(v->val.string.len));
	declen = pg_b64_decode(v->val.string.val, v->val.string.len,
						   VARDATA(res), pg_b64_dec_len(v->val.string.len));
	if (declen < 0)
	{
		pfree(res);
		return NULL;
	}
	SET_VARSIZE(res, VARHDRSZ + declen);
	return res;
}

char *
KmsAwsBase64(const uint8 *data, size_t len)
{
	int			cap = pg_b64_enc_len((int) len) + 1;
	char	   *out = palloc(cap);
	int			n = pg_b64_encode((const char *) data, (int) len, out, cap);

	if (n < 0)
		elog(ERROR, "base64 encoding failed");
	out[n] = '\0';
	return out;
}
