/*-------------------------------------------------------------------------
 *
 * local.c
 *	  The `local` key provider: key-version material is wrapped with
 *	  AES-256-GCM under a master key that is read in the postmaster, from
 *	  pg_kms.master_key_file or pg_kms.master_key_command.  The master
 *	  key never enters SQL.  A missing or bad master key never stops the
 *	  server: it is reported at start and by every call that needs it, and
 *	  the first call that needs it tries the settings again (retry.c).
 *
 *	  Material wrapped by the aws provider (aws.c, marked) is handed to it,
 *	  so a database keeps working while it migrates between providers; under
 *	  pg_kms.provider = 'aws' a master key is optional and its absence is
 *	  not reported at start.
 *
 *	  Reading the key from the file or command (and the settings that name
 *	  them) is master_key_source.c; earlier master keys (the keyring, and
 *	  pg_kms.previous_master_key_file) unwrap what they wrapped
 *	  (keyring.c).
 *
 *	  The master key lives in the shared key cache region (excluded from
 *	  core dumps), handed over by the cache at startup (KmsProviderShmemAttach).  kms.master holds its key check value (KCV), so a wrong
 *	  key is named as such instead of failing as garbage.
 *
 *	  Crash restarts: the postmaster keeps its own copy of the master slot
 *	  (current and previous key) in a private page that is locked in
 *	  memory, excluded from core dumps, zeroed in children at fork and
 *	  wiped at exit.  It is taken at start and again from the old segment
 *	  just before a crash restart destroys it (checked against the KCVs,
 *	  so a torn or scribbled slot is ignored), and the new segment gets it
 *	  back instead of reading the settings again: a key file removed or
 *	  re-permissioned since start, or a kms_rotate_master_key() since start,
 *	  does not take the keys away until a full restart.
 *
 *	  The cluster's KCV: pg_kms_master_kcv in the data directory records
 *	  the KCV of the master key the cluster's databases use, written when
 *	  the first database initialises (its first key material) and at the
 *	  commit of kms_rotate_master_key().  A database never initialises
 *	  under a master key with another KCV, so a wrong key read at start
 *	  cannot start a second generation of databases.  The file is only
 *	  consulted when a database initialises (never by reads, so a standby
 *	  without it, or with an older one, reads as before); a database whose
 *	  kms.master matches the loaded key proves that key, and its next key
 *	  creation records it if the file is missing or stale; material
 *	  unwrapped under the loaded key records it if the file is missing
 *	  (clusters from before the file existed).
 *
 * Locking: the master slot is read and written under the pg_kms LWLock
 * (cache/cache.c).  Writers of wrapped material hold the kms.master row FOR
 * SHARE, kms_rotate_master_key() holds it FOR UPDATE, so no version is ever
 * wrapped under a master key that a concurrent rotation is replacing; the
 * new key is published in the commit callback, before the row lock is
 * released.  pg_kms_master_kcv is written (temporary file, fsync, rename)
 * holding the LWLock exclusively and only if the slot's current KCV is
 * still the one being recorded, so a rotation and a key creation racing
 * cannot leave the older KCV in it.  The postmaster's copy is touched only
 * by the postmaster, when no child runs.
 *
 * IDENTIFICATION
 *	  src/provider/local.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/file_perm.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "catalog/kms_catalog.h"
#include "provider/aws_internal.h"
#include "provider/local_internal.h"
#include "provider/master_key_source.h"

char	   *kms_provider_name = NULL;

/* The master slot in the key cache's region, and its lock (the "pg_kms" LWLock). */
static KmsMasterSlot *master_slot = NULL;
static LWLock *master_lock = NULL;

/* in the data directory; not secret: a one-way check value */
#define KMS_CLUSTER_KCV_FILE	"pg_kms_master_kcv"

static uint8 pending_master[KMS_AES_KEY_LEN];
static bool pending_master_set = false;
/* the KCV to record in KMS_CLUSTER_KCV_FILE at commit (a rotation) */
static uint8 pending_kcv[KMS_KCV_LEN];
static bool pending_kcv_set = false;

/* The postmaster's copy of the master slot (see the file header). */
typedef struct KmsPostmasterKeys
{
	bool		loaded;
	uint8		key[KMS_AES_KEY_LEN];
	uint8		kcv[KMS_KCV_LEN];
	bool		prev_loaded;
	uint8		prev_key[KMS_AES_KEY_LEN];
	uint8		prev_kcv[KMS_KCV_LEN];
	int			nring;
	uint8		ring_key[KMS_KEYRING_MAX][KMS_AES_KEY_LEN];
	uint8		ring_kcv[KMS_KEYRING_MAX][KMS_KCV_LEN];
} KmsPostmasterKeys;

static KmsPostmasterKeys *pm_keys = NULL;
static Size pm_keys_len = 0;
static KmsMasterSlot *pm_slot = NULL;

