/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  The key store's side of the rotation worker's jobs: automatic key
 *	  rotation (one due key at a time) and the end of deletion windows
 *	  (crypto-shredding: the material of every version is destroyed, aliases
 *	  and grants go).  rotation/jobs.c runs them in the worker's
 *	  transactions.
 *
 * Locking: the key's row is taken FOR UPDATE SKIP LOCKED, so two workers,
 * or a worker and kms_rotation_run_job(), never take the same key.
 *
 * IDENTIFICATION
 *	  src/keystore/lifecycle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/uuid.h"

#include "keystore/keystore.h"

/* Automatic key rotation: one key whose NextRotationDate has come. */
bool
KmsKeysRotateOneDue(void)
{
	KmsCatalogState st;
	uint8		key_id[KMS_KEY_ID_LEN];
	KmsKeyInfo	key;
	KmsKeyInfo *k;
	Oid			t = UUIDOID;
	Datum		v;
	bool		isnull;
	int32		version;
	char		kid[37];

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT key_id FROM kms.key WHERE rotation_enabled AND key_state = 'Enabled' "
				"AND next_rotation_date <= pg_catalog.now() "
				"ORDER BY next_rotation_date, key_id LIMIT 1 FOR UPDATE SKIP LOCKED",
				0, NULL, NULL, NULL, false, SPI_OK_SELECT) != 1)
	{
		KmsCatalogExit(&st);
		return false;
	}
	memcpy(key_id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull))->data,
		   KMS_KEY_ID_LEN);
	KmsCatalogExit(&st);

	k = KmsLookupKeyById(key_id);
	if (k == NULL)
		elog(ERROR, "key vanished during automatic rotation");
	key = *k;
	version = KmsRotateKeyMaterial(&key, "AUTOMATIC");

	v = KmsUuidDatum(key_id);
	KmsCatalogEnter(&st);
	/* the schedule keeps its anchor; a key that was disabled past it restarts from now */
	KmsExec("UPDATE kms.key SET next_rotation_date = CASE "
			"WHEN next_rotation_date + pg_catalog.make_interval(days => COALESCE(rotation_period_days, 365)) > pg_catalog.now() "
			"THEN next_rotation_date + pg_catalog.make_interval(days => COALESCE(rotation_period_days, 365)) "
			"ELSE pg_catalog.now() + pg_catalog.make_interval(days => COALESCE(rotation_period_days, 365)) END "
			"WHERE key_id = $1",
			1, &t, &v, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
	KmsInvalidateAtCommit();
	KmsUuidToString(key_id, kid);
	KmsAudit("RotateKey", kid, version, "success");
	return true;
}

/*
 * Deletion windows: one key whose PendingDeletion window has passed
 * becomes Deleted and its material is destroyed (every version's wrapped
 * material is set NULL; aliases and grants go).  False if none is due.
 */
bool
KmsKeysDestroyOneExpired(void)
{
	KmsCatalogState st;
	uint8		key_id[KMS_KEY_ID_LEN];
	Oid			t = UUIDOID;
	Datum		v;
	bool		isnull;
	char		kid[37];

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT key_id FROM kms.key WHERE key_state = 'PendingDeletion' "
				"AND deletion_date <= pg_catalog.now() "
				"ORDER BY deletion_date, key_id LIMIT 1 FOR UPDATE SKIP LOCKED",
				0, NULL, NULL, NULL, false, SPI_OK_SELECT) == 1)
	{
		memcpy(key_id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull))->data,
			   KMS_KEY_ID_LEN);
		v = KmsUuidDatum(key_id);
		KmsExec("UPDATE kms.key SET key_state = 'Deleted', rotation_enabled = false, "
				"next_rotation_date = NULL WHERE key_id = $1",
				1, &t, &v, NULL, false, SPI_OK_UPDATE);
		KmsExec("UPDATE kms.key_version SET material = NULL WHERE key_id = $1",
				1, &t, &v, NULL, false, SPI_OK_UPDATE);
		KmsExec("DELETE FROM kms.alias WHERE key_id = $1", 1, &t, &v, NULL, false, SPI_OK_DELETE);
		KmsExec("DELETE FROM kms.grants WHERE key_id = $1", 1, &t, &v, NULL, false, SPI_OK_DELETE);
		KmsCatalogExit(&st);
		KmsForgetKeyAtCommit(key_id);
		KmsInvalidateAtCommit();
		KmsUuidToString(key_id, kid);
		KmsAudit("DeleteKey", kid, 0, "success");
		return true;
	}
	KmsCatalogExit(&st);
	return false;
}
