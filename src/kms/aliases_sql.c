/*-------------------------------------------------------------------------
 *
 * aliases_sql.c
 *	  CreateAlias, UpdateAlias, DeleteAlias, ListAliases in SQL, and
 *	  kms_rotate_master_key().
 *
 * IDENTIFICATION
 *	  src/kms/aliases_sql.c
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
#include "utils/uuid.h"

#include "cache/cache.h"
#include "keystore/keystore.h"

#include "kms/kms_internal.h"


static bool
KmsIsManagedAliasName(const char *alias_name)
{
	return strncmp(alias_name, KMS_MANAGED_ALIAS_PREFIX,
				   strlen(KMS_MANAGED_ALIAS_PREFIX)) == 0;
}

/*
 * The key an existing alias names, checked for management.  The alias row
 * is locked, so that the key checked is the key the alias still names when
 * it is changed.  Returns a copy of the key info; *aws_managed is true if
 * the alias or its key is pg_kms's own.
 */
static KmsKeyInfo *
KmsManagedAlias(const char *alias_name, const char *opname, bool *aws_managed)
{
	uint8		key_id[KMS_KEY_ID_LEN];
	KmsKeyInfo *key = NULL;
	KmsKeyInfo *copy;
	KmsCatalogState st;
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(alias_name);
	bool		found = false;

	KmsCheckGeneration();
	KmsSetOperationName(opname);
	/* an existing alias: one with ':' from before 1.2 is still found */
	KmsValidateAliasNameEx(alias_name, false);
	KmsCheckWritable(opname);
	*aws_managed = KmsIsManagedAliasName(alias_name);
	KmsCatalogEnter(&st);
	if (KmsExec(psprintf("SELECT a.key_id, (%s) = 'AWS' FROM kms.alias a JOIN kms.key k USING (key_id) "
						 "WHERE a.alias_name = $1 FOR UPDATE OF a", KmsKeyManagerSql()),
				1, &t, &v, NULL, false, SPI_OK_SELECT) == 1)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[0];

		memcpy(key_id, DatumGetUUIDP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull))->data,
			   KMS_KEY_ID_LEN);
		if (DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull)))
			*aws_managed = true;
		found = true;
	}
	KmsCatalogExit(&st);
	if (!found || (key = KmsLookupKeyById(key_id)) == NULL)
	{
		if (KmsIsAdmin())
			KmsKeyNotFoundError(alias_name, NULL);
		KmsKeyNotFound(alias_name, KMS_OP_MANAGE);
	}
	KmsCheckAccess(key, KMS_OP_MANAGE, alias_name);
	KmsSetOperationName(NULL);
	copy = palloc(sizeof(KmsKeyInfo));
	*copy = *key;				/* the local cache may be reset meanwhile */
	return copy;
}

/*
 * An alias routes its users' data to a key.  Pointing it at a key of
 * another owner (deleting it, then creating it again, is the same move)
 * would let a kms_admin member send an application's new data to a key it
 * owns, so it needs a role that owns every key involved, or a superuser;
 * managing keys (kms_admin) is not enough.
 */
static void
KmsCheckAliasOwners(const char *alias_name, const char *opname, Oid from, Oid to)
{
	Oid			user = GetUserId();

	if (superuser() ||
		(has_privs_of_role(user, from) && (!OidIsValid(to) || has_privs_of_role(user, to))))
		return;
	KmsAudit(opname, alias_name, 0, "AccessDeniedException");
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_ACCESS_DENIED),
			 errhidestmt(true),
			 errmsg("AccessDeniedException: role \"%s\" is not authorized to perform %s on alias \"%s\"",
					GetUserNameFromId(user, false), opname, alias_name),
			 OidIsValid(to) ?
			 errdetail("The alias would move to a key of another owner; only a role that owns both keys, or a superuser, may do that.") :
			 errdetail("Only the owner of the key the alias names, or a superuser, may delete the alias.")));
}