static void KmsLocalCheckMasterKey(bool for_write);

static bool
KmsProviderCheck(char **newval, void **extra, GucSource source)
{
	if (strcmp(*newval, "local") == 0 || strcmp(*newval, "aws") == 0)
		return true;
	GUC_check_errdetail("pg_kms.provider must be \"local\" or \"aws\".");
	return false;
}

void
KmsProviderDefineGucs(void)
{
	DefineCustomStringVariable("pg_kms.provider",
							   "Key provider that wraps new key material.",
							   "\"local\" (a master key) or \"aws\" (AWS KMS data keys, pg_kms.aws_kms_key_id).",
							   &kms_provider_name,
							   "local",
							   PGC_POSTMASTER,
							   0,
							   KmsProviderCheck, NULL, NULL);
}

/* The master slot; errors out unless pg_kms was preloaded. */
KmsMasterSlot *
KmsSharedMaster(void)
{
	KmsCheckPreloaded(master_slot != NULL);
	return master_slot;
}

LWLock *
KmsMasterLock(void)
{
	KmsCheckPreloaded(master_lock != NULL);
	return master_lock;
}

/* ----------------------------------------------------------------
 * The postmaster's copy of the master slot
 * ----------------------------------------------------------------
 */
static void
KmsPostmasterKeysWipe(int code, Datum arg)
{
	if (pm_keys)
		kms_cleanse(pm_keys, pm_keys_len);
}

