/*-------------------------------------------------------------------------
 *
 * arn.c
 *	  ARNs of keys and aliases, and what they are made of: pg_kms.region,
 *	  and the account id: pg_kms.account_id if set, else the one stored
 *	  with the database's data (kms.account, chosen at CREATE EXTENSION and
 *	  restored with a dump), which the catalog layer reads for us (this
 *	  layer reads no table; KmsSetAccountIdSource at _PG_init), else twelve digits
 *	  derived from the database system identifier (a 1.1 catalog, before
 *	  ALTER EXTENSION pg_kms UPDATE).
 *
 * IDENTIFICATION
 *	  src/common/arn.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "utils/guc.h"

#include "common/kms_common.h"

char	   *kms_region = NULL;
char	   *kms_account_id = NULL;

/* the catalog layer's reader of kms.account (NULL: none installed) */
static const char *(*stored_account_source) (void) = NULL;

void
KmsArnDefineGucs(void)
{
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
							   "Empty means the account id stored with each database (chosen at CREATE EXTENSION from the system identifier, kept in dumps).",
							   &kms_account_id,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
}

void
KmsSetAccountIdSource(const char *(*source) (void))
{
	stored_account_source = source;
}

const char *
KmsAccountId(void)
{
	static char acct[32];
	const char *stored;

	if (kms_account_id && kms_account_id[0])
		return kms_account_id;
	stored = stored_account_source ? stored_account_source() : NULL;
	if (stored && stored[0])
		return stored;
	if (acct[0] == '\0')
		snprintf(acct, sizeof(acct), "%012llu",
				 (unsigned long long) (GetSystemIdentifier() % UINT64CONST(1000000000000)));
	return acct;
}

char *
KmsKeyArn(const char *key_id_str)
{
	return psprintf("arn:aws:kms:%s:%s:key/%s", kms_region, KmsAccountId(), key_id_str);
}

char *
KmsAliasArn(const char *alias_name)
{
	return psprintf("arn:aws:kms:%s:%s:%s", kms_region, KmsAccountId(), alias_name);
}
