/*-------------------------------------------------------------------------
 *
 * keys_sql.c
 *	  CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
 *	  ScheduleKeyDeletion, CancelKeyDeletion, key tags and key rotation in
 *	  SQL, with the helpers the other KMS entry points share.
 *
 * IDENTIFICATION
 *	  src/kms/keys_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "cache/cache.h"
#include "keystore/keystore.h"
#include "provider/provider.h"

#include "kms/kms_internal.h"

/* ----------------------------------------------------------------
 * Small helpers
 * ----------------------------------------------------------------
 */
char *
ArgKeyRef(FunctionCallInfo fcinfo, int n)
{
	char	   *s = KmsArgText(fcinfo, n);

	if (s == NULL || s[0] == '\0')
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "key id must not be empty");
	return s;
}

/*
 * Run a query as the catalog owner and return its only datum, copied;
 * saved: keep its plan there (KmsExecSaved), or NULL.
 */
static Datum
KmsQueryDatumEx(KmsSavedPlan *saved, const char *sql, int nargs, Oid *types,
				Datum *values, bool *isnull)
{
	KmsCatalogState st;
	Datum		d = (Datum) 0;
	uint64		n;

	*isnull = true;
	KmsCatalogEnter(&st);
	/* not read-only: see this transaction's own changes */
	if (saved != NULL)
		n = KmsExecSaved(saved, sql, nargs, types, values, NULL, false, SPI_OK_SELECT);
	else
		n = KmsExec(sql, nargs, types, values, NULL, false, SPI_OK_SELECT);
	if (n == 1)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
		if (!*isnull)
		{
			Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, 0);

			d = SPI_datumTransfer(d, att->attbyval, att->attlen);
		}
	}
	KmsCatalogExit(&st);
	return d;
}

#define KmsQueryDatum(sql, nargs, types, values, isnull) \
	KmsQueryDatumEx(NULL, sql, nargs, types, values, isnull)

/*
 * DescribeKey's query is planned once per backend (its text names the
 * KeyManager column only once an update added it: a new text, a new
 * plan); planning was half the cost of a call.
 */
static KmsSavedPlan describe_plan;

/*
 * A key managed by pg_kms itself (KeyManager AWS: the secrets store's
 * default key, named by an alias under alias/pg_kms/) is changed by a
 * superuser only, as AWS lets no customer change an AWS managed key.
 */
void
KmsCheckManagedKey(KmsKeyInfo *key, bool aws_managed, const char *operation)
{
	if (!aws_managed)
		return;
	if (!superuser())
	{
		KmsAudit(operation, key->key_id_str, 0, "AccessDeniedException");
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED),
				 errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform %s on key \"%s\": it is managed by pg_kms (KeyManager AWS)",
						GetUserNameFromId(GetUserId(), false), operation,
						KmsKeyArn(key->key_id_str)),
				 errdetail("Only a superuser may change a key that pg_kms manages.")));
	}
}

/*
 * A superuser changing a key pg_kms manages is told what the change does
 * and how many secrets it concerns, just before the change is made.
 */
void
KmsWarnManagedKey(KmsKeyInfo *key, const char *operation, const char *object,
				  const char *what)
{
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(key->key_id);
	bool		isnull;
	Datum		n;

	n = KmsQueryDatum("SELECT count(*) FROM kms.secret WHERE kms_key_id = $1",
					  1, &t, &v, &isnull);
	ereport(WARNING,
			(errmsg("%s on %s that pg_kms manages (KeyManager AWS), with %lld secret(s) under the key: %s",
					operation, object, isnull ? 0LL : (long long) DatumGetInt64(n), what),
			 errdetail("The key is \"%s\".", KmsKeyArn(key->key_id_str))));
}

/*
 * Lock a key's row for a state change and read its state after the lock:
 * a transition decides on that, never on the state cached or seen by the
 * statement's snapshot, so that concurrent changes and the deletion job
 * (which locks the row too) serialize.  Fills a copy of the key info with
 * the locked state; a key deleted meanwhile is NotFoundException.
 */
