/*-------------------------------------------------------------------------
 *
 * keystore.c
 *	  The key store: key references (key id, key ARN, alias name, alias
 *	  ARN) resolved to keys, privilege checks, key-state checks, and the
 *	  catalog access every part uses.
 *
 *	  Catalog SQL runs through SPI as the owner of schema kms (the
 *	  extension owner), with search_path pinned to pg_catalog, so that no
 *	  caller needs, or gets, privileges on the tables, and no object a
 *	  caller created can be picked up by name.
 *
 *	  Who may do what (docs/security.md, docs/kms.md):
 *	  - superuser: everything;
 *	  - the key's owner (the role that created it, and its members):
 *		every operation on it, and grants of any of them;
 *	  - members of kms_admin: create keys, manage every key, DescribeKey,
 *		but neither use nor grant use of a key they do not own, nor change
 *		a key pg_kms manages (KeyManager AWS, kms/keys_sql.c);
 *	  - a grantee: the operations of its grants, and with CreateGrant,
 *		grants of those operations only.
 *	  A role that may not use a key gets AccessDeniedException whether the
 *	  key exists or not; only roles that could see it learn NotFound.  A
 *	  role sees a key (ListKeys, ListAliases, kms.keys) iff it may
 *	  DescribeKey it.
 *
 * Visibility: catalog reads use the statement's snapshot, except when a
 * VOLATILE entry point resolves a key (KmsFreshOp): then they run as a
 * non-read-only SPI statement (a new command id and snapshot, as a
 * VOLATILE PL/pgSQL function's queries do), so that a key, alias or grant
 * made earlier in the same statement is found
 * (SELECT kms_create_alias('alias/x', kms_create_key())).  STABLE entry
 * points (Decrypt, DescribeKey, the MACs, listings) never do that.
 *
 * Locking: no shared state here; key info is cached per backend (cache/cache.c),
 * dropped when the shared generation moves and re-checked when a role
 * changes.
 *
 * IDENTIFICATION
 *	  src/keystore/keystore.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "keystore/keystore.h"
#include "provider/provider.h"

/* ----------------------------------------------------------------
 * Same-statement visibility (see the file header)
 * ----------------------------------------------------------------
 */

/*
 * True while a VOLATILE entry point resolves a key and uses its material:
 * set by KmsResolveKey from the operation, cleared by the lookups STABLE
 * entry points use (KmsLookupKeyById, and KmsResolveKey for their ops).
 */
static bool lookup_fresh = false;

/* Name of the management operation in progress, for messages. */
static const char *kms_manage_opname = NULL;

/* Is op only ever resolved by VOLATILE entry points? */
static bool
KmsFreshOp(KmsOp op)
{
	switch (op)
	{
		case KMS_OP_ENCRYPT:
		case KMS_OP_GENERATE_DATA_KEY:
		case KMS_OP_GENERATE_DATA_KEY_WITHOUT_PLAINTEXT:
		case KMS_OP_REENCRYPT_FROM:
		case KMS_OP_REENCRYPT_TO:
		case KMS_OP_CREATE_GRANT:
		case KMS_OP_RETIRE_GRANT:
			return true;
		case KMS_OP_MANAGE:
			/* every management entry point is VOLATILE but kms_list_grants */
			return kms_manage_opname == NULL ||
				strcmp(kms_manage_opname, "ListGrants") != 0;
		default:
			/* Decrypt, DescribeKey, GenerateMac, VerifyMac: STABLE */
			return false;
	}
}

/* read_only for a catalog read of the key store */
#define KMS_READ_ONLY	(!lookup_fresh)

/* the lookups of every key cache miss and first use of a key (KmsExecSaved) */
static KmsSavedPlan plan_alias;
static KmsSavedPlan plan_key;
static KmsSavedPlan plan_grants;
static KmsSavedPlan plan_material;

/* ----------------------------------------------------------------
 * Key references
 * ----------------------------------------------------------------
 */