/* One private page, protected as the shared key cache is (cache/cache.c). */
static void
KmsPostmasterKeysAlloc(void)
{
	long		page = sysconf(_SC_PAGESIZE);
	void	   *p;

	pm_keys_len = TYPEALIGN(page, sizeof(KmsPostmasterKeys));
	p = mmap(NULL, pm_keys_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
	{
		ereport(LOG,
				(errmsg("pg_kms: could not keep the master key for crash restarts: %m"),
				 errdetail("After a crash restart the master key is read from the settings again.")));
		return;
	}
#ifdef MADV_WIPEONFORK
	/* children start with zeros: only the postmaster needs this copy */
	(void) madvise(p, pm_keys_len, MADV_WIPEONFORK);
#endif
	if (kms_protect_memory)
	{
#ifdef MADV_DONTDUMP
		if (madvise(p, pm_keys_len, MADV_DONTDUMP) != 0)
			ereport(LOG,
					(errmsg("pg_kms: could not exclude the postmaster's master key copy from core dumps: %m")));
#endif
		if (mlock(p, pm_keys_len) != 0)
			ereport(LOG,
					(errmsg("pg_kms: could not lock the postmaster's master key copy in memory: %m"),
					 errhint("Raise RLIMIT_MEMLOCK for the postgres user to keep key material out of swap.")));
	}
	pm_keys = (KmsPostmasterKeys *) p;
	on_proc_exit(KmsPostmasterKeysWipe, (Datum) 0);
}

/* Does kcv check key?  (Without a lock: the caller knows nobody writes.) */
static bool
KmsKcvChecks(const uint8 *key, const uint8 *kcv)
{
	uint8		k[KMS_KCV_LEN];
	bool		ok;

	ok = kms_master_kcv(key, k) == 0 && kms_const_time_eq(k, kcv, KMS_KCV_LEN);
	kms_cleanse(k, sizeof(k));
	return ok;
}

/*
 * Copy the shared slot into the postmaster's copy.  Runs in the postmaster
 * after loading, and from on_shmem_exit when the segment is about to go (a
 * crash restart, or shutdown), when no child is left to write the slot.
 * A slot whose keys do not match their KCVs (a backend died mid-write, or
 * scribbled on it) is not taken: the copy keeps what it had.
 */
static void
KmsPostmasterKeysSave(int code, Datum arg)
{
	KmsMasterSlot *m = pm_slot;

	if (m == NULL || pm_keys == NULL || !m->loaded)
		return;
	if (!KmsKcvChecks(m->key, m->kcv) ||
		(m->prev_loaded && !KmsKcvChecks(m->prev_key, m->prev_kcv)))
		return;
	memcpy(pm_keys->key, m->key, KMS_AES_KEY_LEN);
	memcpy(pm_keys->kcv, m->kcv, KMS_KCV_LEN);
	pm_keys->prev_loaded = m->prev_loaded;
	if (m->prev_loaded)
	{
		memcpy(pm_keys->prev_key, m->prev_key, KMS_AES_KEY_LEN);
		memcpy(pm_keys->prev_kcv, m->prev_kcv, KMS_KCV_LEN);
	}
	else
	{
		kms_cleanse(pm_keys->prev_key, KMS_AES_KEY_LEN);
		kms_cleanse(pm_keys->prev_kcv, KMS_KCV_LEN);
	}
	pm_keys->nring = 0;
	for (int i = 0; i < m->nring && i < KMS_KEYRING_MAX; i++)
	{
		if (!KmsKcvChecks(m->ring_key[i], m->ring_kcv[i]))
			continue;
		memcpy(pm_keys->ring_key[pm_keys->nring], m->ring_key[i], KMS_AES_KEY_LEN);
		memcpy(pm_keys->ring_kcv[pm_keys->nring], m->ring_kcv[i], KMS_KCV_LEN);
		pm_keys->nring++;
	}
	pm_keys->loaded = true;
}

/*
 * Called in the postmaster while shared memory is set up, at start and
 * again after each crash restart.  The caller holds AddinShmemInitLock.
 * After a crash restart the keys in use before it are put back; the
 * settings are read only when nothing was loaded yet (so a key file fixed
 * after a failed start is picked up by a crash restart as by a restart).
 */
static void
KmsLocalLoadMasterKey(void)
{
	KmsMasterSlot *m = KmsSharedMaster();
	char	   *err;

	m->loaded = false;
	if (!IsUnderPostmaster)
	{
		pm_slot = m;
		if (pm_keys == NULL)
			KmsPostmasterKeysAlloc();
		/* shmem_exit runs (and forgets) this before each crash restart */
		on_shmem_exit(KmsPostmasterKeysSave, (Datum) 0);
		if (pm_keys && pm_keys->loaded)
		{
			memcpy(m->key, pm_keys->key, KMS_AES_KEY_LEN);
			memcpy(m->kcv, pm_keys->kcv, KMS_KCV_LEN);
			m->prev_loaded = pm_keys->prev_loaded;
			if (m->prev_loaded)
			{
				memcpy(m->prev_key, pm_keys->prev_key, KMS_AES_KEY_LEN);
				memcpy(m->prev_kcv, pm_keys->prev_kcv, KMS_KCV_LEN);
			}
			m->nring = pm_keys->nring;
			memcpy(m->ring_key, pm_keys->ring_key, sizeof(m->ring_key));
			memcpy(m->ring_kcv, pm_keys->ring_kcv, sizeof(m->ring_kcv));
			m->error[0] = '\0';
			m->loaded = true;
			ereport(LOG,
					(m->prev_loaded ?
					 errmsg("pg_kms: the master keys (current and previous) in use before the crash restart stay loaded") :
					 errmsg("pg_kms: the master key in use before the crash restart stays loaded"),
					 errdetail("pg_kms.master_key_file, pg_kms.master_key_command, pg_kms.previous_master_key_file and pg_kms.master_keyring_directory are read again only at a full restart.")));
			return;
		}
	}
	/*
	 * Under the aws provider a master key is optional: it unwraps material
	 * still under it (a migration in either direction).
	 */
	if (strcmp(kms_provider_name, "aws") == 0 &&
		(kms_master_key_file == NULL || kms_master_key_file[0] == '\0') &&
		(kms_master_key_command == NULL || kms_master_key_command[0] == '\0'))
	{
		snprintf(m->error, sizeof(m->error),
				 "no master key is configured (pg_kms.provider is \"aws\")");
		return;
	}
	/* earlier keys first: a current key loaded later on demand needs them */
	KmsKeyringLoad(m);
	m->retry_running = false;
	m->retry_failures = 0;
	m->retry_next = 0;
	err = KmsLoadKeyFromSettings(m->key);
	if (err)
	{
		kms_cleanse(m->key, sizeof(m->key));
		strlcpy(m->error, err, sizeof(m->error));
		ereport(WARNING,
				(errmsg("pg_kms: %s", err),
				 errdetail("The server runs; the first pg_kms call that needs key material tries again, and calls fail until an attempt succeeds.")));
		return;
	}
	if (kms_master_kcv(m->key, m->kcv) != 0)
	{
		kms_cleanse(m->key, sizeof(m->key));
		strlcpy(m->error, "could not compute the master key check value", sizeof(m->error));
		return;
	}
	m->error[0] = '\0';
	m->loaded = true;

	m->prev_loaded = false;
	if (kms_previous_master_key_file && kms_previous_master_key_file[0])
	{
		err = KmsReadMasterKeyFile(kms_previous_master_key_file, m->prev_key);
		if (err == NULL && kms_master_kcv(m->prev_key, m->prev_kcv) == 0)
			m->prev_loaded = true;
		else
		{
			kms_cleanse(m->prev_key, sizeof(m->prev_key));
			ereport(WARNING,
					(errmsg("pg_kms: pg_kms.previous_master_key_file is not usable: %s",
							err ? err : "could not compute its key check value")));
		}
	}
	if (!IsUnderPostmaster)
		KmsPostmasterKeysSave(0, (Datum) 0);
}

static void
KmsMasterUnavailable(const char *why)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_KEY_UNAVAILABLE),
			 errhidestmt(true),
			 errmsg("KeyUnavailableException: the master key is not available: %s", why),
			 errhint("Fix pg_kms.master_key_file or pg_kms.master_key_command (or the service it asks); the next call that needs the key tries again, no restart needed.")));
}

