/*-------------------------------------------------------------------------
 *
 * writes.c
 *	  The key store's writes for the key-management entry points of kms/:
 *	  key rows (state, description, tags, rotation settings), aliases and
 *	  grants.  kms/ checks privileges and arguments and calls these; the
 *	  key store is the one layer that writes kms.key, kms.alias and
 *	  kms.grants (scripts/check_layers.py).  No privilege checks here.
 *
 *	  May call: catalog/, common/.
 *
 * IDENTIFICATION
 *	  src/keystore/writes.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "keystore/keystore.h"

/* Run a modifying statement as the catalog owner; returns rows affected. */
static uint64
KeystoreModify(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	KmsCatalogState st;
	uint64		n;

	KmsCatalogEnter(&st);
	n = KmsExec(sql, nargs, types, values, NULL, false, expected);
	KmsCatalogExit(&st);
	return n;
}

void
KmsUpdateKeyRow(const uint8 *key_id, const char *set_clause, int nextra,
				Oid *types, Datum *values)
{
	Oid			t[4];
	Datum		v[4];
	char	   *sql = psprintf("UPDATE kms.key SET %s WHERE key_id = $1", set_clause);

	Assert(nextra < 4);
	t[0] = UUIDOID;
	v[0] = KmsUuidDatum(key_id);
	for (int i = 0; i < nextra; i++)
	{
		t[i + 1] = types[i];
		v[i + 1] = values[i];
	}
	KeystoreModify(sql, 1 + nextra, t, v, SPI_OK_UPDATE);
}

void
KmsRetargetAlias(const char *alias_name, const uint8 *key_id)
{
	Oid			t[2] = {TEXTOID, UUIDOID};
	Datum		v[2];

	v[0] = CStringGetTextDatum(alias_name);
	v[1] = KmsUuidDatum(key_id);
	KeystoreModify("UPDATE kms.alias SET key_id = $2, last_updated_date = pg_catalog.now() WHERE alias_name = $1",
				   2, t, v, SPI_OK_UPDATE);
}

void
KmsDeleteAliasRow(const char *alias_name)
{
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(alias_name);

	KeystoreModify("DELETE FROM kms.alias WHERE alias_name = $1", 1, &t, &v, SPI_OK_DELETE);
}

uint64
KmsDeleteGrantRow(const uint8 *key_id, const char *grant_id)
{
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];

	v[0] = KmsUuidDatum(key_id);
	v[1] = CStringGetTextDatum(grant_id);
	return KeystoreModify("DELETE FROM kms.grants WHERE key_id = $1 AND grant_id = $2",
						  2, t, v, SPI_OK_DELETE);
}

/*
 * Record the grant in kms.grants (grant id and token in *grant_id, *token).
 * A named grant retried with the same parameters is the same grant, and the
 * retry's token must work for it: then the stored id and token are returned.
 */
void
KmsStoreGrant(KmsKeyInfo *key, const char *name, Oid grantee, Oid retiring,
		   Datum oparray, Jsonb *constraints, char **grant_id_out, char **token_out)
{
	KmsCatalogState st;
	MemoryContext caller = CurrentMemoryContext;
	char	   *grant_id = NULL;
	char	   *token = *token_out;

	KmsCatalogEnter(&st);
	if (name)
	{
		Oid			t[6] = {UUIDOID, TEXTOID, OIDOID, TEXTARRAYOID, OIDOID, JSONBOID};
		Datum		v[6];
		char		n[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		v[0] = KmsUuidDatum(key->key_id);
		v[1] = CStringGetTextDatum(name);
		v[2] = ObjectIdGetDatum(grantee);
		v[3] = oparray;
		if (OidIsValid(retiring))
			v[4] = ObjectIdGetDatum(retiring);
		else
			n[4] = 'n';
		if (constraints)
			v[5] = JsonbPGetDatum(constraints);
		else
			n[5] = 'n';
		/* a retry with identical parameters, constraints too, is the same grant */
		if (KmsExec("SELECT grant_id, grant_token FROM kms.grants WHERE key_id = $1 AND name = $2 "
					"AND grantee = $3::regrole AND operations = $4 "
					"AND retiring_principal IS NOT DISTINCT FROM $5::regrole "
					"AND constraints IS NOT DISTINCT FROM $6 "
					"ORDER BY creation_date, grant_id LIMIT 1",
					6, t, v, n, true, SPI_OK_SELECT) >= 1)
		{
			/* copied out of SPI's memory, which KmsCatalogExit frees */
			grant_id = MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
			token = MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		}
	}
	if (grant_id == NULL)
	{
		Oid			t[9] = {TEXTOID, UUIDOID, TEXTOID, OIDOID, OIDOID, TEXTARRAYOID, OIDOID, TEXTOID, JSONBOID};
		Datum		v[9];
		char		n[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		grant_id = KmsRandomHex(32);
		v[0] = CStringGetTextDatum(grant_id);
		v[1] = KmsUuidDatum(key->key_id);
		if (name)
			v[2] = CStringGetTextDatum(name);
		else
			n[2] = 'n';
		v[3] = ObjectIdGetDatum(grantee);
		if (OidIsValid(retiring))
			v[4] = ObjectIdGetDatum(retiring);
		else
			n[4] = 'n';
		v[5] = oparray;
		v[6] = ObjectIdGetDatum(st.save_userid);
		v[7] = CStringGetTextDatum(token);
		if (constraints)
			v[8] = JsonbPGetDatum(constraints);
		else
			n[8] = 'n';
		KmsExec("INSERT INTO kms.grants (grant_id, key_id, name, grantee, retiring_principal, operations, "
				"issuing_role, grant_token, creation_date, constraints) "
				"VALUES ($1, $2, $3, $4::regrole, $5::regrole, $6, $7::regrole, $8, pg_catalog.now(), $9)",
				9, t, v, n, false, SPI_OK_INSERT);
	}
	KmsCatalogExit(&st);
	*grant_id_out = grant_id;
	*token_out = token;
}

