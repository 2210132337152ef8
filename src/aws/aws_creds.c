/*-------------------------------------------------------------------------
 *
 * aws_creds.c
 *	  The credentials chain, in the AWS SDKs' order: the environment
 *	  (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), web
 *	  identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE through STS
 *	  AssumeRoleWithWebIdentity), the shared credentials and config files
 *	  (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_PROFILE), container
 *	  credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI with
 *	  AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]) and IMDSv2 (token PUT, then
 *	  GET; AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED).
 *
 *	  The credentials found are cached in the backend (TopMemoryContext)
 *	  and read again 5 minutes before they expire; credentials from the
 *	  shared files are read again every 15 minutes, so a rotated file is
 *	  picked up.  Secrets are wiped when dropped and never appear in a
 *	  message: errors name the source and the file or URL only.
 *
 * IDENTIFICATION
 *	  src/aws/aws_creds.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>
#include <time.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws/aws_internal.h"

#define REFRESH_MARGIN_US	(5 * 60 * USECS_PER_SEC)
#define FILE_REREAD_US		(15 * 60 * USECS_PER_SEC)
#define META_TIMEOUT_MS		2000

static KmsAwsCredentials cache;
static bool cache_valid = false;

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return (v != NULL && v[0] != '\0') ? v : NULL;
}

static char *
top_strdup(const char *s)
{
	return s ? MemoryContextStrdup(TopMemoryContext, s) : NULL;
}

static void
wipe_free(char *s)
{
	if (s != NULL)
	{
		explicit_bzero(s, strlen(s));
		pfree(s);
	}
}

void
KmsAwsInvalidateCredentials(void)
{
	wipe_free(cache.access_key_id);
	wipe_free(cache.secret_access_key);
	wipe_free(cache.session_token);
	memset(&cache, 0, sizeof(cache));
	cache_valid = false;
}

static void
set_cache(const char *akid, const char *secret, const char *token,
		  TimestampTz expiration, const char *source)
{
	KmsAwsInvalidateCredentials();
	cache.access_key_id = top_strdup(akid);
	cache.secret_access_key = top_strdup(secret);
	cache.session_token = (token && token[0]) ? top_strdup(token) : NULL;
	cache.expiration = expiration;
	cache.source = source;
	cache_valid = true;
}

TimestampTz
KmsAwsParseIso8601(const char *s)
{
	struct tm	tmv;
	int			y,
				mo,
				d,
				h,
				mi,
				sec;
	time_t		t;

	if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6)
		return 0;
	memset(&tmv, 0, sizeof(tmv));
	tmv.tm_year = y - 1900;
	tmv.tm_mon = mo - 1;
	tmv.tm_mday = d;
	tmv.tm_hour = h;
	tmv.tm_min = mi;
	tmv.tm_sec = sec;
	t = timegm(&tmv);
	if (t == (time_t) -1)
		return 0;
	return time_t_to_timestamptz(t);
}

/* a whole small file into a palloc'd string, NULL if unreadable */
static char *
read_small_file(const char *path)
{
	FILE	   *f = AllocateFile(path, "r");
	StringInfoData b;
	char		chunk[1024];
	size_t		n;

	if (f == NULL)
		return NULL;
	initStringInfo(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < 1024 * 1024)
		appendBinaryStringInfo(&b, chunk, (int) n);
	explicit_bzero(chunk, sizeof(chunk));
	FreeFile(f);
	return b.data;
}

static void
trim(char *s)
{
	size_t		n = strlen(s);
	char	   *p = s;

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (p != s)
		memmove(s, p, strlen(p) + 1);
}

/*
 * Credentials of a profile in an INI file: in the credentials file the
 * section is [name], in the config file [profile name] (or [default]).
 */