/* Copy the shared master key and its KCV out, or error. */
static void
KmsCopyMaster(uint8 *key, uint8 *kcv)
{
	KmsMasterSlot *m = KmsSharedMaster();
	char		err[sizeof(m->error) + 128];
	bool		ok;

	for (int attempt = 0;; attempt++)
	{
		LWLockAcquire(KmsMasterLock(), LW_SHARED);
		ok = m->loaded;
		if (ok)
		{
			memcpy(key, m->key, KMS_AES_KEY_LEN);
			memcpy(kcv, m->kcv, KMS_KCV_LEN);
		}
		LWLockRelease(KmsMasterLock());
		if (ok)
			break;
		/* not loaded at start: try the settings again, if that is due */
		if (attempt > 0 || !KmsMasterRetry(err, sizeof(err)))
			KmsMasterUnavailable(err);
	}
	KmsProtectProcessMemory();
}

/* Copy the previous master key out; false if none is loaded. */
static bool
KmsCopyPreviousMaster(uint8 *key, uint8 *kcv)
{
	KmsMasterSlot *m = KmsSharedMaster();
	bool		ok;

	LWLockAcquire(KmsMasterLock(), LW_SHARED);
	ok = m->prev_loaded;
	if (ok)
	{
		memcpy(key, m->prev_key, KMS_AES_KEY_LEN);
		memcpy(kcv, m->prev_kcv, KMS_KCV_LEN);
	}
	LWLockRelease(KmsMasterLock());
	return ok;
}

/* Unwrap with the current master key, else the previous one, else the keyring's. */
static int
KmsUnwrapAny(const uint8 *key_id, uint32 version, const uint8 *wrapped,
			 size_t wrappedlen, uint8 *out, size_t outcap, size_t *outlen,
			 bool *used_previous)
{
	uint8		key[KMS_AES_KEY_LEN];
	uint8		kcv[KMS_KCV_LEN];
	int			rc;

	*used_previous = false;
	KmsCopyMaster(key, kcv);
	rc = kms_unwrap(key, key_id, version, wrapped, wrappedlen, out, outcap, outlen);
	if (rc != 0 && KmsCopyPreviousMaster(key, kcv))
	{
		rc = kms_unwrap(key, key_id, version, wrapped, wrappedlen, out, outcap, outlen);
		*used_previous = (rc == 0);
	}
	kms_cleanse(key, sizeof(key));
	/* an earlier master key of the keyring (a restored backup) */
	if (rc != 0)
	{
		rc = KmsKeyringUnwrap(key_id, version, wrapped, wrappedlen, out, outcap, outlen);
		*used_previous = (rc == 0);
	}
	return rc;
}

/* ----------------------------------------------------------------
 * The cluster's KCV record, KMS_CLUSTER_KCV_FILE (see the file header)
 * ----------------------------------------------------------------
 */

/* 1: read into kcv; 0: there is no file; -1: unreadable or damaged. */
static int
KmsReadClusterKcv(uint8 *kcv)
{
	char		buf[2 * KMS_KCV_LEN + 8];
	int			fd;
	ssize_t		n;

	fd = open(KMS_CLUSTER_KCV_FILE, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 2 * KMS_KCV_LEN)
		return -1;
	for (ssize_t i = 2 * KMS_KCV_LEN; i < n; i++)
		if (buf[i] != '\n' && buf[i] != '\r' && buf[i] != ' ')
			return -1;
	if (!KmsHexDecode(buf, KMS_KCV_LEN, kcv, false))
		return -1;
	return 1;
}

/* Replace the file durably (temporary file, rename); elevel on failure. */
static void
KmsWriteClusterKcv(const uint8 *kcv, int elevel)
{
	char		tmp[MAXPGPATH];
	char		buf[2 * KMS_KCV_LEN + 1];
	int			fd;
	int			save_errno;

	KmsHexEncode(kcv, KMS_KCV_LEN, buf);
	buf[2 * KMS_KCV_LEN] = '\n';
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", KMS_CLUSTER_KCV_FILE, (int) MyProcPid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("pg_kms: could not create file \"%s\": %m", tmp)));
		return;
	}
	errno = 0;
	if (write(fd, buf, sizeof(buf)) != sizeof(buf))
	{
		save_errno = errno ? errno : ENOSPC;
		close(fd);
	}
	else
		save_errno = close(fd) != 0 ? errno : 0;
	if (save_errno != 0)
	{
		unlink(tmp);
		errno = save_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("pg_kms: could not write file \"%s\": %m", tmp)));
		return;
	}
	if (durable_rename(tmp, KMS_CLUSTER_KCV_FILE, elevel) != 0)
		unlink(tmp);
}

