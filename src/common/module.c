/*-------------------------------------------------------------------------
 *
 * module.c
 *	  The module's own state: whether pg_kms was loaded through
 *	  shared_preload_libraries (set by _PG_init, src/pg_kms.c), and the
 *	  worker wake function installed there.
 *
 * IDENTIFICATION
 *	  src/common/module.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/kms_common.h"

bool		kms_preloaded = false;

static void (*kms_worker_wake) (void) = NULL;

void
KmsSetWorkerWake(void (*wake) (void))
{
	kms_worker_wake = wake;
}

void
KmsWakeWorker(void)
{
	if (kms_worker_wake)
		kms_worker_wake();
}

void
KmsCheckPreloaded(bool attached)
{
	if (!kms_preloaded || !attached)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errhidestmt(true),
				 errmsg("KMSInternalException: pg_kms is not loaded through shared_preload_libraries"),
				 errhint("Add pg_kms to shared_preload_libraries in postgresql.conf and restart the server.")));
}
