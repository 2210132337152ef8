/*-------------------------------------------------------------------------
 *
 * columnkey.c
 *	  The type modifier of encrypted_text / encrypted_bytea: ('<key ref>'
 *	  [, 'deterministic']) <-> an integer, through kms.column_key, which
 *	  this file alone writes.
 *
 *	  A row is (typmod, key_ref as written, deterministic, key_id resolved
 *	  when the first column named it, det_version).  The typmod number is a
 *	  hash of (key_ref, deterministic), probed on collision, so that a
 *	  schema restored in another order (pg_dump, pg_upgrade) gets the same
 *	  numbers; a stored value never depends on it (it names its own key and
 *	  version).  The key is resolved without a privilege check (whoever
 *	  declares a column need not use the key); when the reference names no
 *	  key yet -- a restore creates tables before it loads kms.key and
 *	  kms.alias -- key_id stays NULL; the restored row of kms.column_key
 *	  fills it in (kms.column_key_restore(), src/sql/070_tce.sql), or the
 *	  first value sealed resolves it and records it (with a deterministic
 *	  column's version), so that a later alias change moves nothing.  A
 *	  parallel query (and a standby, a read-only transaction) resolves it
 *	  without recording it: a parallel operation writes nothing.
 *
 *	  Per-row paths read the map from a backend cache, dropped when the
 *	  shared generation moves (any key, alias or grant change).  typmod_in
 *	  puts what it found or made there too, valid for its transaction only:
 *	  the statement that declared a new reference (ALTER TABLE ... TYPE)
 *	  seals before its own snapshot can see the new row.
 *
 * Locking: a new typmod is numbered under SHARE ROW EXCLUSIVE on
 * kms.column_key (DDL time only).
 *
 * IDENTIFICATION
 *	  src/tce/columnkey.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/hash.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "cache/cache.h"
#include "catalog/kms_catalog.h"
#include "keystore/keystore.h"
#include "tce/tce_internal.h"

#define TCE_TYPMOD_MASK 0x3FFFFFFF

static HTAB *column_keys = NULL;
static MemoryContext column_key_cxt = NULL;
static uint64 column_key_gen = 0;

static void
TceCacheCheck(void)
{
	uint64		gen = KmsCurrentGeneration();

	if (column_keys != NULL && gen == column_key_gen)
		return;
	if (column_key_cxt == NULL)
		column_key_cxt = AllocSetContextCreate(TopMemoryContext,
											   "pg_kms column keys",
											   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(column_key_cxt);
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int32);
		ctl.entrysize = sizeof(TceColumnKey);
		ctl.hcxt = column_key_cxt;
		column_keys = hash_create("pg_kms column keys", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	column_key_gen = gen;
}

/*
 * A key reference to a key id, with no privilege check (see the file
 * header).  False if it names no key here (yet).
 */
static bool
TceResolveRef(const char *ref, uint8 *key_id)
{
	if (strncmp(ref, "alias/", 6) == 0)
		return KmsLookupAlias(ref, key_id);
	if (strncmp(ref, "arn:", 4) == 0)
	{
		/* arn:PARTITION:kms:REGION:ACCOUNT:key/ID | alias/NAME */
		char	   *copy = pstrdup(ref);
		char	   *parts[6];
		char	   *p = copy;
		int			n = 0;

		while (n < 5)
		{
			char	   *c = strchr(p, ':');

			if (c == NULL)
				break;
			*c = '\0';
			parts[n++] = p;
			p = c + 1;
		}
		parts[n++] = p;
		if (n != 6 || strcmp(parts[2], "kms") != 0 ||
			strcmp(parts[3], kms_region) != 0 ||
			strcmp(parts[4], KmsAccountId()) != 0)
			return false;
		if (strncmp(parts[5], "key/", 4) == 0)
			return KmsUuidFromString(parts[5] + 4, key_id);
		if (strncmp(parts[5], "alias/", 6) == 0)
			return KmsLookupAlias(parts[5], key_id);
		return false;
	}
	return KmsUuidFromString(ref, key_id);
}

