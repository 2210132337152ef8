/*-------------------------------------------------------------------------
 *
 * write_sql.c
 *	  The writing SQL entry points: CreateSecret, PutSecretValue,
 *	  UpdateSecret, UpdateSecretVersionStage, DeleteSecret, RestoreSecret,
 *	  TagResource, UntagResource, GetRandomPassword, per-secret grants.
 *
 * IDENTIFICATION
 *	  src/secrets/write_sql.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "cache/cache.h"
#include "catalog/principals.h"
#include "envelope/envelope.h"
#include "keystore/keystore.h"

#include "secrets/secrets_internal.h"

/* ----------------------------------------------------------------
 * CreateSecret
 * ----------------------------------------------------------------
 */
/*
 * Insert the row of a new secret m (id, name, ARN, owner, key filled in);
 * false if the name was taken meanwhile.
 */
static bool
InsertSecretRow(SecretMeta *m, const char *description, const char *key_ref,
				Jsonb *tags, const char *type)
{
	KmsCatalogState st;
	Oid			t[10] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, UUIDOID, TEXTOID, OIDOID, JSONBOID,
	TEXTOID, BOOLOID};
	Datum		v[10];
	char		n[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		inserted;

	v[0] = KmsUuidDatum(m->id);
	v[1] = CStringGetTextDatum(m->name);
	v[2] = CStringGetTextDatum(m->arn);
	if (description)
		v[3] = CStringGetTextDatum(description);
	else
		n[3] = 'n';
	v[4] = KmsUuidDatum(m->key_id);
	if (!m->default_key)
		v[5] = CStringGetTextDatum(key_ref);
	else
		n[5] = 'n';
	v[6] = ObjectIdGetDatum(m->owner);
	v[7] = tags ? JsonbPGetDatum(tags) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	if (type)
		v[8] = CStringGetTextDatum(type);
	else
		n[8] = 'n';
	v[9] = BoolGetDatum(tags != NULL);
	KmsCatalogEnter(&st);
	if (SecretCatalogHas12())
		inserted = KmsExec("INSERT INTO kms.secret (secret_id, name, arn, description, kms_key_id, kms_key_ref, "
						   "owner, tags, created_date, last_changed_date, secret_type, tagged) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7::regrole, $8, pg_catalog.now(), pg_catalog.now(), $9, $10) "
						   "ON CONFLICT (name) DO NOTHING",
						   10, t, v, n, false, SPI_OK_INSERT) == 1;
	else
		inserted = KmsExec("INSERT INTO kms.secret (secret_id, name, arn, description, kms_key_id, kms_key_ref, "
						   "owner, tags, created_date, last_changed_date) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7::regrole, $8, pg_catalog.now(), pg_catalog.now()) "
						   "ON CONFLICT (name) DO NOTHING",
						   8, t, v, n, false, SPI_OK_INSERT) == 1;
	KmsCatalogExit(&st);
	return inserted;
}

