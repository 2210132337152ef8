/*-------------------------------------------------------------------------
 *
 * aws_json.c
 *	  Small JSON helpers for AWS JSON 1.1 bodies: string literals, reading
 *	  top-level members of an answer (after a validation pass with
 *	  PostgreSQL's JSON parser, so a malformed answer is a false return,
 *	  never an error; the members are then read in place, so no parse tree
 *	  keeps a copy of a data key's plaintext), standard base64.
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
#include "utils/json.h"

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
	/* no escapes: the lexer keeps no copy of a string token */
	lex = makeJsonLexContextCstringLen(unconstify(char *, json), (int) len, PG_UTF8, false);
	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

/* the end of the JSON string starting at p (at its opening quote) */
static const char *
skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : NULL;
}

/* the end of the JSON value starting at p */
static const char *
skip_value(const char *p)
{
	int			depth = 0;

	if (*p == '"')
		return skip_string(p);
	if (*p != '{' && *p != '[')
	{
		while (*p && *p != ',' && *p != '}' && *p != ']' &&
			   *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		return p;
	}
	for (; *p; p++)
	{
		if (*p == '"')
		{
			p = skip_string(p);
			if (p == NULL)
				return NULL;
			p--;
		}
		else if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
	}
	return NULL;
}

#define SKIP_WS(p) while (*(p) == ' ' || *(p) == '\t' || *(p) == '\n' || *(p) == '\r') (p)++

/*
 * Where the value of a top-level member of a JSON object starts, NULL if
 * absent.  Reads the text in place, so a secret in the answer (a data key's
 * Plaintext) is copied only where the caller wants it, and wiped there: no
 * parse tree keeps a copy.  json must have passed KmsAwsJsonIsObject.
 */
static const char *
raw_member(const char *json, const char *member)
{
	const char *p = json;
	size_t		mlen = strlen(member);

	SKIP_WS(p);
	if (*p++ != '{')
		return NULL;
	for (;;)
	{
		const char *k,
				   *kend;

		SKIP_WS(p);
		if (*p != '"')
			return NULL;
		k = p + 1;
		kend = skip_string(p);
		if (kend == NULL)
			return NULL;
		p = kend;
		SKIP_WS(p);
		if (*p++ != ':')
			return NULL;
		SKIP_WS(p);
		if ((size_t) (kend - 1 - k) == mlen && memcmp(k, member, mlen) == 0)
			return p;
		p = skip_value(p);
		if (p == NULL)
			return NULL;
		SKIP_WS(p);
		if (*p != ',')
			return NULL;
		p++;
	}
}

static int
hex4(const char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

char *
KmsAwsJsonGetString(const char *json, const char *member)
{
	const char *p;
	const char *end;
	StringInfoData out;

	if (json == NULL || !KmsAwsJsonIsObject(json, strlen(json)))
		return NULL;
	p = raw_member(json, member);
	if (p == NULL || *p != '"' || (end = skip_string(p)) == NULL)
		return NULL;
	initStringInfo(&out);
	enlargeStringInfo(&out, (int) (end - p));
	for (p++; p < end - 1; p++)
	{
		if (*p != '\\')
		{
			appendStringInfoChar(&out, *p);
			continue;
		}
		p++;
		switch (*p)
		{
			case 'b':
				appendStringInfoChar(&out, '\b');
				break;
			case 'f':
				appendStringInfoChar(&out, '\f');
				break;
			case 'n':
				appendStringInfoChar(&out, '\n');
				break;
			case 'r':
				appendStringInfoChar(&out, '\r');
				break;
			case 't':
				appendStringInfoChar(&out, '\t');
				break;
			case 'u':
				{
					int			cp = hex4(p + 1);
					unsigned char buf[8];

					if (cp < 0)
						goto bad;
					p += 4;
					if (cp >= 0xD800 && cp <= 0xDBFF && p[1] == '\\' && p[2] == 'u')
					{
						int			lo = hex4(p + 3);

						if (lo < 0xDC00 || lo > 0xDFFF)
							goto bad;
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
						p += 6;
					}
					if (cp == 0)
						goto bad;
					unicode_to_utf8((pg_wchar) cp, buf);
					appendBinaryStringInfo(&out, (char *) buf, pg_utf_mblen(buf));
				}
				break;
			default:			/* " \ / */
				appendStringInfoChar(&out, *p);
				break;
		}
	}
	return out.data;
bad:
	explicit_bzero(out.data, out.maxlen);
	pfree(out.data);
	return NULL;
}

/* a JSON number member (epoch seconds etc.); false if absent */
bool
KmsAwsJsonGetNumber(const char *json, const char *member, double *out)
{
	const char *p;
	char	   *end;

	if (json == NULL || !KmsAwsJsonIsObject(json, strlen(json)))
		return false;
	p = raw_member(json, member);
	if (p == NULL || !(*p == '-' || (*p >= '0' && *p <= '9')))
		return false;
	*out = strtod(p, &end);
	return end != p;
}

bytea *
KmsAwsJsonGetBlob(const char *json, const char *member)
{
	char	   *b64 = KmsAwsJsonGetString(json, member);
	int			len;
	bytea	   *res;
	int			declen;

	if (b64 == NULL)
		return NULL;
	len = (int) strlen(b64);
	res = palloc(VARHDRSZ + pg_b64_dec_len(len));
	declen = pg_b64_decode(b64, len, VARDATA(res), pg_b64_dec_len(len));
	explicit_bzero(b64, len);
	pfree(b64);
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
