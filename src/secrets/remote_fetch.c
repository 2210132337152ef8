/*-------------------------------------------------------------------------
 *
 * remote_fetch.c
 *	  GetSecretValue against AWS Secrets Manager over the aws client
 *	  (src/aws/aws_client.h: SigV4, credentials, retries of throttling and
 *	  5xx), the answer turned into the object a local get_secret_value
 *	  returns, and AWS's errors mapped to ours with the AWS error code and
 *	  request id in DETAIL.  The answer is parsed with PostgreSQL's JSON
 *	  lexer without raising, so no part of a value can reach an error
 *	  context; every copy of a value is wiped once the result is built.
 *
 * Locking: none; never called holding a lock (remote_cache.c).
 *
 * IDENTIFICATION
 *	  src/secrets/remote_fetch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/jsonapi.h"
#include "common/string.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "aws/aws_client.h"
#include "secrets/secrets_internal.h"
#include "secrets/remote_internal.h"

/* ----------------------------------------------------------------
 * The answer: top-level members of GetSecretValue's output
 * ----------------------------------------------------------------
 */
typedef struct Answer
{
	int			depth;
	int			field;			/* which member the next scalar belongs to */
	char	   *arn;
	char	   *name;
	char	   *version_id;
	char	   *string;			/* SecretString (wiped by the caller) */
	char	   *binary;			/* SecretBinary, base64 as on the wire */
	double		created;
	bool		has_created;
	List	   *stages;
	bool		bad;
} Answer;

enum
{
	F_NONE, F_ARN, F_NAME, F_VERSION, F_STRING, F_BINARY, F_STAGES, F_CREATED
};

static void
AnsObjectStart(void *state)
{
	((Answer *) state)->depth++;
}

static void
AnsObjectEnd(void *state)
{
	((Answer *) state)->depth--;
}

static void
AnsArrayStart(void *state)
{
	((Answer *) state)->depth++;
}

static void
AnsArrayEnd(void *state)
{
	Answer	   *a = (Answer *) state;

	a->depth--;
	if (a->depth == 1)
		a->field = F_NONE;
}

static void
AnsField(void *state, char *fname, bool isnull)
{
	Answer	   *a = (Answer *) state;

	if (a->depth != 1)
		return;
	a->field = F_NONE;
	if (strcmp(fname, "ARN") == 0)
		a->field = F_ARN;
	else if (strcmp(fname, "Name") == 0)
		a->field = F_NAME;
	else if (strcmp(fname, "VersionId") == 0)
		a->field = F_VERSION;
	else if (strcmp(fname, "SecretString") == 0)
		a->field = F_STRING;
	else if (strcmp(fname, "SecretBinary") == 0)
		a->field = F_BINARY;
	else if (strcmp(fname, "VersionStages") == 0)
		a->field = F_STAGES;
	else if (strcmp(fname, "CreatedDate") == 0)
		a->field = F_CREATED;
}

static void
AnsScalar(void *state, char *token, JsonTokenType type)
{
	Answer	   *a = (Answer *) state;

	if (a->field == F_STAGES && a->depth == 2)
	{
		if (type == JSON_TOKEN_STRING)
			a->stages = lappend(a->stages, token);
		else
			a->bad = true;
		return;
	}
	if (a->depth != 1)
		return;
	switch (a->field)
	{
		case F_ARN:
			a->arn = token;
			break;
		case F_NAME:
			a->name = token;
			break;
		case F_VERSION:
			a->version_id = token;
			break;
		case F_STRING:
			a->string = token;
			break;
		case F_BINARY:
			a->binary = token;
			break;
		case F_CREATED:
			if (type == JSON_TOKEN_NUMBER)
			{
				a->created = strtod(token, NULL);
				a->has_created = isfinite(a->created);
			}
			break;
		default:
			break;
	}
	if (a->field != F_NONE && type != JSON_TOKEN_STRING && a->field != F_CREATED &&
		type != JSON_TOKEN_NULL)
		a->bad = true;
	a->field = F_NONE;
}

