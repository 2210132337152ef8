/*-------------------------------------------------------------------------
 *
 * retry.c
 *	  Loading the master key again on demand.  The postmaster reads it at
 *	  start (local.c); if that failed (the key service behind
 *	  pg_kms.master_key_command was down, the key file not there yet), the
 *	  first call that needs the key tries the settings again, in its own
 *	  backend, and on success puts the key in the shared master slot, where
 *	  every backend finds it.  No restart needed.
 *
 *	  Attempts are spaced: after the n-th failed one, the next is not made
 *	  before 2^(n-1) seconds (at most 60) have passed; calls in between
 *	  fail at once with the last error and when the next attempt is due.
 *	  One backend tries at a time; the command runs for at most
 *	  pg_kms.master_key_command_timeout and is killed if the call is
 *	  cancelled (master_key_source.c).  Nothing the command prints is
 *	  logged.
 *
 * Locking: the slot's retry fields and key are read and written under the
 * pg_kms LWLock (exclusive to claim an attempt or publish its result); the
 * command runs without it.  A claim older than the command timeout plus a
 * minute belongs to a backend that died mid-attempt and is taken over.
 *
 * IDENTIFICATION
 *	  src/provider/retry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "provider/local_internal.h"
#include "provider/master_key_source.h"

#define KMS_RETRY_MAX_BACKOFF_S 60

/* seconds to wait after the n-th failure in a row */
static int
KmsRetryBackoff(int failures)
{
	if (failures <= 1)
		return 1;
	if (failures > 7)
		return KMS_RETRY_MAX_BACKOFF_S;
	return Min(1 << (failures - 1), KMS_RETRY_MAX_BACKOFF_S);
}

/* Record a failed attempt (lock held exclusively). */
static void
KmsRetryFailed(KmsMasterSlot *m, const char *why)
{
	m->retry_running = false;
	m->retry_failures++;
	m->retry_next = GetCurrentTimestamp() +
		(TimestampTz) KmsRetryBackoff(m->retry_failures) * USECS_PER_SEC;
	if (why)
		strlcpy(m->error, why, sizeof(m->error));
}

/* Give up a claimed attempt when the caller is cancelled. */
static void
KmsRetryAbandon(void)
{
	KmsMasterSlot *m = KmsSharedMaster();

	LWLockAcquire(KmsMasterLock(), LW_EXCLUSIVE);
	if (!m->loaded)
		KmsRetryFailed(m, NULL);
	LWLockRelease(KmsMasterLock());
}

bool
KmsMasterRetry(char *err, size_t errlen)
{
	KmsMasterSlot *m = KmsSharedMaster();
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz stale = (TimestampTz) (kms_master_key_command_timeout + 60) * USECS_PER_SEC;
	bool		claimed = false;
	uint8		key[KMS_AES_KEY_LEN];
	uint8		kcv[KMS_KCV_LEN];
	char	   *why;

	if (kms_provider_name == NULL || strcmp(kms_provider_name, "local") != 0)
		return false;

	LWLockAcquire(KmsMasterLock(), LW_EXCLUSIVE);
	if (m->loaded)
	{
		LWLockRelease(KmsMasterLock());
		return true;
	}
	if ((!m->retry_running && now >= m->retry_next) ||
		(m->retry_running && now - m->retry_started > stale))
	{
		m->retry_running = true;
		m->retry_started = now;
		claimed = true;
	}
	else if (m->retry_running)
		snprintf(err, errlen, "%s (another session is loading it again now)", m->error);
	else
		snprintf(err, errlen, "%s (loaded again on demand; next attempt in %ld s)", m->error,
				 (long) ((m->retry_next - now + USECS_PER_SEC - 1) / USECS_PER_SEC));
	LWLockRelease(KmsMasterLock());
	if (!claimed)
		return false;

	PG_TRY();
	{
		why = KmsLoadKeyFromSettings(key);
	}
	PG_CATCH();
	{
		kms_cleanse(key, sizeof(key));
		KmsRetryAbandon();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (why == NULL && kms_master_kcv(key, kcv) != 0)
		why = pstrdup("could not compute the master key check value");

	LWLockAcquire(KmsMasterLock(), LW_EXCLUSIVE);
	if (why == NULL && !m->loaded)
	{
		memcpy(m->key, key, KMS_AES_KEY_LEN);
		memcpy(m->kcv, kcv, KMS_KCV_LEN);
		m->error[0] = '\0';
		m->retry_running = false;
		m->retry_failures = 0;
		m->loaded = true;
	}
	else if (why != NULL)
		KmsRetryFailed(m, why);
	else
		m->retry_running = false;
	if (why)
		snprintf(err, errlen, "%s (loaded again on demand; next attempt in %d s)",
				 m->error, KmsRetryBackoff(m->retry_failures));
	LWLockRelease(KmsMasterLock());
	kms_cleanse(key, sizeof(key));

	if (why)
	{
		ereport(LOG, (errmsg("pg_kms: loading the master key again failed: %s", why)));
		return false;
	}
	KmsProtectProcessMemory();
	ereport(LOG,
			(errmsg("pg_kms: master key loaded on demand from %s",
					(kms_master_key_file && kms_master_key_file[0]) ?
					"pg_kms.master_key_file" : "pg_kms.master_key_command")));
	return true;
}
