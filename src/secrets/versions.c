/*-------------------------------------------------------------------------
 *
 * versions.c
 *	  Versions and staging labels of a secret (inside KmsCatalogEnter, the
 *	  secret row locked), and the C interface for rotation (secrets.h).
 *
 * IDENTIFICATION
 *	  src/secrets/versions.c
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
#include "envelope/envelope.h"
#include "keystore/keystore.h"

#include "secrets/remote.h"
#include "secrets/secrets_internal.h"

/* ----------------------------------------------------------------
 * Versions and labels (inside KmsCatalogEnter, the secret row locked)
 * ----------------------------------------------------------------
 */
char *
StageHolder(Datum sid, const char *stage)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = sid;
	v[1] = CStringGetTextDatum(stage);
	if (KmsExec("SELECT version_id FROM kms.secret_stage WHERE secret_id = $1 AND stage = $2",
				2, t, v, NULL, false, SPI_OK_SELECT) == 1)
		return SpiStr(0, 1, CurTransactionContext);
	return NULL;
}

/*
 * ORDER BY of a version's labels: the order they came to it (the order of
 * the request that put them there, as AWS lists them), or, on a 1.1
 * catalog not updated yet, by name.
 */
const char *
StageOrderSql(const char *alias)
{
	if (SecretCatalogHas12())
		return psprintf("%s%sattached, %s%sstage", alias ? alias : "", alias ? "." : "",
						alias ? alias : "", alias ? "." : "");
	return psprintf("%s%sstage", alias ? alias : "", alias ? "." : "");
}

static void
StageSet(Datum sid, const char *stage, const char *version_id)
{
	Oid			t[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		v[3];

	v[0] = sid;
	v[1] = CStringGetTextDatum(stage);
	v[2] = CStringGetTextDatum(version_id);
	KmsExec(SecretCatalogHas12() ?
			"INSERT INTO kms.secret_stage (secret_id, stage, version_id) VALUES ($1, $2, $3) "
			"ON CONFLICT (secret_id, stage) DO UPDATE SET version_id = EXCLUDED.version_id, "
			"attached = pg_catalog.clock_timestamp()" :
			"INSERT INTO kms.secret_stage (secret_id, stage, version_id) VALUES ($1, $2, $3) "
			"ON CONFLICT (secret_id, stage) DO UPDATE SET version_id = EXCLUDED.version_id",
			3, t, v, NULL, false, SPI_OK_INSERT);
}

void
StageRemove(Datum sid, const char *stage)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = sid;
	v[1] = CStringGetTextDatum(stage);
	KmsExec("DELETE FROM kms.secret_stage WHERE secret_id = $1 AND stage = $2",
			2, t, v, NULL, false, SPI_OK_DELETE);
}

/*
 * Put a label on a version, taking it from the version that had it; when
 * AWSCURRENT moves, AWSPREVIOUS goes to the version it left.
 */
void
StageAttach(Datum sid, const char *stage, const char *version_id)
{
	char	   *holder = StageHolder(sid, stage);
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bool		isnull;

	if (holder && strcmp(holder, version_id) == 0)
		return;
	if (holder && strcmp(stage, "AWSCURRENT") == 0)
		StageSet(sid, "AWSPREVIOUS", holder);
	StageSet(sid, stage, version_id);

	v[0] = sid;
	v[1] = CStringGetTextDatum(version_id);
	KmsExec("SELECT count(*) FROM kms.secret_stage WHERE secret_id = $1 AND version_id = $2",
			2, t, v, NULL, false, SPI_OK_SELECT);
	if (DatumGetInt64(SpiDatum(0, 1, &isnull)) > SECRET_MAX_STAGES)
		secret_error(LimitExceededException, KMS_SQLSTATE_LIMIT_EXCEEDED, SECRET_LIMIT_TEXT,
					 "A version can have at most %d staging labels.", SECRET_MAX_STAGES);
}

/*
 * Drop deprecated versions (no labels) beyond the 100 most recent, but
 * never one created in the last 24 hours: AWS's rule.
 */
static void
PruneVersions(Datum sid)
{
	Oid			t = UUIDOID;

	KmsExec("DELETE FROM kms.secret_version v WHERE v.secret_id = $1 "
			"AND v.created_date < pg_catalog.now() - interval '24 hours' "
			"AND NOT EXISTS (SELECT 1 FROM kms.secret_stage s "
			"                 WHERE s.secret_id = v.secret_id AND s.version_id = v.version_id) "
			"AND v.version_id NOT IN (SELECT r.version_id FROM kms.secret_version r "
			"                          WHERE r.secret_id = $1 "
			"                          ORDER BY r.created_date DESC, r.version_id DESC LIMIT "
			CppAsString2(SECRET_MAX_VERSIONS) ")",
			1, &t, &sid, NULL, false, SPI_OK_DELETE);
}

