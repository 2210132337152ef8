/*-------------------------------------------------------------------------
 *
 * scram.h
 *	  SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677) computed in the
 *	  extension, so that the rotation worker sets a role's password with
 *	  ALTER ROLE ... PASSWORD '<verifier>' and the plaintext never appears
 *	  in a statement, a log line or pg_stat_activity.
 *
 * IDENTIFICATION
 *	  src/scram.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_SCRAM_H
#define PG_KMS_SCRAM_H

#define KMS_SCRAM_ITERATIONS	4096
#define KMS_SCRAM_SALT_LEN		16

/*
 * The verifier "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>" (base64)
 * of password, with a fresh random salt, palloc'd.  The password is
 * normalized with SASLprep as the server does; a password that is not
 * valid UTF-8 is refused (errors name no part of it).
 */
extern char *KmsScramVerifier(const char *password);

#endif							/* PG_KMS_SCRAM_H */
