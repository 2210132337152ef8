/*-------------------------------------------------------------------------
 *
 * aws_http.c
 *	  HTTPS over libcurl: one exchange (KmsAwsHttp, for the credential
 *	  sources), and the signed AWS JSON 1.1 call with AWS's standard retry
 *	  mode (KmsAwsJsonCall), and the mapping of its failures to our
 *	  exception names (KmsAwsReportError).  See aws_client.h for the
 *	  contract.
 *
 *	  One libcurl easy handle per backend, kept for connection reuse.  TLS
 *	  peer and host verification are always on.  CURLOPT_NOSIGNAL: libcurl
 *	  must not use SIGALRM, which PostgreSQL's timeouts own.  The write and
 *	  header callbacks only malloc (never palloc), so no error can longjmp
 *	  out of libcurl; the progress callback aborts the transfer when a query
 *	  cancel or termination is pending, and it is raised right after.
 *
 *	  Nothing secret is logged: request bodies (plaintext keys in
 *	  GenerateDataKey answers, secret values) are never in a message.
 *
 * IDENTIFICATION
 *	  src/aws/aws_http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <math.h>
#include <time.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "aws/aws_internal.h"
#include "aws/sigv4.h"
#include "common/kms_common.h"

#define KMS_AWS_MAX_BODY	(4 * 1024 * 1024)
#define KMS_AWS_MAX_BACKOFF_MS	20000

static CURL *curl_handle = NULL;
static bool curl_ready = false;

typedef struct XferState
{
	char	   *data;			/* malloc'd */
	size_t		len;
	size_t		cap;
	bool		too_big;
	bool		interrupted;
	char		request_id[128];
	char		error_type[128];
} XferState;

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	XferState  *st = userdata;
	size_t		n = size * nmemb;

	if (st->len + n + 1 > KMS_AWS_MAX_BODY)
	{
		st->too_big = true;
		return 0;
	}
	if (st->len + n + 1 > st->cap)
	{
		size_t		ncap = st->cap ? st->cap : 4096;
		char	   *nd;

		while (ncap < st->len + n + 1)
			ncap *= 2;
		nd = realloc(st->data, ncap);
		if (nd == NULL)
			return 0;
		st->data = nd;
		st->cap = ncap;
	}
	memcpy(st->data + st->len, ptr, n);
	st->len += n;
	st->data[st->len] = '\0';
	return n;
}

/* copy a header's value, trimmed, into dst */
static void
header_value(const char *v, size_t n, char *dst, size_t dstlen)
{
	while (n > 0 && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t
header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	XferState  *st = userdata;
	size_t		n = size * nitems;
	const char *colon = memchr(buf, ':', n);

	if (colon != NULL)
	{
		size_t		nl = colon - buf;
		const char *v = colon + 1;
		size_t		vl = n - nl - 1;

		if ((nl == 16 && pg_strncasecmp(buf, "x-amzn-requestid", 16) == 0) ||
			(nl == 16 && pg_strncasecmp(buf, "x-amz-request-id", 16) == 0))
			header_value(v, vl, st->request_id, sizeof(st->request_id));
		else if (nl == 16 && pg_strncasecmp(buf, "x-amzn-errortype", 16) == 0)
			header_value(v, vl, st->error_type, sizeof(st->error_type));
	}
	return n;
}

/* Abort the transfer when a cancel, statement timeout or termination is pending. */
static int
progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			curl_off_t ultotal, curl_off_t ulnow)
{
	XferState  *st = clientp;

	if (InterruptPending && (QueryCancelPending || ProcDiePending) &&
		INTERRUPTS_CAN_BE_PROCESSED())
	{
		st->interrupted = true;
		return 1;
	}
	return 0;
}

static CURL *
get_handle(void)
{
	if (!curl_ready)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "libcurl could not be initialised");
		curl_ready = true;
	}
	if (curl_handle == NULL)
	{
		curl_handle = curl_easy_init();
		if (curl_handle == NULL)
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "libcurl could not be initialised");
	}
	else
		curl_easy_reset(curl_handle);
	return curl_handle;
}

static const char *
ca_file(void)
{
	const char *c;

	if (kms_aws_ca_file != NULL && kms_aws_ca_file[0] != '\0')
		return kms_aws_ca_file;
	c = getenv("AWS_CA_BUNDLE");
	return (c != NULL && c[0] != '\0') ? c : NULL;
}