KMS_AUDITED_ENTRY(create_secret, "CreateSecret", 0)
{
	char	   *name = KmsArgText(fcinfo, 0);
	char	   *description = KmsArgText(fcinfo, 3);
	char	   *key_ref = KmsArgText(fcinfo, 4);
	Jsonb	   *tags = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);
	char	   *token = KmsArgText(fcinfo, 6);
	char	   *type = ArgTextOpt(fcinfo, 7);
	SecretValue val;
	KmsKeyInfo	key;
	SecretMeta	m;
	KmsCatalogState st;
	Oid			owner = GetUserId();
	StringInfoData p;
	char	   *version_id = NULL;
	uint8		sid[16];
	bool		inserted;

	SecretCacheCheck();
	if (!KmsIsAdmin())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED),
				 errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform CreateSecret",
						GetUserNameFromId(owner, false)),
				 errhint("Members of kms_admin may create secrets.")));
	KmsCheckWritable("CreateSecret");
	ValidateName(name);
	ValidateDescription(description);
	ArgValue(fcinfo, 1, 2, &val);
	ValidateToken(token, "client_request_token");
	ValidateType(type);
	tags = NormalizeTags(tags);

	/* A name is free again once its deletion window has passed. */
	KmsCatalogEnter(&st);
	if (KmsExec("DELETE FROM kms.secret WHERE deletion_date <= pg_catalog.now()",
				0, NULL, NULL, NULL, false, SPI_OK_DELETE) > 0)
		SecretChanged();
	KmsCatalogExit(&st);

	/* An existing name: an idempotent retry, or ResourceExistsException. */
	if (SecretLoad(name, &m, CurrentMemoryContext))
	{
		bool		binary;
		bytea	   *old;

		if (token && val.present && SecretAllowed(&m, SEC_OP_PUT_SECRET_VALUE) &&
			!m.deleted && (old = FetchVersion(&m, token, &binary)) != NULL &&
			!VersionHasNoValue(old))
		{
			bytea	   *plain = SecretDecrypt(old, &m, token);
			bool		same = binary == val.binary &&
				VARSIZE(plain) - VARHDRSZ == val.len &&
				kms_const_time_eq((const uint8 *) VARDATA(plain),
								  (const uint8 *) val.data, val.len);

			WipeBytea(plain);
			if (same)
				PG_RETURN_JSONB_P(WriteResult(&m, token, false));
		}
		SecretExists(name, m.deleted);
	}

	KeyForWrite(key_ref, &key);

	RandomUuid(sid);
	memset(&m, 0, sizeof(m));
	memcpy(m.id, sid, 16);
	m.name = name;
	m.arn = NewSecretArn(name);
	m.owner = owner;
	memcpy(m.key_id, key.key_id, KMS_KEY_ID_LEN);
	m.default_key = IsDefaultKeyRef(key_ref);

	inserted = InsertSecretRow(&m, description, key_ref, tags, type);
	if (!inserted)
		SecretExists(name, false);

	if (val.present)
	{
		version_id = token ? token : NewVersionId();
		PutVersion(&m, &key, &val, version_id, NIL);
	}
	SecretChanged();
	initStringInfo(&p);
	SecretAuditParam(&p, "name", name);
	SecretAuditParam(&p, "kmsKeyId", key_ref);
	SecretAuditParam(&p, "type", type);
	SecretAuditParam(&p, "clientRequestToken", token);
	KmsAuditEx("CreateSecret", m.arn, version_id, "success", KmsAuditParams(&p));
	PG_RETURN_JSONB_P(WriteResult(&m, version_id, false));
}

/* ----------------------------------------------------------------
 * PutSecretValue, UpdateSecret, UpdateSecretVersionStage
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(put_secret_value, "PutSecretValue", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *token = KmsArgText(fcinfo, 4);
	char	   *rotation_token = ArgTextOpt(fcinfo, 5);
	List	   *stages;
	SecretValue val;
	SecretMeta	m;
	KmsKeyInfo	key;
	char	   *version_id;
	StringInfoData p;

	SecretCacheCheck();
	ArgValue(fcinfo, 1, 2, &val);
	/* PutSecretValue API reference: InvalidRequestException, this text */
	if (!val.present)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_REQUEST), errhidestmt(true),
				 errmsg("InvalidRequestException: You must provide either SecretString or SecretBinary."),
				 errhint("Give secret_string or secret_binary.")));
	stages = ArgStages(fcinfo, 3);
	ValidateToken(token, "client_request_token");
	ValidateRotationToken(rotation_token);

	SecretForWrite(ref, SEC_OP_PUT_SECRET_VALUE, "PutSecretValue", true, &m);
	SecretKeyForWrite(&m, &key);
	version_id = token ? token : NewVersionId();
	if (PutVersion(&m, &key, &val, version_id, stages))
	{
		SecretTouch(&m);
		SecretChanged();
	}
	initStringInfo(&p);
	SecretAuditParam(&p, "versionStages", StagesText(stages));
	SecretAuditParam(&p, "clientRequestToken", token);
	KmsAuditEx("PutSecretValue", m.arn, version_id, "success", KmsAuditParams(&p));
	PG_RETURN_JSONB_P(WriteResult(&m, version_id, true));
}

/*
 * Re-encrypt every version that has a label under a new key.  AWS
 * re-encrypts only AWSCURRENT, AWSPENDING and AWSPREVIOUS; a custom label
 * left under the old key would then need a grant on that key (or, for the
 * default key, be readable only by the rule of a key the secret no longer
 * uses), so every labelled version moves.  Versions without labels stay
 * under the key that wrote them and are read through it.
 */