KmsKeyInfo *
KmsLockKey(KmsKeyInfo *cached, bool *aws_managed, int32 *on_demand_rotations)
{
	KmsKeyInfo *key = palloc(sizeof(KmsKeyInfo));
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;
	bool		isnull;
	bool		found;

	*key = *cached;				/* the local cache may be reset meanwhile */
	v = KmsUuidDatum(key->key_id);
	KmsCatalogEnter(&st);
	found = KmsExec(psprintf("SELECT k.key_state, (%s) = 'AWS', k.on_demand_rotations "
							 "FROM kms.key k WHERE k.key_id = $1 FOR UPDATE OF k",
							 KmsKeyManagerSql()),
					1, &t, &v, NULL, false, SPI_OK_SELECT) == 1;
	if (found)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;
		char	   *state = SPI_getvalue(tup, td, 1);	/* SPI memory: use here */

		for (int i = 0; i <= KMS_STATE_DELETED; i++)
			if (strcmp(state, KmsKeyStateNames[i]) == 0)
				key->state = (KmsKeyState) i;
		*aws_managed = DatumGetBool(SPI_getbinval(tup, td, 2, &isnull));
		if (on_demand_rotations)
			*on_demand_rotations = DatumGetInt32(SPI_getbinval(tup, td, 3, &isnull));
	}
	KmsCatalogExit(&st);
	if (!found || key->state == KMS_STATE_DELETED)
		KmsKeyNotFoundError(KmsKeyArn(key->key_id_str),
							"The key was deleted and its key material destroyed.");
	return key;
}

/*
 * Resolve a key for a management operation, refuse on a standby, lock its
 * row (KmsLockKey) and apply the rule for keys pg_kms manages.  Returns a
 * copy whose state is the locked row's.
 */
static KmsKeyInfo *
KmsManagedKeyEx(const char *keyref, const char *operation, bool *aws_managed,
				int32 *on_demand_rotations)
{
	KmsKeyInfo *cached = KmsResolveKeyForManagement(keyref, operation);
	KmsKeyInfo *key;

	KmsCheckWritable(operation);
	key = KmsLockKey(cached, aws_managed, on_demand_rotations);
	KmsCheckManagedKey(key, *aws_managed, operation);
	return key;
}

KmsKeyInfo *
KmsManagedKey(const char *keyref, const char *operation)
{
	bool		aws_managed;

	return KmsManagedKeyEx(keyref, operation, &aws_managed, NULL);
}

static void
KmsUpdateKey(KmsKeyInfo *key, const char *set_clause, int nextra, Oid *types,
			 Datum *values)
{
	KmsUpdateKeyRow(key->key_id, set_clause, nextra, types, values);
	KmsInvalidateAtCommit();
}

void
KmsNotPendingDeletion(KmsKeyInfo *key)
{
	if (key->state == KMS_STATE_PENDING_DELETION)
		KmsPendingDeletionError(key->key_id_str);
}

static void
KmsRequireSymmetric(KmsKeyInfo *key, const char *operation)
{
	if (key->usage != KMS_USAGE_ENCRYPT_DECRYPT)
		kms_error(UnsupportedOperationException, KMS_SQLSTATE_UNSUPPORTED,
				  "%s is not supported for key \"%s\" with key spec %s; only symmetric encryption keys rotate",
				  operation, KmsKeyArn(key->key_id_str), key->key_spec);
}

static Jsonb *
KmsNormalizeTags(Jsonb *jb)
{
	return KmsParseTags(jb, &KmsKeyTagStyle);
}