static int
max_attempts(void)
{
	const char *e;

	if (kms_aws_max_attempts > 0)
		return kms_aws_max_attempts;
	e = getenv("AWS_MAX_ATTEMPTS");
	if (e != NULL && atoi(e) >= 1 && atoi(e) <= 10)
		return atoi(e);
	return 3;
}

/*
 * One exchange.  Returns the CURLcode; status, body and the response
 * headers we care about in st.  Errors only for an interrupt (after the
 * transfer is aborted) and setup failures.
 */
static CURLcode
perform(const char *method, const char *url, struct curl_slist *hdrs,
		const char *body, size_t bodylen, long connect_ms, long total_ms,
		XferState *st, long *status, char *errbuf)
{
	CURL	   *h = get_handle();
	CURLcode	rc;
	const char *ca = ca_file();

	memset(st, 0, sizeof(*st));
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	if (kms_aws_proxy != NULL && kms_aws_proxy[0] != '\0')
		curl_easy_setopt(h, CURLOPT_PROXY, kms_aws_proxy);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, st);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, st);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, st);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "pg_kms/" "1.2");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(method, "POST") == 0)
	{
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) bodylen);
	}
	else if (strcmp(method, "PUT") == 0)
	{
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) bodylen);
	}
	else
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);

	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	rc = curl_easy_perform(h);
	pgstat_report_wait_end();
	*status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (st->interrupted)
	{
		free(st->data);
		st->data = NULL;
		/* the connection may be mid-answer: never reuse it */
		curl_easy_cleanup(curl_handle);
		curl_handle = NULL;
		CHECK_FOR_INTERRUPTS();
	}
	return rc;
}

static bool
curl_is_timeout(CURLcode rc)
{
	return rc == CURLE_OPERATION_TIMEDOUT;
}

/* connection-level failures that standard mode retries */
static bool
curl_is_transient(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

bool
KmsAwsHttp(const char *method, const char *url,
		   const KmsAwsHttpHeader *hdrs, int nhdrs,
		   const char *body, long timeout_ms,
		   StringInfo out, long *status, char *why, size_t whylen)
{
	struct curl_slist *list = NULL;
	XferState	st;
	CURLcode	rc;
	char		errbuf[CURL_ERROR_SIZE];
	bool		ok;

	for (int i = 0; i < nhdrs; i++)
	{
		char	   *line = psprintf("%s: %s", hdrs[i].name, hdrs[i].value);
		struct curl_slist *n = curl_slist_append(list, line);

		explicit_bzero(line, strlen(line));
		pfree(line);
		if (n == NULL)
		{
			curl_slist_free_all(list);
			snprintf(why, whylen, "out of memory");
			return false;
		}
		list = n;
	}
	rc = perform(method, url, list, body, body ? strlen(body) : 0,
				 Min(timeout_ms, (long) kms_aws_connect_timeout), timeout_ms,
				 &st, status, errbuf);
	curl_slist_free_all(list);
	ok = (rc == CURLE_OK);
	if (ok)
		appendBinaryStringInfo(out, st.data ? st.data : "", (int) st.len);
	else
		snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	if (st.data)
	{
		explicit_bzero(st.data, st.len);
		free(st.data);
	}
	return ok;
}

/* "com.amazonaws.kms#NotFoundException:http://..." -> "NotFoundException" */
static void
sanitize_code(const char *in, char *out, size_t outlen)
{
	const char *hash;
	size_t		n;

	hash = strchr(in, '#');
	if (hash != NULL && (strchr(in, ':') == NULL || hash < strchr(in, ':')))
		in = hash + 1;
	n = strcspn(in, ":");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static bool
code_in(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(code, *list) == 0)
			return true;
	return false;
}

/* botocore's standard mode lists */
static const char *const throttling_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException",
	"RequestThrottledException", "TooManyRequestsException",
	"ProvisionedThroughputExceededException", "TransactionInProgressException",
	"RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
	"RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	"EC2ThrottledException", NULL
};
static const char *const transient_codes[] = {
	"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
	"InternalError", "InternalFailure", "ServiceUnavailable",
	"KMSInternalException", "DependencyTimeoutException",
	"KeyUnavailableException", NULL
};
static const char *const credential_codes[] = {
	"ExpiredToken", "ExpiredTokenException", "RequestExpired", NULL
};
static const char *const auth_codes[] = {
	"AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
	"InvalidSignatureException", "IncompleteSignatureException",
	"IncompleteSignature", "MissingAuthenticationTokenException",
	"MissingAuthenticationToken", "InvalidClientTokenId",
	"SignatureDoesNotMatch", "NotAuthorized", "AuthFailure",
	"ExpiredToken", "ExpiredTokenException", "RequestExpired", NULL
};

