/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Key custody guards.  pg_kms holds the only copy of keys that whole
 *	  tables depend on, so ordinary SQL must not destroy them outside the
 *	  7-30 day deletion window:
 *
 *	  - DROP EXTENSION pg_kms, DROP SCHEMA kms, DROP TABLE and TRUNCATE of
 *		kms tables, DROP OWNED BY the extension owner, dropping or disabling
 *		a trigger of a kms table (KmsGuardUtility, before the utility
 *		statement runs; without shared_preload_libraries, the event trigger
 *		pg_kms_guard and a TRUNCATE trigger), and DELETE on kms.key,
 *		kms.key_version and the secret tables (trigger kms.guard_trigger)
 *		are refused while any key is not yet destroyed: a key counts as
 *		destroyed once the deletion job made it 'Deleted' and set every
 *		version's material NULL.  pg_kms.allow_unsafe_drop (superuser)
 *		overrides.  pg_kms's own writes are marked (KmsGuardMarkInternal,
 *		from KmsCatalogEnter) and pass.  DROP DATABASE is not guarded: it
 *		is the explicit destruction of everything in the database.
 *
 *	  - The account id of ARNs is chosen once, at CREATE EXTENSION (or the
 *		update to 1.2), and kept in kms.account, which pg_dump dumps; the
 *		common layer's KmsAccountId() gets it from here (registered by
 *		_PG_init), cached per backend until kms.account changes.
 *
 *	  - A restore (any insert into kms tables that is not pg_kms's own)
 *		into a database that already uses pg_kms is refused before it
 *		writes anything; into a fresh CREATE EXTENSION, the dump's account
 *		id replaces the generated one.  pg_dump loads kms.account, which
 *		has no foreign key, before the other kms tables.
 *
 *	  May call: common/, catalog.c.  Writes kms.account only.
 *
 *	  Locking: none of its own.  The restore checks rely on each table's
 *	  insert being the restore's only writer (a restore runs in one session).
 *
 * IDENTIFICATION
 *	  src/catalog/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "catalog/guard.h"
#include "catalog/kms_catalog.h"

#define KMS_INTERNAL_GUC	"pg_kms.internal_write"

bool		kms_allow_unsafe_drop = false;
static bool kms_internal_write = false;

/* kms.account: OID (for the relcache callback) and whether to reload */
static Oid	account_relid = InvalidOid;
static bool account_stale = true;

/* a restore refused in this session: its later tables are refused too */
static bool restore_refused = false;

PG_FUNCTION_INFO_V1(kms_guard_trigger);
PG_FUNCTION_INFO_V1(kms_guard_event_trigger);

static void KmsGuardStatement(Node *stmt);

void
KmsGuardDefineGucs(void)
{
	DefineCustomBoolVariable("pg_kms.allow_unsafe_drop",
							 "Allow DROP EXTENSION pg_kms, and DROP, TRUNCATE or DELETE of pg_kms's tables, while keys are not yet destroyed.",
							 "Destroys every key not yet deleted at once, bypassing the deletion window, and with them all data encrypted under them.",
							 &kms_allow_unsafe_drop,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	/* set only by KmsCatalogEnter (context PGC_INTERNAL), never by SET */
	DefineCustomBoolVariable(KMS_INTERNAL_GUC,
							 "Set while pg_kms writes its own tables.",
							 NULL,
							 &kms_internal_write,
							 false,
							 PGC_INTERNAL,
							 GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							 NULL, NULL, NULL);
}

/*
 * A GUC, rather than a counter, so that an error inside pg_kms caught by a
 * savepoint cannot leave the session marked: the GUC stack unwinds with
 * the (sub)transaction.
 */
void
KmsGuardMarkInternal(void)
{
	if (!kms_preloaded)
		return;					/* not defined; and nothing of pg_kms runs */
	(void) set_config_option(KMS_INTERNAL_GUC, "on", PGC_INTERNAL, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* ----------------------------------------------------------------
 * Live keys
 * ----------------------------------------------------------------
 */

/* Keys not yet destroyed (state not Deleted, or some material left). */
static int64
KmsGuardLiveKeys(void)
{
	KmsCatalogState st;
	int64		n;
	bool		isnull;

	KmsCatalogEnter(&st);
	KmsExec("SELECT pg_catalog.count(*) FROM kms.key k WHERE k.key_state <> 'Deleted' "
			"OR EXISTS (SELECT 1 FROM kms.key_version v WHERE v.key_id = k.key_id "
			"AND v.material IS NOT NULL)",
			0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	KmsCatalogExit(&st);
	return n;
}

/*
 * Refuse `what` while keys are live, unless pg_kms.allow_unsafe_drop; with
 * it, warn (warn_override) that the keys are being destroyed.  indirect:
 * `what` takes a guard away rather than destroying keys itself.
 */
static void
KmsGuardCheck(const char *what, bool warn_override, bool indirect)
{
	int64		live;
	bool		allow = kms_allow_unsafe_drop;

	if (!OidIsValid(get_namespace_oid("kms", true)) || !OidIsValid(KmsKeyRelationId()))
		return;
	if (!kms_preloaded)
	{
		/* not preloaded: the setting is a placeholder anybody may set */
		const char *v = GetConfigOption("pg_kms.allow_unsafe_drop", true, false);

		allow = v != NULL && parse_bool(v, &allow) && allow && superuser();
	}
	if (allow && !warn_override)
		return;					/* no need to count (a DELETE, row by row) */
	live = KmsGuardLiveKeys();
	if (live == 0)
		return;
	if (allow)
	{
		if (warn_override)
			ereport(WARNING,
					(errmsg("pg_kms: %s destroys keys not yet deleted, and all data encrypted under them", what),
					 errdetail(INT64_FORMAT " key(s) are not yet destroyed; pg_kms.allow_unsafe_drop is on.", live)));
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST), errhidestmt(true),
			 indirect ?
			 errmsg("KMSInvalidStateException: %s would let keys that are not deleted be destroyed", what) :
			 errmsg("KMSInvalidStateException: %s would destroy keys that are not deleted", what),
			 errdetail(INT64_FORMAT " key(s) are not yet destroyed; dropping or deleting pg_kms's tables destroys their material at once, and every value encrypted under them with it.", live),
			 errhint("Schedule the deletion of every key (kms_schedule_key_deletion, 7 to 30 days) and drop once the deletion job has destroyed them, or, to destroy them now, SET pg_kms.allow_unsafe_drop = on as a superuser.")));
}

/* Is this RangeVar (or name list) a relation in schema kms? */
static bool
KmsGuardIsKmsRelation(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	Oid			nsp = get_namespace_oid("kms", true);

	return OidIsValid(relid) && OidIsValid(nsp) && get_rel_namespace(relid) == nsp;
}

void
KmsGuardUtility(PlannedStmt *pstmt)
{
	KmsGuardStatement(pstmt->utilityStmt);
}

/*
 * kms.guard_event_trigger(): ddl_command_start, for a server that does not
 * preload pg_kms (no utility hook then; every call of pg_kms fails, and
 * dropping it must not be what an operator does about that).
 */
Datum
kms_guard_event_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "kms.guard_event_trigger: not called by event trigger manager");
	if (!kms_preloaded)			/* else the utility hook has checked */
		KmsGuardStatement(((EventTriggerData *) fcinfo->context)->parsetree);
	PG_RETURN_VOID();
}

static void
KmsGuardStatement(Node *stmt)
{
	ListCell   *lc;

	/* only these statements look at the catalog (pg_extension) */
	if (stmt == NULL ||
		!(IsA(stmt, DropStmt) || IsA(stmt, TruncateStmt) || IsA(stmt, DropOwnedStmt) ||
		  IsA(stmt, AlterTableStmt)) ||
		!OidIsValid(get_extension_oid("pg_kms", true)))
		return;

	switch (nodeTag(stmt))
	{
		case T_DropStmt:
			{
				DropStmt   *drop = (DropStmt *) stmt;

				foreach(lc, drop->objects)
				{
					Node	   *obj = lfirst(lc);

					if (drop->removeType == OBJECT_EXTENSION &&
						strcmp(strVal(obj), "pg_kms") == 0)
						KmsGuardCheck("DROP EXTENSION pg_kms", true, false);
					else if (drop->removeType == OBJECT_SCHEMA &&
							 strcmp(strVal(obj), "kms") == 0)
						KmsGuardCheck("DROP SCHEMA kms", true, false);
					else if ((drop->removeType == OBJECT_TABLE) &&
							 KmsGuardIsKmsRelation(makeRangeVarFromNameList((List *) obj)))
						KmsGuardCheck("DROP TABLE of a pg_kms table", true, false);
					/* the guard's own triggers: (schema, table, trigger) */
					else if (drop->removeType == OBJECT_TRIGGER &&
							 KmsGuardIsKmsRelation(makeRangeVarFromNameList(list_truncate(list_copy((List *) obj),
																						  list_length((List *) obj) - 1))))
						KmsGuardCheck("DROP TRIGGER on a pg_kms table", false, true);
				}
				break;
			}
		case T_AlterTableStmt:
			{
				AlterTableStmt *alter = (AlterTableStmt *) stmt;

				/* disabling the guard's triggers (ENABLE REPLICA: they stop firing) */
				foreach(lc, alter->cmds)
				{
					AlterTableType t = lfirst_node(AlterTableCmd, lc)->subtype;

					if ((t == AT_DisableTrig || t == AT_DisableTrigAll ||
						 t == AT_DisableTrigUser || t == AT_EnableReplicaTrig) &&
						KmsGuardIsKmsRelation(alter->relation))
					{
						KmsGuardCheck("disabling a trigger of a pg_kms table", false, true);
						break;
					}
				}
				break;
			}
		case T_TruncateStmt:
			foreach(lc, ((TruncateStmt *) stmt)->relations)
			{
				if (KmsGuardIsKmsRelation(lfirst_node(RangeVar, lc)))
				{
					KmsGuardCheck("TRUNCATE of a pg_kms table", true, false);
					break;
				}
			}
			break;
		case T_DropOwnedStmt:
			{
				Oid			owner;

				if (!OidIsValid(get_namespace_oid("kms", true)))
					break;
				owner = KmsCatalogOwner();
				foreach(lc, ((DropOwnedStmt *) stmt)->roles)
				{
					if (get_rolespec_oid(lfirst(lc), true) == owner)
					{
						KmsGuardCheck("DROP OWNED BY the owner of pg_kms", true, false);
						break;
					}
				}
				break;
			}
		default:
			break;
	}
}

/* ----------------------------------------------------------------
 * Account id (kms.account)
 * ----------------------------------------------------------------
 */

/*
 * The stored account id, for common/arn.c (registered by _PG_init): read
 * from kms.account directly (no SPI: ARNs are built in error messages too),
 * only inside a transaction, again only after kms.account changed.  NULL if
 * there is none (a 1.1 catalog not yet updated, no pg_kms here).
 */
const char *
KmsGuardStoredAccountId(void)
{
	static char account[32];
	Oid			nsp;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	bool		in_parallel;

	if (!account_stale || !IsTransactionState())
		return account[0] ? account : NULL;
	nsp = get_namespace_oid("kms", true);
	account_relid = OidIsValid(nsp) ? get_relname_relid("account", nsp) : InvalidOid;
	account[0] = '\0';
	if (!OidIsValid(account_relid))
		return NULL;			/* look again next time */

	/*
	 * A parallel operation may not take the latest snapshot (a parallel
	 * worker builds ARNs when it flushes its audit aggregate): read with
	 * the statement's, and read again next time rather than keep what an
	 * older snapshot showed.
	 */
	in_parallel = IsInParallelMode();
	if (!in_parallel)
		snap = GetLatestSnapshot();
	else if (ActiveSnapshotSet())
		snap = GetActiveSnapshot();
	else
		snap = GetTransactionSnapshot();
	rel = table_open(account_relid, AccessShareLock);
	snap = RegisterSnapshot(snap);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		id = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);
		Datum		acct;

		if (isnull || DatumGetInt32(id) != 1)
			continue;
		acct = heap_getattr(tup, 2, RelationGetDescr(rel), &isnull);
		if (!isnull)
			text_to_cstring_buffer(DatumGetTextPP(acct), account, sizeof(account));
		break;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	account_stale = in_parallel;
	return account[0] ? account : NULL;
}