/* ----------------------------------------------------------------
 * CreateKey, DescribeKey, ListKeys
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(kms_create_key, "CreateKey", KMS_AUDIT_NO_RESOURCE)
{
	char	   *description = KmsArgText(fcinfo, 0);
	char	   *usage = KmsArgText(fcinfo, 1);
	char	   *spec = KmsArgText(fcinfo, 2);
	Jsonb	   *tags = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	KmsKeyUsage ku;

	KmsCheckGeneration();
	if (!KmsIsAdmin())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform CreateKey",
						GetUserNameFromId(GetUserId(), false)),
				 errhint("Members of kms_admin may create keys.")));
	KmsCheckWritable("CreateKey");

	if (usage == NULL)
		usage = "ENCRYPT_DECRYPT";
	if (spec == NULL)
		spec = "SYMMETRIC_DEFAULT";
	if (description && strlen(description) > 8192)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "description must be at most 8192 characters");

	if (strcmp(usage, "ENCRYPT_DECRYPT") == 0)
		ku = KMS_USAGE_ENCRYPT_DECRYPT;
	else if (strcmp(usage, "GENERATE_VERIFY_MAC") == 0)
		ku = KMS_USAGE_GENERATE_VERIFY_MAC;
	else if (strcmp(usage, "SIGN_VERIFY") == 0 || strcmp(usage, "KEY_AGREEMENT") == 0)
		kms_error(UnsupportedOperationException, KMS_SQLSTATE_UNSUPPORTED,
				  "key usage %s is not supported; use ENCRYPT_DECRYPT or GENERATE_VERIFY_MAC", usage);
	else
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "key usage \"%s\" is not valid; use ENCRYPT_DECRYPT or GENERATE_VERIFY_MAC", usage);

	if (strcmp(spec, "SYMMETRIC_DEFAULT") == 0)
	{
		if (ku != KMS_USAGE_ENCRYPT_DECRYPT)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "key spec SYMMETRIC_DEFAULT requires key usage ENCRYPT_DECRYPT");
	}
	else if (strcmp(spec, "HMAC_224") == 0 || strcmp(spec, "HMAC_256") == 0 ||
			 strcmp(spec, "HMAC_384") == 0 || strcmp(spec, "HMAC_512") == 0)
	{
		if (ku != KMS_USAGE_GENERATE_VERIFY_MAC)
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "key spec %s requires key usage GENERATE_VERIFY_MAC", spec);
	}
	else if (strncmp(spec, "RSA_", 4) == 0 || strncmp(spec, "ECC_", 4) == 0 ||
			 strncmp(spec, "ML_DSA_", 7) == 0 || strcmp(spec, "SM2") == 0)
		kms_error(UnsupportedOperationException, KMS_SQLSTATE_UNSUPPORTED,
				  "key spec %s is not supported; use SYMMETRIC_DEFAULT or HMAC_224/256/384/512", spec);
	else
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "key spec \"%s\" is not valid", spec);

	PG_RETURN_TEXT_P(cstring_to_text(KmsCreateKeyInternal(description, ku, spec,
														  KmsNormalizeTags(tags),
														  GetUserId())));
}

KMS_AUDITED_ENTRY(kms_describe_key, "DescribeKey", 0)
{
	char	   *ref = ArgKeyRef(fcinfo, 0);
	KmsKeyInfo *key = KmsResolveKey(ref, KMS_OP_DESCRIBE_KEY);
	Oid			types[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];
	bool		isnull;
	Datum		d;

	values[0] = KmsUuidDatum(key->key_id);
	values[1] = CStringGetTextDatum(KmsAccountId());
	values[2] = CStringGetTextDatum(KmsKeyArn(key->key_id_str));
	d = KmsQueryDatumEx(&describe_plan, psprintf("SELECT jsonb_strip_nulls(jsonb_build_object("
					  "'AWSAccountId', $2, 'KeyId', k.key_id::text, 'Arn', $3, "
					  "'CreationDate', k.creation_date, 'Enabled', k.key_state = 'Enabled', "
					  "'Description', k.description, 'KeyUsage', k.key_usage, "
					  "'KeyState', k.key_state, 'DeletionDate', k.deletion_date, "
					  "'Origin', k.origin, 'KeyManager', %s, "
					  "'CustomerMasterKeySpec', k.key_spec, 'KeySpec', k.key_spec, "
					  "'EncryptionAlgorithms', CASE WHEN k.key_usage = 'ENCRYPT_DECRYPT' THEN jsonb_build_array('SYMMETRIC_DEFAULT') END, "
					  "'MacAlgorithms', CASE WHEN k.key_usage = 'GENERATE_VERIFY_MAC' THEN jsonb_build_array('HMAC_SHA_' || substr(k.key_spec, 6)) END, "
					  "'MultiRegion', false, "
					  "'PendingDeletionWindowInDays', CASE WHEN k.key_state = 'PendingDeletion' THEN k.pending_window_days END, "
					  "'CurrentKeyMaterialId', CASE WHEN k.key_usage = 'ENCRYPT_DECRYPT' THEN "
					  "  (SELECT v.key_material_id FROM kms.key_version v WHERE v.key_id = k.key_id AND v.version = k.current_version) END)) "
					  "FROM kms.key k WHERE k.key_id = $1", KmsKeyManagerSql()),
					  3, types, values, &isnull);
	KmsAudit("DescribeKey", key->key_id_str, 0, "success");
	if (isnull)
		KmsKeyNotFound(ref, KMS_OP_DESCRIBE_KEY);
	PG_RETURN_DATUM(d);
}

/* Key ids of all live keys (copied out of SPI), each with its paging position. */
static List *
KmsAllKeyIds(List **positions)
{
	KmsCatalogState st;
	List	   *ids = NIL;
	uint64		n;
	MemoryContext caller = CurrentMemoryContext;

	KmsCatalogEnter(&st);
	n = KmsExec("SELECT key_id, creation_date FROM kms.key WHERE key_state <> 'Deleted' "
				"ORDER BY creation_date, key_id::text COLLATE \"C\"",
				0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		pg_uuid_t  *u = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc, 1, &isnull));
		TimestampTz created = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[i],
																SPI_tuptable->tupdesc, 2, &isnull));
		MemoryContext old = MemoryContextSwitchTo(caller);
		uint8	   *copy = palloc(KMS_KEY_ID_LEN);
		char		kid[37];

		memcpy(copy, u->data, KMS_KEY_ID_LEN);
		ids = lappend(ids, copy);
		KmsUuidToString(u->data, kid);
		*positions = lappend(*positions, KmsPagePosTime(created, kid));
		MemoryContextSwitchTo(old);
	}
	KmsCatalogExit(&st);
	return ids;
}