/* The strings a value may be in: wipe them all */
static void
AnswerWipe(Answer *a, JsonLexContext *lex)
{
	if (a->string)
		kms_cleanse(a->string, strlen(a->string));
	if (a->binary)
		kms_cleanse(a->binary, strlen(a->binary));
	if (lex->strval)
		kms_cleanse(lex->strval->data, lex->strval->maxlen);
}

static void
Malformed(RemoteFailure *fail, const char *request_id, const char *why)
{
	memset(fail, 0, sizeof(*fail));
	fail->kind = KMS_AWS_ERR_MALFORMED;
	fail->status = 200;
	strlcpy(fail->aws_message, why, sizeof(fail->aws_message));
	strlcpy(fail->request_id, request_id, sizeof(fail->request_id));
}

/* The answer's body as our result object; false (fail set) if malformed. */
static bool
BuildResult(KmsAwsResponse *resp, char **json, RemoteFailure *fail)
{
	Answer		a;
	JsonSemAction sem;
	JsonLexContext *lex;
	JsonParseErrorType rc;
	StringInfoData buf;
	bool		first = true;

	memset(&a, 0, sizeof(a));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &a;
	sem.object_start = AnsObjectStart;
	sem.object_end = AnsObjectEnd;
	sem.array_start = AnsArrayStart;
	sem.array_end = AnsArrayEnd;
	sem.object_field_start = AnsField;
	sem.scalar = AnsScalar;
	lex = makeJsonLexContextCstringLen(resp->body.data, resp->body.len, PG_UTF8, true);
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS || a.bad || a.arn == NULL || a.version_id == NULL ||
		(a.string == NULL) == (a.binary == NULL))
	{
		AnswerWipe(&a, lex);
		Malformed(fail, resp->request_id,
				  "the GetSecretValue answer is not valid (no ARN, VersionId, or exactly one of SecretString and SecretBinary)");
		return false;
	}
	/* the lexer checked UTF-8; other database encodings get ASCII only */
	if (a.string && GetDatabaseEncoding() != PG_UTF8 && !pg_is_ascii(a.string))
	{
		AnswerWipe(&a, lex);
		Malformed(fail, resp->request_id,
				  "the SecretString is not ASCII and the database encoding is not UTF8");
		return false;
	}

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	JsonStr(&buf, &first, "ARN", a.arn);
	JsonStr(&buf, &first, "Name", a.name ? a.name : "");
	JsonStr(&buf, &first, "VersionId", a.version_id);
	if (a.binary)
		JsonStr(&buf, &first, "SecretBinary", a.binary);
	else
		JsonStr(&buf, &first, "SecretString", a.string);
	{
		int			n = list_length(a.stages);
		char	  **items = palloc(sizeof(char *) * (n + 1));
		ListCell   *lc;
		int			i = 0;

		foreach(lc, a.stages)
			items[i++] = lfirst(lc);
		JsonStrArray(&buf, &first, "VersionStages", items, n);
	}
	if (a.has_created)
		JsonDate(&buf, &first, "CreatedDate",
				 (TimestampTz) ((a.created - ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) *
								USECS_PER_SEC));
	appendStringInfoChar(&buf, '}');
	AnswerWipe(&a, lex);
	*json = buf.data;
	return true;
}

bool
RemoteFetch(const char *arn, const char *version_id, const char *stage,
			char **json, RemoteFailure *fail)
{
	StringInfoData req;
	KmsAwsResponse resp;
	bool		ok;

	initStringInfo(&req);
	appendStringInfoString(&req, "{\"SecretId\":");
	KmsAwsJsonAppendString(&req, arn);
	if (version_id)
	{
		appendStringInfoString(&req, ",\"VersionId\":");
		KmsAwsJsonAppendString(&req, version_id);
	}
	if (stage)
	{
		appendStringInfoString(&req, ",\"VersionStage\":");
		KmsAwsJsonAppendString(&req, stage);
	}
	appendStringInfoChar(&req, '}');

	memset(&resp, 0, sizeof(resp));
	ok = KmsAwsJsonCall("secretsmanager", "secretsmanager.GetSecretValue", req.data, &resp, 0);
	pfree(req.data);
	if (ok)
		ok = BuildResult(&resp, json, fail);
	else
	{
		memset(fail, 0, sizeof(*fail));
		fail->kind = resp.kind;
		fail->status = resp.status;
		strlcpy(fail->aws_code, resp.aws_code, sizeof(fail->aws_code));
		strlcpy(fail->aws_message, resp.aws_message, sizeof(fail->aws_message));
		strlcpy(fail->request_id, resp.request_id, sizeof(fail->request_id));
	}
	if (resp.body.data)
		kms_cleanse(resp.body.data, resp.body.maxlen);
	KmsAwsResponseFree(&resp);
	return ok;
}

