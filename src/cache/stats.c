/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  The key cache's counters: each backend adds to its own row of the
 *	  shared region (KmsStatAdd), and kms_cache_stats() sums the rows and
 *	  the shared counters for SQL.
 *
 *	  May call: common/ (and cache.c through cache_internal.h).
 *
 * IDENTIFICATION
 *	  src/cache/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cache/cache.h"
#include "cache/cache_internal.h"

/* ----------------------------------------------------------------
 * Statistics
 * ----------------------------------------------------------------
 */
static KmsBackendStats *
KmsMyStats(void)
{
	int			slot;

#if PG_VERSION_NUM >= 170000
	slot = MyProcNumber + 1;
#else
	slot = MyBackendId;
#endif
	if (slot < 0 || slot >= kmsShared->nbackends)
		slot = 0;				/* shared overflow row, see KmsStatAdd */
	return &kmsShared->backends[slot];
}

void
KmsStatAdd(KmsStat stat, uint64 n)
{
	KmsBackendStats *s = KmsMyStats();

	if (s == &kmsShared->backends[0])
		pg_atomic_fetch_add_u64(&s->counters[stat], n);
	else
		/* only this backend writes its row: no locked instruction needed */
		pg_atomic_write_u64(&s->counters[stat],
							pg_atomic_read_u64(&s->counters[stat]) + n);
}

/* ----------------------------------------------------------------
 * kms_cache_stats()
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(kms_cache_stats);
Datum
kms_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[11];
	bool		nulls[11] = {0};
	uint64		sums[KMS_NUM_LOCAL_STATS] = {0};
	int			entries = 0;
	TimestampTz now = GetCurrentTimestamp();

	KmsCheckLoaded();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	for (int i = 0; i < kmsShared->nbackends; i++)
		for (int j = 0; j < KMS_NUM_LOCAL_STATS; j++)
			sums[j] += pg_atomic_read_u64(&kmsShared->backends[i].counters[j]);

	LWLockAcquire(kmsShared->lock, LW_SHARED);
	for (int i = 0; i < kmsShared->nentries; i++)
		if (kmsShared->entries[i].valid && kmsShared->entries[i].expires_at > now)
			entries++;
	LWLockRelease(kmsShared->lock);

	values[0] = Int32GetDatum(kmsShared->nentries);
	values[1] = Int32GetDatum(entries);
	values[2] = Int64GetDatum((int64) sums[KMS_STAT_HITS]);
	values[3] = Int64GetDatum((int64) sums[KMS_STAT_MISSES]);
	SpinLockAcquire(&kmsShared->mutex);
	values[4] = Int64GetDatum((int64) kmsShared->evictions);
	values[5] = Int64GetDatum((int64) kmsShared->provider_calls);
	values[6] = Int64GetDatum((int64) kmsShared->provider_errors);
	values[7] = Float8GetDatum(kmsShared->provider_calls > 0 ?
							   kmsShared->provider_total_ms / kmsShared->provider_calls : 0.0);
	values[8] = Float8GetDatum(kmsShared->provider_max_ms);
	values[10] = Int64GetDatum((int64) kmsShared->salt_rollovers);
	SpinLockRelease(&kmsShared->mutex);
	values[9] = Int64GetDatum((int64) sums[KMS_STAT_DERIVATIONS]);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