/* The labels of a version, in the order they came to it. */
int
VersionStages(Datum sid, const char *version_id, char ***out, MemoryContext cxt)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	uint64		n;

	v[0] = sid;
	v[1] = CStringGetTextDatum(version_id);
	n = KmsExec(psprintf("SELECT stage FROM kms.secret_stage WHERE secret_id = $1 AND version_id = $2 ORDER BY %s",
						 StageOrderSql(NULL)),
				2, t, v, NULL, false, SPI_OK_SELECT);
	*out = MemoryContextAlloc(cxt, sizeof(char *) * (n + 1));
	for (uint64 i = 0; i < n; i++)
		(*out)[i] = SpiStr(i, 1, cxt);
	return (int) n;
}

/* A version's stored value, or NULL (copied out of SPI). */
bytea *
FetchVersion(SecretMeta *m, const char *version_id, bool *binary)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	bytea	   *blob = NULL;

	v[0] = KmsUuidDatum(m->id);
	v[1] = CStringGetTextDatum(version_id);
	KmsCatalogEnter(&st);
	if (KmsExec("SELECT value_type = 'SecretBinary', ciphertext FROM kms.secret_version "
				"WHERE secret_id = $1 AND version_id = $2",
				2, t, v, NULL, false, SPI_OK_SELECT) == 1)
	{
		bool		isnull;

		*binary = DatumGetBool(SpiDatum(0, 1, &isnull));
		blob = (bytea *) SPI_datumTransfer(SpiDatum(0, 2, &isnull), false, -1);
	}
	KmsCatalogExit(&st);
	return blob;
}

/*
 * Add a version with value val under key, or, if version_id (a client
 * request token) already names a version with the same value, nothing.
 * stages NIL: AWSCURRENT.  The first version always gets AWSCURRENT.
 * Returns true if a version was created.
 */
bool
PutVersion(SecretMeta *m, KmsKeyInfo *key, SecretValue *val,
		   const char *version_id, List *stages)
{
	bool		old_binary = false;
	bytea	   *old;
	bytea	   *blob;
	KmsCatalogState st;
	Datum		sid = KmsUuidDatum(m->id);
	ListCell   *lc;
	bool		has_current = false;
	bool		fill;

	KmsRemoteRefuseWrite(m->id, m->name, "PutSecretValue");
	old = FetchVersion(m, version_id, &old_binary);
	fill = old != NULL && VersionHasNoValue(old);

	if (old != NULL && !fill)
	{
		/* idempotent retry, or an attempt to change a version */
		bytea	   *plain = SecretDecrypt(old, m, version_id);
		bool		same = old_binary == val->binary &&
			VARSIZE(plain) - VARHDRSZ == val->len &&
			kms_const_time_eq((const uint8 *) VARDATA(plain),
							  (const uint8 *) val->data, val->len);

		WipeBytea(plain);
		if (!same)
			kms_error(ResourceExistsException, KMS_SQLSTATE_ALREADY_EXISTS,
					  "a version with client request token \"%s\" already exists with a different value; you can't modify an existing version, you can only create a new version",
					  version_id);
		return false;
	}

	blob = SecretEncrypt(key, m->arn, version_id, val->data, val->len);

	KmsCatalogEnter(&st);
	{
		Oid			t[4] = {UUIDOID, TEXTOID, TEXTOID, BYTEAOID};
		Datum		v[4];

		v[0] = sid;
		v[1] = CStringGetTextDatum(version_id);
		v[2] = CStringGetTextDatum(val->binary ? "SecretBinary" : "SecretString");
		v[3] = PointerGetDatum(blob);
		if (fill)				/* the rotation's AWSPENDING version gets its value */
			KmsExec("UPDATE kms.secret_version SET value_type = $3, ciphertext = $4 "
					"WHERE secret_id = $1 AND version_id = $2",
					4, t, v, NULL, false, SPI_OK_UPDATE);
		else
			KmsExec("INSERT INTO kms.secret_version (secret_id, version_id, value_type, ciphertext, created_date) "
					"VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp())",
					4, t, v, NULL, false, SPI_OK_INSERT);
	}
	if (stages == NIL)
		stages = list_make1("AWSCURRENT");
	foreach(lc, stages)
		if (strcmp(lfirst(lc), "AWSCURRENT") == 0)
			has_current = true;
	if (!has_current && StageHolder(sid, "AWSCURRENT") == NULL)
		stages = lappend(list_copy(stages), "AWSCURRENT");
	foreach(lc, stages)
		StageAttach(sid, lfirst(lc), version_id);
	PruneVersions(sid);
	KmsCatalogExit(&st);
	return true;
}

