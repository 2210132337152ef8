/*-------------------------------------------------------------------------
 *
 * keyring.c
 *	  The keyring: earlier master keys, so that key material wrapped under
 *	  any of them (a dump or base backup taken before one or more master
 *	  key rotations) is read, and kms_rotate_master_key() rewraps it under
 *	  the current key.  pg_kms.master_keyring_directory names a directory
 *	  of key files, one key per file (the rules of pg_kms.master_key_file:
 *	  regular, mode 0600 or stricter, outside the data directory, 32 raw
 *	  bytes or 64 hex digits); files whose names begin with "." are
 *	  skipped.  Each key is known by its key check value (KCV): kms.master
 *	  of a database names the key that wrapped its material, and errors
 *	  name KCVs, never keys.  pg_kms.previous_master_key_file stays one
 *	  more entry (the slot's previous key, local.c).
 *
 *	  The keys are read once, in the postmaster, into the master slot (the
 *	  shared key cache's locked, core-dump-excluded region), and kept with
 *	  the current key across crash restarts (local.c).  At most
 *	  KMS_KEYRING_MAX keys (provider.h says why); more are left out with
 *	  a warning naming the files.
 *
 * Locking: the slot's ring is written only in the postmaster at shared
 * memory setup; readers copy one key at a time under the pg_kms LWLock in
 * shared mode and wipe their copy after use.
 *
 * IDENTIFICATION
 *	  src/provider/keyring.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>

#include "lib/stringinfo.h"
#include "storage/fd.h"

#include "provider/local_internal.h"
#include "provider/master_key_source.h"

static int
KmsCompareNames(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Read the directory's key files (in name order) into the slot's ring. */
void
KmsKeyringLoad(KmsMasterSlot *m)
{
	DIR		   *dir;
	struct dirent *de;
	char	  **names = NULL;
	int			nnames = 0;
	int			cap = 0;
	StringInfoData kcvs;
	StringInfoData skipped;

	for (int i = 0; i < KMS_KEYRING_MAX; i++)
	{
		kms_cleanse(m->ring_key[i], KMS_AES_KEY_LEN);
		memset(m->ring_kcv[i], 0, KMS_KCV_LEN);
	}
	m->nring = 0;
	if (kms_master_keyring_directory == NULL || kms_master_keyring_directory[0] == '\0')
		return;

	dir = AllocateDir(kms_master_keyring_directory);
	if (dir == NULL)
	{
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("pg_kms: could not open pg_kms.master_keyring_directory \"%s\": %m",
						kms_master_keyring_directory),
				 errdetail("No earlier master key is loaded.")));
		return;
	}
	while ((de = ReadDirExtended(dir, kms_master_keyring_directory, WARNING)) != NULL)
	{
		if (de->d_name[0] == '.')
			continue;
		if (nnames == cap)
		{
			cap = cap ? cap * 2 : 16;
			names = names ? repalloc(names, cap * sizeof(char *)) : palloc(cap * sizeof(char *));
		}
		names[nnames++] = pstrdup(de->d_name);
	}
	FreeDir(dir);
	if (nnames > 1)
		qsort(names, nnames, sizeof(char *), KmsCompareNames);

	initStringInfo(&kcvs);
	initStringInfo(&skipped);
	for (int i = 0; i < nnames; i++)
	{
		char	   *path = psprintf("%s/%s", kms_master_keyring_directory, names[i]);
		uint8		key[KMS_AES_KEY_LEN];
		uint8		kcv[KMS_KCV_LEN];
		char	   *err = KmsReadKeyFileAs("keyring file", path, key);
		bool		dup = false;

		if (err == NULL && kms_master_kcv(key, kcv) != 0)
			err = pstrdup("could not compute its key check value");
		if (err)
		{
			ereport(WARNING, (errmsg("pg_kms: %s; it is not in the keyring", err)));
			kms_cleanse(key, sizeof(key));
			continue;
		}
		for (int j = 0; j < m->nring; j++)
			if (kms_const_time_eq(m->ring_kcv[j], kcv, KMS_KCV_LEN))
				dup = true;
		if (!dup && m->nring >= KMS_KEYRING_MAX)
		{
			appendStringInfo(&skipped, "%s\"%s\"", skipped.len ? ", " : "", names[i]);
			dup = true;
		}
		if (!dup)
		{
			char		hex[2 * KMS_KCV_LEN + 1];

			memcpy(m->ring_key[m->nring], key, KMS_AES_KEY_LEN);
			memcpy(m->ring_kcv[m->nring], kcv, KMS_KCV_LEN);
			m->nring++;
			KmsHexEncode(kcv, KMS_KCV_LEN, hex);
			hex[2 * KMS_KCV_LEN] = '\0';
			appendStringInfo(&kcvs, "%s%s", kcvs.len ? ", " : "", hex);
		}
		kms_cleanse(key, sizeof(key));
	}
	if (skipped.len)
		ereport(WARNING,
				(errmsg("pg_kms: the keyring holds at most %d master keys; left out: %s",
						KMS_KEYRING_MAX, skipped.data)));
	ereport(LOG,
			(errmsg("pg_kms: %d earlier master key(s) loaded from pg_kms.master_keyring_directory",
					m->nring),
			 m->nring ? errdetail("Key check values: %s.", kcvs.data) : 0));
}

/* Copy ring key i out (false past the end). */
static bool
KmsCopyRingKey(int i, uint8 *key)
{
	KmsMasterSlot *m = KmsSharedMaster();
	bool		ok;

	LWLockAcquire(KmsMasterLock(), LW_SHARED);
	ok = i < m->nring;
	if (ok)
		memcpy(key, m->ring_key[i], KMS_AES_KEY_LEN);
	LWLockRelease(KmsMasterLock());
	return ok;
}

int
KmsKeyringUnwrap(const uint8 *key_id, uint32 version, const uint8 *wrapped,
				 size_t wrappedlen, uint8 *out, size_t outcap, size_t *outlen)
{
	uint8		key[KMS_AES_KEY_LEN];
	int			rc = -1;

	for (int i = 0; rc != 0 && KmsCopyRingKey(i, key); i++)
		rc = kms_unwrap(key, key_id, version, wrapped, wrappedlen, out, outcap, outlen);
	kms_cleanse(key, sizeof(key));
	return rc;
}

bool
KmsKeyringHasKcv(const uint8 *kcv)
{
	KmsMasterSlot *m = KmsSharedMaster();
	bool		found = false;

	LWLockAcquire(KmsMasterLock(), LW_SHARED);
	if (m->prev_loaded && kms_const_time_eq(m->prev_kcv, kcv, KMS_KCV_LEN))
		found = true;
	for (int i = 0; !found && i < m->nring; i++)
		if (kms_const_time_eq(m->ring_kcv[i], kcv, KMS_KCV_LEN))
			found = true;
	LWLockRelease(KmsMasterLock());
	return found;
}
