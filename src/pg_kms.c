/*-------------------------------------------------------------------------
 *
 * pg_kms.c
 *	  Module entry: settings, shared-memory hooks, the transaction callback
 *	  that publishes cache invalidations and master-key changes at commit,
 *	  and small helpers shared by the parts.
 *
 * pg_kms must be in shared_preload_libraries: the key cache lives in shared
 * memory.  Loaded any other way, every call fails with a hint.
 *
 * Locking: none here; see cache.c.
 *
 * IDENTIFICATION
 *	  src/pg_kms.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"

#include "audit.h"
#include "cache.h"
#include "pg_kms.h"
#include "provider.h"
#include "rotation.h"
#include "worker.h"

PG_MODULE_MAGIC;

char	   *kms_master_key_file = NULL;
char	   *kms_master_key_command = NULL;
char	   *kms_previous_master_key_file = NULL;
char	   *kms_provider_name = NULL;
char	   *kms_region = NULL;
char	   *kms_account_id = NULL;
int			kms_key_cache_size = 1024;
int			kms_key_cache_ttl = 300;
bool		kms_protect_memory = true;

bool		kms_preloaded = false;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

const char *const KmsOpNames[] = {
	"Decrypt",
	"Encrypt",
	"GenerateDataKey",
	"GenerateDataKeyWithoutPlaintext",
	"ReEncryptFrom",
	"ReEncryptTo",
	"CreateGrant",
	"RetireGrant",
	"DescribeKey",
	"GenerateMac",
	"VerifyMac",
	"ManageKey"
};

const char *const KmsKeyStateNames[] = {
	"Enabled", "Disabled", "PendingDeletion", "Deleted"
};

void		_PG_init(void);

#if PG_VERSION_NUM >= 150000
static void
kms_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	KmsShmemRequest();
}
#endif

static void
kms_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	KmsShmemStartup();
}

/*
 * Publish what a transaction changed only once it is committed and visible,
 * so a rolled-back DisableKey never disables anything.
 */
static void
kms_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			KmsLocalAtCommit();
			KmsCacheAtCommit();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			KmsLocalAtAbort();
			KmsCacheAtAbort();
			break;
		case XACT_EVENT_PREPARE:
			/* PREPARE is refused in pre-prepare; nothing pending here */
			break;
		case XACT_EVENT_PRE_PREPARE:
			KmsCacheAtAbort();
			KmsLocalAtAbort();
			break;
		default:
			break;
	}
}

/* kms.key invalidated (on a standby: replayed): drop what we cached. */
static void
kms_relcache_callback(Datum arg, Oid relid)
{
	Oid			keyrel = KmsKeyRelationIdIfKnown();

	if (relid == InvalidOid || (OidIsValid(keyrel) && relid == keyrel))
		KmsLocalDirty();
}

static void
kms_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		KmsLocalDirty();
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomStringVariable("pg_kms.master_key_file",
							   "Path of the local provider's master key file.",
							   "32 raw bytes or 64 hex characters; mode 0600 or stricter, outside the data directory. Read once at server start.",
							   &kms_master_key_file,
							   NULL,
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.master_key_command",
							   "Shell command that prints the local provider's master key.",
							   "Used when pg_kms.master_key_file is not set. Run once at server start.",
							   &kms_master_key_command,
							   NULL,
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.previous_master_key_file",
							   "Path of the master key being rotated away from.",
							   "Set it to the old master key while some database still has key material wrapped under it; kms_rotate_master_key() then rewraps that material under the current master key.",
							   &kms_previous_master_key_file,
							   NULL,
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.provider",
							   "Key provider that wraps key material.",
							   "Only \"local\" is available in this release.",
							   &kms_provider_name,
							   "local",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.region",
							   "Region name used in ARNs.",
							   NULL,
							   &kms_region,
							   "local",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.account_id",
							   "Account id used in ARNs.",
							   "Empty means twelve digits derived from the database system identifier.",
							   &kms_account_id,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.key_cache_size",
							"Number of key versions the shared key cache holds.",
							NULL,
							&kms_key_cache_size,
							1024, 16, 1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("pg_kms.key_cache_ttl",
							"How long unwrapped key material stays cached.",
							NULL,
							&kms_key_cache_ttl,
							300, 1, 7 * 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("pg_kms.protect_memory",
							 "Keep key material out of core dumps.",
							 "Excludes the shared key cache from core dumps and locks it in memory, and marks a backend non-dumpable once it holds key material.",
							 &kms_protect_memory,
							 true,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	/* the audit trail and the worker: their settings, memory and hooks */
	KmsAuditInit();
	KmsWorkerInit();

	/* rotation: its (test-only) setting */
	KmsRotationInit();

	MarkGUCPrefixReserved("pg_kms");

	kms_preloaded = true;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = kms_shmem_request;
#else
	KmsShmemRequest();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = kms_shmem_startup;

	RegisterXactCallback(kms_xact_callback, NULL);
	RegisterSubXactCallback(kms_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(kms_relcache_callback, (Datum) 0);
}

/* ----------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------
 */
int
KmsOpFromName(const char *name)
{
	for (int i = 0; i < KMS_NUM_GRANT_OPS; i++)
		if (strcmp(name, KmsOpNames[i]) == 0)
			return i;
	return -1;
}

void
KmsUuidToString(const uint8 *u, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int			j = 0;

	for (int i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 0xf];
	}
	out[j] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Accept exactly the canonical 8-4-4-4-12 form, either case. */
bool
KmsUuidFromString(const char *s, uint8 *out)
{
	int			j = 0;

	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36;)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[j++] = (uint8) ((hi << 4) | lo);
		i += 2;
	}
	return j == 16;
}

/* Text value of a top-level string member of a jsonb object, or NULL. */
text *
KmsJsonbGetText(Jsonb *jb, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
}

/* Start a materialized set-returning function (works on PG 14 too). */
Tuplestorestate *
KmsStartSRF(FunctionCallInfo fcinfo, TupleDesc *tupdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Tuplestorestate *ts;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	*tupdesc = CreateTupleDescCopy(*tupdesc);
	ts = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = *tupdesc;
	MemoryContextSwitchTo(old);
	return ts;
}