KMS_AUDITED_ENTRY(kms_list_keys, "ListKeys", KMS_AUDIT_NO_RESOURCE)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts = KmsStartSRF(fcinfo, &tupdesc);
	List	   *ids;
	List	   *positions = NIL;
	ListCell   *lc;
	ListCell   *pc;
	KmsPager	pg;

	KmsCheckGeneration();
	/* AWS API reference, ListKeys, Limit: "between 1 and 1000, inclusive ... defaults to 100" */
	KmsPagerInit(&pg, fcinfo, 0, "ListKeys", 1000, 100, ts, tupdesc, 2);
	ids = KmsAllKeyIds(&positions);
	forboth(lc, ids, pc, positions)
	{
		KmsKeyInfo *key;
		Datum		values[3];
		bool		nulls[3] = {0};

		key = KmsLookupKeyById((uint8 *) lfirst(lc));
		if (!KmsVisible(key))
			continue;
		if (!KmsPagerWant(&pg, lfirst(pc)))
		{
			if (pg.done)
				break;
			continue;
		}
		values[0] = CStringGetTextDatum(key->key_id_str);
		values[1] = CStringGetTextDatum(KmsKeyArn(key->key_id_str));
		KmsPagerPut(&pg, values, nulls, lfirst(pc));
	}
	KmsPagerFinish(&pg);
	KmsAudit("ListKeys", NULL, 0, "success");
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Key state
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(kms_enable_key, "EnableKey", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "EnableKey");

	KmsNotPendingDeletion(key);
	if (key->state == KMS_STATE_DISABLED)
		KmsUpdateKey(key, "key_state = 'Enabled'", 0, NULL, NULL);
	KmsAudit("EnableKey", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_disable_key, "DisableKey", 0)
{
	bool		aws_managed;
	KmsKeyInfo *key = KmsManagedKeyEx(ArgKeyRef(fcinfo, 0), "DisableKey",
									  &aws_managed, NULL);

	KmsNotPendingDeletion(key);
	if (key->state == KMS_STATE_ENABLED && aws_managed)
		KmsWarnManagedKey(key, "DisableKey", "a key",
						  "no secret or ciphertext encrypted under it can be read until the key is enabled again");
	if (key->state == KMS_STATE_ENABLED)
		KmsUpdateKey(key, "key_state = 'Disabled'", 0, NULL, NULL);
	KmsAudit("DisableKey", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_schedule_key_deletion, "ScheduleKeyDeletion", 0)
{
	bool		aws_managed;
	KmsKeyInfo *key = KmsManagedKeyEx(ArgKeyRef(fcinfo, 0), "ScheduleKeyDeletion",
									  &aws_managed, NULL);
	int32		days = PG_ARGISNULL(1) ? 30 : PG_GETARG_INT32(1);
	Oid			t[3] = {UUIDOID, INT4OID, TEXTOID};
	Datum		v[3];
	bool		isnull;
	Datum		d;

	if (days < 7 || days > 30)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "pending_window_in_days must be between 7 and 30");
	KmsNotPendingDeletion(key);
	if (aws_managed)
		KmsWarnManagedKey(key, "ScheduleKeyDeletion", "a key",
						  "when the window ends its key material is destroyed, and with it, for good, every secret and ciphertext encrypted under it; kms_cancel_key_deletion() stops it until then");
	v[0] = KmsUuidDatum(key->key_id);
	v[1] = Int32GetDatum(days);
	v[2] = CStringGetTextDatum(KmsKeyArn(key->key_id_str));
	KmsUpdateKeyRow(key->key_id, "key_state = 'PendingDeletion', pending_window_days = $2, "
					"deletion_date = pg_catalog.now() + pg_catalog.make_interval(days => $2)",
					1, &t[1], &v[1]);
	KmsInvalidateAtCommit();
	d = KmsQueryDatum("SELECT jsonb_build_object('KeyId', $3, 'DeletionDate', deletion_date, "
					  "'KeyState', key_state, 'PendingWindowInDays', pending_window_days) "
					  "FROM kms.key WHERE key_id = $1 AND $2 IS NOT NULL",
					  3, t, v, &isnull);
	{
		StringInfoData p;

		initStringInfo(&p);
		KmsAuditParamInt(&p, "pendingWindowInDays", days);
		KmsAuditEx("ScheduleKeyDeletion", key->key_id_str, NULL, "success", KmsAuditParams(&p));
	}
	PG_RETURN_DATUM(d);
}