KMS_AUDITED_ENTRY(kms_create_alias, "CreateAlias", 0)
{
	char	   *alias_name = KmsArgText(fcinfo, 0);
	char	   *target = ArgKeyRef(fcinfo, 1);
	KmsKeyInfo *key;

	if (alias_name == NULL)
		kms_error(InvalidAliasNameException, KMS_SQLSTATE_INVALID_ALIAS_NAME,
				  "alias name must not be null");
	KmsValidateAliasName(alias_name);
	/* as alias/aws/ in AWS: only pg_kms names its own keys there */
	if (KmsIsManagedAliasName(alias_name))
		kms_error(InvalidAliasNameException, KMS_SQLSTATE_INVALID_ALIAS_NAME,
				  "alias name \"%s\" is reserved: names beginning with \"" KMS_MANAGED_ALIAS_PREFIX "\" belong to keys pg_kms manages",
				  alias_name);
	key = KmsManagedKey(target, "CreateAlias");
	KmsNotPendingDeletion(key);
	KmsCreateAliasInternal(alias_name, key->key_id_str);
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_update_alias, "UpdateAlias", 0)
{
	char	   *alias_name = KmsArgText(fcinfo, 0);
	char	   *target = ArgKeyRef(fcinfo, 1);
	KmsKeyInfo *oldkey;
	KmsKeyInfo *newkey;
	bool		aws_managed;

	if (alias_name == NULL)
		kms_error(InvalidAliasNameException, KMS_SQLSTATE_INVALID_ALIAS_NAME,
				  "alias name must not be null");
	oldkey = KmsManagedAlias(alias_name, "UpdateAlias", &aws_managed);
	KmsCheckManagedKey(oldkey, aws_managed, "UpdateAlias");
	newkey = KmsManagedKey(target, "UpdateAlias");
	KmsNotPendingDeletion(newkey);
	if (newkey->usage != oldkey->usage)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "alias \"%s\" can only point to a key with the same key usage", alias_name);
	if (newkey->owner != oldkey->owner)
		KmsCheckAliasOwners(alias_name, "UpdateAlias", oldkey->owner, newkey->owner);
	if (aws_managed)
		KmsWarnManagedKey(oldkey, "UpdateAlias", "an alias or key",
						  "what its users encrypt from now on (new secrets too) is encrypted under the new key, and whoever may use that key can read it");
	KmsRetargetAlias(alias_name, newkey->key_id);
	KmsInvalidateAtCommit();
	{
		StringInfoData p;

		initStringInfo(&p);
		KmsAuditParamStr(&p, "targetKeyId", newkey->key_id_str);
		KmsAuditEx("UpdateAlias", alias_name, NULL, "success", KmsAuditParams(&p));
	}
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_delete_alias, "DeleteAlias", 0)
{
	char	   *alias_name = KmsArgText(fcinfo, 0);
	KmsKeyInfo *key;
	bool		aws_managed;

	if (alias_name == NULL)
		kms_error(InvalidAliasNameException, KMS_SQLSTATE_INVALID_ALIAS_NAME,
				  "alias name must not be null");
	key = KmsManagedAlias(alias_name, "DeleteAlias", &aws_managed);
	KmsCheckManagedKey(key, aws_managed, "DeleteAlias");
	KmsCheckAliasOwners(alias_name, "DeleteAlias", key->owner, InvalidOid);
	if (aws_managed)
		KmsWarnManagedKey(key, "DeleteAlias", "an alias or key",
						  KmsIsManagedAliasName(alias_name) ?
						  "secrets stored from now on without a kms_key_id get a new default key; those under this key stay readable" :
						  "users of the alias can no longer name the key by it");
	KmsDeleteAliasRow(alias_name);
	KmsInvalidateAtCommit();
	KmsAudit("DeleteAlias", alias_name, 0, "success");
	PG_RETURN_VOID();
}

