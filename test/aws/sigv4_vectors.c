/*
 * sigv4_vectors.c: the SigV4 signer (src/aws/sigv4.c) against published
 * vectors, stand-alone (make check-standalone):
 *
 *   sigv4_vectors classic DIR      <case>/<case>.{req,creq,sts,authz} folders
 *                                  under DIR (aws4_testsuite, the AWS docs'
 *                                  IAM example, the derived JSON 1.1 cases)
 *   sigv4_vectors v4 DIR           aws-c-auth's suite: context.json,
 *                                  request.txt, header-{canonical-request,
 *                                  string-to-sign,signature}.txt
 *   sigv4_vectors key              the documented signing-key derivation
 *
 * Every case compares the canonical request, the string to sign and the
 * signature (or Authorization value) byte for byte; exit status 1 if any
 * differs.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sigv4.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define VANILLA_TOKEN "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

static int failures = 0;
static int passes = 0;

static char *
slurp(const char *path, size_t *lenp)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	if (fread(buf, 1, n, f) != (size_t) n)
	{
		fclose(f);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	if (lenp)
		*lenp = n;
	return buf;
}

typedef struct Req
{
	char		method[16];
	char	   *path;
	char	   *query;
	KmsSigV4Header h[32];
	int			nh;
	char	   *body;
	size_t		bodylen;
} Req;

/* request line, "Name:value" headers (continuation lines folded), body */
static int
parse_req(char *text, size_t len, Req *r)
{
	char	   *p = text;
	char	   *eol = strchr(p, '\n');
	char	   *target,
			   *http;

	memset(r, 0, sizeof(*r));
	if (eol == NULL)
		eol = text + len;
	*eol = '\0';
	if (eol > p && eol[-1] == '\r')
		eol[-1] = '\0';
	target = strchr(p, ' ');
	http = strstr(p, " HTTP/");
	if (target == NULL || http == NULL || http < target)
		return -1;
	*target++ = '\0';
	*http = '\0';
	snprintf(r->method, sizeof(r->method), "%s", p);
	r->query = strchr(target, '?');
	if (r->query)
		*r->query++ = '\0';
	r->path = target;
	p = eol + 1;
	while (p < text + len)
	{
		char	   *line = p;
		char	   *colon;

		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = text + len;
		*eol = '\0';
		if (eol > line && eol[-1] == '\r')
			eol[-1] = '\0';
		p = eol + 1;
		if (line[0] == '\0')
		{
			r->body = p < text + len ? p : "";
			r->bodylen = p < text + len ? (size_t) (text + len - p) : 0;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && r->nh > 0)
		{
			/* a continuation: folded into the value with one space */
			KmsSigV4Header *last = &r->h[r->nh - 1];
			size_t		l1 = strlen(last->value);
			char	   *v = malloc(l1 + strlen(line) + 2);

			sprintf(v, "%s %s", last->value, line);
			last->value = v;
			continue;
		}
		colon = strchr(line, ':');
		if (colon == NULL || r->nh >= 30)
			return -1;
		*colon = '\0';
		r->h[r->nh].name = line;
		r->h[r->nh].value = colon + 1;
		r->nh++;
	}
	if (r->body == NULL)
		r->body = "";
	return 0;
}

static void
check(const char *name, const char *what, const char *got, const char *want)
{
	size_t		wl = strlen(want);

	/* vectors may or may not end in a newline */
	while (wl > 0 && (want[wl - 1] == '\n' || want[wl - 1] == '\r'))
		wl--;
	if (got == NULL || strlen(got) != wl || memcmp(got, want, wl) != 0)
	{
		printf("FAIL %s: %s differs\n--- got\n%s\n--- want\n%.*s\n", name, what,
			   got ? got : "(null)", (int) wl, want);
		failures++;
	}
	else
		passes++;
}