/* {"ARN","Name"[,"VersionId"][,"VersionStages"]} */
Jsonb *
WriteResult(SecretMeta *m, const char *version_id, bool with_stages)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	JsonStr(&buf, &first, "ARN", m->arn);
	JsonStr(&buf, &first, "Name", m->name);
	if (version_id)
		JsonStr(&buf, &first, "VersionId", version_id);
	if (version_id && with_stages)
	{
		KmsCatalogState st;
		char	  **stages;
		int			n;
		MemoryContext cxt = CurrentMemoryContext;

		KmsCatalogEnter(&st);
		n = VersionStages(KmsUuidDatum(m->id), version_id, &stages, cxt);
		KmsCatalogExit(&st);
		JsonStrArray(&buf, &first, "VersionStages", stages, n);
	}
	appendStringInfoChar(&buf, '}');
	return JsonbFromString(&buf);
}

/* ----------------------------------------------------------------
 * The interface for rotation (secrets.h): thin wrappers over the helpers
 * above.
 * ----------------------------------------------------------------
 */
static void
InfoFromMeta(SecretMeta *m, KmsSecretInfo *info)
{
	memcpy(info->id, m->id, 16);
	info->arn = m->arn;
	info->name = m->name;
	info->owner = m->owner;
	info->deleted = m->deleted;
}

void
KmsSecretForRotation(const char *ref, KmsSecretInfo *info)
{
	SecretMeta	m;

	SecretCacheCheck();
	SecretForWrite(ref, SEC_OP_ROTATE_SECRET, "RotateSecret", false, &m);
	KmsRemoteRefuseWrite(m.id, m.name, "RotateSecret");
	InfoFromMeta(&m, info);
}

char *
KmsSecretGetString(const uint8 *id, const char *version_id, const char *stage,
				   char **version_out)
{
	SecretMeta	m;
	SecretCacheEntry e;
	bytea	   *plain;
	char	   *s;

	if (!SecretLoadById(id, &m, false))
		return NULL;
	memset(&e, 0, sizeof(e));
	if (!LoadVersion(&m, version_id, version_id ? NULL : stage, &e, CurrentMemoryContext))
		return NULL;
	if (version_id && stage)
	{
		bool		has = false;

		for (int i = 0; i < e.nstages; i++)
			if (strcmp(e.stages[i], stage) == 0)
				has = true;
		if (!has)
			return NULL;
	}
	if (e.binary || VersionHasNoValue(e.ciphertext))
		return NULL;
	plain = SecretDecrypt(e.ciphertext, &m, e.version_id);
	s = text_to_cstring((text *) plain);
	WipeBytea(plain);
	if (version_out)
		*version_out = pstrdup(e.version_id);
	return s;
}

bool
KmsSecretPutString(const uint8 *id, const char *version_id, const char *value,
				   List *stages)
{
	SecretMeta	m;
	KmsKeyInfo	key;
	SecretValue val;
	bool		created;

	if (!SecretLoadById(id, &m, true))
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "Secrets Manager can't find the secret being rotated");
	SecretKeyForWrite(&m, &key);
	val.present = true;
	val.binary = false;
	val.data = value;
	val.len = strlen(value);
	created = PutVersion(&m, &key, &val, version_id, stages);
	if (created)
	{
		SecretTouch(&m);
		SecretChanged();
	}
	return created;
}

/*
 * RotateSecret's AWSPENDING version with id version_id, made before the
 * rotation function's createSecret step as AWS makes it: without a value,
 * or (copy_current: RotateImmediately = false, whose testSecret runs on it)
 * with AWSCURRENT's value, encrypted again for its own version id.  False
 * if the version exists already.
 */
