/*-------------------------------------------------------------------------
 *
 * sigv4.c
 *	  AWS Signature Version 4 signing (see sigv4.h).  Checked against the
 *	  AWS and aws-c-auth vectors (test/aws/sigv4/, make check-standalone)
 *	  and, for what we really send, against botocore in the emulator.
 *
 *	  No PostgreSQL headers: this file is compiled into the module and
 *	  into the stand-alone vector test.  Secrets (the secret access key and
 *	  the derived keys) live only in local buffers that are wiped.
 *
 * IDENTIFICATION
 *	  src/aws/sigv4.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"

/* A growable malloc'd string; on allocation failure 'failed' is set. */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	int			failed;
} Buf;

static void
buf_put(Buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap)
	{
		size_t		ncap = b->cap ? b->cap : 256;
		char	   *nd;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		nd = realloc(b->data, ncap);
		if (nd == NULL)
		{
			b->failed = 1;
			return;
		}
		b->data = nd;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_puts(Buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void
buf_putc(Buf *b, char c)
{
	buf_put(b, &c, 1);
}

static int
is_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 3986 encoding of n bytes; '/' kept when keep_slash */
static void
buf_uri_encode(Buf *b, const char *s, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (is_unreserved(c) || (keep_slash && c == '/'))
			buf_putc(b, (char) c);
		else
		{
			char		e[3] = {'%', hex[c >> 4], hex[c & 15]};

			buf_put(b, e, 3);
		}
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* percent-decode s[0..n) into a new malloc'd string (length in *outlen) */
static char *
uri_decode(const char *s, size_t n, size_t *outlen)
{
	char	   *out = malloc(n + 1);
	size_t		j = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
	{
		if (s[i] == '%' && i + 2 < n &&
			hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
		{
			out[j++] = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		else
			out[j++] = s[i];
	}
	out[j] = '\0';
	*outlen = j;
	return out;
}

/*
 * The canonical URI: dot segments and empty segments removed (normalize),
 * each byte outside the unreserved set percent-encoded once.
 */
static void
canonical_uri(Buf *b, const char *path, int normalize)
{
	const char *segs[256];
	size_t		lens[256];
	int			nseg = 0;
	const char *p;
	size_t		plen;
	int			trailing;

	if (path == NULL || *path == '\0')
	{
		buf_putc(b, '/');
		return;
	}
	if (!normalize)
	{
		buf_uri_encode(b, path, strlen(path), 1);
		return;
	}
	p = path;
	plen = strlen(path);
	trailing = plen > 0 && path[plen - 1] == '/';
	while (*p)
	{
		const char *s;
		size_t		n;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		n = (size_t) (p - s);
		if (n == 1 && s[0] == '.')
		{
			if (*p == '\0')
				trailing = 1;
			continue;
		}
		if (n == 2 && s[0] == '.' && s[1] == '.')
		{
			if (nseg > 0)
				nseg--;
			if (*p == '\0')
				trailing = 1;
			continue;
		}
		if (nseg >= 256)
		{
			b->failed = 1;
			return;
		}
		segs[nseg] = s;
		lens[nseg] = n;
		nseg++;
	}
	if (nseg == 0)
	{
		buf_putc(b, '/');
		return;
	}
	for (int i = 0; i < nseg; i++)
	{
		buf_putc(b, '/');
		buf_uri_encode(b, segs[i], lens[i], 0);
	}
	if (trailing)
		buf_putc(b, '/');
}

typedef struct QParam
{
	char	   *k;				/* encoded */
	char	   *v;				/* encoded */
} QParam;

static int
qparam_cmp(const void *a, const void *b)
{
	const QParam *x = a;
	const QParam *y = b;
	int			c = strcmp(x->k, y->k);

	return c ? c : strcmp(x->v, y->v);
}

/* "k=v&k=v" decoded, re-encoded, sorted by key then value */
static void
canonical_query(Buf *b, const char *query)
{
	QParam	   *ps = NULL;
	int			np = 0;
	int			cap = 0;
	const char *p = query;

	if (query == NULL || *query == '\0')
		return;
	while (*p)
	{
		const char *s = p;
		const char *eq = NULL;
		size_t		kl,
					vl;
		char	   *kd,
				   *vd;
		Buf			kb = {0},
					vb = {0};

		while (*p && *p != '&')
		{
			if (*p == '=' && eq == NULL)
				eq = p;
			p++;
		}
		if (p == s)
		{
			if (*p)
				p++;
			continue;
		}
		kd = uri_decode(s, (size_t) ((eq ? eq : p) - s), &kl);
		vd = eq ? uri_decode(eq + 1, (size_t) (p - eq - 1), &vl) : (vl = 0, strdup(""));
		if (kd == NULL || vd == NULL)
		{
			free(kd);
			free(vd);
			b->failed = 1;
			break;
		}
		buf_uri_encode(&kb, kd, kl, 0);
		buf_uri_encode(&vb, vd, vl, 0);
		buf_puts(&kb, "");
		buf_puts(&vb, "");
		free(kd);
		free(vd);
		if (kb.failed || vb.failed)
		{
			free(kb.data);
			free(vb.data);
			b->failed = 1;
			break;
		}
		if (np == cap)
		{
			QParam	   *n;

			cap = cap ? cap * 2 : 8;
			n = realloc(ps, sizeof(QParam) * cap);
			if (n == NULL)
			{
				free(kb.data);
				free(vb.data);
				b->failed = 1;
				break;
			}
			ps = n;
		}
		ps[np].k = kb.data;
		ps[np].v = vb.data;
		np++;
		if (*p)
			p++;
	}
	if (!b->failed)
	{
		qsort(ps, np, sizeof(QParam), qparam_cmp);
		for (int i = 0; i < np; i++)
		{
			if (i > 0)
				buf_putc(b, '&');
			buf_puts(b, ps[i].k);
			buf_putc(b, '=');
			buf_puts(b, ps[i].v);
		}
	}
	for (int i = 0; i < np; i++)
	{
		free(ps[i].k);
		free(ps[i].v);
	}
	free(ps);
}

typedef struct CHeader
{
	char	   *name;			/* lower case */
	char	   *value;			/* trimmed, collapsed; repeats joined by ',' */
} CHeader;

static int
cheader_cmp(const void *a, const void *b)
{
	return strcmp(((const CHeader *) a)->name, ((const CHeader *) b)->name);
}

/* value trimmed, runs of white space collapsed to one space */
static char *
trim_value(const char *v)
{
	char	   *out = malloc(strlen(v) + 1);
	size_t		j = 0;
	int			space = 0;

	if (out == NULL)
		return NULL;
	while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
		v++;
	for (; *v; v++)
	{
		if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
			space = 1;
		else
		{
			if (space && j > 0)
				out[j++] = ' ';
			space = 0;
			out[j++] = *v;
		}
	}
	out[j] = '\0';
	return out;
}

int
kms_sigv4_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (int i = 0; i < 32; i++)
	{
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

static int
hmac256(const uint8_t *key, size_t keylen, const char *msg, size_t msglen, uint8_t out[32])
{
	unsigned int olen = 0;

	if (HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) msg, msglen,
			 out, &olen) == NULL || olen != 32)
		return -1;
	return 0;
}

int
kms_sigv4_signing_key(const char *secret, const char *date8, const char *region,
					  const char *service, uint8_t out[32])
{
	size_t		slen = strlen(secret);
	uint8_t    *k0 = malloc(slen + 4);
	uint8_t		k1[32],
				k2[32],
				k3[32];
	int			rc = -1;

	if (k0 == NULL)
		return -1;
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, slen);
	if (hmac256(k0, slen + 4, date8, strlen(date8), k1) == 0 &&
		hmac256(k1, 32, region, strlen(region), k2) == 0 &&
		hmac256(k2, 32, service, strlen(service), k3) == 0 &&
		hmac256(k3, 32, "aws4_request", 12, out) == 0)
		rc = 0;
	OPENSSL_cleanse(k0, slen + 4);
	OPENSSL_cleanse(k1, 32);
	OPENSSL_cleanse(k2, 32);
	OPENSSL_cleanse(k3, 32);
	free(k0);
	return rc;
}

void
kms_sigv4_free(KmsSigV4Result *res)
{
	free(res->canonical_request);
	free(res->string_to_sign);
	free(res->signed_headers);
	free(res->signature);
	free(res->authorization);
	memset(res, 0, sizeof(*res));
}

int
kms_sigv4_sign(const char *method, const char *path, const char *query,
			   const KmsSigV4Header *hdrs, int nhdrs,
			   const uint8_t *payload, size_t payload_len,
			   const char *amzdate, const char *region, const char *service,
			   const char *access_key_id, const char *secret_access_key,
			   int normalize, KmsSigV4Result *res)
{
	Buf			creq = {0},
				sts = {0},
				sh = {0},
				authz = {0};
	CHeader    *ch = NULL;
	int			nch = 0;
	char		payload_hash[65],
				creq_hash[65],
				date8[9],
				sig[65];
	uint8_t		kSigning[32],
				mac[32];
	int			ok = 0;

	memset(res, 0, sizeof(*res));
	if (strlen(amzdate) != 16 || amzdate[8] != 'T')
		return -1;
	memcpy(date8, amzdate, 8);
	date8[8] = '\0';

	if (kms_sigv4_sha256_hex(payload ? payload : (const uint8_t *) "", payload_len,
							 payload_hash) != 0)
		return -1;

	/* headers: lower-cased, repeats merged in order, sorted by name */
	ch = calloc(nhdrs > 0 ? nhdrs : 1, sizeof(CHeader));
	if (ch == NULL)
		return -1;
	for (int i = 0; i < nhdrs; i++)
	{
		char	   *name = strdup(hdrs[i].name);
		char	   *val = trim_value(hdrs[i].value ? hdrs[i].value : "");
		int			j;

		if (name == NULL || val == NULL)
		{
			free(name);
			free(val);
			goto done;
		}
		for (char *c = name; *c; c++)
			*c = (char) tolower((unsigned char) *c);
		for (j = 0; j < nch; j++)
			if (strcmp(ch[j].name, name) == 0)
				break;
		if (j < nch)
		{
			size_t		l1 = strlen(ch[j].value),
						l2 = strlen(val);
			char	   *m = malloc(l1 + l2 + 2);

			if (m == NULL)
			{
				free(name);
				free(val);
				goto done;
			}
			memcpy(m, ch[j].value, l1);
			m[l1] = ',';
			memcpy(m + l1 + 1, val, l2 + 1);
			free(ch[j].value);
			ch[j].value = m;
			free(name);
			free(val);
		}
		else
		{
			ch[nch].name = name;
			ch[nch].value = val;
			nch++;
		}
	}
	qsort(ch, nch, sizeof(CHeader), cheader_cmp);

	buf_puts(&creq, method);
	buf_putc(&creq, '\n');
	canonical_uri(&creq, path, normalize);
	buf_putc(&creq, '\n');
	canonical_query(&creq, query);
	buf_putc(&creq, '\n');
	for (int i = 0; i < nch; i++)
	{
		buf_puts(&creq, ch[i].name);
		buf_putc(&creq, ':');
		buf_puts(&creq, ch[i].value);
		buf_putc(&creq, '\n');
		if (i > 0)
			buf_putc(&sh, ';');
		buf_puts(&sh, ch[i].name);
	}
	buf_puts(&sh, "");
	buf_putc(&creq, '\n');
	buf_puts(&creq, sh.data ? sh.data : "");
	buf_putc(&creq, '\n');
	buf_puts(&creq, payload_hash);
	if (creq.failed || sh.failed)
		goto done;

	if (kms_sigv4_sha256_hex((const uint8_t *) creq.data, creq.len, creq_hash) != 0)
		goto done;
	buf_puts(&sts, "AWS4-HMAC-SHA256\n");
	buf_puts(&sts, amzdate);
	buf_putc(&sts, '\n');
	buf_puts(&sts, date8);
	buf_putc(&sts, '/');
	buf_puts(&sts, region);
	buf_putc(&sts, '/');
	buf_puts(&sts, service);
	buf_puts(&sts, "/aws4_request\n");
	buf_puts(&sts, creq_hash);
	if (sts.failed)
		goto done;

	if (kms_sigv4_signing_key(secret_access_key, date8, region, service, kSigning) != 0)
		goto done;
	if (hmac256(kSigning, 32, sts.data, sts.len, mac) != 0)
		goto done;
	for (int i = 0; i < 32; i++)
		snprintf(sig + 2 * i, 3, "%02x", mac[i]);

	buf_puts(&authz, "AWS4-HMAC-SHA256 Credential=");
	buf_puts(&authz, access_key_id);
	buf_putc(&authz, '/');
	buf_puts(&authz, date8);
	buf_putc(&authz, '/');
	buf_puts(&authz, region);
	buf_putc(&authz, '/');
	buf_puts(&authz, service);
	buf_puts(&authz, "/aws4_request, SignedHeaders=");
	buf_puts(&authz, sh.data);
	buf_puts(&authz, ", Signature=");
	buf_puts(&authz, sig);
	if (authz.failed)
		goto done;

	res->canonical_request = creq.data;
	res->string_to_sign = sts.data;
	res->signed_headers = sh.data;
	res->signature = strdup(sig);
	res->authorization = authz.data;
	creq.data = sts.data = sh.data = authz.data = NULL;
	ok = res->signature != NULL;

done:
	OPENSSL_cleanse(kSigning, sizeof(kSigning));
	OPENSSL_cleanse(mac, sizeof(mac));
	for (int i = 0; i < nch; i++)
	{
		free(ch[i].name);
		free(ch[i].value);
	}
	free(ch);
	free(creq.data);
	free(sts.data);
	free(sh.data);
	free(authz.data);
	if (!ok)
	{
		kms_sigv4_free(res);
		return -1;
	}
	return 0;
}