bool
KmsLookupAlias(const char *alias_name, uint8 *key_id)
{
	KmsCatalogState st;
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(alias_name);
	bool		found = false;

	KmsCatalogEnter(&st);
	if (KmsExecSaved(&plan_alias, "SELECT key_id FROM kms.alias WHERE alias_name = $1",
					 1, &t, &v, NULL, KMS_READ_ONLY, SPI_OK_SELECT) == 1)
	{
		bool		isnull;
		pg_uuid_t  *u = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));

		memcpy(key_id, u->data, KMS_KEY_ID_LEN);
		found = true;
	}
	KmsCatalogExit(&st);
	return found;
}

/*
 * Resolve a reference to a key id.  Returns false if it names nothing here
 * (including ARNs of another region or account).
 */
static bool
KmsResolveRef(const char *ref, uint8 *key_id)
{
	size_t		len;

	if (ref == NULL || ref[0] == '\0')
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "key id must not be empty");
	len = strlen(ref);
	if (len > 2048)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "key id must be at most 2048 characters");

	if (KmsLocalRefLookup(ref, key_id))
		return true;

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
		if (n != 6 || parts[1][0] == '\0' || strcmp(parts[2], "kms") != 0 ||
			(strncmp(parts[5], "key/", 4) != 0 && strncmp(parts[5], "alias/", 6) != 0))
			kms_error(InvalidArnException, KMS_SQLSTATE_INVALID_ARN,
					  "\"%s\" is not a valid key ARN or alias ARN", ref);
		if (strcmp(parts[3], kms_region) != 0 || strcmp(parts[4], KmsAccountId()) != 0)
			return false;
		if (strncmp(parts[5], "key/", 4) == 0)
		{
			if (!KmsUuidFromString(parts[5] + 4, key_id))
				return false;
		}
		else if (!KmsLookupAlias(parts[5], key_id))
			return false;
	}
	else if (strncmp(ref, "alias/", 6) == 0)
	{
		if (!KmsLookupAlias(ref, key_id))
			return false;
	}
	else if (!KmsUuidFromString(ref, key_id))
		return false;

	KmsLocalRefStore(ref, key_id);
	return true;
}

/* ----------------------------------------------------------------
 * Key info and privileges
 * ----------------------------------------------------------------
 */
static KmsKeyState
KmsStateFromName(const char *s)
{
	for (int i = 0; i <= KMS_STATE_DELETED; i++)
		if (strcmp(s, KmsKeyStateNames[i]) == 0)
			return (KmsKeyState) i;
	elog(ERROR, "unknown key state \"%s\"", s);
	return KMS_STATE_DISABLED;
}

int
KmsMaterialLength(const char *key_spec)
{
	if (strcmp(key_spec, "HMAC_224") == 0)
		return 28;
	if (strcmp(key_spec, "HMAC_384") == 0)
		return 48;
	if (strcmp(key_spec, "HMAC_512") == 0)
		return 64;
	return 32;					/* SYMMETRIC_DEFAULT, HMAC_256 */
}

static uint32 KmsGrantOpsOf(Oid user, Datum key_id);

