/*-------------------------------------------------------------------------
 *
 * sigv4.h
 *	  AWS Signature Version 4 (AWS4-HMAC-SHA256): the canonical request,
 *	  the string to sign, the signing key and the Authorization value.
 *	  Plain C over OpenSSL with no PostgreSQL headers, so the stand-alone
 *	  vector test (test/aws/sigv4_vectors.c, make check-standalone) links
 *	  it as it is.  Results are malloc'd; kms_sigv4_free() wipes and frees.
 *
 * IDENTIFICATION
 *	  src/aws/sigv4.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_SIGV4_H
#define PG_KMS_SIGV4_H

#include <stddef.h>
#include <stdint.h>

typedef struct KmsSigV4Header
{
	const char *name;			/* any case; lower-cased when signed */
	const char *value;			/* trimmed, inner runs of spaces collapsed */
} KmsSigV4Header;

typedef struct KmsSigV4Result
{
	char	   *canonical_request;
	char	   *string_to_sign;
	char	   *signed_headers;
	char	   *signature;		/* 64 hex digits */
	char	   *authorization;	/* the Authorization header's value */
} KmsSigV4Result;

/*
 * Sign a request.  path: the request path as sent (not yet URI-encoded
 * for signing; normalize: remove dot segments and empty segments, as every
 * service but S3 does); query: the raw query string without '?', or NULL;
 * every header in hdrs is signed (Host and X-Amz-Date must be among them;
 * X-Amz-Security-Token too for session credentials).  amzdate is
 * YYYYMMDD'T'HHMMSS'Z'.  Returns 0 on success, -1 on failure (out of
 * memory, bad input, OpenSSL), with *res zeroed.
 */
extern int	kms_sigv4_sign(const char *method, const char *path, const char *query,
						   const KmsSigV4Header *hdrs, int nhdrs,
						   const uint8_t *payload, size_t payload_len,
						   const char *amzdate, const char *region,
						   const char *service, const char *access_key_id,
						   const char *secret_access_key, int normalize,
						   KmsSigV4Result *res);
extern void kms_sigv4_free(KmsSigV4Result *res);

/* kSigning for (secret, yyyymmdd, region, service); 0 on success */
extern int	kms_sigv4_signing_key(const char *secret_access_key, const char *date8,
								  const char *region, const char *service,
								  uint8_t out[32]);

/* hex(SHA-256(data)) into out (65 bytes); 0 on success */
extern int	kms_sigv4_sha256_hex(const uint8_t *data, size_t len, char out[65]);

#endif							/* PG_KMS_SIGV4_H */
