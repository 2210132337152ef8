/*-------------------------------------------------------------------------
 *
 * aws_config.c
 *	  The pg_kms.aws_* settings, the region and the endpoint of a service
 *	  as the AWS SDKs find them (setting, then the environment).
 *
 * IDENTIFICATION
 *	  src/aws/aws_config.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdlib.h>

#include "utils/guc.h"

#include "aws/aws_internal.h"

char	   *kms_aws_region = NULL;
char	   *kms_aws_kms_key_id = NULL;
char	   *kms_aws_endpoint_url = NULL;
char	   *kms_aws_ca_file = NULL;
char	   *kms_aws_proxy = NULL;
int			kms_aws_connect_timeout = 5000;
int			kms_aws_request_timeout = 10000;
int			kms_aws_max_attempts = 0;

void
KmsAwsDefineGucs(void)
{
	DefineCustomStringVariable("pg_kms.aws_region",
							   "AWS region of the aws provider and of remote secrets.",
							   "Empty: AWS_REGION, then AWS_DEFAULT_REGION from the server's environment.",
							   &kms_aws_region, "", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pg_kms.aws_kms_key_id",
							   "AWS KMS key (id, ARN or alias) that wraps new key material under pg_kms.provider = 'aws'.",
							   NULL,
							   &kms_aws_kms_key_id, "", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pg_kms.aws_endpoint_url",
							   "Endpoint URL for every AWS service called (a VPC endpoint, an emulator).",
							   "Empty: AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, then https://<service>.<region>.amazonaws.com.",
							   &kms_aws_endpoint_url, "", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pg_kms.aws_ca_file",
							   "PEM file of the certificate authorities trusted for AWS endpoints.",
							   "Empty: AWS_CA_BUNDLE from the server's environment, then the system's store.",
							   &kms_aws_ca_file, "", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pg_kms.aws_proxy",
							   "Proxy URL for AWS calls.",
							   "Empty: HTTPS_PROXY, HTTP_PROXY and NO_PROXY from the server's environment.",
							   &kms_aws_proxy, "", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("pg_kms.aws_connect_timeout",
							"Time allowed to connect to an AWS endpoint, per attempt.",
							NULL,
							&kms_aws_connect_timeout, 5000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_kms.aws_request_timeout",
							"Time allowed for one attempt of an AWS call, connecting included.",
							NULL,
							&kms_aws_request_timeout, 10000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_kms.aws_max_attempts",
							"Attempts per AWS call (AWS's standard retry mode).",
							"0: AWS_MAX_ATTEMPTS from the server's environment, else 3.",
							&kms_aws_max_attempts, 0, 0, 10,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return (v != NULL && v[0] != '\0') ? v : NULL;
}

const char *
KmsAwsRegion(void)
{
	const char *r;

	if (kms_aws_region != NULL && kms_aws_region[0] != '\0')
		return kms_aws_region;
	if ((r = env_nonempty("AWS_REGION")) != NULL)
		return r;
	return env_nonempty("AWS_DEFAULT_REGION");
}

/*
 * https, or http to a loopback address (127.0.0.0/8, ::1, localhost): the
 * rule the SDKs apply to container credential URLs; an emulator on this
 * host needs no TLS, anything else does.
 */
bool
KmsAwsUrlAllowed(const char *url, bool *is_loopback)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	bool		ok = false;
	bool		loop = false;

	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
	{
		struct in_addr a4;
		struct in6_addr a6;
		char		h[256];

		strlcpy(h, host, sizeof(h));
		if (h[0] == '[')
		{
			size_t		l = strlen(h);

			if (l > 2 && h[l - 1] == ']')
			{
				memmove(h, h + 1, l - 2);
				h[l - 2] = '\0';
			}
		}
		if (pg_strcasecmp(h, "localhost") == 0)
			loop = true;
		else if (inet_pton(AF_INET, h, &a4) == 1)
			loop = (ntohl(a4.s_addr) >> 24) == 127;
		else if (inet_pton(AF_INET6, h, &a6) == 1)
			loop = IN6_IS_ADDR_LOOPBACK(&a6);
		if (pg_strcasecmp(scheme, "https") == 0)
			ok = true;
		else if (pg_strcasecmp(scheme, "http") == 0)
			ok = loop;
	}
	if (scheme)
		curl_free(scheme);
	if (host)
		curl_free(host);
	curl_url_cleanup(u);
	if (is_loopback)
		*is_loopback = loop;
	return ok;
}

char *
KmsAwsEndpoint(const char *service, const char *region, char *why, size_t whylen)
{
	const char *url = NULL;
	char	   *res;

	if (kms_aws_endpoint_url != NULL && kms_aws_endpoint_url[0] != '\0')
		url = kms_aws_endpoint_url;
	else
	{
		char		envname[64];
		int			i;

		/* AWS_ENDPOINT_URL_<SERVICE ID>: upper case, '-' and ' ' as '_' */
		if (strcmp(service, "secretsmanager") == 0)
			strlcpy(envname, "AWS_ENDPOINT_URL_SECRETS_MANAGER", sizeof(envname));
		else
		{
			snprintf(envname, sizeof(envname), "AWS_ENDPOINT_URL_%s", service);
			for (i = 0; envname[i]; i++)
				envname[i] = pg_toupper((unsigned char) envname[i]);
		}
		url = env_nonempty(envname);
		if (url == NULL)
			url = env_nonempty("AWS_ENDPOINT_URL");
	}
	if (url != NULL)
		res = pstrdup(url);
	else
	{
		if (region == NULL)
		{
			snprintf(why, whylen, "no AWS region: set pg_kms.aws_region or AWS_REGION");
			return NULL;
		}
		res = psprintf("https://%s.%s.amazonaws.com%s", service, region,
					   strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
	}
	if (!KmsAwsUrlAllowed(res, NULL))
	{
		snprintf(why, whylen,
				 "endpoint \"%s\" is not an https URL (http is accepted for loopback addresses only)",
				 res);
		return NULL;
	}
	return res;
}