/* Load key info and the current role's privileges; false if no such key. */
static bool
KmsLoadKeyInfo(const uint8 *key_id, KmsKeyInfo *info)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(key_id);
	Oid			user = GetUserId();
	bool		found = false;

	memcpy(info->key_id, key_id, KMS_KEY_ID_LEN);
	KmsUuidToString(key_id, info->key_id_str);
	info->allowed_ops = 0;
	info->may_manage = false;
	info->checked_user = user;

	KmsCatalogEnter(&st);
	if (KmsExecSaved(&plan_key, "SELECT key_state, key_usage, key_spec, current_version, owner::oid "
					 "FROM kms.key WHERE key_id = $1",
					 1, &t, &v, NULL, KMS_READ_ONLY, SPI_OK_SELECT) == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *spec;

		found = true;
		info->state = KmsStateFromName(SPI_getvalue(tup, td, 1));
		info->usage = strcmp(SPI_getvalue(tup, td, 2), "GENERATE_VERIFY_MAC") == 0 ?
			KMS_USAGE_GENERATE_VERIFY_MAC : KMS_USAGE_ENCRYPT_DECRYPT;
		spec = SPI_getvalue(tup, td, 3);
		strlcpy(info->key_spec, spec, sizeof(info->key_spec));
		info->material_len = KmsMaterialLength(spec);
		info->current_version = DatumGetInt32(SPI_getbinval(tup, td, 4, &isnull));
		info->owner = DatumGetObjectId(SPI_getbinval(tup, td, 5, &isnull));

		/* Restore the caller's identity for the membership checks. */
		SetUserIdAndSecContext(st.save_userid, st.save_sec_context);
		if (superuser_arg(user) || has_privs_of_role(user, info->owner))
		{
			info->allowed_ops = KMS_ALL_GRANT_OPS;
			info->may_manage = true;
		}
		else
		{
			Oid			admin = get_role_oid("kms_admin", true);

			if (OidIsValid(admin) && has_privs_of_role(user, admin))
			{
				info->may_manage = true;
				info->allowed_ops |= KMS_OPBIT(KMS_OP_DESCRIBE_KEY);
			}
		}
		SetUserIdAndSecContext(KmsCatalogOwner(),
							   st.save_sec_context | SECURITY_LOCAL_USERID_CHANGE);

		if (info->allowed_ops != KMS_ALL_GRANT_OPS)
			info->allowed_ops |= KmsGrantOpsOf(user, v);
	}
	KmsCatalogExit(&st);
	info->valid = found;
	return found;
}

/*
 * The operations user holds on a key through grants (to it or to roles it
 * is a member of), inside KmsCatalogEnter.
 */
static uint32
KmsGrantOpsOf(Oid user, Datum key_id)
{
	Oid			t = UUIDOID;
	uint32		ops_held = 0;
	uint64		n;
	bool		isnull;

	n = KmsExecSaved(&plan_grants,
					 "SELECT grantee::oid, operations, constraints IS NOT NULL FROM kms.grants WHERE key_id = $1",
					 1, &t, &key_id, NULL, KMS_READ_ONLY, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	gt = SPI_tuptable->vals[i];
		Oid			grantee = DatumGetObjectId(SPI_getbinval(gt, SPI_tuptable->tupdesc, 1, &isnull));
		ArrayType  *ops = DatumGetArrayTypeP(SPI_getbinval(gt, SPI_tuptable->tupdesc, 2, &isnull));
		bool		constrained = DatumGetBool(SPI_getbinval(gt, SPI_tuptable->tupdesc, 3, &isnull));
		Datum	   *elems;
		int			nelems;

		if (!has_privs_of_role(user, grantee))
			continue;
		deconstruct_array(ops, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &nelems);
		for (int j = 0; j < nelems; j++)
		{
			int			op = KmsOpFromName(TextDatumGetCString(elems[j]));

			if (op < 0)
				continue;
			/* a constraint limits the operations with an encryption context */
			if (constrained && KmsOpTakesConstraint((KmsOp) op))
				ops_held |= KMS_CONSTRAINED_OPBIT(op);
			else
				ops_held |= KMS_OPBIT(op);
		}
	}
	return ops_held;
}

/* The operations the current user holds on a key through grants. */
uint32
KmsGrantedOps(const uint8 *key_id)
{
	KmsCatalogState st;
	uint32		ops;

	KmsCatalogEnter(&st);
	ops = KmsGrantOpsOf(st.save_userid, KmsUuidDatum(key_id));
	KmsCatalogExit(&st);
	return ops;
}

/*
 * Whether the current user sees a key in kms_list_keys(), kms_list_aliases()
 * and the view kms.keys: exactly when it may DescribeKey it (superusers,
 * owners, kms_admin members, grantees of DescribeKey).
 */