static void
Reencrypt(SecretMeta *m, KmsKeyInfo *newkey)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	uint64		n;
	List	   *ids = NIL;
	ListCell   *lc;
	MemoryContext cxt = CurrentMemoryContext;

	v[0] = KmsUuidDatum(m->id);
	KmsCatalogEnter(&st);
	n = KmsExec("SELECT DISTINCT version_id FROM kms.secret_stage WHERE secret_id = $1 ORDER BY 1",
				1, t, v, NULL, false, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		ids = lappend(ids, SpiStr(i, 1, cxt));
		MemoryContextSwitchTo(old);
	}
	KmsCatalogExit(&st);

	foreach(lc, ids)
	{
		char	   *vid = lfirst(lc);
		bool		binary;
		bytea	   *old = FetchVersion(m, vid, &binary);
		bytea	   *plain;
		bytea	   *blob;

		/* gone, or a rotation's AWSPENDING version without a value yet */
		if (old == NULL || VersionHasNoValue(old))
			continue;
		plain = SecretDecrypt(old, m, vid);
		blob = SecretEncrypt(newkey, m->arn, vid, VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
		WipeBytea(plain);
		v[1] = CStringGetTextDatum(vid);
		{
			Oid			t3[3] = {UUIDOID, TEXTOID, BYTEAOID};
			Datum		v3[3];

			v3[0] = v[0];
			v3[1] = v[1];
			v3[2] = PointerGetDatum(blob);
			KmsCatalogEnter(&st);
			KmsExec("UPDATE kms.secret_version SET ciphertext = $3 WHERE secret_id = $1 AND version_id = $2",
					3, t3, v3, NULL, false, SPI_OK_UPDATE);
			KmsCatalogExit(&st);
		}
	}
}

KMS_AUDITED_ENTRY(update_secret, "UpdateSecret", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *description = KmsArgText(fcinfo, 3);
	char	   *key_ref = KmsArgText(fcinfo, 4);
	char	   *token = KmsArgText(fcinfo, 5);
	char	   *type = ArgTextOpt(fcinfo, 6);
	SecretValue val;
	SecretMeta	m;
	KmsKeyInfo	key;
	char	   *version_id = NULL;
	KmsCatalogState st;
	bool		changed = false;
	StringInfoData p;

	SecretCacheCheck();
	ArgValue(fcinfo, 1, 2, &val);
	ValidateDescription(description);
	ValidateToken(token, "client_request_token");
	ValidateType(type);

	/*
	 * A client_request_token without a new value names no version and is
	 * ignored: AWS's SDKs send one with every UpdateSecret.
	 */

	SecretForWrite(ref, SEC_OP_UPDATE_SECRET, "UpdateSecret", true, &m);
	/* a new value is a new version: that needs PutSecretValue too */
	if (val.present && !SecretAllowed(&m, SEC_OP_PUT_SECRET_VALUE))
		SecretDenied(SEC_OP_PUT_SECRET_VALUE, ref);

	if (key_ref != NULL)
	{
		KeyForWrite(key_ref, &key);
		if (memcmp(key.key_id, m.key_id, KMS_KEY_ID_LEN) != 0 ||
			m.default_key != IsDefaultKeyRef(key_ref))
		{
			Oid			t[3] = {UUIDOID, UUIDOID, TEXTOID};
			Datum		v[3];
			char		n[3] = {' ', ' ', ' '};

			Reencrypt(&m, &key);
			v[0] = KmsUuidDatum(m.id);
			v[1] = KmsUuidDatum(key.key_id);
			if (IsDefaultKeyRef(key_ref))
				n[2] = 'n';
			else
				v[2] = CStringGetTextDatum(key_ref);
			KmsCatalogEnter(&st);
			KmsExec("UPDATE kms.secret SET kms_key_id = $2, kms_key_ref = $3 WHERE secret_id = $1",
					3, t, v, n, false, SPI_OK_UPDATE);
			KmsCatalogExit(&st);
			memcpy(m.key_id, key.key_id, KMS_KEY_ID_LEN);
			m.default_key = IsDefaultKeyRef(key_ref);
			changed = true;
		}
	}
	if (description != NULL)
	{
		Oid			t[2] = {UUIDOID, TEXTOID};
		Datum		v[2];

		v[0] = KmsUuidDatum(m.id);
		v[1] = CStringGetTextDatum(description);
		KmsCatalogEnter(&st);
		KmsExec("UPDATE kms.secret SET description = $2 WHERE secret_id = $1",
				2, t, v, NULL, false, SPI_OK_UPDATE);
		KmsCatalogExit(&st);
		changed = true;
	}
	if (type != NULL)
	{
		Oid			t[2] = {UUIDOID, TEXTOID};
		Datum		v[2];

		if (!SecretCatalogHas12())
			kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
					  "type needs the pg_kms 1.2 catalog: run ALTER EXTENSION pg_kms UPDATE");
		v[0] = KmsUuidDatum(m.id);
		v[1] = CStringGetTextDatum(type);
		KmsCatalogEnter(&st);
		KmsExec("UPDATE kms.secret SET secret_type = $2 WHERE secret_id = $1",
				2, t, v, NULL, false, SPI_OK_UPDATE);
		KmsCatalogExit(&st);
		changed = true;
	}
	if (val.present)
	{
		if (key_ref == NULL)
			SecretKeyForWrite(&m, &key);
		version_id = token ? token : NewVersionId();
		if (PutVersion(&m, &key, &val, version_id, NIL))
			changed = true;
	}
	if (changed)
	{
		SecretTouch(&m);
		SecretChanged();
	}
	initStringInfo(&p);
	SecretAuditParam(&p, "kmsKeyId", key_ref);
	SecretAuditParam(&p, "type", type);
	SecretAuditParam(&p, "clientRequestToken", token);
	KmsAuditEx("UpdateSecret", m.arn, version_id, "success", KmsAuditParams(&p));
	PG_RETURN_JSONB_P(WriteResult(&m, version_id, false));
}