/* Fill *ck from the row of kms.column_key for typmod; false if none. */
static bool
TceLoadColumnKeyMode(int32 typmod, TceColumnKey *ck, bool read_only)
{
	KmsCatalogState st;
	Oid			t = INT4OID;
	Datum		v = Int32GetDatum(typmod);
	bool		found = false;

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT key_ref, deterministic, key_id, det_version "
				"FROM kms.column_key WHERE typmod = $1",
				1, &t, &v, NULL, read_only, SPI_OK_SELECT) == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		found = true;
		ck->key_ref = MemoryContextStrdup(column_key_cxt, SPI_getvalue(tup, td, 1));
		ck->deterministic = DatumGetBool(SPI_getbinval(tup, td, 2, &isnull));
		d = SPI_getbinval(tup, td, 3, &isnull);
		ck->key_known = !isnull;
		if (!isnull)
			memcpy(ck->key_id, DatumGetUUIDP(d)->data, KMS_KEY_ID_LEN);
		d = SPI_getbinval(tup, td, 4, &isnull);
		ck->det_version = isnull ? 0 : DatumGetInt32(d);
	}
	KmsCatalogExit(&st);
	return found;
}

/* The statement's snapshot: per-row paths never advance the command id. */
static bool
TceLoadColumnKey(int32 typmod, TceColumnKey *ck)
{
	return TceLoadColumnKeyMode(typmod, ck, true);
}

/* A fresh snapshot, for typmod_in (parse time). */
static bool
TceLoadColumnKeyFresh(int32 typmod, TceColumnKey *ck)
{
	return TceLoadColumnKeyMode(typmod, ck, false);
}

/*
 * A column declared before its key existed (a restore, a typo fixed
 * later): resolve the key now, and for a deterministic column fix its
 * version, and record both in kms.column_key (when writable), so that
 * every backend seals with the same key and version from now on, whatever
 * the alias points at or the key's current version becomes later.
 */
static void
TceCompleteColumnKey(TceColumnKey *ck)
{
	KmsKeyInfo *key;

	if (!ck->key_known)
	{
		if (!TceResolveRef(ck->key_ref, ck->key_id))
			KmsKeyNotFound(ck->key_ref, KMS_OP_ENCRYPT);
		ck->key_known = true;
	}
	key = KmsLookupKeyById(ck->key_id);
	if (key == NULL || key->state == KMS_STATE_DELETED)
		KmsKeyNotFound(ck->key_ref, KMS_OP_ENCRYPT);
	if (ck->deterministic && ck->det_version <= 0)
		ck->det_version = key->current_version;

	/*
	 * Not in a parallel operation, which writes nothing: there the key is
	 * used as resolved, as on a standby, and the next write records it
	 * (every process of the query reads the same snapshot).
	 */
	if (!RecoveryInProgress() && !XactReadOnly && !IsInParallelMode())
	{
		KmsCatalogState st;
		Oid			types[3] = {INT4OID, UUIDOID, INT4OID};
		Datum		values[3];
		char		nulls[3] = "   ";

		values[0] = Int32GetDatum(ck->typmod);
		values[1] = KmsUuidDatum(ck->key_id);
		values[2] = Int32GetDatum(ck->det_version);
		if (!ck->deterministic)
			nulls[2] = 'n';
		KmsCatalogEnter(&st);
		if (KmsExec("UPDATE kms.column_key SET key_id = coalesce(key_id, $2), "
					"det_version = coalesce(det_version, $3) WHERE typmod = $1 "
					"RETURNING key_id, det_version",
					3, types, values, nulls, false, SPI_OK_UPDATE_RETURNING) == 1)
		{
			bool		isnull;
			Datum		d;

			/* another backend may have been first: take what it recorded */
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
				memcpy(ck->key_id, DatumGetUUIDP(d)->data, KMS_KEY_ID_LEN);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			if (!isnull)
				ck->det_version = DatumGetInt32(d);
		}
		KmsCatalogExit(&st);
	}
}

/*
 * The column key of typmod.  need_key: resolve the key too (a column
 * declared before its key existed), else raise the error a missing key
 * raises.
 */
TceColumnKey *
TceGetColumnKey(int32 typmod, bool need_key)
{
	TceColumnKey *ck;
	bool		found;

	TceCacheCheck();
	ck = hash_search(column_keys, &typmod, HASH_ENTER, &found);
	/* a row typmod_in made in an earlier transaction: read it again */
	if (found && ck->provisional != InvalidLocalTransactionId &&
		ck->provisional != MyProc->lxid)
		found = false;
	if (!found)
	{
		ck->provisional = InvalidLocalTransactionId;
		if (!TceLoadColumnKey(typmod, ck))
		{
			hash_search(column_keys, &typmod, HASH_REMOVE, NULL);
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "type modifier %d names no column key in kms.column_key", typmod);
		}
	}
	if (need_key && (!ck->key_known || (ck->deterministic && ck->det_version <= 0)))
		TceCompleteColumnKey(ck);
	return ck;
}