bool
KmsSecretCreatePending(const uint8 *id, const char *version_id, bool copy_current)
{
	SecretMeta	m;
	KmsCatalogState st;
	Datum		sid = KmsUuidDatum(id);
	bytea	   *blob = NULL;
	bool		binary = false;
	Oid			t[4] = {UUIDOID, TEXTOID, TEXTOID, BYTEAOID};
	Datum		v[4];

	if (!SecretLoadById(id, &m, true))
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "Secrets Manager can't find the specified secret.");
	if (KmsSecretVersionExists(id, version_id))
		return false;
	if (copy_current)
	{
		char	   *cur = KmsSecretStageHolder(id, "AWSCURRENT");
		bytea	   *old = cur ? FetchVersion(&m, cur, &binary) : NULL;

		if (old != NULL && !VersionHasNoValue(old))
		{
			bytea	   *plain = SecretDecrypt(old, &m, cur);
			KmsKeyInfo	key;

			SecretKeyForWrite(&m, &key);
			blob = SecretEncrypt(&key, m.arn, version_id, VARDATA(plain),
								 VARSIZE(plain) - VARHDRSZ);
			WipeBytea(plain);
		}
	}
	if (blob == NULL)
	{
		blob = palloc(VARHDRSZ);
		SET_VARSIZE(blob, VARHDRSZ);
		binary = false;
	}
	v[0] = sid;
	v[1] = CStringGetTextDatum(version_id);
	v[2] = CStringGetTextDatum(binary ? "SecretBinary" : "SecretString");
	v[3] = PointerGetDatum(blob);
	KmsCatalogEnter(&st);
	KmsExec("INSERT INTO kms.secret_version (secret_id, version_id, value_type, ciphertext, created_date) "
			"VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp())",
			4, t, v, NULL, false, SPI_OK_INSERT);
	StageAttach(sid, "AWSPENDING", version_id);
	KmsCatalogExit(&st);
	SecretChanged();
	return true;
}

/* Delete a version (the AWSPENDING copy RotateImmediately = false tested). */
void
KmsSecretDeleteVersion(const uint8 *id, const char *version_id)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = KmsUuidDatum(id);
	v[1] = CStringGetTextDatum(version_id);
	KmsCatalogEnter(&st);
	KmsExec("DELETE FROM kms.secret_stage WHERE secret_id = $1 AND version_id = $2",
			2, t, v, NULL, false, SPI_OK_DELETE);
	KmsExec("DELETE FROM kms.secret_version WHERE secret_id = $1 AND version_id = $2",
			2, t, v, NULL, false, SPI_OK_DELETE);
	KmsCatalogExit(&st);
	SecretChanged();
}

char *
KmsSecretStageHolder(const uint8 *id, const char *stage)
{
	KmsCatalogState st;
	char	   *holder;

	KmsCatalogEnter(&st);
	holder = StageHolder(KmsUuidDatum(id), stage);
	KmsCatalogExit(&st);
	return holder ? pstrdup(holder) : NULL;
}

bool
KmsSecretVersionExists(const uint8 *id, const char *version_id)
{
	KmsCatalogState st;
	bool		found;

	KmsCatalogEnter(&st);
	found = VersionExists(KmsUuidDatum(id), version_id);
	KmsCatalogExit(&st);
	return found;
}

bool
KmsSecretVersionHasStage(const uint8 *id, const char *version_id, const char *stage)
{
	char	   *holder = KmsSecretStageHolder(id, stage);

	return holder != NULL && strcmp(holder, version_id) == 0;
}

void
KmsSecretMoveStage(const uint8 *id, const char *stage, const char *move_to)
{
	KmsCatalogState st;
	Datum		sid = KmsUuidDatum(id);

	KmsCatalogEnter(&st);
	if (move_to)
	{
		if (!VersionExists(sid, move_to))
			kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
					  "Secrets Manager can't find version \"%s\"", move_to);
		StageAttach(sid, stage, move_to);
	}
	else
	{
		if (strcmp(stage, "AWSCURRENT") == 0)
			elog(ERROR, "AWSCURRENT cannot be removed, only moved");
		StageRemove(sid, stage);
	}
	KmsCatalogExit(&st);
	SecretChanged();
}

void
KmsSecretChanged(const uint8 *id)
{
	SecretMeta	m;

	memcpy(m.id, id, 16);
	SecretTouch(&m);
	SecretChanged();
}

int
KmsSecretsPurgeExpired(int limit)
{
	KmsCatalogState st;
	Oid			t = INT4OID;
	Datum		v = Int32GetDatum(limit);
	uint64		n;

	KmsCatalogEnter(&st);
	n = KmsExec("DELETE FROM kms.secret WHERE secret_id IN "
				"(SELECT secret_id FROM kms.secret WHERE deletion_date <= pg_catalog.now() "
				" ORDER BY deletion_date LIMIT $1 FOR UPDATE SKIP LOCKED)",
				1, &t, &v, NULL, false, SPI_OK_DELETE);
	KmsCatalogExit(&st);
	if (n > 0)
		SecretChanged();
	return (int) n;
}
