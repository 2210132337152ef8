/*-------------------------------------------------------------------------
 *
 * aws_internal.h
 *	  Inside the provider layer: the aws provider (aws.c) and what the
 *	  local provider and the migration (aws_rewrap.c) use of it.
 *
 * IDENTIFICATION
 *	  src/provider/aws_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_PROVIDER_AWS_INTERNAL_H
#define PG_KMS_PROVIDER_AWS_INTERNAL_H

#include "provider/provider.h"

/* first byte of an aws-wrapped form (the local form: KMS_WRAP_FORMAT_V1) */
#define KMS_AWS_WRAP_FORMAT 0xA1

extern const KmsProvider KmsAwsProvider;

extern bool KmsAwsIsWrapped(const bytea *w);
extern char *KmsAwsWrappedArn(const bytea *w);
extern void KmsAwsUnwrapMaterial(const uint8 *key_id, uint32 version, const bytea *wrapped,
								 uint8 *out, size_t outcap, size_t *outlen);
extern bytea *KmsAwsWrapMaterial(const uint8 *key_id, uint32 version,
								 const uint8 *material, size_t len);
extern char *KmsAwsConfiguredKeyArn(void);

/* local.c: unwrap a local-wrapped form (errors out on failure) */
extern void KmsLocalUnwrapMaterial(const uint8 *key_id, uint32 version, const bytea *wrapped,
								   uint8 *out, size_t outcap, size_t *outlen);

#endif							/* PG_KMS_PROVIDER_AWS_INTERNAL_H */
