/*-------------------------------------------------------------------------
 *
 * arn.c
 *	  ARNs of keys and aliases, and the two settings they are made of:
 *	  pg_kms.region and pg_kms.account_id (empty: twelve digits derived
 *	  from the database system identifier).
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
							   "Empty means twelve digits derived from the database system identifier.",
							   &kms_account_id,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
}

const char *
KmsAccountId(void)
{
	static char acct[32];

	if (kms_account_id && kms_account_id[0])
		return kms_account_id;
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