/* AWS's KMS LimitExceededException is a quota, not a rate: not retried */
static bool
is_throttling(const char *service, const char *code, long status)
{
	if (status == 429)
		return true;
	if (strcmp(code, "LimitExceededException") == 0 && strcmp(service, "kms") == 0)
		return false;
	return code_in(code, throttling_codes);
}

static void
backoff_sleep(int retry)
{
	double		cap = Min((double) KMS_AWS_MAX_BACKOFF_MS, 1000.0 * ldexp(1.0, retry));
	long		ms = (long) (pg_prng_double(&pg_global_prng_state) * cap);

	if (ms <= 0)
	{
		CHECK_FOR_INTERRUPTS();
		return;
	}
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
amz_date(char out[17])
{
	time_t		now = time(NULL);
	struct tm	tmv;

	gmtime_r(&now, &tmv);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tmv);
}

void
KmsAwsResponseFree(KmsAwsResponse *resp)
{
	if (resp->body.data != NULL)
	{
		explicit_bzero(resp->body.data, resp->body.maxlen);
		pfree(resp->body.data);
		resp->body.data = NULL;
	}
}

/* host[:port] and path of an endpoint URL (palloc'd) */
static bool
split_url(const char *url, char **hostport, char **path)
{
	CURLU	   *u = curl_url();
	char	   *host = NULL,
			   *port = NULL,
			   *p = NULL;
	bool		ok = false;

	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_PATH, &p, 0) == CURLUE_OK)
	{
		/* the port only when it is not the scheme's default (botocore too) */
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port != NULL)
			*hostport = psprintf("%s:%s", host, port);
		else
			*hostport = pstrdup(host);
		*path = pstrdup(p && p[0] ? p : "/");
		ok = true;
	}
	if (host)
		curl_free(host);
	if (port)
		curl_free(port);
	if (p)
		curl_free(p);
	curl_url_cleanup(u);
	return ok;
}

