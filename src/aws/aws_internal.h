/*-------------------------------------------------------------------------
 *
 * aws_internal.h
 *	  Inside the aws layer: credentials (aws_creds.c), plain HTTP requests
 *	  for the credential sources (aws_http.c), endpoints (aws_config.c).
 *
 * IDENTIFICATION
 *	  src/aws/aws_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_AWS_INTERNAL_H
#define PG_KMS_AWS_INTERNAL_H

#include "aws/aws_client.h"
#include "datatype/timestamp.h"

typedef struct KmsAwsCredentials
{
	char	   *access_key_id;	/* TopMemoryContext; wiped when dropped */
	char	   *secret_access_key;
	char	   *session_token;	/* NULL if none */
	TimestampTz expiration;		/* 0: does not expire */
	const char *source;			/* "environment", "web identity", ... */
} KmsAwsCredentials;

/*
 * The current credentials (cached; read again 5 minutes before they
 * expire).  NULL with *why set (no secret in it) if the chain has none.
 */
extern const KmsAwsCredentials *KmsAwsGetCredentials(char *why, size_t whylen);

/* The endpoint URL for a service (palloc'd), or NULL with *why set. */
extern char *KmsAwsEndpoint(const char *service, const char *region,
							char *why, size_t whylen);
/* May a URL be used: https, or http to a loopback host only. */
extern bool KmsAwsUrlAllowed(const char *url, bool *is_loopback);

/* One plain HTTP(S) exchange (credential sources): no signing, no retry. */
typedef struct KmsAwsHttpHeader
{
	const char *name;
	const char *value;
} KmsAwsHttpHeader;

extern bool KmsAwsHttp(const char *method, const char *url,
					   const KmsAwsHttpHeader *hdrs, int nhdrs,
					   const char *body, long timeout_ms,
					   StringInfo out, long *status, char *why, size_t whylen);

/* aws_json.c */
extern bool KmsAwsJsonIsObject(const char *json, size_t len);
extern bool KmsAwsJsonGetNumber(const char *json, const char *member, double *out);

/* ISO 8601 "2026-12-02T18:00:00Z" to a timestamp, 0 if unparsable */
extern TimestampTz KmsAwsParseIso8601(const char *s);

#endif							/* PG_KMS_AWS_INTERNAL_H */
