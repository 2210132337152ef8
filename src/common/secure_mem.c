/*-------------------------------------------------------------------------
 *
 * secure_mem.c
 *	  pg_kms.protect_memory, and what it does to a backend once that
 *	  backend holds key material (the shared key cache region applies it to
 *	  itself, cache/cache.c).
 *
 * IDENTIFICATION
 *	  src/common/secure_mem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/prctl.h>

#include "utils/guc.h"

#include "common/kms_common.h"

bool		kms_protect_memory = true;

void
KmsSecureMemDefineGucs(void)
{
	DefineCustomBoolVariable("pg_kms.protect_memory",
							 "Keep key material out of core dumps.",
							 "Excludes the shared key cache from core dumps and locks it in memory, and marks a backend non-dumpable once it holds key material.",
							 &kms_protect_memory,
							 true,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);
}

/*
 * Once a backend holds key material, make it non-dumpable, as ssh-agent
 * does: no core file, and no ptrace or /proc/<pid>/mem by other processes
 * of the same user.
 */
void
KmsProtectProcessMemory(void)
{
	static bool done = false;

	if (done || !kms_protect_memory)
		return;
	done = true;
	(void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