bool
VersionExists(Datum sid, const char *version_id)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = sid;
	v[1] = CStringGetTextDatum(version_id);
	return KmsExec("SELECT 1 FROM kms.secret_version WHERE secret_id = $1 AND version_id = $2",
				   2, t, v, NULL, false, SPI_OK_SELECT) == 1;
}

KMS_AUDITED_ENTRY(update_secret_version_stage, "UpdateSecretVersionStage", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *stage = KmsArgText(fcinfo, 1);
	char	   *remove_from = KmsArgText(fcinfo, 2);
	char	   *move_to = KmsArgText(fcinfo, 3);
	SecretMeta	m;
	KmsCatalogState st;
	Datum		sid;
	char	   *holder;
	StringInfoData p;

	SecretCacheCheck();
	ValidateStage(stage);
	ValidateToken(remove_from, "remove_from_version_id");
	ValidateToken(move_to, "move_to_version_id");
	if (remove_from == NULL && move_to == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "give move_to_version_id, remove_from_version_id, or both");

	SecretForWrite(ref, SEC_OP_UPDATE_SECRET_VERSION_STAGE, "UpdateSecretVersionStage", true, &m);
	sid = KmsUuidDatum(m.id);
	KmsCatalogEnter(&st);
	holder = StageHolder(sid, stage);
	if (move_to)
	{
		if (!VersionExists(sid, move_to))
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
					 errmsg("ResourceNotFoundException: Secrets Manager can't find the specified secret value for VersionId: %s", move_to),
					 errdetail("Secret \"%s\" has no version \"%s\".", m.name, move_to)));
		if (holder && strcmp(holder, move_to) != 0 &&
			(remove_from == NULL || strcmp(remove_from, holder) != 0))
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
					 errmsg("InvalidParameterException: The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.",
							stage, holder)));
		if (remove_from && (holder == NULL || strcmp(remove_from, holder) != 0) &&
			strcmp(remove_from, move_to) != 0)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "staging label %s is not attached to version \"%s\"", stage, remove_from);
		StageAttach(sid, stage, move_to);
	}
	else
	{
		if (holder == NULL || strcmp(holder, remove_from) != 0)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "staging label %s is not attached to version \"%s\"", stage, remove_from);
		if (strcmp(stage, "AWSCURRENT") == 0)
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
					 errmsg("InvalidParameterException: You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed."),
					 errhint("Give move_to_version_id.")));
		StageRemove(sid, stage);
	}
	KmsCatalogExit(&st);
	SecretTouch(&m);
	SecretChanged();
	{
		initStringInfo(&p);
		SecretAuditParam(&p, "versionStage", stage);
		SecretAuditParam(&p, "removeFromVersionId", remove_from);
		SecretAuditParam(&p, "moveToVersionId", move_to);
		KmsAuditEx("UpdateSecretVersionStage", m.arn, NULL, "success", KmsAuditParams(&p));
	}
	PG_RETURN_JSONB_P(WriteResult(&m, NULL, false));
}