bool
KmsKeyVisibleToUser(KmsKeyInfo *key)
{
	return key != NULL && key->state != KMS_STATE_DELETED &&
		(key->allowed_ops & KMS_OPBIT(KMS_OP_DESCRIBE_KEY)) != 0;
}

static KmsKeyInfo *
KmsLookupKeyByIdInternal(const uint8 *key_id)
{
	bool		found;
	KmsKeyInfo *info;

	KmsCheckGeneration();
	info = KmsLocalKeyInfo(key_id, &found);
	if (found && info->checked_user == GetUserId())
		return info;
	if (!KmsLoadKeyInfo(key_id, info))
	{
		KmsLocalKeyInfoRemove(key_id);
		return NULL;
	}
	return info;
}

/* For STABLE callers (a ciphertext's key, listings): the statement's snapshot. */
KmsKeyInfo *
KmsLookupKeyById(const uint8 *key_id)
{
	lookup_fresh = false;
	return KmsLookupKeyByIdInternal(key_id);
}

static bool
KmsMay(KmsKeyInfo *key, KmsOp op)
{
	if (op == KMS_OP_MANAGE)
		return key->may_manage;
	return (key->allowed_ops & KMS_OPBIT(op)) != 0;
}


static const char *
KmsOpName(KmsOp op)
{
	if (op == KMS_OP_MANAGE && kms_manage_opname)
		return kms_manage_opname;
	return KmsOpNames[op];
}

static void KmsDenied(KmsOp op, const char *keyref) pg_attribute_noreturn();

static void
KmsDenied(KmsOp op, const char *keyref)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_ACCESS_DENIED),
			 errhidestmt(true),
			 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform %s on key \"%s\"",
					GetUserNameFromId(GetUserId(), false), KmsOpName(op), keyref)));
}

void
KmsSetOperationName(const char *opname)
{
	kms_manage_opname = opname;
}

/* Resolve a key for a management operation named opname (e.g. DisableKey). */
KmsKeyInfo *
KmsResolveKeyForManagement(const char *keyref, const char *opname)
{
	KmsKeyInfo *key;

	kms_manage_opname = opname;
	key = KmsResolveKey(keyref, KMS_OP_MANAGE);
	kms_manage_opname = NULL;
	return key;
}

/*
 * NotFoundException with AWS's texts (issue 15, item 7): "Key '<key ARN>'
 * does not exist" for a key id or key ARN, "Alias <alias ARN> is not
 * found." for an alias, "Invalid keyId <ref>" for what is neither.
 */
void
KmsKeyNotFoundError(const char *keyref, const char *detail)
{
	uint8		id[KMS_KEY_ID_LEN];
	bool		arn = strncmp(keyref, "arn:", 4) == 0;
	const char *slash = arn ? strrchr(keyref, ':') : NULL;
	const char *tail = slash ? slash + 1 : keyref;

	if (strncmp(keyref, "alias/", 6) == 0 || (arn && strstr(keyref, ":alias/") != NULL))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
				 errmsg("NotFoundException: Alias %s is not found.",
						slash ? keyref : KmsAliasArn(keyref)),
				 detail ? errdetail_internal("%s", detail) : 0));
	if (strncmp(tail, "key/", 4) == 0 && KmsUuidFromString(tail + 4, id))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
				 errmsg("NotFoundException: Key '%s' does not exist", keyref),
				 detail ? errdetail_internal("%s", detail) : 0));
	/* AWS names the key by its ARN; the id as given keeps messages stable */
	if (slash == NULL && KmsUuidFromString(keyref, id))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
				 errmsg("NotFoundException: Key '%s' does not exist", keyref),
				 detail ? errdetail_internal("%s", detail) : 0));
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
			 errmsg("NotFoundException: Invalid keyId %s", keyref),
			 errdetail("A key is named by its key id, key ARN, alias name (alias/...) or alias ARN.")));
}

