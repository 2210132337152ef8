/*-------------------------------------------------------------------------
 *
 * master.c
 *	  kms_rotate_master_key()'s rewrap of kms.key_version: every key version
 *	  of this database not yet under the target master key is rewrapped in
 *	  this transaction.  The local provider (provider/local.c) holds the
 *	  target key and kms.master and does the unwrapping and wrapping
 *	  (KmsLocalRewrapBegin, KmsLocalRewrap, KmsLocalRewrapEnd); the key
 *	  store writes the rows, so it is the one layer writing kms.key_version.
 *
 *	  May call: provider/, catalog/, common/.
 *
 * Locking: kms.master FOR UPDATE (KmsLocalRewrapBegin), then every version
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
	Datum		args[3];
	Oid			types[3] = {BYTEAOID, UUIDOID, INT4OID};

	neww = KmsLocalRewrap((uint8 *) DatumGetPointer(kid), (uint32) version, w);
	if (neww == NULL)
		return false;
	args[0] = PointerGetDatum(neww);
	args[1] = kid;
	args[2] = Int32GetDatum(version);
	rc = SPI_execute_with_args("UPDATE kms.key_version SET material = $1 WHERE key_id = $2 AND version = $3",
							   3, types, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute failed: %d", rc);
	return true;
}

/*
 * kms_rotate_master_key([new_master_key_file]): rewrap every version under
 * the target (see KmsLocalRewrapBegin); the number rewrapped.  The caller
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

	KmsLocalRewrapBegin(path);
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
	KmsLocalRewrapEnd();
	return count;
}