/* ----------------------------------------------------------------
 * DeleteSecret, RestoreSecret
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(delete_secret, "DeleteSecret", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	bool		force = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	int32		days = PG_ARGISNULL(1) ? 30 : PG_GETARG_INT32(1);
	SecretMeta	m;
	KmsCatalogState st;
	StringInfoData buf;
	bool		first = true;
	TimestampTz deletion;

	SecretCacheCheck();
	if (force && !PG_ARGISNULL(1))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
	if (days < 7 || days > 30)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).");
	KmsCheckWritable("DeleteSecret");

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (!SecretLoad(ref, &m, CurrentMemoryContext))
	{
		/* AWS: a forced delete of a missing secret is not an error */
		if (force && KmsIsAdmin())
		{
			JsonStr(&buf, &first, "Name", ref);
			JsonDate(&buf, &first, "DeletionDate", GetCurrentTransactionStartTimestamp());
			appendStringInfoChar(&buf, '}');
			PG_RETURN_JSONB_P(JsonbFromString(&buf));
		}
		SecretNotFound(SEC_OP_DELETE_SECRET, ref);
	}
	if (!SecretAllowed(&m, SEC_OP_DELETE_SECRET))
		SecretDenied(SEC_OP_DELETE_SECRET, ref);
	SecretLock(&m, ref, SEC_OP_DELETE_SECRET);

	if (force)
	{
		Oid			t = UUIDOID;
		Datum		v = KmsUuidDatum(m.id);

		KmsCatalogEnter(&st);
		KmsExec("DELETE FROM kms.secret WHERE secret_id = $1", 1, &t, &v, NULL, false, SPI_OK_DELETE);
		KmsCatalogExit(&st);
		deletion = GetCurrentTransactionStartTimestamp();
	}
	else
	{
		Oid			t[2] = {UUIDOID, INT4OID};
		Datum		v[2];
		bool		isnull;

		if (m.deleted)
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_INVALID_REQUEST),
					 errhidestmt(true),
					 errmsg("InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion."),
					 errdetail("Secret \"%s\" is already scheduled for deletion.", m.name),
					 errhint("Restore it with restore_secret(), or delete it at once with force_delete_without_recovery.")));
		v[0] = KmsUuidDatum(m.id);
		v[1] = Int32GetDatum(days);
		KmsCatalogEnter(&st);
		KmsExec("UPDATE kms.secret SET deleted_date = pg_catalog.now(), "
				"deletion_date = pg_catalog.now() + pg_catalog.make_interval(days => $2) "
				"WHERE secret_id = $1 RETURNING deletion_date",
				2, t, v, NULL, false, SPI_OK_UPDATE_RETURNING);
		deletion = DatumGetTimestampTz(SpiDatum(0, 1, &isnull));
		KmsCatalogExit(&st);
	}
	SecretChanged();
	{
		StringInfoData p;

		initStringInfo(&p);
		if (force)
			SecretAuditParam(&p, "forceDeleteWithoutRecovery", "true");
		else
			KmsAuditParamInt(&p, "recoveryWindowInDays", days);
		KmsAuditEx("DeleteSecret", m.arn, NULL, "success", KmsAuditParams(&p));
	}
	JsonStr(&buf, &first, "ARN", m.arn);
	JsonStr(&buf, &first, "Name", m.name);
	JsonDate(&buf, &first, "DeletionDate", deletion);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_JSONB_P(JsonbFromString(&buf));
}

KMS_AUDITED_ENTRY(restore_secret, "RestoreSecret", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v;

	SecretCacheCheck();
	SecretForWrite(ref, SEC_OP_DELETE_SECRET, "RestoreSecret", false, &m);
	if (m.deleted)
	{
		v = KmsUuidDatum(m.id);
		KmsCatalogEnter(&st);
		KmsExec("UPDATE kms.secret SET deleted_date = NULL, deletion_date = NULL WHERE secret_id = $1",
				1, &t, &v, NULL, false, SPI_OK_UPDATE);
		KmsCatalogExit(&st);
		SecretChanged();
	}
	KmsAudit("RestoreSecret", m.arn, 0, "success");
	PG_RETURN_JSONB_P(WriteResult(&m, NULL, false));
}