/* A key that does not exist: only roles that could know are told so. */
void
KmsKeyNotFound(const char *keyref, KmsOp op)
{
	KmsAudit(KmsOpName(op), keyref, 0, "NotFoundException");
	if (KmsIsAdmin())
		KmsKeyNotFoundError(keyref, NULL);
	KmsDenied(op, keyref);
	pg_unreachable();
}

/* CreateGrant's new constraints, while KmsResolveKeyForGrant resolves */
static Jsonb *kms_grant_newc = NULL;

KmsKeyInfo *
KmsResolveKeyForGrant(const char *keyref, Jsonb *newc)
{
	KmsKeyInfo *key;

	kms_grant_newc = newc;
	key = KmsResolveKeyCtx(keyref, KMS_OP_CREATE_GRANT, NULL, -1);
	kms_grant_newc = NULL;
	return key;
}

void
KmsCheckAccessCtx(KmsKeyInfo *key, KmsOp op, const char *keyref,
				  const KmsContextPair *pairs, int npairs)
{
	if (likely(key->checked_user == GetUserId() && KmsMay(key, op)))
		return;
	if (key->checked_user != GetUserId())
	{
		KmsLoadKeyInfo(key->key_id, key);
		if (KmsMay(key, op))
			return;
	}
	/* held only through grants with constraints: does this request meet one? */
	if (op != KMS_OP_MANAGE && (key->allowed_ops & KMS_CONSTRAINED_OPBIT(op)) != 0 &&
		KmsConstrainedAllows(key->key_id, op, pairs, npairs,
							 op == KMS_OP_CREATE_GRANT ? kms_grant_newc : NULL,
							 op == KMS_OP_CREATE_GRANT))
		return;
	KmsAudit(KmsOpName(op), key->key_id_str, 0, "AccessDeniedException");
	KmsDenied(op, keyref ? keyref : key->key_id_str);
}

void
KmsCheckAccess(KmsKeyInfo *key, KmsOp op, const char *keyref)
{
	KmsCheckAccessCtx(key, op, keyref, NULL, -1);
}

KmsKeyInfo *
KmsResolveKey(const char *keyref, KmsOp op)
{
	return KmsResolveKeyCtx(keyref, op, NULL, -1);
}

KmsKeyInfo *
KmsResolveKeyCtx(const char *keyref, KmsOp op, const KmsContextPair *pairs, int npairs)
{
	uint8		key_id[KMS_KEY_ID_LEN];
	KmsKeyInfo *key;

	KmsCheckGeneration();
	lookup_fresh = KmsFreshOp(op);
	if (!KmsResolveRef(keyref, key_id))
		KmsKeyNotFound(keyref, op);
	key = KmsLookupKeyByIdInternal(key_id);
	if (key == NULL || key->state == KMS_STATE_DELETED)
		KmsKeyNotFound(keyref, op);
	KmsCheckAccessCtx(key, op, keyref, pairs, npairs);
	return key;
}

/* KMSInvalidStateException: "<key ARN> is pending deletion." */
void
KmsPendingDeletionError(const char *key_id_str)
{
	kms_error(KMSInvalidStateException, KMS_SQLSTATE_INVALID_STATE,
			  "%s is pending deletion.", KmsKeyArn(key_id_str));
}

void
KmsCheckUsable(KmsKeyInfo *key)
{
	if (likely(key->state == KMS_STATE_ENABLED))
		return;
	switch (key->state)
	{
		/* AWS's texts: "<key ARN> is disabled." (key state footnotes) */
		case KMS_STATE_DISABLED:
			kms_error(DisabledException, KMS_SQLSTATE_DISABLED,
					  "%s is disabled.", KmsKeyArn(key->key_id_str));
			break;
		case KMS_STATE_PENDING_DELETION:
			KmsPendingDeletionError(key->key_id_str);
			break;
		default:
			KmsKeyNotFoundError(KmsKeyArn(key->key_id_str),
								"The key was deleted and its key material destroyed.");
	}
}