/* Resolve a column's key if it exists by now; false (no error) if not. */
bool
TceTryResolve(TceColumnKey *ck)
{
	if (!ck->key_known && TceResolveRef(ck->key_ref, ck->key_id))
		ck->key_known = true;
	return ck->key_known;
}

const char *
TceColumnKeyRef(int32 typmod)
{
	return TceGetColumnKey(typmod, false)->key_ref;
}

/* ----------------------------------------------------------------
 * typmod_in / typmod_out
 * ----------------------------------------------------------------
 */
static int32
TceFindTypmod(const char *ref, bool det, bool read_only)
{
	KmsCatalogState st;
	Oid			types[2] = {TEXTOID, BOOLOID};
	Datum		values[2];
	int32		typmod = -1;

	values[0] = CStringGetTextDatum(ref);
	values[1] = BoolGetDatum(det);
	KmsCatalogEnter(&st);
	if (KmsExec("SELECT typmod FROM kms.column_key WHERE key_ref = $1 AND deterministic = $2",
				2, types, values, NULL, read_only, SPI_OK_SELECT) == 1)
	{
		bool		isnull;

		typmod = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	}
	KmsCatalogExit(&st);
	return typmod;
}

static int32
TceCreateTypmod(const char *ref, bool det)
{
	KmsCatalogState st;
	uint8		key_id[KMS_KEY_ID_LEN];
	bool		known;
	int32		version = 0;
	uint32		h;
	int32		typmod;
	StringInfoData hk;
	Oid			types[5] = {INT4OID, TEXTOID, BOOLOID, UUIDOID, INT4OID};
	Datum		values[5];
	char		nulls[5] = "     ";

	KmsCheckWritable("declaring a column of a new encrypted type modifier");

	known = TceResolveRef(ref, key_id);
	if (known)
	{
		KmsKeyInfo *key = KmsLookupKeyById(key_id);

		if (key == NULL || key->state == KMS_STATE_DELETED)
			known = false;
		else
		{
			if (key->usage != KMS_USAGE_ENCRYPT_DECRYPT)
				kms_error(InvalidKeyUsageException, KMS_SQLSTATE_INVALID_KEY_USAGE,
						  "key \"%s\" has key usage GENERATE_VERIFY_MAC, which does not allow encryption",
						  ref);
			version = key->current_version;
		}
	}
	initStringInfo(&hk);
	appendStringInfo(&hk, "%s%c%c", ref, '\0', det ? 'd' : 'r');
	h = hash_bytes((const unsigned char *) hk.data, hk.len);

	KmsCatalogEnter(&st);
	KmsExec("LOCK TABLE kms.column_key IN SHARE ROW EXCLUSIVE MODE",
			0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	KmsCatalogExit(&st);

	/* someone may have made it while we waited */
	typmod = TceFindTypmod(ref, det, false);
	if (typmod >= 0)
		return typmod;
	if (!known)
		ereport(NOTICE,
				(errmsg("pg_kms: key \"%s\" does not exist yet; values of this column cannot be written until it does", ref)));

	typmod = (int32) (h & TCE_TYPMOD_MASK);
	for (;;)
	{
		Oid			t = INT4OID;
		Datum		v = Int32GetDatum(typmod);
		uint64		n;

		KmsCatalogEnter(&st);
		n = KmsExec("SELECT 1 FROM kms.column_key WHERE typmod = $1",
					1, &t, &v, NULL, false, SPI_OK_SELECT);
		KmsCatalogExit(&st);
		if (n == 0)
			break;
		typmod = (typmod + 1) & TCE_TYPMOD_MASK;
	}

	values[0] = Int32GetDatum(typmod);
	values[1] = CStringGetTextDatum(ref);
	values[2] = BoolGetDatum(det);
	values[3] = known ? KmsUuidDatum(key_id) : (Datum) 0;
	values[4] = Int32GetDatum(version);
	if (!known)
		nulls[3] = 'n';
	if (!known || !det)
		nulls[4] = 'n';
	KmsCatalogEnter(&st);
	KmsExec("INSERT INTO kms.column_key (typmod, key_ref, deterministic, key_id, det_version) "
			"VALUES ($1, $2, $3, $4, $5)",
			5, types, values, nulls, false, SPI_OK_INSERT);
	KmsCatalogExit(&st);
	CommandCounterIncrement();
	return typmod;
}

/*
 * Cache what typmod_in found or made, read with a fresh snapshot: the
 * statement that declared it (ALTER TABLE ... TYPE encrypted_text('<new
 * ref>') rewriting the table) seals with it before its own snapshot could
 * see the new row.  Valid in this transaction only (provisional).
 */
static void
TceRememberTypmod(int32 typmod)
{
	TceColumnKey *ck;
	bool		found;

	TceCacheCheck();
	ck = hash_search(column_keys, &typmod, HASH_ENTER, &found);
	if (found && ck->provisional == InvalidLocalTransactionId)
		return;					/* known and committed */
	if (!TceLoadColumnKeyFresh(typmod, ck))
	{
		hash_search(column_keys, &typmod, HASH_REMOVE, NULL);
		return;
	}
	ck->provisional = MyProc->lxid;
}

PG_FUNCTION_INFO_V1(encrypted_column_typmod_in);
Datum
encrypted_column_typmod_in(PG_FUNCTION_ARGS)
{
	ArrayType  *ta = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	int			n;
	char	   *ref;
	bool		det = false;
	int32		typmod;

	deconstruct_array(ta, CSTRINGOID, -2, false, TYPALIGN_CHAR, &elems, NULL, &n);
	if (n < 1 || n > 2)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "an encrypted column type takes a key reference and, optionally, 'deterministic'");
	ref = DatumGetCString(elems[0]);
	if (ref[0] == '\0' || strlen(ref) > 2048)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "the key reference of an encrypted column must be 1 to 2048 characters");
	if (n == 2)
	{
		char	   *mode = DatumGetCString(elems[1]);

		if (pg_strcasecmp(mode, "deterministic") == 0)
			det = true;
		else if (pg_strcasecmp(mode, "randomized") != 0)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "\"%s\" is not an encryption mode; use 'deterministic' or 'randomized'", mode);
	}

	/* a fresh snapshot: a typmod made earlier in this statement counts */
	typmod = TceFindTypmod(ref, det, false);
	if (typmod < 0)
		typmod = TceCreateTypmod(ref, det);
	TceRememberTypmod(typmod);
	PG_RETURN_INT32(typmod);
}

