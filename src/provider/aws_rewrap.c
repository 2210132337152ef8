/*-------------------------------------------------------------------------
 *
 * aws_rewrap.c
 *	  kms_rotate_master_key() for whichever provider runs: the provider's
 *	  side of the rewrap that keystore/master.c drives.  Under `local` it is
 *	  the master-key rotation (local.c: KmsLocalRewrap*), which also moves
 *	  material wrapped by AWS KMS back under the master key (aws -> local).
 *	  Under `aws` every version not yet under pg_kms.aws_kms_key_id (local
 *	  wraps, or another AWS KMS key's) is unwrapped and wrapped again with
 *	  Encrypt under it, with the same encryption context (local -> aws, or
 *	  a change of AWS KMS key).
 *
 * Locking: kms.master FOR UPDATE for the transaction, as the local
 * rotation takes it, so two migrations or a rotation do not interleave.
 * AWS calls are made with no LWLock held.
 *
 * IDENTIFICATION
 *	  src/provider/aws_rewrap.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/memutils.h"

#include "catalog/kms_catalog.h"
#include "provider/aws_internal.h"

static char *target_arn = NULL;	/* under aws: the key rewrapped to */

static bool
aws_target(void)
{
	return kms_provider_name != NULL && strcmp(kms_provider_name, "aws") == 0;
}

void
KmsProviderRewrapBegin(const char *path)
{
	KmsCatalogState st;
	int			rc;

	if (!aws_target())
	{
		KmsLocalRewrapBegin(path);
		return;
	}
	if (path != NULL)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("ValidationException: a master key file applies to the local provider only"),
				 errhint("Under pg_kms.provider = 'aws', kms_rotate_master_key() without an argument rewraps every key version under pg_kms.aws_kms_key_id.")));
	KmsCatalogEnter(&st);
	rc = SPI_execute("SELECT 1 FROM kms.master WHERE id = 1 FOR UPDATE", false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %d", rc);
	KmsCatalogExit(&st);
	target_arn = MemoryContextStrdup(TopTransactionContext, KmsAwsConfiguredKeyArn());
}

bytea *
KmsProviderRewrap(const uint8 *key_id, uint32 version, const bytea *w)
{
	uint8		material[KMS_MAX_MATERIAL_LEN];
	size_t		len;
	bytea	   *volatile neww = NULL;

	if (!aws_target())
		return KmsLocalRewrap(key_id, version, w);

	if (KmsAwsIsWrapped(w))
	{
		char	   *arn = KmsAwsWrappedArn(w);

		if (arn != NULL && target_arn != NULL && strcmp(arn, target_arn) == 0)
			return NULL;
		KmsAwsUnwrapMaterial(key_id, version, w, material, sizeof(material), &len);
	}
	else
		KmsLocalUnwrapMaterial(key_id, version, w, material, sizeof(material), &len);
	PG_TRY();
	{
		neww = KmsAwsWrapMaterial(key_id, version, material, len);
	}
	PG_FINALLY();
	{
		explicit_bzero(material, sizeof(material));
	}
	PG_END_TRY();
	return neww;
}

void
KmsProviderRewrapEnd(void)
{
	KmsCatalogState st;
	int			rc;

	if (!aws_target())
	{
		KmsLocalRewrapEnd();
		return;
	}
	KmsCatalogEnter(&st);
	rc = SPI_execute("UPDATE kms.master SET provider = 'aws', rotated = pg_catalog.now() WHERE id = 1",
					 false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute failed: %d", rc);
	KmsCatalogExit(&st);
	target_arn = NULL;
}

const char *
KmsProviderName(void)
{
	return KmsGetProvider()->name;
}