/*
 * Record kcv as the cluster's, if it is still the loaded master key's and
 * the file does not say so already.  Never errors (commit callbacks call
 * it); a failed write is reported at elevel.
 */
static void
KmsRecordClusterKcv(const uint8 *kcv, int elevel)
{
	KmsMasterSlot *m = KmsSharedMaster();
	uint8		rec[KMS_KCV_LEN];

	if (KmsReadClusterKcv(rec) == 1 && kms_const_time_eq(rec, kcv, KMS_KCV_LEN))
		return;
	LWLockAcquire(KmsMasterLock(), LW_EXCLUSIVE);
	if (m->loaded && kms_const_time_eq(m->kcv, kcv, KMS_KCV_LEN) &&
		!(KmsReadClusterKcv(rec) == 1 && kms_const_time_eq(rec, kcv, KMS_KCV_LEN)))
		KmsWriteClusterKcv(kcv, elevel);
	LWLockRelease(KmsMasterLock());
}

/*
 * This database is about to be initialised (its kms.master row written)
 * under the master key with kcv: refuse unless that is the cluster's.
 */
static void
KmsCheckClusterKcv(const uint8 *kcv)
{
	uint8		rec[KMS_KCV_LEN];
	int			r = KmsReadClusterKcv(rec);

	if (r == 0 || (r == 1 && kms_const_time_eq(rec, kcv, KMS_KCV_LEN)))
		return;
	/*
	 * The record names an earlier master key that is loaded too (previous
	 * or keyring): the operator rotated, giving this server the new key and
	 * the old one (a standby promoted after the primary's rotation, whose
	 * record is not replicated).  The cluster moves to the loaded key.
	 */
	if (r == 1 && KmsKeyringHasKcv(rec))
		return;
	if (r < 0)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_STATE),
				 errhidestmt(true),
				 errmsg("KMSInvalidStateException: pg_kms cannot be initialised in database \"%s\": the record of the cluster's master key check value is unreadable or damaged",
						get_database_name(MyDatabaseId)),
				 errdetail("The file " KMS_CLUSTER_KCV_FILE " in the data directory must hold the 32 hexadecimal digits of the master key check value."),
				 errhint("Restore the file from the primary or a backup, or remove it if every database of this cluster that uses pg_kms is under the loaded master key.")));
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_INVALID_STATE),
			 errhidestmt(true),
			 errmsg("KMSInvalidStateException: pg_kms cannot be initialised in database \"%s\": the loaded master key is not the one this cluster's databases use",
					get_database_name(MyDatabaseId)),
			 errdetail("The key check value of the master key read from %s differs from the one recorded in " KMS_CLUSTER_KCV_FILE " in the data directory; nothing was written.",
					   (kms_master_key_file && kms_master_key_file[0]) ?
					   "pg_kms.master_key_file" : "pg_kms.master_key_command"),
			 errhint("Point pg_kms.master_key_file or pg_kms.master_key_command at the cluster's master key and restart the server.")));
}

/*
 * Check the loaded master key against kms.master.  With for_write, record
 * the KCV if this is the first key ever, and hold the row FOR SHARE until
 * commit (see the locking note above).
 */