PG_FUNCTION_INFO_V1(encrypted_column_typmod_out);
Datum
encrypted_column_typmod_out(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(0);
	StringInfoData s;
	TceColumnKey *ck;

	initStringInfo(&s);
	if (typmod < 0)
		PG_RETURN_CSTRING(s.data);
	ck = TceGetColumnKey(typmod, false);
	appendStringInfoString(&s, "(");
	appendStringInfoString(&s, quote_literal_cstr(ck->key_ref));
	if (ck->deterministic)
		appendStringInfoString(&s, ", 'deterministic'");
	appendStringInfoString(&s, ")");
	PG_RETURN_CSTRING(s.data);
}

/*
 * For kms_reencrypt_column (tce.h): make version the deterministic version
 * of typmod (values sealed from now on use it; the caller rewrites the old
 * ones).  Every backend's cache drops the old one when this commits.
 */
void
KmsTceSetDeterministicVersion(int32 typmod, int32 version)
{
	KmsCatalogState st;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];

	KmsCheckWritable("changing the deterministic version of a column key");
	values[0] = Int32GetDatum(typmod);
	values[1] = Int32GetDatum(version);
	KmsCatalogEnter(&st);
	if (KmsExec("UPDATE kms.column_key SET det_version = $2 WHERE typmod = $1 AND deterministic",
				2, types, values, NULL, false, SPI_OK_UPDATE) != 1)
		elog(ERROR, "type modifier %d is not a deterministic column key", typmod);
	KmsCatalogExit(&st);
	KmsInvalidateAtCommit();
	/* this backend sees it at once */
	if (column_keys != NULL)
		hash_search(column_keys, &typmod, HASH_REMOVE, NULL);
}
