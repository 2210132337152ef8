/*-------------------------------------------------------------------------
 *
 * aws_client.h
 *	  The AWS client layer (src/aws/): SigV4 signing, the credentials
 *	  chain, HTTPS over libcurl and AWS JSON 1.1 calls with AWS's standard
 *	  retry mode, and the mapping of AWS errors to our exception names.
 *	  Used by the aws key provider (provider/aws*.c) and by remote secrets
 *	  (Secrets Manager).  May call: common/, crypto/ (no catalog, no SPI,
 *	  no table).
 *
 * Contract (for every caller):
 *
 *	  bool KmsAwsJsonCall(service, target, json_body, resp, flags)
 *
 *	  - service: "kms" or "secretsmanager" (the SigV4 service name and the
 *		endpoint: pg_kms.aws_endpoint_url, else AWS_ENDPOINT_URL_KMS /
 *		AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL, else
 *		https://<service>.<region>.amazonaws.com); target: the X-Amz-Target
 *		value, e.g. "TrentService.Decrypt", "secretsmanager.GetSecretValue";
 *		json_body: the request's JSON object ("{}" when there is no input).
 *	  - Signs with the current credentials (the SDK chain: environment, web
 *		identity, shared files with AWS_PROFILE, container, IMDSv2; cached
 *		per backend and refreshed 5 minutes before they expire), region
 *		(pg_kms.aws_region, else AWS_REGION, else AWS_DEFAULT_REGION).
 *	  - Standard retry mode: at most pg_kms.aws_max_attempts attempts
 *		(AWS_MAX_ATTEMPTS, default 3); throttling errors, 5xx, timeouts and
 *		connection failures retried after rand * min(20 s, 2^retry s), like
 *		botocore; other 4xx never retried; ExpiredToken: the credentials are
 *		read again and the call retried once.  Each attempt is bounded
 *		by pg_kms.aws_connect_timeout and pg_kms.aws_request_timeout.
 *	  - Interrupts: CHECK_FOR_INTERRUPTS between attempts, and a pending
 *		query cancel, statement timeout or termination aborts a transfer in
 *		flight (libcurl progress callback) and is then raised.
 *	  - Must never be called holding an LWLock (or with interrupts held
 *		off): it errors out (KMSInternalException) if it is.
 *	  - Returns true on an HTTP 2xx answer whose body is a JSON object
 *		(resp->body).  Otherwise false, resp describing the failure; with
 *		KMS_AWS_RAISE it raises the mapped error itself instead
 *		(KmsAwsReportError).  Only an interrupt, out-of-memory or a setting
 *		error raise without KMS_AWS_RAISE.
 *	  - Nothing secret is ever in resp->error_message, in a message or a log
 *		line: the request body is never logged, the response body only goes
 *		to the caller.
 *
 *	  void KmsAwsReportError(resp, what) raises the mapped ereport: our
 *	  exception name and SQLSTATE (AccessDeniedException for credential and
 *	  signature failures, DependencyTimeoutException for timeouts,
 *	  KeyUnavailableException for an unreachable endpoint, 5xx, throttling
 *	  after the last attempt or a malformed answer, ...), with the AWS error
 *	  code and request id in DETAIL.  Callers that need other mappings (e.g.
 *	  ResourceNotFoundException for a secret) look at resp->aws_code first.
 *
 *	  JSON helpers (KmsAwsJson*) read the top-level members of an answer.
 *
 * IDENTIFICATION
 *	  src/aws/aws_client.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_AWS_CLIENT_H
#define PG_KMS_AWS_CLIENT_H

#include "lib/stringinfo.h"

/* What went wrong (resp->kind) */
typedef enum KmsAwsErrorKind
{
	KMS_AWS_OK = 0,
	KMS_AWS_ERR_CONFIG,			/* no region, no credentials, bad endpoint */
	KMS_AWS_ERR_CONNECT,		/* DNS, refused, TLS (verification) failures */
	KMS_AWS_ERR_TIMEOUT,		/* connect or request timeout */
	KMS_AWS_ERR_HTTP,			/* non-2xx answer (aws_code, aws_message) */
	KMS_AWS_ERR_MALFORMED		/* 2xx whose body is not a JSON object */
} KmsAwsErrorKind;

typedef struct KmsAwsResponse
{
	KmsAwsErrorKind kind;
	long		status;			/* HTTP status of the last attempt, 0 if none */
	StringInfoData body;		/* the answer's body (palloc'd) */
	char		request_id[128];	/* x-amzn-RequestId, "" if none */
	char		aws_code[128];	/* sanitised __type, e.g. "NotFoundException" */
	char		aws_message[512];	/* AWS's message (or ours for transport errors) */
	int			attempts;		/* how many were made */
} KmsAwsResponse;

/* flags */
#define KMS_AWS_RAISE		0x01	/* raise the mapped error on failure */
#define KMS_AWS_NO_RETRY	0x02	/* one attempt only */

/* Settings (aws_config.c); all reloadable (SIGHUP) */
extern char *kms_aws_region;
extern char *kms_aws_kms_key_id;
extern char *kms_aws_endpoint_url;
extern char *kms_aws_ca_file;
extern char *kms_aws_proxy;
extern int	kms_aws_connect_timeout;	/* ms */
extern int	kms_aws_request_timeout;	/* ms, per attempt */
extern int	kms_aws_max_attempts;	/* 0: AWS_MAX_ATTEMPTS or 3 */

/* pg_kms.aws_* settings (from _PG_init) */
extern void KmsAwsDefineGucs(void);

extern bool KmsAwsJsonCall(const char *service, const char *target,
						   const char *json_body, KmsAwsResponse *resp,
						   int flags);
extern void KmsAwsReportError(const KmsAwsResponse *resp, const char *what) pg_attribute_noreturn();
extern void KmsAwsReportErrorAs(const KmsAwsResponse *resp, const char *what,
								const char *name, int sqlstate) pg_attribute_noreturn();
extern void KmsAwsResponseFree(KmsAwsResponse *resp);

/* The region in effect (setting, AWS_REGION, AWS_DEFAULT_REGION), or NULL */
extern const char *KmsAwsRegion(void);

/* Forget cached credentials (the next call reads the chain again). */
extern void KmsAwsInvalidateCredentials(void);

/*
 * JSON: append s as a JSON string literal (quotes, escapes); read a
 * top-level string member of an object (palloc'd, NULL if absent or not a
 * string); base64 (standard, padded) of a blob member into palloc'd bytes.
 */
extern void KmsAwsJsonAppendString(StringInfo buf, const char *s);
extern char *KmsAwsJsonGetString(const char *json, const char *member);
extern bytea *KmsAwsJsonGetBlob(const char *json, const char *member);
extern char *KmsAwsBase64(const uint8 *data, size_t len);

#endif							/* PG_KMS_AWS_CLIENT_H */