void
KmsGuardRelcacheCallback(Oid relid)
{
	if (relid == InvalidOid || relid == account_relid)
		account_stale = true;
}

/* ----------------------------------------------------------------
 * The trigger
 * ----------------------------------------------------------------
 */

/* Does this database have keys or secrets? */
static bool
KmsGuardInUse(void)
{
	KmsCatalogState st;
	bool		isnull;
	bool		used;

	KmsCatalogEnter(&st);
	KmsExec("SELECT EXISTS (SELECT 1 FROM kms.key) OR EXISTS (SELECT 1 FROM kms.secret)",
			0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	used = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	KmsCatalogExit(&st);
	return used;
}

static void
KmsGuardRestoreRefused(const char *table, const char *detail)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_INVALID_STATE), errhidestmt(true),
			 errmsg("KMSInvalidStateException: cannot restore pg_kms data into a database that already uses pg_kms (table kms.%s)", table),
			 errdetail("%s", detail),
			 errhint("Restore into a new database created from template0 (createdb -T template0) before pg_kms is used in it, with pg_restore --single-transaction so that a refused restore changes nothing.")));
}

/*
 * kms.account, a row inserted from outside pg_kms (a restore): it replaces
 * the generated row of a fresh database; refused where keys or secrets
 * already exist, and then so is the rest of this session's restore.
 */