static void
KmsLocalCheckMasterKey(bool for_write)
{
	uint8		key[KMS_AES_KEY_LEN];
	uint8		kcv[KMS_KCV_LEN];
	KmsCatalogState st;
	Datum		arg;
	Oid			argtype = BYTEAOID;
	bytea	   *kcvb;
	int			rc;

	uint8		prevkcv[KMS_KCV_LEN];
	bool		has_prev;
	bool		matches_current = false;

	KmsCopyMaster(key, kcv);
	has_prev = KmsCopyPreviousMaster(key, prevkcv);
	kms_cleanse(key, sizeof(key));

	kcvb = palloc(VARHDRSZ + KMS_KCV_LEN);
	SET_VARSIZE(kcvb, VARHDRSZ + KMS_KCV_LEN);
	memcpy(VARDATA(kcvb), kcv, KMS_KCV_LEN);
	arg = PointerGetDatum(kcvb);

	KmsCatalogEnter(&st);
	if (for_write)
	{
		rc = SPI_execute("SELECT kcv FROM kms.master WHERE id = 1 FOR SHARE", false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute failed: %d", rc);
		if (SPI_processed == 0)
		{
			/* this database initialises: only under the cluster's key */
			KmsCheckClusterKcv(kcv);
			rc = SPI_execute_with_args("INSERT INTO kms.master (id, provider, kcv) VALUES (1, 'local', $1) ON CONFLICT (id) DO NOTHING",
									   1, &argtype, &arg, NULL, false, 0);
			if (rc != SPI_OK_INSERT)
				elog(ERROR, "SPI_execute failed: %d", rc);
			rc = SPI_execute("SELECT kcv FROM kms.master WHERE id = 1 FOR SHARE", false, 1);
		}
	}
	else
		rc = SPI_execute("SELECT kcv FROM kms.master WHERE id = 1", true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %d", rc);
	if (SPI_processed == 1)
	{
		bool		isnull;
		bytea	   *stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1, &isnull));

		matches_current = !isnull && VARSIZE_ANY_EXHDR(stored) == KMS_KCV_LEN &&
			kms_const_time_eq((uint8 *) VARDATA_ANY(stored), kcv, KMS_KCV_LEN);
		if (isnull || VARSIZE_ANY_EXHDR(stored) != KMS_KCV_LEN ||
			(!kms_const_time_eq((uint8 *) VARDATA_ANY(stored), kcv, KMS_KCV_LEN) &&
			 !(has_prev && kms_const_time_eq((uint8 *) VARDATA_ANY(stored), prevkcv, KMS_KCV_LEN)) &&
			 !KmsKeyringHasKcv((uint8 *) VARDATA_ANY(stored))))
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_KEY_UNAVAILABLE),
					 errhidestmt(true),
					 errmsg("KeyUnavailableException: the master key does not match the one that wrapped the stored key material"),
					 errdetail("The key check value of the master key read from %s differs from the one recorded in kms.master.",
							   (kms_master_key_file && kms_master_key_file[0]) ?
							   "pg_kms.master_key_file" : "pg_kms.master_key_command"),
					 errhint("Point pg_kms.master_key_file or pg_kms.master_key_command at the right master key and restart the server; after a master key rotation, put the old key in pg_kms.master_keyring_directory (or pg_kms.previous_master_key_file) and run kms_rotate_master_key() in this database.")));
	}
	KmsCatalogExit(&st);

	/* a database under the loaded key proves it the cluster's */
	if (for_write && matches_current)
		KmsRecordClusterKcv(kcv, WARNING);
}

static bytea *
KmsLocalGenerate(const uint8 *key_id, uint32 version, uint8 *out, size_t len)
{
	uint8		master[KMS_AES_KEY_LEN];
	uint8		kcv[KMS_KCV_LEN];
	bytea	   *wrapped;

	KmsLocalCheckMasterKey(true);
	if (kms_random_bytes(out, len) != 0)
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
	KmsCopyMaster(master, kcv);
	wrapped = palloc(VARHDRSZ + KMS_WRAP_OVERHEAD + len);
	SET_VARSIZE(wrapped, VARHDRSZ + KMS_WRAP_OVERHEAD + len);
	if (kms_wrap(master, key_id, version, out, len, (uint8 *) VARDATA(wrapped)) != 0)
	{
		kms_cleanse(master, sizeof(master));
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not wrap key material");
	}
	kms_cleanse(master, sizeof(master));
	return wrapped;
}

/*
 * Material unwrapped under the loaded key proves it a key of this cluster:
 * record it if nothing is recorded yet (a cluster from before the record
 * existed, a restore into a new cluster), so a later start with a wrong
 * key cannot initialise databases.  Once per backend; a file that exists
 * is left alone here (reads never decide between two records), and a
 * failed write (a read-only data directory) is only logged.
 */
static void
KmsNoteClusterKcv(void)
{
	static bool noted = false;
	KmsMasterSlot *m;
	uint8		rec[KMS_KCV_LEN];
	uint8		kcv[KMS_KCV_LEN];
	bool		ok;

	if (noted)
		return;
	noted = true;
	if (KmsReadClusterKcv(rec) != 0)
		return;
	m = KmsSharedMaster();
	LWLockAcquire(KmsMasterLock(), LW_SHARED);
	ok = m->loaded;
	if (ok)
		memcpy(kcv, m->kcv, KMS_KCV_LEN);
	LWLockRelease(KmsMasterLock());
	if (ok)
		KmsRecordClusterKcv(kcv, LOG);
}

void
KmsLocalUnwrapMaterial(const uint8 *key_id, uint32 version, const bytea *wrapped,
					   uint8 *out, size_t outcap, size_t *outlen)
{
	bool		used_previous;
	int			rc;

	rc = KmsUnwrapAny(key_id, version,
					  (const uint8 *) VARDATA_ANY(wrapped), VARSIZE_ANY_EXHDR(wrapped),
					  out, outcap, outlen, &used_previous);
	if (rc != 0)
	{
		char		kid[37];

		/* Say which: the wrong master key, or a damaged row. */
		KmsLocalCheckMasterKey(false);
		KmsUuidToString(key_id, kid);
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_KEY_UNAVAILABLE),
				 errhidestmt(true),
				 errmsg("KeyUnavailableException: the key material of key \"%s\" version %u could not be unwrapped", kid, version),
				 errdetail("The wrapped material in kms.key_version failed authentication.")));
	}
	if (!used_previous)
		KmsNoteClusterKcv();
}