static int
is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void
classic_case(const char *dir, const char *name)
{
	char		path[8192];
	char	   *req,
			   *creq,
			   *sts,
			   *authz;
	size_t		rl;
	Req			r;
	KmsSigV4Result res;
	const char *date = "20150830T123600Z";
	const char *region = "us-east-1";
	const char *service = "service";

	snprintf(path, sizeof(path), "%s/%s.req", dir, name);
	req = slurp(path, &rl);
	snprintf(path, sizeof(path), "%s/%s.creq", dir, name);
	creq = slurp(path, NULL);
	snprintf(path, sizeof(path), "%s/%s.sts", dir, name);
	sts = slurp(path, NULL);
	snprintf(path, sizeof(path), "%s/%s.authz", dir, name);
	authz = slurp(path, NULL);
	if (!req || !creq || !sts || !authz)
	{
		printf("FAIL %s: files missing\n", name);
		failures++;
		return;
	}
	if (parse_req(req, rl, &r) != 0)
	{
		printf("FAIL %s: cannot parse the request\n", name);
		failures++;
		return;
	}
	/* the scope's date, region and service are in the .sts */
	{
		char		d[32],
					scope[256];

		if (sscanf(sts, "AWS4-HMAC-SHA256\n%31s\n%255s", d, scope) == 2)
		{
			static char reg[64],
						svc[64];
			char	   *s1 = strchr(scope, '/');
			char	   *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
			char	   *s3 = s2 ? strchr(s2 + 1, '/') : NULL;

			if (s1 && s2 && s3)
			{
				snprintf(reg, sizeof(reg), "%.*s", (int) (s2 - s1 - 1), s1 + 1);
				snprintf(svc, sizeof(svc), "%.*s", (int) (s3 - s2 - 1), s2 + 1);
				region = reg;
				service = svc;
			}
			date = strdup(d);
		}
	}
	if (strcmp(name, "get-vanilla-with-session-token") == 0)
	{
		r.h[r.nh].name = "X-Amz-Security-Token";
		r.h[r.nh].value = VANILLA_TOKEN;
		r.nh++;
	}
	if (strcmp(name, "secretsmanager-getsecretvalue-session-token") == 0 &&
		strstr(req, "X-Amz-Security-Token") == NULL)
		printf("note %s: token header expected in the request\n", name);
	if (kms_sigv4_sign(r.method, r.path, r.query, r.h, r.nh,
					   (const uint8_t *) r.body, r.bodylen, date, region, service,
					   AKID, SECRET, 1, &res) != 0)
	{
		printf("FAIL %s: signing failed\n", name);
		failures++;
		return;
	}
	check(name, "canonical request", res.canonical_request, creq);
	check(name, "string to sign", res.string_to_sign, sts);
	check(name, "authorization", res.authorization, authz);
	kms_sigv4_free(&res);
}

static void
walk_classic(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	char		sub[4096],
				probe[8192];
	char	  **names = NULL;
	int			n = 0;

	if (d == NULL)
	{
		printf("FAIL: cannot open %s\n", dir);
		failures++;
		return;
	}
	while ((e = readdir(d)) != NULL)
	{
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, sizeof(char *) * (n + 1));
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	for (int i = 0; i < n; i++)
	{
		snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
		if (!is_dir(sub))
		{
			/* a folder holding the case files itself (aws-docs-iam-listusers) */
			size_t		l = strlen(names[i]);

			if (l > 4 && strcmp(names[i] + l - 4, ".req") == 0)
			{
				names[i][l - 4] = '\0';
				classic_case(dir, names[i]);
			}
			continue;
		}
		snprintf(probe, sizeof(probe), "%s/%s.req", sub, names[i]);
		if (access(probe, R_OK) == 0)
			classic_case(sub, names[i]);
		else
			walk_classic(sub);	/* normalize-path/, post-sts-token/ */
	}
}

static int
json_bool(const char *json, const char *key)
{
	char		k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\"", key);
	p = strstr(json, k);
	if (p == NULL)
		return 0;
	p = strchr(p + strlen(k), ':');
	while (p && (*++p == ' '))
		;
	return p && strncmp(p, "true", 4) == 0;
}

