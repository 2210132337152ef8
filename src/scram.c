/*-------------------------------------------------------------------------
 *
 * scram.c
 *	  SCRAM-SHA-256 verifiers for ALTER ROLE ... PASSWORD, computed with
 *	  OpenSSL: SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password),
 *	  salt, 4096), ClientKey = HMAC(SaltedPassword, "Client Key"),
 *	  StoredKey = SHA-256(ClientKey), ServerKey = HMAC(SaltedPassword,
 *	  "Server Key"); the text form is PostgreSQL's:
 *	  SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
 *
 *	  Every intermediate is wiped before returning.
 *
 * IDENTIFICATION
 *	  src/scram.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/base64.h"
#include "common/saslprep.h"
#include "libpq/crypt.h"
#include "utils/builtins.h"

#include "pg_kms.h"
#include "scram.h"

#define SHA256_LEN 32

static void
ScramHmac(const uint8 *key, const char *msg, uint8 *out)
{
	size_t		outlen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, SHA256_LEN,
				  (const unsigned char *) msg, strlen(msg),
				  out, SHA256_LEN, &outlen) == NULL || outlen != SHA256_LEN)
		elog(ERROR, "could not compute HMAC-SHA-256");
}

static char *
B64(const uint8 *data, int len)
{
	int			cap = pg_b64_enc_len(len) + 1;
	char	   *out = palloc(cap);
	int			n = pg_b64_encode((const char *) data, len, out, cap);

	if (n < 0)
		elog(ERROR, "could not encode base64");
	out[n] = '\0';
	return out;
}

char *
KmsScramVerifier(const char *password)
{
	char	   *prepped = NULL;
	const char *pw = password;
	pg_saslprep_rc rc;
	uint8		salt[KMS_SCRAM_SALT_LEN];
	uint8		salted[SHA256_LEN];
	uint8		client_key[SHA256_LEN];
	uint8		stored_key[SHA256_LEN];
	uint8		server_key[SHA256_LEN];
	char	   *result;

	/* as the server does: SASLprep if it applies, else the raw bytes */
	rc = pg_saslprep(password, &prepped);
	if (rc == SASLPREP_OOM)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (rc == SASLPREP_SUCCESS)
		pw = prepped;

	if (kms_random_bytes(salt, sizeof(salt)) != 0)
		elog(ERROR, "could not generate random bytes");
	if (PKCS5_PBKDF2_HMAC(pw, strlen(pw), salt, sizeof(salt), KMS_SCRAM_ITERATIONS,
						  EVP_sha256(), SHA256_LEN, salted) != 1)
		elog(ERROR, "could not compute PBKDF2-HMAC-SHA-256");
	if (prepped)
	{
		kms_cleanse(prepped, strlen(prepped));
		pfree(prepped);			/* in the backend pg_saslprep pallocs */
	}
	ScramHmac(salted, "Client Key", client_key);
	if (SHA256(client_key, SHA256_LEN, stored_key) == NULL)
		elog(ERROR, "could not compute SHA-256");
	ScramHmac(salted, "Server Key", server_key);

	result = psprintf("SCRAM-SHA-256$%d:%s$%s:%s", KMS_SCRAM_ITERATIONS,
					  B64(salt, sizeof(salt)), B64(stored_key, SHA256_LEN),
					  B64(server_key, SHA256_LEN));
	kms_cleanse(salted, sizeof(salted));
	kms_cleanse(client_key, sizeof(client_key));
	kms_cleanse(stored_key, sizeof(stored_key));
	kms_cleanse(server_key, sizeof(server_key));
	return result;
}

/*
 * kms.rotation_scram_selftest(password): compute our verifier and check it
 * with the server's own SCRAM code (superuser only; for the tests).
 */
PG_FUNCTION_INFO_V1(kms_rotation_scram_selftest);
Datum
kms_rotation_scram_selftest(PG_FUNCTION_ARGS)
{
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *verifier = KmsScramVerifier(password);
	const char *detail = NULL;
	bool		ok;

	ok = strncmp(verifier, "SCRAM-SHA-256$4096:", 19) == 0 &&
		get_password_type(verifier) == PASSWORD_TYPE_SCRAM_SHA_256 &&
		plain_crypt_verify("regress_scram", verifier, password, &detail) == STATUS_OK &&
		plain_crypt_verify("regress_scram", verifier, "wrong", &detail) != STATUS_OK;
	kms_cleanse(password, strlen(password));
	PG_RETURN_BOOL(ok);
}