/* Material wrapped by the aws provider (a migration) is AWS's to unwrap. */
static void
KmsLocalUnwrap(const uint8 *key_id, uint32 version, const bytea *wrapped,
			   uint8 *out, size_t outcap, size_t *outlen)
{
	if (KmsAwsIsWrapped(wrapped))
		KmsAwsUnwrapMaterial(key_id, version, wrapped, out, outcap, outlen);
	else
		KmsLocalUnwrapMaterial(key_id, version, wrapped, out, outcap, outlen);
}

static const KmsProvider KmsLocalProvider = {
	"local",
	KmsLocalGenerate,
	KmsLocalUnwrap
};

const KmsProvider *
KmsGetProvider(void)
{
	if (kms_provider_name != NULL && strcmp(kms_provider_name, "aws") == 0)
		return &KmsAwsProvider;
	return &KmsLocalProvider;
}

void
KmsProviderShmemAttach(KmsMasterSlot *slot, LWLock *lock, bool init)
{
	master_slot = slot;
	master_lock = lock;
	/* The master key is read once, here, in the postmaster. */
	if (init)
		KmsLocalLoadMasterKey();
}

/*
 * Master-key rotation, the provider's side: keystore/master.c drives it
 * (the key store writes kms.key_version), this file keeps the target key
 * (rewrap_target, wiped at the end and at abort) and kms.master.
 */
static uint8 rewrap_target[KMS_AES_KEY_LEN];
static uint8 rewrap_kcv[KMS_KCV_LEN];
static bool rewrap_to_new = false;

/*
 * Begin kms_rotate_master_key([new_master_key_file]): with a file, the
 * target is the key in it, and it becomes the cluster's current master key
 * at commit (the old one stays loaded as the previous key, so other
 * databases keep working until they are rotated too).  Without, the target
 * is the current master key, and what is rewrapped is material still under
 * pg_kms.previous_master_key_file.  Locks kms.master FOR UPDATE.
 */
void
KmsLocalRewrapBegin(const char *path)
{
	uint8		scratch[KMS_KCV_LEN];
	KmsCatalogState st;
	int			rc;

	KmsLocalCheckMasterKey(true);
	rewrap_to_new = (path != NULL);
	if (path != NULL)
	{
		char	   *err = KmsReadMasterKeyFile(path, rewrap_target);
		uint8		curkey[KMS_AES_KEY_LEN];
		uint8		curkcv[KMS_KCV_LEN];
		uint8		prevkey[KMS_AES_KEY_LEN];
		bool		has_prev;

		if (err)
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
					 errmsg("ValidationException: %s", err)));
		if (kms_master_kcv(rewrap_target, rewrap_kcv) != 0)
			kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
					  "could not compute a key check value");
		KmsCopyMaster(curkey, curkcv);
		has_prev = KmsCopyPreviousMaster(prevkey, scratch);
		kms_cleanse(curkey, sizeof(curkey));
		kms_cleanse(prevkey, sizeof(prevkey));
		/* only one rotation in flight: the previous slot must be free */
		if (has_prev && !kms_const_time_eq(scratch, rewrap_kcv, KMS_KCV_LEN) &&
			!kms_const_time_eq(curkcv, rewrap_kcv, KMS_KCV_LEN))
		{
			kms_cleanse(rewrap_target, sizeof(rewrap_target));
			kms_error_detail(KMSInvalidStateException, KMS_SQLSTATE_INVALID_STATE,
							 "Finish the pending rotation first: run kms_rotate_master_key() in every database that uses pg_kms, then restart without pg_kms.previous_master_key_file.",
							 "a previous master key is still in use");
		}
	}
	else
		KmsCopyMaster(rewrap_target, rewrap_kcv);

	KmsCatalogEnter(&st);
	rc = SPI_execute("SELECT 1 FROM kms.master WHERE id = 1 FOR UPDATE", false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %d", rc);
	KmsCatalogExit(&st);
}

/*
 * The material of (key_id, version) wrapped under the rotation's target
 * (palloc'd), or NULL if it is there already.  Material that neither the
 * target nor the current or previous master key unwraps stops the rotation
 * (the target is wiped first).
 */