const char *
RemoteFailureName(const RemoteFailure *fail)
{
	if (fail->aws_code[0])
		return fail->aws_code;
	switch (fail->kind)
	{
		case KMS_AWS_ERR_CONFIG:
			return "a configuration error";
		case KMS_AWS_ERR_CONNECT:
			return "a connection failure";
		case KMS_AWS_ERR_TIMEOUT:
			return "a timeout";
		case KMS_AWS_ERR_MALFORMED:
			return "a malformed answer";
		default:
			return psprintf("HTTP status %ld", fail->status);
	}
}

void
RemoteRaise(const char *arn, const RemoteFailure *fail)
{
	const char *code = fail->aws_code;
	char	   *detail;
	KmsAwsResponse resp;

	/* audited as a local read that fails: the exception, or the AWS code */
	KmsAudit("GetSecretValue", arn, 0,
			 code[0] ? code : (fail->kind == KMS_AWS_ERR_TIMEOUT ? "DependencyTimeoutException" :
							   "InternalServiceError"));
	detail = psprintf("AWS error code: %s; request id: %s; AWS message: %s",
					  code[0] ? code : "none",
					  fail->request_id[0] ? fail->request_id : "none",
					  fail->aws_message[0] ? fail->aws_message : "none");
	if (fail->kind == KMS_AWS_ERR_HTTP)
	{
		if (strcmp(code, "ResourceNotFoundException") == 0)
			kms_error_detail(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND, detail,
							 "AWS Secrets Manager can't find the specified secret \"%s\" (or the version asked for)", arn);
		if (strcmp(code, "AccessDeniedException") == 0)
			kms_error_detail(AccessDeniedException, KMS_SQLSTATE_ACCESS_DENIED, detail,
							 "AWS denied GetSecretValue on secret \"%s\" to this server's credentials", arn);
		if (strcmp(code, "DecryptionFailure") == 0)
			kms_error_detail(DecryptionFailure, KMS_SQLSTATE_DECRYPTION_FAILURE, detail,
							 "AWS Secrets Manager can't decrypt secret \"%s\" with its KMS key", arn);
		if (strcmp(code, "InvalidRequestException") == 0)
			kms_error_detail(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST, detail,
							 "AWS Secrets Manager refused to read secret \"%s\" in its current state", arn);
		if (strcmp(code, "InvalidParameterException") == 0)
			kms_error_detail(InvalidParameterException, KMS_SQLSTATE_VALIDATION, detail,
							 "AWS Secrets Manager refused the parameters of GetSecretValue on secret \"%s\"", arn);
		if (strcmp(code, "InternalServiceError") == 0)
			kms_error_detail(InternalServiceError, KMS_SQLSTATE_INTERNAL, detail,
							 "AWS Secrets Manager failed to read secret \"%s\"", arn);
	}
	if (fail->kind == KMS_AWS_ERR_MALFORMED)
		kms_error_detail(InternalServiceError, KMS_SQLSTATE_INTERNAL, detail,
						 "the answer of AWS Secrets Manager for secret \"%s\" is not valid", arn);
	/* everything else (credentials, throttling, timeouts, 5xx) as the client maps it */
	memset(&resp, 0, sizeof(resp));
	resp.kind = fail->kind;
	resp.status = fail->status;
	initStringInfo(&resp.body);
	strlcpy(resp.aws_code, fail->aws_code, sizeof(resp.aws_code));
	strlcpy(resp.aws_message, fail->aws_message, sizeof(resp.aws_message));
	strlcpy(resp.request_id, fail->request_id, sizeof(resp.request_id));
	KmsAwsReportError(&resp, psprintf("GetSecretValue on secret \"%s\"", arn));
}
