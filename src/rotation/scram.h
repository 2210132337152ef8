/*-------------------------------------------------------------------------
 *
 * scram.h
 *	  SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677) computed in the
 *	  extension, so that the rotation worker sets a role's password with
 *	  ALTER ROLE ... PASSWORD '<verifier>' and the plaintext never appears
 *	  in a statement, a log line or pg_stat_activity; and a SCRAM-SHA-256
 *	  login client, with which the rotation worker checks credentials
 *	  against this server (and only with SCRAM: it never sends a password
 *	  in clear text or as MD5).
 *
 * IDENTIFICATION
 *	  src/rotation/scram.h
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

/* Where KmsScramLogin connects: a Unix socket directory, or an IP literal. */
typedef struct KmsLoginTarget
{
	const char *socket_dir;		/* "<dir>/.s.PGSQL.<port>" if not NULL */
	const char *address;		/* else a numeric IPv4 or IPv6 address */
	int			port;
} KmsLoginTarget;

/*
 * Log in as user to dbname with password by SCRAM-SHA-256 (no other
 * method: a cleartext or MD5 request, or a login let in without SCRAM,
 * fails before the password is used), verify the server's signature, run
 * SELECT 1 and disconnect.  Bounded by timeout_ms; interrupts are served.
 * On failure returns false and, if err, a one-line reason (palloc'd) that
 * holds no part of the password.  An empty password always fails.
 */
extern bool KmsScramLogin(const KmsLoginTarget *target, const char *user,
						  const char *dbname, const char *password,
						  int timeout_ms, char **err);

#endif							/* PG_KMS_SCRAM_H */