KMS_AUDITED_ENTRY(kms_cancel_key_deletion, "CancelKeyDeletion", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "CancelKeyDeletion");

	if (key->state != KMS_STATE_PENDING_DELETION)
		kms_error(KMSInvalidStateException, KMS_SQLSTATE_INVALID_STATE,
				  "%s is not pending deletion.", KmsKeyArn(key->key_id_str));
	KmsUpdateKey(key, "key_state = 'Disabled', deletion_date = NULL, pending_window_days = NULL",
				 0, NULL, NULL);
	KmsAudit("CancelKeyDeletion", key->key_id_str, 0, "success");
	PG_RETURN_TEXT_P(cstring_to_text(KmsKeyArn(key->key_id_str)));
}

KMS_AUDITED_ENTRY(kms_update_key_description, "UpdateKeyDescription", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "UpdateKeyDescription");
	char	   *desc = KmsArgText(fcinfo, 1);
	Oid			t = TEXTOID;
	Datum		v;

	if (desc == NULL)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "description must not be null");
	if (strlen(desc) > 8192)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "description must be at most 8192 characters");
	KmsNotPendingDeletion(key);
	v = CStringGetTextDatum(desc);
	KmsUpdateKey(key, "description = $2", 1, &t, &v);
	KmsAudit("UpdateKeyDescription", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Tags
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(kms_tag_resource, "TagResource", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "TagResource");
	Jsonb	   *tags;
	Oid			t[2] = {UUIDOID, JSONBOID};
	Datum		v[2];
	bool		isnull;
	Datum		count;

	if (PG_ARGISNULL(1))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "tags must not be null");
	tags = KmsNormalizeTags(PG_GETARG_JSONB_P(1));
	KmsNotPendingDeletion(key);
	v[0] = KmsUuidDatum(key->key_id);
	v[1] = JsonbPGetDatum(tags);
	count = KmsQueryDatum("SELECT count(*)::int FROM kms.key k, jsonb_object_keys(k.tags || $2) "
						  "WHERE k.key_id = $1", 2, t, v, &isnull);
	if (!isnull && DatumGetInt32(count) > 50)
		kms_error(LimitExceededException, KMS_SQLSTATE_LIMIT_EXCEEDED,
				  "a key can have at most 50 tags");
	KmsUpdateKey(key, "tags = tags || $2", 1, &t[1], &v[1]);
	KmsAudit("TagResource", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_untag_resource, "UntagResource", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "UntagResource");
	Oid			t = TEXTARRAYOID;
	Datum		v;

	if (PG_ARGISNULL(1))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "tag_keys must not be null");
	KmsNotPendingDeletion(key);
	v = PG_GETARG_DATUM(1);
	KmsUpdateKey(key, "tags = tags - $2", 1, &t, &v);
	KmsAudit("UntagResource", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_list_resource_tags, "ListResourceTags", 0)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts = KmsStartSRF(fcinfo, &tupdesc);
	KmsKeyInfo *key = KmsResolveKey(ArgKeyRef(fcinfo, 0), KMS_OP_DESCRIBE_KEY);
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(key->key_id);
	uint64		n;
	KmsPager	pg;

	/* AWS API reference, ListResourceTags, Limit: "between 1 and 50, inclusive ... defaults to 50" */
	KmsPagerInit(&pg, fcinfo, 1, "ListResourceTags", 50, 50, ts, tupdesc, 2);
	KmsCatalogEnter(&st);
	n = KmsExec("SELECT e.key, e.value FROM kms.key k, jsonb_each_text(k.tags) e "
				"WHERE k.key_id = $1 ORDER BY e.key COLLATE \"C\"", 1, &t, &v, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};
		bool		isnull;
		char	   *pos = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (!KmsPagerWant(&pg, pos))
		{
			if (pg.done)
				break;
			continue;
		}
		values[0] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		values[1] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		KmsPagerPut(&pg, values, nulls, pos);
	}
	KmsPagerFinish(&pg);
	KmsCatalogExit(&st);
	KmsAudit("ListResourceTags", key->key_id_str, 0, "success");
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Rotation
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(kms_enable_key_rotation, "EnableKeyRotation", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "EnableKeyRotation");
	int32		days = PG_ARGISNULL(1) ? 365 : PG_GETARG_INT32(1);
	Oid			t = INT4OID;
	Datum		v = Int32GetDatum(days);

	if (days < 90 || days > 2560)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "rotation_period_in_days must be between 90 and 2560");
	KmsRequireSymmetric(key, "EnableKeyRotation");
	KmsCheckUsable(key);
	KmsUpdateKey(key, "rotation_enabled = true, rotation_period_days = $2, "
				 "next_rotation_date = pg_catalog.now() + pg_catalog.make_interval(days => $2)",
				 1, &t, &v);
	KmsAudit("EnableKeyRotation", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_disable_key_rotation, "DisableKeyRotation", 0)
{
	KmsKeyInfo *key = KmsManagedKey(ArgKeyRef(fcinfo, 0), "DisableKeyRotation");

	KmsRequireSymmetric(key, "DisableKeyRotation");
	KmsCheckUsable(key);
	KmsUpdateKey(key, "rotation_enabled = false, next_rotation_date = NULL", 0, NULL, NULL);
	KmsAudit("DisableKeyRotation", key->key_id_str, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_get_key_rotation_status, "GetKeyRotationStatus", 0)
{
	KmsKeyInfo *key = KmsResolveKey(ArgKeyRef(fcinfo, 0), KMS_OP_DESCRIBE_KEY);
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bool		isnull;

	Datum		d;

	KmsRequireSymmetric(key, "GetKeyRotationStatus");
	v[0] = KmsUuidDatum(key->key_id);
	v[1] = CStringGetTextDatum(KmsKeyArn(key->key_id_str));
	d = (KmsQueryDatum("SELECT jsonb_strip_nulls(jsonb_build_object("
								  "'KeyRotationEnabled', rotation_enabled AND key_state <> 'PendingDeletion', "
								  "'KeyId', $2, "
								  "'RotationPeriodInDays', CASE WHEN rotation_enabled THEN rotation_period_days END, "
								  "'NextRotationDate', CASE WHEN rotation_enabled AND key_state <> 'PendingDeletion' THEN next_rotation_date END, "
								  "'OnDemandRotationStartDate', on_demand_rotation_start)) "
								  "FROM kms.key WHERE key_id = $1", 2, t, v, &isnull));
	KmsAudit("GetKeyRotationStatus", key->key_id_str, 0, "success");
	PG_RETURN_DATUM(d);
}


KMS_AUDITED_ENTRY(kms_rotate_key_on_demand, "RotateKeyOnDemand", 0)
{
	int32		count = 0;
	bool		aws_managed;
	KmsKeyInfo *key = KmsManagedKeyEx(ArgKeyRef(fcinfo, 0), "RotateKeyOnDemand",
									  &aws_managed, &count);
	int32		version;

	KmsRequireSymmetric(key, "RotateKeyOnDemand");
	KmsCheckUsable(key);
	/* counted under the row lock: concurrent rotations cannot pass 25 */
	if (count >= KMS_MAX_ON_DEMAND_ROTATIONS)
		kms_error(LimitExceededException, KMS_SQLSTATE_LIMIT_EXCEEDED,
				  "key \"%s\" has reached the limit of %d on-demand rotations",
				  KmsKeyArn(key->key_id_str), KMS_MAX_ON_DEMAND_ROTATIONS);
	version = KmsRotateKeyMaterial(key, "ON_DEMAND");
	KmsUpdateKey(key, "on_demand_rotations = on_demand_rotations + 1, "
				 "on_demand_rotation_start = pg_catalog.now()", 0, NULL, NULL);
	KmsAudit("RotateKeyOnDemand", key->key_id_str, version, "success");
	/* AWS API reference, RotateKeyOnDemand response: KeyId, the key id (AWS's example) */
	PG_RETURN_TEXT_P(cstring_to_text(key->key_id_str));
}

KMS_AUDITED_ENTRY(kms_list_key_rotations, "ListKeyRotations", 0)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts = KmsStartSRF(fcinfo, &tupdesc);
	KmsKeyInfo *key = KmsResolveKey(ArgKeyRef(fcinfo, 0), KMS_OP_DESCRIBE_KEY);
	char	   *include = KmsArgText(fcinfo, 1);
	bool		all;
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	uint64		n;
	KmsPager	pg;

	/* AWS API reference, ListKeyRotations, Limit: "between 1 and 1000, inclusive ... defaults to 100" */
	KmsPagerInit(&pg, fcinfo, 2, "ListKeyRotations", 1000, 100, ts, tupdesc, 5);
	if (include == NULL || strcmp(include, "ROTATIONS_ONLY") == 0)
		all = false;
	else if (strcmp(include, "ALL_KEY_MATERIAL") == 0)
		all = true;
	else
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "include_key_material must be ROTATIONS_ONLY or ALL_KEY_MATERIAL");
	KmsRequireSymmetric(key, "ListKeyRotations");
	v[0] = KmsUuidDatum(key->key_id);
	v[1] = CStringGetTextDatum(KmsKeyArn(key->key_id_str));
	KmsCatalogEnter(&st);
	n = KmsExec(all ?
				"SELECT $2, v.key_material_id, CASE WHEN v.version = k.current_version THEN 'CURRENT' ELSE 'NON_CURRENT' END, "
				"v.created, v.rotation_type, v.version FROM kms.key_version v JOIN kms.key k USING (key_id) "
				"WHERE v.key_id = $1 ORDER BY v.version" :
				"SELECT $2, v.key_material_id, CASE WHEN v.version = k.current_version THEN 'CURRENT' ELSE 'NON_CURRENT' END, "
				"v.created, v.rotation_type, v.version FROM kms.key_version v JOIN kms.key k USING (key_id) "
				"WHERE v.key_id = $1 AND v.version > 1 ORDER BY v.version",
				2, t, v, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[6];
		bool		nulls[6];
		bool		isnull;
		char	   *pos = KmsPagePosInt(DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
																	SPI_tuptable->tupdesc, 6, &isnull)));

		if (!KmsPagerWant(&pg, pos))
		{
			if (pg.done)
				break;
			continue;
		}
		for (int j = 0; j < 5; j++)
			values[j] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, j + 1, &nulls[j]);
		KmsPagerPut(&pg, values, nulls, pos);
	}
	KmsPagerFinish(&pg);
	KmsCatalogExit(&st);
	KmsAudit("ListKeyRotations", key->key_id_str, 0, "success");
	return (Datum) 0;
}