/* ----------------------------------------------------------------
 * TagResource, UntagResource
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(tag_resource, "TagResource", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	Jsonb	   *tags;
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, JSONBOID};
	Datum		v[2];
	bool		isnull;
	int64		count;

	SecretCacheCheck();
	if (PG_ARGISNULL(1))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "tags must not be null");
	tags = NormalizeTags(PG_GETARG_JSONB_P(1));
	SecretForWrite(ref, SEC_OP_TAG_RESOURCE, "TagResource", true, &m);
	v[0] = KmsUuidDatum(m.id);
	v[1] = JsonbPGetDatum(tags);
	KmsCatalogEnter(&st);
	KmsExec(SecretCatalogHas12() ?
			"UPDATE kms.secret SET tags = tags || $2, tagged = true WHERE secret_id = $1 "
			"RETURNING (SELECT count(*) FROM pg_catalog.jsonb_object_keys(tags))" :
			"UPDATE kms.secret SET tags = tags || $2 WHERE secret_id = $1 "
			"RETURNING (SELECT count(*) FROM pg_catalog.jsonb_object_keys(tags))",
			2, t, v, NULL, false, SPI_OK_UPDATE_RETURNING);
	count = DatumGetInt64(SpiDatum(0, 1, &isnull));
	KmsCatalogExit(&st);
	if (count > SECRET_MAX_TAGS)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "a secret can have at most %d tags", SECRET_MAX_TAGS);
	SecretChanged();
	{
		StringInfoData p;
		StringInfoData keys;
		JsonbIterator *it = JsonbIteratorInit(&tags->root);
		JsonbValue	jv;
		JsonbIteratorToken tok;

		/* tag keys only: values may be anything the caller chose */
		initStringInfo(&keys);
		while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
			if (tok == WJB_KEY)
				appendStringInfo(&keys, "%s%.*s", keys.len ? "," : "",
								 jv.val.string.len, jv.val.string.val);
		initStringInfo(&p);
		SecretAuditParam(&p, "tagKeys", keys.data);
		KmsAuditEx("TagResource", m.arn, NULL, "success", KmsAuditParams(&p));
	}
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(untag_resource, "UntagResource", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	ArrayType  *keys;
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTARRAYOID};
	Datum		v[2];

	SecretCacheCheck();
	if (PG_ARGISNULL(1))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "tag_keys must not be null");
	keys = PG_GETARG_ARRAYTYPE_P(1);
	if (array_contains_nulls(keys))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "tag_keys must not contain null");
	SecretForWrite(ref, SEC_OP_TAG_RESOURCE, "UntagResource", true, &m);
	v[0] = KmsUuidDatum(m.id);
	v[1] = PointerGetDatum(keys);
	KmsCatalogEnter(&st);
	KmsExec("UPDATE kms.secret SET tags = tags - $2 WHERE secret_id = $1",
			2, t, v, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
	SecretChanged();
	{
		StringInfoData p;
		Datum	   *elems;
		int			nelems;
		StringInfoData k;

		deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nelems);
		initStringInfo(&k);
		for (int i = 0; i < nelems; i++)
			appendStringInfo(&k, "%s%s", i ? "," : "", TextDatumGetCString(elems[i]));
		initStringInfo(&p);
		SecretAuditParam(&p, "tagKeys", k.data);
		KmsAuditEx("UntagResource", m.arn, NULL, "success", KmsAuditParams(&p));
	}
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * GetRandomPassword
 * ----------------------------------------------------------------
 */
/*
 * GetRandomPassword in C (secrets.h): a password of length characters from
 * the classes not excluded (excl: uppercase, lowercase, numbers,
 * punctuation) minus the exclude characters, with a space if include_space,
 * with one of each included class if require_each.  Palloc'd; the caller
 * wipes it.
 */