bool
KmsAwsJsonCall(const char *service, const char *target, const char *json_body,
			   KmsAwsResponse *resp, int flags)
{
	const char *region;
	char	   *url;
	char	   *hostport = NULL;
	char	   *path = NULL;
	int			attempts = (flags & KMS_AWS_NO_RETRY) ? 1 : max_attempts();
	size_t		bodylen = strlen(json_body);
	bool		refreshed = false;

	memset(resp, 0, sizeof(*resp));
	initStringInfo(&resp->body);

	/* an LWLock holds interrupts off: never do network I/O under one */
	if (InterruptHoldoffCount > 0 || CritSectionCount > 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "AWS call %s attempted with interrupts held off", target);

	region = KmsAwsRegion();
	url = KmsAwsEndpoint(service, region, resp->aws_message, sizeof(resp->aws_message));
	if (url == NULL || region == NULL)
	{
		if (region == NULL)
			snprintf(resp->aws_message, sizeof(resp->aws_message),
					 "no AWS region: set pg_kms.aws_region or AWS_REGION");
		resp->kind = KMS_AWS_ERR_CONFIG;
		goto fail;
	}
	if (!split_url(url, &hostport, &path))
	{
		snprintf(resp->aws_message, sizeof(resp->aws_message),
				 "endpoint \"%s\" is not a valid URL", url);
		resp->kind = KMS_AWS_ERR_CONFIG;
		goto fail;
	}

	for (int attempt = 1; attempt <= attempts; attempt++)
	{
		const KmsAwsCredentials *cred;
		char		why[256];
		char		date[17];
		KmsSigV4Header sh[5];
		int			nsh = 0;
		KmsSigV4Result sig;
		struct curl_slist *list = NULL;
		XferState	st;
		CURLcode	rc;
		char		errbuf[CURL_ERROR_SIZE];
		long		status = 0;
		bool		retry = false;
		char	   *line;

		if (attempt > 1)
			backoff_sleep(attempt - 1);
		CHECK_FOR_INTERRUPTS();
		resp->attempts = attempt;
		resp->kind = KMS_AWS_OK;
		resp->status = 0;
		resp->request_id[0] = resp->aws_code[0] = resp->aws_message[0] = '\0';
		resetStringInfo(&resp->body);

		cred = KmsAwsGetCredentials(why, sizeof(why));
		if (cred == NULL)
		{
			resp->kind = KMS_AWS_ERR_CONFIG;
			snprintf(resp->aws_message, sizeof(resp->aws_message), "%s", why);
			goto fail;
		}

		amz_date(date);
		sh[nsh++] = (KmsSigV4Header) {"Content-Type", "application/x-amz-json-1.1"};
		sh[nsh++] = (KmsSigV4Header) {"Host", hostport};
		sh[nsh++] = (KmsSigV4Header) {"X-Amz-Date", date};
		sh[nsh++] = (KmsSigV4Header) {"X-Amz-Target", target};
		if (cred->session_token)
			sh[nsh++] = (KmsSigV4Header) {"X-Amz-Security-Token", cred->session_token};
		if (kms_sigv4_sign("POST", path, NULL, sh, nsh,
						   (const uint8 *) json_body, bodylen, date, region, service,
						   cred->access_key_id, cred->secret_access_key, 1, &sig) != 0)
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "could not sign the AWS request");
		for (int i = 0; i < nsh; i++)
		{
			line = psprintf("%s: %s", sh[i].name, sh[i].value);
			list = curl_slist_append(list, line);
			explicit_bzero(line, strlen(line));
			pfree(line);
		}
		line = psprintf("Authorization: %s", sig.authorization);
		list = curl_slist_append(list, line);
		pfree(line);
		list = curl_slist_append(list, "Expect:");
		kms_sigv4_free(&sig);
		if (list == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));

		rc = perform("POST", url, list, json_body, bodylen,
					 kms_aws_connect_timeout, kms_aws_request_timeout,
					 &st, &status, errbuf);
		curl_slist_free_all(list);
		resp->status = status;
		strlcpy(resp->request_id, st.request_id, sizeof(resp->request_id));
		if (st.data != NULL)
		{
			appendBinaryStringInfo(&resp->body, st.data, (int) st.len);
			explicit_bzero(st.data, st.len);
			free(st.data);
		}

		if (rc != CURLE_OK)
		{
			resp->kind = curl_is_timeout(rc) ? KMS_AWS_ERR_TIMEOUT : KMS_AWS_ERR_CONNECT;
			if (st.interrupted)
				snprintf(resp->aws_message, sizeof(resp->aws_message),
						 "the request was interrupted");
			else if (st.too_big)
				snprintf(resp->aws_message, sizeof(resp->aws_message),
						 "the answer is larger than %d bytes", KMS_AWS_MAX_BODY);
			else
				snprintf(resp->aws_message, sizeof(resp->aws_message), "%s",
						 errbuf[0] ? errbuf : curl_easy_strerror(rc));
			retry = curl_is_transient(rc) && !st.interrupted;
		}
		else if (status >= 200 && status < 300)
		{
			if (KmsAwsJsonIsObject(resp->body.data, resp->body.len))
			{
				pfree(url);
				return true;
			}
			resp->kind = KMS_AWS_ERR_MALFORMED;
			snprintf(resp->aws_message, sizeof(resp->aws_message),
					 "the answer is not a JSON object");
		}
		else
		{
			char	   *type = NULL;
			char	   *msg = NULL;

			resp->kind = KMS_AWS_ERR_HTTP;
			if (st.error_type[0])
				type = pstrdup(st.error_type);
			else if (KmsAwsJsonIsObject(resp->body.data, resp->body.len))
			{
				type = KmsAwsJsonGetString(resp->body.data, "__type");
				if (type == NULL)
					type = KmsAwsJsonGetString(resp->body.data, "code");
			}
			if (KmsAwsJsonIsObject(resp->body.data, resp->body.len))
			{
				msg = KmsAwsJsonGetString(resp->body.data, "message");
				if (msg == NULL)
					msg = KmsAwsJsonGetString(resp->body.data, "Message");
			}
			if (type != NULL)
				sanitize_code(type, resp->aws_code, sizeof(resp->aws_code));
			snprintf(resp->aws_message, sizeof(resp->aws_message), "%s",
					 msg ? msg : "(no message)");
			if (is_throttling(service, resp->aws_code, status) ||
				status == 500 || status == 502 || status == 503 || status == 504 ||
				code_in(resp->aws_code, transient_codes))
				retry = true;
			else if (code_in(resp->aws_code, credential_codes) && !refreshed)
			{
				/* expired credentials: read the chain again, once */
				KmsAwsInvalidateCredentials();
				refreshed = true;
				retry = true;
			}
		}
		if (!retry)
			break;
	}

