/*-------------------------------------------------------------------------
 *
 * master.c
 *	  kms_rotate_master_key()'s rewrap of kms.key_version: every key version
 *	  of this database not yet under the target master key is rewrapped in
 *	  this transaction.  The provider that runs holds the target (the local
 *	  provider: a master key and kms.master; aws: pg_kms.aws_kms_key_id)
 *	  and does the unwrapping and wrapping (KmsProviderRewrapBegin,
 *	  KmsProviderRewrap, KmsProviderRewrapEnd, provider/aws_rewrap.c), so
 *	  the same call migrates between providers; the key store writes the
 *	  rows (material and provider), so it is the one layer writing
 *	  kms.key_version.
 *
 *	  May call: provider/, catalog/, common/.
 *
 * Locking: kms.master FOR UPDATE (KmsProviderRewrapBegin), then every version
 * row with material FOR UPDATE, so no version is wrapped under a master key
 * this rotation is replacing.
 *
 * IDENTIFICATION
 *	  src/keystore/master.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "keystore/keystore.h"
#include "provider/provider.h"

/*
 * Rewrap one row of kms.key_version (key_id, version, material) under the
 * rotation's target unless it is there already; true if it was rewrapped.
 * Inside KmsCatalogEnter.
 */
static bool
RewrapRow(HeapTuple tup, TupleDesc desc)
{
	int			rc;
	bool		isnull;
	Datum		kid = SPI_getbinval(tup, desc, 1, &isnull);
	int32		version = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	bytea	   *w = DatumGetByteaPP(SPI_getbinval(tup, desc, 3, &isnull));
	bytea	   *neww;
	Datum		args[4];
	Oid			types[4] = {BYTEAOID, UUIDOID, INT4OID, TEXTOID};

	neww = KmsProviderRewrap((uint8 *) DatumGetPointer(kid), (uint32) version, w);
	if (neww == NULL)
		return false;
	args[0] = PointerGetDatum(neww);
	args[1] = kid;
	args[2] = Int32GetDatum(version);
	args[3] = CStringGetTextDatum(KmsProviderName());
	rc = SPI_execute_with_args("UPDATE kms.key_version SET material = $1, provider = $4 WHERE key_id = $2 AND version = $3",
							   4, types, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute failed: %d", rc);
	return true;
}

/*
 * kms_rotate_master_key([new_master_key_file]): rewrap every version under
 * the target (see KmsProviderRewrapBegin); the number rewrapped.  The caller
 * invalidates caches.
 */
int
KmsRotateMasterKey(const char *path)
{
	KmsCatalogState st;
	int			rc;
	int			count = 0;
	uint64		n;
	SPITupleTable *tt;

	KmsProviderRewrapBegin(path);
	KmsCatalogEnter(&st);
	rc = SPI_execute("SELECT key_id, version, material FROM kms.key_version WHERE material IS NOT NULL FOR UPDATE", false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %d", rc);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
		if (RewrapRow(tt->vals[i], tt->tupdesc))
			count++;
	KmsCatalogExit(&st);
	KmsProviderRewrapEnd();
	return count;
}