static bool
ini_profile(const char *path, const char *profile, bool config,
			char **akid, char **secret, char **token)
{
	char	   *text = read_small_file(path);
	char	   *line,
			   *save = NULL;
	bool		in = false;
	bool		found;

	*akid = *secret = *token = NULL;
	if (text == NULL)
		return false;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *eq;

		trim(line);
		if (line[0] == '#' || line[0] == ';' || line[0] == '\0')
			continue;
		if (line[0] == '[')
		{
			char	   *end = strchr(line, ']');
			char	   *name = line + 1;

			if (end)
				*end = '\0';
			trim(name);
			if (config && strncmp(name, "profile ", 8) == 0)
			{
				name += 8;
				trim(name);
			}
			in = strcmp(name, profile) == 0;
			continue;
		}
		if (!in || (eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		trim(line);
		trim(eq + 1);
		if (strcmp(line, "aws_access_key_id") == 0)
			*akid = pstrdup(eq + 1);
		else if (strcmp(line, "aws_secret_access_key") == 0)
			*secret = pstrdup(eq + 1);
		else if (strcmp(line, "aws_session_token") == 0)
			*token = pstrdup(eq + 1);
	}
	explicit_bzero(text, strlen(text));
	pfree(text);
	found = *akid != NULL && *secret != NULL;
	return found;
}

static bool
from_files(char *why, size_t whylen)
{
	const char *home = env("HOME");
	const char *profile = env("AWS_PROFILE");
	char	   *credfile,
			   *conffile;
	char	   *akid,
			   *secret,
			   *token;

	if (profile == NULL)
		profile = "default";
	credfile = env("AWS_SHARED_CREDENTIALS_FILE") ? pstrdup(env("AWS_SHARED_CREDENTIALS_FILE")) :
		home ? psprintf("%s/.aws/credentials", home) : NULL;
	conffile = env("AWS_CONFIG_FILE") ? pstrdup(env("AWS_CONFIG_FILE")) :
		home ? psprintf("%s/.aws/config", home) : NULL;
	if ((credfile && ini_profile(credfile, profile, false, &akid, &secret, &token)) ||
		(conffile && ini_profile(conffile, profile, true, &akid, &secret, &token)))
	{
		set_cache(akid, secret, token,
				  GetCurrentTimestamp() + FILE_REREAD_US + REFRESH_MARGIN_US,
				  "shared credentials file");
		wipe_free(akid);
		wipe_free(secret);
		wipe_free(token);
		return true;
	}
	return false;
}

/* the text of <tag>...</tag> in an XML answer (palloc'd), NULL if absent */
static char *
xml_tag(const char *xml, const char *tag)
{
	char	   *open = psprintf("<%s>", tag);
	char	   *close = psprintf("</%s>", tag);
	const char *s = strstr(xml, open);
	const char *e;
	char	   *res = NULL;

	if (s != NULL)
	{
		s += strlen(open);
		e = strstr(s, close);
		if (e != NULL)
			res = pnstrdup(s, e - s);
	}
	pfree(open);
	pfree(close);
	return res;
}

static void
form_append(StringInfo b, const char *name, const char *value)
{
	if (b->len > 0)
		appendStringInfoChar(b, '&');
	appendStringInfo(b, "%s=", name);
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			appendStringInfoChar(b, (char) *p);
		else
			appendStringInfo(b, "%%%02X", *p);
	}
}