/*
 * The wrapped material of (key, version) and its material tag
 * (KMS_MATERIAL_TAG_LEN bytes of SHA-256 of its key_material_id), for the
 * key cache.
 */
bytea *
KmsFetchWrappedMaterial(const uint8 *key_id, int32 version, uint8 *tag_out)
{
	KmsCatalogState st;
	Oid			types[2] = {UUIDOID, INT4OID};
	Datum		values[2];
	bytea	   *result = NULL;

	values[0] = KmsUuidDatum(key_id);
	values[1] = Int32GetDatum(version);
	KmsCatalogEnter(&st);
	if (KmsExecSaved(&plan_material,
					 "SELECT material, pg_catalog.sha256(pg_catalog.convert_to(key_material_id, 'UTF8')) "
					 "FROM kms.key_version WHERE key_id = $1 AND version = $2",
					 2, types, values, NULL, KMS_READ_ONLY, SPI_OK_SELECT) == 1)
	{
		bool		isnull;
		bool		tagnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		bytea	   *tag = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 2, &tagnull));

		if (!isnull && !tagnull && VARSIZE_ANY_EXHDR(tag) >= KMS_MATERIAL_TAG_LEN)
		{
			memcpy(tag_out, VARDATA_ANY(tag), KMS_MATERIAL_TAG_LEN);
			result = (bytea *) SPI_datumTransfer(d, false, -1);
		}
	}
	KmsCatalogExit(&st);
	if (result == NULL)
	{
		char		kid[37];

		KmsUuidToString(key_id, kid);
		kms_error(NotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "key material of key \"%s\" version %d does not exist or was destroyed",
				  kid, version);
	}
	return result;
}

/* ----------------------------------------------------------------
 * Creating keys and versions
 * ----------------------------------------------------------------
 */

/* Add version `version` of a key: new material, wrapped, never plain. */
static void
KmsInsertVersion(const uint8 *key_id, int32 version, const char *key_spec,
				 const char *rotation_type)
{
	const KmsProvider *prov = KmsGetProvider();
	uint8		material[KMS_MAX_MATERIAL_LEN];
	int			len = KmsMaterialLength(key_spec);
	bytea	   *wrapped;
	KmsCatalogState st;
	Oid			types[5] = {UUIDOID, INT4OID, BYTEAOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	wrapped = prov->generate(key_id, (uint32) version, material, len);
	kms_cleanse(material, sizeof(material));

	values[0] = KmsUuidDatum(key_id);
	values[1] = Int32GetDatum(version);
	values[2] = PointerGetDatum(wrapped);
	values[3] = CStringGetTextDatum(KmsRandomHex(32));
	if (rotation_type)
		values[4] = CStringGetTextDatum(rotation_type);
	else
		nulls[4] = 'n';
	KmsCatalogEnter(&st);
	{
		char	   *sql = psprintf("INSERT INTO kms.key_version (key_id, version, material, provider, key_material_id, rotation_type, created) "
								   "VALUES ($1, $2, $3, '%s', $4, $5, pg_catalog.now())", prov->name);

		KmsExec(sql, 5, types, values, nulls, false, SPI_OK_INSERT);
	}
	KmsCatalogExit(&st);
}

char *
KmsCreateKeyInternal(const char *description, KmsKeyUsage usage,
					 const char *key_spec, Jsonb *tags, Oid owner)
{
	uint8		key_id[KMS_KEY_ID_LEN];
	char		kid[37];
	KmsCatalogState st;
	Oid			types[6] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, OIDOID, JSONBOID};
	Datum		values[6];

	KmsCheckWritable("CreateKey");
	if (!KmsRandomUuid(key_id))
		kms_error(KMSInternalException, KMS_SQLSTATE_INTERNAL,
				  "could not generate random bytes");
	KmsUuidToString(key_id, kid);

	values[0] = KmsUuidDatum(key_id);
	values[1] = CStringGetTextDatum(description ? description : "");
	values[2] = CStringGetTextDatum(usage == KMS_USAGE_GENERATE_VERIFY_MAC ?
									"GENERATE_VERIFY_MAC" : "ENCRYPT_DECRYPT");
	values[3] = CStringGetTextDatum(key_spec);
	values[4] = ObjectIdGetDatum(owner);
	values[5] = tags ? JsonbPGetDatum(tags) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));

	KmsCatalogEnter(&st);
	KmsExec("INSERT INTO kms.key (key_id, description, key_usage, key_spec, key_state, owner, creation_date, tags) "
			"VALUES ($1, $2, $3, $4, 'Enabled', $5::regrole, pg_catalog.now(), $6)",
			6, types, values, NULL, false, SPI_OK_INSERT);
	KmsCatalogExit(&st);

	KmsInsertVersion(key_id, 1, key_spec, NULL);
	{
		StringInfoData p;

		initStringInfo(&p);
		KmsAuditParamStr(&p, "description", description ? description : "");
		KmsAuditParamStr(&p, "keyUsage", usage == KMS_USAGE_GENERATE_VERIFY_MAC ?
						 "GENERATE_VERIFY_MAC" : "ENCRYPT_DECRYPT");
		KmsAuditParamStr(&p, "keySpec", key_spec);
		KmsAuditEx("CreateKey", kid, "1", "success", KmsAuditParams(&p));
	}
	return pstrdup(kid);
}