static char *
json_str(const char *json, const char *key)
{
	char		k[64];
	const char *p,
			   *e;
	char	   *out;

	snprintf(k, sizeof(k), "\"%s\"", key);
	p = strstr(json, k);
	if (p == NULL)
		return NULL;
	p = strchr(p + strlen(k), '"');
	if (p == NULL)
		return NULL;
	e = strchr(p + 1, '"');
	out = malloc(e - p);
	memcpy(out, p + 1, e - p - 1);
	out[e - p - 1] = '\0';
	return out;
}

static void
v4_case(const char *dir, const char *name)
{
	char		path[8192];
	char	   *ctx,
			   *req,
			   *creq,
			   *sts,
			   *sig;
	size_t		rl;
	Req			r;
	KmsSigV4Result res;
	char	   *token;
	char		payload_hash[65];

	snprintf(path, sizeof(path), "%s/context.json", dir);
	ctx = slurp(path, NULL);
	snprintf(path, sizeof(path), "%s/request.txt", dir);
	req = slurp(path, &rl);
	snprintf(path, sizeof(path), "%s/header-canonical-request.txt", dir);
	creq = slurp(path, NULL);
	snprintf(path, sizeof(path), "%s/header-string-to-sign.txt", dir);
	sts = slurp(path, NULL);
	snprintf(path, sizeof(path), "%s/header-signature.txt", dir);
	sig = slurp(path, NULL);
	if (!ctx || !req || !creq || !sts || !sig || parse_req(req, rl, &r) != 0)
	{
		printf("FAIL %s: files missing or unparsable\n", name);
		failures++;
		return;
	}
	r.h[r.nh].name = "X-Amz-Date";
	r.h[r.nh].value = "20150830T123600Z";
	r.nh++;
	token = json_str(ctx, "token");
	if (token && !json_bool(ctx, "omit_session_token"))
	{
		r.h[r.nh].name = "X-Amz-Security-Token";
		r.h[r.nh].value = token;
		r.nh++;
	}
	if (json_bool(ctx, "sign_body"))
	{
		kms_sigv4_sha256_hex((const uint8_t *) r.body, r.bodylen, payload_hash);
		r.h[r.nh].name = "X-Amz-Content-Sha256";
		r.h[r.nh].value = payload_hash;
		r.nh++;
	}
	if (kms_sigv4_sign(r.method, r.path, r.query, r.h, r.nh,
					   (const uint8_t *) r.body, r.bodylen, "20150830T123600Z",
					   "us-east-1", "service", AKID, SECRET,
					   json_bool(ctx, "normalize"), &res) != 0)
	{
		printf("FAIL %s: signing failed\n", name);
		failures++;
		return;
	}
	check(name, "canonical request", res.canonical_request, creq);
	check(name, "string to sign", res.string_to_sign, sts);
	check(name, "signature", res.signature, sig);
	kms_sigv4_free(&res);
}

static void
walk_v4(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	char		sub[4096];

	if (d == NULL)
	{
		printf("FAIL: cannot open %s\n", dir);
		failures++;
		return;
	}
	while ((e = readdir(d)) != NULL)
	{
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (is_dir(sub))
			v4_case(sub, e->d_name);
	}
	closedir(d);
}

static void
signing_key(void)
{
	uint8_t		k[32];
	char		hex[65];

	if (kms_sigv4_signing_key(SECRET, "20120215", "us-east-1", "iam", k) != 0)
	{
		failures++;
		return;
	}
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", k[i]);
	check("signing-key", "kSigning",
		  hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "classic") == 0)
		walk_classic(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "v4") == 0)
		walk_v4(argv[2]);
	else if (argc == 2 && strcmp(argv[1], "key") == 0)
		signing_key();
	else
	{
		fprintf(stderr, "usage: %s classic DIR | v4 DIR | key\n", argv[0]);
		return 2;
	}
	printf("sigv4 %s: %d checks passed, %d failed\n", argv[1], passes, failures);
	return failures ? 1 : 0;
}
