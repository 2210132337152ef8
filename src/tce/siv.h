/*-------------------------------------------------------------------------
 *
 * siv.h
 *	  AES-SIV (RFC 5297) over OpenSSL 3 EVP, for deterministic column
 *	  values (src/tce/).  Plain C like crypto/: no PostgreSQL header, every
 *	  function returns a status, so it can be checked without a server.
 *
 *	  OpenSSL's own "AES-256-SIV" refuses an empty plaintext (3.0), and a
 *	  column value may be the empty string, so S2V and CTR are written here
 *	  on AES-ECB and AES-CTR; kms_siv_selftest() checks RFC 5297's vector
 *	  A.1 and an empty plaintext against a fixed answer.
 *
 * IDENTIFICATION
 *	  src/tce/siv.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_TCE_SIV_H
#define PG_KMS_TCE_SIV_H

#include <stddef.h>
#include <stdint.h>

#define KMS_SIV_TAG_LEN 16

typedef struct KmsSiv KmsSiv;

/*
 * A SIV key: keylen 32 (AES-128-SIV, for the RFC vector) or 64 (AES-256-SIV:
 * the first half keys S2V/CMAC, the second CTR).  NULL on failure.
 * kms_siv_free() cleanses and frees (NULL is a no-op).
 */
extern KmsSiv *kms_siv_new(const uint8_t *key, size_t keylen);
extern void kms_siv_free(KmsSiv *siv);

/*
 * One associated-data string (aad, may be empty) and the plaintext (may be
 * empty).  encrypt writes the 16-byte synthetic IV to siv_out and ptlen bytes
 * to ct; decrypt checks siv and writes ctlen bytes to pt.  0 ok, -1 failure
 * (decrypt: authentication failed; pt is then zeroed).
 */
extern int	kms_siv_encrypt(KmsSiv *siv, const uint8_t *aad, size_t aadlen,
							const uint8_t *pt, size_t ptlen,
							uint8_t *siv_out, uint8_t *ct);
extern int	kms_siv_decrypt(KmsSiv *siv, const uint8_t *aad, size_t aadlen,
							const uint8_t *siv_in, const uint8_t *ct,
							size_t ctlen, uint8_t *pt);

/* Known-answer checks; 0 ok. */
extern int	kms_siv_selftest(void);

#endif							/* PG_KMS_TCE_SIV_H */