/* Add a new current version (RotateKeyOnDemand, automatic rotation). */
int32
KmsRotateKeyMaterial(KmsKeyInfo *key, const char *rotation_type)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(key->key_id);
	int32		newversion;
	bool		isnull;

	KmsCheckWritable("RotateKey");
	KmsCatalogEnter(&st);
	/* lock the key row so concurrent rotations serialize */
	if (KmsExec("SELECT current_version FROM kms.key WHERE key_id = $1 FOR UPDATE",
				1, &t, &v, NULL, false, SPI_OK_SELECT) != 1)
		elog(ERROR, "key vanished during rotation");
	newversion = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) + 1;
	KmsCatalogExit(&st);

	KmsInsertVersion(key->key_id, newversion, key->key_spec, rotation_type);

	KmsCatalogEnter(&st);
	{
		Oid			types[2] = {UUIDOID, INT4OID};
		Datum		values[2];

		values[0] = v;
		values[1] = Int32GetDatum(newversion);
		KmsExec("UPDATE kms.key SET current_version = $2 WHERE key_id = $1",
				2, types, values, NULL, false, SPI_OK_UPDATE);
	}
	KmsCatalogExit(&st);
	KmsInvalidateAtCommit();
	return newversion;
}

/* ----------------------------------------------------------------
 * Aliases
 * ----------------------------------------------------------------
 */
void
KmsValidateAliasName(const char *name)
{
	KmsValidateAliasNameEx(name, true);
}

/*
 * creating: the name of a new alias (CreateAlias).  Otherwise ':' passes, as
 * the model's pattern lets it, so that an alias made before pg_kms 1.2 with
 * a ':' can still be moved and deleted.
 */