KMS_AUDITED_ENTRY(kms_list_aliases, "ListAliases", 0)
{
	TupleDesc	tupdesc;
	Tuplestorestate *ts = KmsStartSRF(fcinfo, &tupdesc);
	KmsCatalogState st;
	KmsKeyInfo *filter = NULL;
	Oid			t = UUIDOID;
	Datum		v;
	uint64		n;
	List	   *rows = NIL;
	ListCell   *lc;
	MemoryContext caller = CurrentMemoryContext;
	KmsPager	pg;
	char	   *filter_id = NULL;

	typedef struct AliasRow
	{
		char	   *name;
		uint8		key_id[KMS_KEY_ID_LEN];
		Datum		created;
		Datum		updated;
	} AliasRow;

	KmsCheckGeneration();
	/* AWS API reference, ListAliases, Limit: "between 1 and 100, inclusive ... defaults to 50" */
	KmsPagerInit(&pg, fcinfo, 1, "ListAliases", 100, 50, ts, tupdesc, 5);
	if (!PG_ARGISNULL(0))
	{
		filter = KmsResolveKey(ArgKeyRef(fcinfo, 0), KMS_OP_DESCRIBE_KEY);
		filter_id = pstrdup(filter->key_id_str);
	}

	KmsCatalogEnter(&st);
	if (filter)
	{
		v = KmsUuidDatum(filter->key_id);
		n = KmsExec("SELECT alias_name, key_id, creation_date, last_updated_date FROM kms.alias "
					"WHERE key_id = $1 ORDER BY alias_name COLLATE \"C\"", 1, &t, &v, NULL, true, SPI_OK_SELECT);
	}
	else
		n = KmsExec("SELECT alias_name, key_id, creation_date, last_updated_date FROM kms.alias "
					"ORDER BY alias_name COLLATE \"C\"", 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = SPI_getvalue(tup, td, 1);
		MemoryContext old = MemoryContextSwitchTo(caller);
		AliasRow   *r = palloc(sizeof(AliasRow));

		r->name = pstrdup(name);
		memcpy(r->key_id, DatumGetUUIDP(SPI_getbinval(tup, td, 2, &isnull))->data, KMS_KEY_ID_LEN);
		r->created = SPI_getbinval(tup, td, 3, &isnull);	/* timestamps are by value */
		r->updated = SPI_getbinval(tup, td, 4, &isnull);
		rows = lappend(rows, r);
		MemoryContextSwitchTo(old);
	}
	KmsCatalogExit(&st);

	foreach(lc, rows)
	{
		AliasRow   *r = lfirst(lc);
		KmsKeyInfo *key = KmsLookupKeyById(r->key_id);
		Datum		values[6];
		bool		nulls[6] = {0};

		if (!KmsVisible(key))
			continue;
		if (!KmsPagerWant(&pg, r->name))
		{
			if (pg.done)
				break;
			continue;
		}
		values[0] = CStringGetTextDatum(r->name);
		values[1] = CStringGetTextDatum(KmsAliasArn(r->name));
		values[2] = CStringGetTextDatum(key->key_id_str);
		values[3] = r->created;
		values[4] = r->updated;
		KmsPagerPut(&pg, values, nulls, r->name);
	}
	KmsPagerFinish(&pg);
	KmsAudit("ListAliases", filter_id, 0, "success");
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * kms_rotate_master_key(new_master_key_file)
 * ----------------------------------------------------------------
 */
KMS_AUDITED_ENTRY(kms_rotate_master_key, "RotateMasterKey", KMS_AUDIT_NO_RESOURCE)
{
	char	   *path = KmsArgText(fcinfo, 0);
	int			n;

	KmsCheckGeneration();
	if (!superuser())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: only a superuser may rotate the master key")));
	if (path != NULL && path[0] == '\0')
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "new_master_key_file must not be empty");
	KmsCheckWritable("RotateMasterKey");
	n = KmsRotateMasterKey(path);
	/* cached material is unchanged; only the wrapping changed */
	KmsInvalidateAtCommit();
	KmsAudit("RotateMasterKey", "master key", 0, "success");
	PG_RETURN_INT32(n);
}