fail:
	if (url)
		pfree(url);
	if (flags & KMS_AWS_RAISE)
		KmsAwsReportError(resp, target);
	return false;
}

/* Raise resp's failure under our exception name and SQLSTATE. */
static void raise_as(const KmsAwsResponse *resp, const char *what, const char *name, int sqlstate) pg_attribute_noreturn();

static void
raise_as(const KmsAwsResponse *resp, const char *what, const char *name, int sqlstate)
{
	StringInfoData d;

	initStringInfo(&d);
	if (resp->aws_code[0])
		appendStringInfo(&d, "AWS error code: %s. ", resp->aws_code);
	if (resp->request_id[0])
		appendStringInfo(&d, "AWS request id: %s. ", resp->request_id);
	if (resp->status)
		appendStringInfo(&d, "HTTP status: %ld. ", resp->status);
	appendStringInfo(&d, "Attempts: %d.", resp->attempts);
	ereport(ERROR,
			(errcode(sqlstate), errhidestmt(true),
			 errmsg("%s: AWS call %s failed: %s", name, what, resp->aws_message),
			 errdetail("%s", d.data)));
	pg_unreachable();
}

void
KmsAwsReportErrorAs(const KmsAwsResponse *resp, const char *what,
					const char *name, int sqlstate)
{
	raise_as(resp, what, name, sqlstate);
}

void
KmsAwsReportError(const KmsAwsResponse *resp, const char *what)
{
	static const struct
	{
		const char *code;
		const char *name;
		int			sqlstate;
	}			passthrough[] = {
		{"NotFoundException", "NotFoundException", KMS_SQLSTATE_NOT_FOUND},
		{"ResourceNotFoundException", "ResourceNotFoundException", KMS_SQLSTATE_NOT_FOUND},
		{"DisabledException", "DisabledException", KMS_SQLSTATE_DISABLED},
		{"KMSInvalidStateException", "KMSInvalidStateException", KMS_SQLSTATE_INVALID_STATE},
		{"InvalidCiphertextException", "InvalidCiphertextException", KMS_SQLSTATE_INVALID_CIPHERTEXT},
		{"IncorrectKeyException", "IncorrectKeyException", KMS_SQLSTATE_INCORRECT_KEY},
		{"InvalidKeyUsageException", "InvalidKeyUsageException", KMS_SQLSTATE_INVALID_KEY_USAGE},
		{"ValidationException", "ValidationException", KMS_SQLSTATE_VALIDATION},
		{"InvalidParameterException", "InvalidParameterException", KMS_SQLSTATE_VALIDATION},
		{"InvalidRequestException", "InvalidRequestException", KMS_SQLSTATE_INVALID_REQUEST},
		{"DecryptionFailure", "DecryptionFailure", KMS_SQLSTATE_DECRYPTION_FAILURE},
		{"LimitExceededException", "LimitExceededException", KMS_SQLSTATE_LIMIT_EXCEEDED},
		{"DependencyTimeoutException", "DependencyTimeoutException", KMS_SQLSTATE_DEPENDENCY_TIMEOUT},
		{NULL, NULL, 0}
	};

	switch (resp->kind)
	{
		case KMS_AWS_OK:
			elog(ERROR, "KmsAwsReportError called without a failure");
			break;
		case KMS_AWS_ERR_TIMEOUT:
			raise_as(resp, what, "DependencyTimeoutException", KMS_SQLSTATE_DEPENDENCY_TIMEOUT);
			break;
		case KMS_AWS_ERR_CONFIG:
		case KMS_AWS_ERR_CONNECT:
		case KMS_AWS_ERR_MALFORMED:
			raise_as(resp, what, "KeyUnavailableException", KMS_SQLSTATE_KEY_UNAVAILABLE);
			break;
		case KMS_AWS_ERR_HTTP:
			if (code_in(resp->aws_code, auth_codes))
				raise_as(resp, what, "AccessDeniedException", KMS_SQLSTATE_ACCESS_DENIED);
			for (int i = 0; passthrough[i].code; i++)
				if (strcmp(resp->aws_code, passthrough[i].code) == 0)
					raise_as(resp, what, passthrough[i].name, passthrough[i].sqlstate);
			raise_as(resp, what, "KeyUnavailableException", KMS_SQLSTATE_KEY_UNAVAILABLE);
			break;
	}
	pg_unreachable();
}