void
KmsValidateAliasNameEx(const char *name, bool creating)
{
	size_t		len = strlen(name);

	/*
	 * AWS API reference, CreateAlias, AliasName: "The AliasName value must be
	 * string of 1-256 characters. It can contain only alphanumeric
	 * characters, forward slashes (/), underscores (_), and dashes (-)."  The
	 * model's length and pattern are checked by AWS's request validator
	 * (ValidationException), as is the "alias/" prefix ("Alias must start
	 * with the prefix \"alias/\"").  The model's pattern also admits ':',
	 * which the documented rule does not: it is refused here (issue 15).
	 */
	if (len < 1 || len > 256)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("ValidationException: 1 validation error detected: Value at 'aliasName' failed to satisfy constraint: Member must have length %s",
						len < 1 ? "greater than or equal to 1" : "less than or equal to 256")));
	for (size_t i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '/' || c == '_' || c == '-' ||
			  (c == ':' && !creating)))
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
					 errmsg("ValidationException: 1 validation error detected: Value at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9/_-]+$"),
					 errdetail("An alias name may contain only letters, digits, and \"/_-\".")));
	}
	if (strncmp(name, "alias/", 6) != 0)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("ValidationException: Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")));
	if (len == 6)
		kms_error(InvalidAliasNameException, KMS_SQLSTATE_INVALID_ALIAS_NAME,
				  "alias name \"%s\" must begin with \"alias/\" followed by a name", name);
	if (strncmp(name, "alias/aws/", 10) == 0)
		kms_error(InvalidAliasNameException, KMS_SQLSTATE_INVALID_ALIAS_NAME,
				  "alias name \"%s\" is reserved: names beginning with \"alias/aws/\" belong to AWS managed keys", name);
}

void
KmsCreateAliasInternal(const char *alias_name, const char *key_id_str)
{
	KmsCatalogState st;
	Oid			types[2] = {TEXTOID, UUIDOID};
	Datum		values[2];
	uint8		key_id[KMS_KEY_ID_LEN];

	KmsCheckWritable("CreateAlias");
	if (!KmsUuidFromString(key_id_str, key_id))
		elog(ERROR, "invalid key id \"%s\"", key_id_str);
	values[0] = CStringGetTextDatum(alias_name);
	values[1] = KmsUuidDatum(key_id);
	KmsCatalogEnter(&st);
	if (KmsExec("INSERT INTO kms.alias (alias_name, key_id, creation_date, last_updated_date) "
				"VALUES ($1, $2, pg_catalog.now(), pg_catalog.now()) ON CONFLICT (alias_name) DO NOTHING",
				2, types, values, NULL, false, SPI_OK_INSERT) != 1)
		kms_error(AlreadyExistsException, KMS_SQLSTATE_ALREADY_EXISTS,
				  "An alias with the name %s already exists", KmsAliasArn(alias_name));
	/* a key pg_kms names for itself is pg_kms's: only a superuser changes it */
	if (strncmp(alias_name, "alias/pg_kms/", 13) == 0 &&
		get_attnum(KmsKeyRelationId(), "key_manager") != InvalidAttrNumber)
		KmsExec("UPDATE kms.key SET key_manager = 'AWS' WHERE key_id = $1",
				1, &types[1], &values[1], NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
	KmsInvalidateAtCommit();
	{
		StringInfoData p;

		initStringInfo(&p);
		KmsAuditParamStr(&p, "targetKeyId", key_id_str);
		KmsAuditEx("CreateAlias", alias_name, NULL, "success", KmsAuditParams(&p));
	}
}

/*
 * SQL giving a key's KeyManager, 'AWS' or 'CUSTOMER', for the row of
 * kms.key named k.  A 1.0 catalog (before ALTER EXTENSION ... UPDATE) has no
 * key_manager column: there a key named under alias/pg_kms/ is AWS's.
 */
const char *
KmsKeyManagerSql(void)
{
	if (get_attnum(KmsKeyRelationId(), "key_manager") != InvalidAttrNumber)
		return "k.key_manager";
	return "CASE WHEN EXISTS (SELECT 1 FROM kms.alias ma WHERE ma.key_id = k.key_id "
		"AND ma.alias_name LIKE 'alias/pg\\_kms/%') THEN 'AWS' ELSE 'CUSTOMER' END";
}

/* ----------------------------------------------------------------
 * kms_key_visible(uuid): for the kms.keys view
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(kms_key_visible);
Datum
kms_key_visible(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = PG_GETARG_UUID_P(0);
	KmsKeyInfo *key = KmsLookupKeyById(u->data);

	PG_RETURN_BOOL(KmsKeyVisibleToUser(key));
}