bytea *
KmsLocalRewrap(const uint8 *key_id, uint32 version, const bytea *w)
{
	int			rc;
	uint8		material[KMS_MAX_MATERIAL_LEN];
	size_t		len;
	bytea	   *neww;
	bool		used_previous;

	/* wrapped by AWS KMS (migrating back from the aws provider) */
	if (KmsAwsIsWrapped(w))
	{
		KmsAwsUnwrapMaterial(key_id, version, w, material, sizeof(material), &len);
		goto wrap;
	}
	/* already under the target? */
	if (kms_unwrap(rewrap_target, key_id, version,
				   (uint8 *) VARDATA_ANY(w), VARSIZE_ANY_EXHDR(w),
				   material, sizeof(material), &len) == 0)
	{
		kms_cleanse(material, sizeof(material));
		return NULL;
	}
	if (KmsUnwrapAny(key_id, version,
					 (uint8 *) VARDATA_ANY(w), VARSIZE_ANY_EXHDR(w),
					 material, sizeof(material), &len, &used_previous) != 0)
	{
		char		kids[37];

		kms_cleanse(rewrap_target, sizeof(rewrap_target));
		KmsUuidToString(key_id, kids);
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_KEY_UNAVAILABLE), errhidestmt(true),
				 errmsg("KeyUnavailableException: the key material of key \"%s\" version %d could not be unwrapped with the current or previous master key or the keyring; nothing was rotated", kids, (int32) version),
				 errhint("Put the master key that wrapped it in pg_kms.master_keyring_directory (or set pg_kms.previous_master_key_file to it) and restart the server.")));
	}
wrap:
	neww = palloc(VARHDRSZ + KMS_WRAP_OVERHEAD + len);
	SET_VARSIZE(neww, VARHDRSZ + KMS_WRAP_OVERHEAD + len);
	rc = kms_wrap(rewrap_target, key_id, version, material, len, (uint8 *) VARDATA(neww));
	kms_cleanse(material, sizeof(material));
	if (rc != 0)
		elog(ERROR, "could not wrap key material");
	return neww;
}

/*
 * End the rewrap: kms.master gets the target's KCV; the target (with a
 * file) is published as the current master key at commit, and its KCV
 * recorded for the cluster.
 */
void
KmsLocalRewrapEnd(void)
{
	KmsCatalogState st;
	int			rc;
	Datum		arg;
	Oid			t = BYTEAOID;
	bytea	   *kcvb = palloc(VARHDRSZ + KMS_KCV_LEN);

	KmsCatalogEnter(&st);
	SET_VARSIZE(kcvb, VARHDRSZ + KMS_KCV_LEN);
	memcpy(VARDATA(kcvb), rewrap_kcv, KMS_KCV_LEN);
	arg = PointerGetDatum(kcvb);
	rc = SPI_execute_with_args("UPDATE kms.master SET kcv = $1, provider = 'local', rotated = pg_catalog.now() WHERE id = 1",
							   1, &t, &arg, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute failed: %d", rc);
	KmsCatalogExit(&st);

	if (rewrap_to_new)
	{
		memcpy(pending_master, rewrap_target, KMS_AES_KEY_LEN);
		pending_master_set = true;
	}
	memcpy(pending_kcv, rewrap_kcv, KMS_KCV_LEN);
	pending_kcv_set = true;
	kms_cleanse(rewrap_target, sizeof(rewrap_target));
}

void
KmsLocalAtCommit(void)
{
	if (pending_master_set)
	{
		KmsMasterSlot *m = KmsSharedMaster();

		uint8		newkcv[KMS_KCV_LEN];

		(void) kms_master_kcv(pending_master, newkcv);
		LWLockAcquire(KmsMasterLock(), LW_EXCLUSIVE);
		if (m->loaded && !kms_const_time_eq(m->kcv, newkcv, KMS_KCV_LEN))
		{
			/* the old key stays usable for databases not yet rotated */
			memcpy(m->prev_key, m->key, KMS_AES_KEY_LEN);
			memcpy(m->prev_kcv, m->kcv, KMS_KCV_LEN);
			m->prev_loaded = true;
		}
		memcpy(m->key, pending_master, KMS_AES_KEY_LEN);
		memcpy(m->kcv, newkcv, KMS_KCV_LEN);
		m->loaded = true;
		m->error[0] = '\0';
		LWLockRelease(KmsMasterLock());
		ereport(LOG,
				(errmsg("pg_kms: master key rotated"),
				 errhint("Before the next restart, point pg_kms.master_key_file at the new master key and pg_kms.previous_master_key_file at the old one until every database using pg_kms has run kms_rotate_master_key().")));
	}
	/* new databases initialise under the rotated-to key from now on */
	if (pending_kcv_set)
		KmsRecordClusterKcv(pending_kcv, WARNING);
	KmsLocalAtAbort();
}

/* Does this transaction publish a master key or its check value at commit? */
bool
KmsLocalChangesPending(void)
{
	return pending_master_set || pending_kcv_set;
}

void
KmsLocalAtAbort(void)
{
	kms_cleanse(pending_master, sizeof(pending_master));
	kms_cleanse(rewrap_target, sizeof(rewrap_target));
	pending_master_set = false;
	pending_kcv_set = false;
}