static HeapTuple
KmsGuardAccountInsert(TriggerData *td)
{
	KmsCatalogState st;

	if (KmsGuardInUse())
	{
		restore_refused = true;
		KmsGuardRestoreRefused("account",
							   "This database already has keys or secrets of its own; the dump's would be mixed with them under one account id.");
	}
	restore_refused = false;
	KmsCatalogEnter(&st);
	KmsExec("DELETE FROM kms.account WHERE id = 1", 0, NULL, NULL, NULL, false, SPI_OK_DELETE);
	KmsCatalogExit(&st);
	return td->tg_trigtuple;
}

/*
 * kms.master, a row inserted from outside pg_kms: the same master key as
 * this database's (equal key check values) merges; another is refused.
 */
static HeapTuple
KmsGuardMasterInsert(TriggerData *td)
{
	KmsCatalogState st;
	bool		isnull;
	Datum		kcv = heap_getattr(td->tg_trigtuple, 3, RelationGetDescr(td->tg_relation), &isnull);
	Oid			t = BYTEAOID;
	uint64		same;

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT kcv = $1 FROM kms.master WHERE id = 1", 1, &t, &kcv,
				isnull ? "n" : " ", true, SPI_OK_SELECT) == 0)
	{
		KmsCatalogExit(&st);
		return td->tg_trigtuple;
	}
	same = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
	KmsCatalogExit(&st);
	if (same)
		return NULL;			/* this database's row is the dump's */
	KmsGuardRestoreRefused("master",
						   "The dump's key material is wrapped under another master key than this database's (the key check values in kms.master differ).");
	return NULL;				/* not reached */
}