char *
KmsRandomPassword(int64 length, const char *exclude, const bool excl[4],
				  bool include_space, bool require_each)
{
	static const char *const classes[4] = {
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"abcdefghijklmnopqrstuvwxyz",
		"0123456789",
		"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	};
	char		set[128];
	int			setlen = 0;
	char		cls[4][64];
	int			clslen[4] = {0, 0, 0, 0};
	int			nclasses = 0;
	char	   *pw;

	if (length < 1 || length > 4096)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "password_length must be 1 to 4096");
	if (exclude && strlen(exclude) > 4096)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "exclude_characters must be at most 4096 characters");

	for (int c = 0; c < 4; c++)
	{
		if (excl[c])
			continue;
		for (const char *p = classes[c]; *p; p++)
			if (exclude == NULL || strchr(exclude, *p) == NULL)
			{
				cls[c][clslen[c]++] = *p;
				set[setlen++] = *p;
			}
		if (clslen[c] > 0)
			nclasses++;
	}
	if (include_space && (exclude == NULL || strchr(exclude, ' ') == NULL))
		set[setlen++] = ' ';
	if (setlen == 0)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "the parameters exclude every character: no password can be made");
	if (require_each && length < nclasses)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "password_length %lld is too short to include each of the %d included character types",
				  (long long) length, nclasses);

	pw = palloc(length + 1);
	/* uniform over all passwords that meet the rules: draw until one does */
	for (;;)
	{
		bool		ok = true;

		RandomChars(pw, (int) length, set, setlen);
		if (require_each)
			for (int c = 0; c < 4 && ok; c++)
			{
				bool		has = clslen[c] == 0;

				for (int i = 0; i < length && !has; i++)
					if (memchr(cls[c], pw[i], clslen[c]) != NULL)
						has = true;
				ok = has;
			}
		if (ok)
			break;
	}
	pw[length] = '\0';
	return pw;
}

KMS_AUDITED_ENTRY(get_random_password, "GetRandomPassword", KMS_AUDIT_NO_RESOURCE)
{
	int64		length = PG_ARGISNULL(0) ? 32 : PG_GETARG_INT64(0);
	char	   *exclude = KmsArgText(fcinfo, 1);
	bool		excl[4];
	bool		include_space = PG_ARGISNULL(6) ? false : PG_GETARG_BOOL(6);
	bool		require_each = PG_ARGISNULL(7) ? true : PG_GETARG_BOOL(7);
	char	   *pw;
	text	   *result;

	excl[0] = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);	/* uppercase */
	excl[1] = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);	/* lowercase */
	excl[2] = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);	/* numbers */
	excl[3] = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);	/* punctuation */

	pw = KmsRandomPassword(length, exclude, excl, include_space, require_each);
	result = cstring_to_text_with_len(pw, (int) length);
	kms_cleanse(pw, length);
	PG_RETURN_TEXT_P(result);
}

/* ----------------------------------------------------------------
 * Per-secret grants
 * ----------------------------------------------------------------
 */
/*
 * The operations argument of secret_create_grant (argument n): grantable
 * secret operations, as a text[] of distinct names in the order given, and
 * their bits in *bits.
 */
static Datum
SecretGrantOperationsArg(FunctionCallInfo fcinfo, int n, uint32 *bits)
{
	int			nelems;
	char	  **names = KmsArgOperations(fcinfo, n, true, &nelems);
	ArrayBuildState *astate = NULL;

	for (int i = 0; i < nelems; i++)
	{
		char	   *op;
		int			o = -1;

		if (names[i] == NULL)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "operations must not contain null");
		op = names[i];
		for (int k = 0; k < SEC_NUM_GRANT_OPS; k++)
			if (strcmp(op, SecretOpNames[k]) == 0)
				o = k;
		if (o < 0)
			kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
					  "operation \"%s\" is not a valid secret grant operation", op);
		if (!(*bits & SEC_OPBIT(o)))
			astate = accumArrayResult(astate, CStringGetTextDatum(SecretOpNames[o]), false,
									  TEXTOID, CurrentMemoryContext);
		*bits |= SEC_OPBIT(o);
	}
	return makeArrayResult(astate, CurrentMemoryContext);
}