static bool
from_web_identity(char *why, size_t whylen, bool *tried)
{
	const char *role = env("AWS_ROLE_ARN");
	const char *tokfile = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *session = env("AWS_ROLE_SESSION_NAME");
	char	   *jwt;
	char	   *url;
	const char *region = KmsAwsRegion();
	StringInfoData body,
				out;
	long		status = 0;
	char		err[256];
	KmsAwsHttpHeader h[2] = {
		{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
		{"Accept", "application/xml"}
	};
	char	   *akid,
			   *secret,
			   *token,
			   *exp;

	*tried = false;
	if (role == NULL || tokfile == NULL)
		return false;
	*tried = true;
	jwt = read_small_file(tokfile);
	if (jwt == NULL)
	{
		snprintf(why, whylen, "web identity: cannot read AWS_WEB_IDENTITY_TOKEN_FILE \"%s\"", tokfile);
		return false;
	}
	trim(jwt);
	url = KmsAwsEndpoint("sts", region ? region : "us-east-1", err, sizeof(err));
	if (url == NULL)
	{
		snprintf(why, whylen, "web identity: %s", err);
		return false;
	}
	initStringInfo(&body);
	form_append(&body, "Action", "AssumeRoleWithWebIdentity");
	form_append(&body, "Version", "2011-06-15");
	form_append(&body, "RoleArn", role);
	form_append(&body, "RoleSessionName", session ? session : "pg_kms");
	form_append(&body, "WebIdentityToken", jwt);
	explicit_bzero(jwt, strlen(jwt));
	initStringInfo(&out);
	if (!KmsAwsHttp("POST", url, h, 2, body.data, kms_aws_request_timeout,
					&out, &status, err, sizeof(err)))
	{
		snprintf(why, whylen, "web identity: STS at %s: %s", url, err);
		explicit_bzero(body.data, body.len);
		return false;
	}
	explicit_bzero(body.data, body.len);
	if (status != 200)
	{
		char	   *code = xml_tag(out.data, "Code");

		snprintf(why, whylen, "web identity: STS AssumeRoleWithWebIdentity answered HTTP %ld%s%s",
				 status, code ? ": " : "", code ? code : "");
		return false;
	}
	akid = xml_tag(out.data, "AccessKeyId");
	secret = xml_tag(out.data, "SecretAccessKey");
	token = xml_tag(out.data, "SessionToken");
	exp = xml_tag(out.data, "Expiration");
	explicit_bzero(out.data, out.len);
	if (akid == NULL || secret == NULL || token == NULL)
	{
		snprintf(why, whylen, "web identity: STS answer without credentials");
		return false;
	}
	set_cache(akid, secret, token, KmsAwsParseIso8601(exp), "web identity");
	wipe_free(akid);
	wipe_free(secret);
	wipe_free(token);
	return true;
}

/* JSON credentials of the container endpoint and IMDS */
static bool
set_from_json(const char *json, const char *source, char *why, size_t whylen)
{
	char	   *akid = KmsAwsJsonGetString(json, "AccessKeyId");
	char	   *secret = KmsAwsJsonGetString(json, "SecretAccessKey");
	char	   *token = KmsAwsJsonGetString(json, "Token");
	char	   *exp = KmsAwsJsonGetString(json, "Expiration");

	if (akid == NULL || secret == NULL)
	{
		snprintf(why, whylen, "%s: answer without credentials", source);
		return false;
	}
	set_cache(akid, secret, token, KmsAwsParseIso8601(exp), source);
	wipe_free(akid);
	wipe_free(secret);
	wipe_free(token);
	return true;
}

static bool
from_container(char *why, size_t whylen, bool *tried)
{
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tokfile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tokenv = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char	   *url;
	char	   *auth = NULL;
	KmsAwsHttpHeader h[1];
	int			nh = 0;
	StringInfoData out;
	long		status = 0;
	char		err[256];
	bool		ok;

	*tried = false;
	if (rel == NULL && full == NULL)
		return false;
	*tried = true;
	if (rel != NULL)
		url = psprintf("http://169.254.170.2%s", rel);
	else
	{
		bool		loop;

		url = pstrdup(full);
		/* the SDKs' rule: https, or http to loopback or the ECS/EKS addresses */
		if (!KmsAwsUrlAllowed(url, &loop) &&
			strncmp(url, "http://169.254.170.2/", 21) != 0 &&
			strncmp(url, "http://169.254.170.23/", 22) != 0)
		{
			snprintf(why, whylen, "container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI \"%s\" is neither https nor a loopback or container host", url);
			return false;
		}
	}
	if (tokfile != NULL)
	{
		auth = read_small_file(tokfile);
		if (auth == NULL)
		{
			snprintf(why, whylen, "container credentials: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \"%s\"", tokfile);
			return false;
		}
		trim(auth);
	}
	else if (tokenv != NULL)
		auth = pstrdup(tokenv);
	if (auth != NULL)
		h[nh++] = (KmsAwsHttpHeader) {"Authorization", auth};
	initStringInfo(&out);
	ok = KmsAwsHttp("GET", url, h, nh, NULL, META_TIMEOUT_MS, &out, &status, err, sizeof(err));
	wipe_free(auth);
	if (!ok || status != 200)
	{
		if (ok)
			snprintf(why, whylen, "container credentials: %s answered HTTP %ld", url, status);
		else
			snprintf(why, whylen, "container credentials: %s: %s", url, err);
		return false;
	}
	ok = set_from_json(out.data, "container credentials", why, whylen);
	explicit_bzero(out.data, out.len);
	return ok;
}

static bool
from_imds(char *why, size_t whylen)
{
	const char *disabled = env("AWS_EC2_METADATA_DISABLED");
	const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char	   *url;
	char	   *tokhdr;
	StringInfoData out;
	long		status = 0;
	char		err[256];
	KmsAwsHttpHeader h[1];
	char	   *role;
	bool		ok;

	if (disabled != NULL && pg_strcasecmp(disabled, "true") == 0)
	{
		snprintf(why, whylen, "no AWS credentials found (environment, web identity, shared files, container; IMDS disabled by AWS_EC2_METADATA_DISABLED)");
		return false;
	}
	if (base == NULL)
		base = "http://169.254.169.254";

	initStringInfo(&out);
	base = pstrdup(base);
	if (base[0] && base[strlen(base) - 1] == '/')
		((char *) base)[strlen(base) - 1] = '\0';
	url = psprintf("%s/latest/api/token", base);
	h[0] = (KmsAwsHttpHeader) {"X-aws-ec2-metadata-token-ttl-seconds", "21600"};
	if (!KmsAwsHttp("PUT", url, h, 1, "", META_TIMEOUT_MS, &out, &status, err, sizeof(err)) ||
		status != 200)
	{
		snprintf(why, whylen, "no AWS credentials found (environment, web identity, shared files, container, IMDS at %s: %s)",
				 base, status ? "token request refused" : err);
		return false;
	}
	tokhdr = pstrdup(out.data);
	trim(tokhdr);
	h[0] = (KmsAwsHttpHeader) {"X-aws-ec2-metadata-token", tokhdr};
	resetStringInfo(&out);
	url = psprintf("%s/latest/meta-data/iam/security-credentials/", base);
	if (!KmsAwsHttp("GET", url, h, 1, NULL, META_TIMEOUT_MS, &out, &status, err, sizeof(err)) ||
		status != 200 || out.len == 0)
	{
		snprintf(why, whylen, "IMDS: no instance role (%s)", status ? "no role attached" : err);
		wipe_free(tokhdr);
		return false;
	}
	role = pstrdup(out.data);
	role[strcspn(role, "\r\n")] = '\0';
	trim(role);
	resetStringInfo(&out);
	url = psprintf("%s%s", url, role);
	ok = KmsAwsHttp("GET", url, h, 1, NULL, META_TIMEOUT_MS, &out, &status, err, sizeof(err));
	wipe_free(tokhdr);
	if (!ok || status != 200)
	{
		snprintf(why, whylen, "IMDS: credentials of role \"%s\": %s", role, ok ? "refused" : err);
		return false;
	}
	ok = set_from_json(out.data, "IMDS", why, whylen);
	explicit_bzero(out.data, out.len);
	return ok;
}

const KmsAwsCredentials *
KmsAwsGetCredentials(char *why, size_t whylen)
{
	const char *akid = env("AWS_ACCESS_KEY_ID");
	const char *secret = env("AWS_SECRET_ACCESS_KEY");
	bool		tried;

	why[0] = '\0';
	if (cache_valid &&
		(cache.expiration == 0 ||
		 GetCurrentTimestamp() < cache.expiration - REFRESH_MARGIN_US))
		return &cache;

	/* 1. the environment */
	if (akid != NULL && secret != NULL)
	{
		set_cache(akid, secret, env("AWS_SESSION_TOKEN"), 0, "environment");
		return &cache;
	}
	/* 2. web identity */
	if (from_web_identity(why, whylen, &tried))
		return &cache;
	if (tried)
		return NULL;
	/* 3. shared credentials and config files */
	if (from_files(why, whylen))
		return &cache;
	/* 4. container */
	if (from_container(why, whylen, &tried))
		return &cache;
	if (tried)
		return NULL;
	/* 5. IMDSv2 */
	if (from_imds(why, whylen))
		return &cache;
	if (why[0] == '\0')
		snprintf(why, whylen, "no AWS credentials found");
	return NULL;
}