/* Any other kms table, before an outside insert: it must be empty. */
static void
KmsGuardTableInsert(TriggerData *td)
{
	KmsCatalogState st;
	const char *table = RelationGetRelationName(td->tg_relation);
	uint64		rows;

	if (restore_refused)
		KmsGuardRestoreRefused(table, "The restore of kms.account was refused earlier in this session.");
	KmsCatalogEnter(&st);
	rows = KmsExec(psprintf("SELECT 1 FROM kms.%s LIMIT 1", quote_identifier(table)),
				   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	KmsCatalogExit(&st);
	if (rows > 0)
		KmsGuardRestoreRefused(table,
							   psprintf("Table kms.%s already has rows of this database's own; the dump's would be mixed with them.", table));
}

/*
 * kms.guard_trigger(): BEFORE DELETE (row) and BEFORE TRUNCATE on the key
 * and secret tables (TRUNCATE: also when pg_kms is not preloaded),
 * BEFORE INSERT (statement) on the dumped tables, BEFORE INSERT (row) on
 * kms.account and kms.master, AFTER INSERT/UPDATE/DELETE on kms.account.
 * pg_kms's own writes pass.
 */
Datum
kms_guard_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *table;
	HeapTuple	ret = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "kms.guard_trigger: not called by trigger manager");
	table = RelationGetRelationName(td->tg_relation);
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ret = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;

	/* ARNs change: every session reads kms.account again (at commit) */
	if (strcmp(table, "account") == 0)
		CacheInvalidateRelcache(td->tg_relation);
	if (kms_internal_write || TRIGGER_FIRED_AFTER(td->tg_event))
		return PointerGetDatum(ret);

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		KmsGuardCheck(psprintf("DELETE on kms.%s", table), false, false);
	else if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		KmsGuardCheck("TRUNCATE of a pg_kms table", false, false);
	else if (TRIGGER_FIRED_BY_INSERT(td->tg_event) && TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		if (strcmp(table, "account") == 0)
			ret = KmsGuardAccountInsert(td);
		else if (strcmp(table, "master") == 0)
			ret = KmsGuardMasterInsert(td);
	}
	else if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		KmsGuardTableInsert(td);
	return PointerGetDatum(ret);
}