KMS_AUDITED_ENTRY(secret_create_grant, "CreateGrant", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *grantee_name = KmsArgText(fcinfo, 1);
	uint32		bits = 0;
	Datum		oparray;
	Oid			grantee;
	SecretMeta	m;
	KmsCatalogState st;
	char	   *grant_id;
	Oid			issuer = GetUserId();

	SecretCacheCheck();
	if (grantee_name == NULL || grantee_name[0] == '\0')
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "grantee_principal must not be empty");
	oparray = SecretGrantOperationsArg(fcinfo, 2, &bits);

	SecretForWrite(ref, SEC_OP_MANAGE_GRANTS, "CreateGrant", false, &m);

	/*
	 * Whoever is not the owner (kms_admin) grants only what it holds itself,
	 * and never an operation on the value: not to another role, nor to
	 * itself or a role it belongs to.
	 */
	if (!superuser() && !has_privs_of_role(issuer, m.owner))
	{
		for (int o = 0; o < SEC_NUM_GRANT_OPS; o++)
		{
			if (!(bits & SEC_OPBIT(o)))
				continue;
			if ((SEC_VALUE_OPS & SEC_OPBIT(o)) || !SecretAllowed(&m, o))
			{
				KmsAudit("CreateGrant", ref, 0, "AccessDeniedException");
				ereport(ERROR,
						(errcode(KMS_SQLSTATE_ACCESS_DENIED),
						 errhidestmt(true),
						 errmsg("AccessDeniedException: role \"%s\" is not authorized to grant %s on secret \"%s\"",
								GetUserNameFromId(issuer, false), SecretOpNames[o], ref),
						 (SEC_VALUE_OPS & SEC_OPBIT(o)) ?
						 errdetail("Only the secret's owner or a superuser grants GetSecretValue, PutSecretValue, RotateSecret and UpdateSecretVersionStage.") :
						 errdetail("A role other than the secret's owner grants only operations it may perform itself.")));
			}
		}
	}

	grantee = get_role_oid(grantee_name, true);
	if (!OidIsValid(grantee))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "grantee principal \"%s\" is not a role", grantee_name);

	grant_id = KmsRandomHex(32);
	KmsCatalogEnter(&st);
	{
		Oid			t[5] = {TEXTOID, UUIDOID, OIDOID, TEXTARRAYOID, OIDOID};
		Datum		v[5];

		v[0] = CStringGetTextDatum(grant_id);
		v[1] = KmsUuidDatum(m.id);
		v[2] = ObjectIdGetDatum(grantee);
		v[3] = oparray;
		v[4] = ObjectIdGetDatum(issuer);
		KmsExec("INSERT INTO kms.secret_grant (grant_id, secret_id, grantee, operations, issuing_role, creation_date) "
				"VALUES ($1, $2, $3::regrole, $4, $5::regrole, pg_catalog.now())",
				5, t, v, NULL, false, SPI_OK_INSERT);
	}
	KmsCatalogExit(&st);
	SecretChanged();
	KmsAudit("CreateGrant", m.arn, 0, "success");
	PG_RETURN_TEXT_P(cstring_to_text(grant_id));
}

KMS_AUDITED_ENTRY(secret_revoke_grant, "RevokeGrant", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	char	   *grant_id = KmsArgText(fcinfo, 1);
	SecretMeta	m;
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	uint64		n;

	SecretCacheCheck();
	if (grant_id == NULL || grant_id[0] == '\0' || strlen(grant_id) > 128)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "grant id must be 1 to 128 characters");
	SecretForWrite(ref, SEC_OP_MANAGE_GRANTS, "RevokeGrant", false, &m);
	v[0] = KmsUuidDatum(m.id);
	v[1] = CStringGetTextDatum(grant_id);
	KmsCatalogEnter(&st);
	n = KmsExec("DELETE FROM kms.secret_grant WHERE secret_id = $1 AND grant_id = $2",
				2, t, v, NULL, false, SPI_OK_DELETE);
	KmsCatalogExit(&st);
	if (n != 1)
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "grant \"%s\" does not exist on secret \"%s\"", grant_id, m.name);
	SecretChanged();
	KmsAudit("RevokeGrant", m.arn, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(secret_list_grants, "ListGrants", 0)
{
	char	   *ref = ArgSecretId(fcinfo, 0);
	SecretMeta	m;

	SecretCacheCheck();
	SecretResolve(ref, SEC_OP_MANAGE_GRANTS, &m);
	/* principals by name: kept in the catalog (catalog/principals.c) */
	SecretRowsToSRF(fcinfo, m.id,
					psprintf("SELECT grant_id, %s, operations, %s, creation_date "
							 "FROM kms.secret_grant WHERE secret_id = $1 ORDER BY creation_date, grant_id",
							 KmsPrincipalNameSql("grantee"), KmsPrincipalNameSql("issuing_role")),
					5);
	return (Datum) 0;
}

/* kms_secret_visible(uuid): for the kms.secrets view */
PG_FUNCTION_INFO_V1(kms_secret_visible);
Datum
kms_secret_visible(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = PG_GETARG_UUID_P(0);
	SecretMeta	m;

	if (!SecretLoadById(u->data, &m, false))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(SecretVisible(&m));
}
