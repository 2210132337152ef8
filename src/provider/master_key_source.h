/*-------------------------------------------------------------------------
 *
 * master_key_source.h
 *	  Reading the local provider's master key (master_key_source.c), for
 *	  local.c.  Both return NULL, or an error text (palloc'd) that names
 *	  the file or setting and never holds key material.
 *
 * IDENTIFICATION
 *	  src/provider/master_key_source.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_MASTER_KEY_SOURCE_H
#define PG_KMS_MASTER_KEY_SOURCE_H

/* The key in path (pg_kms.master_key_file's rules) into out. */
extern char *KmsReadMasterKeyFile(const char *path, uint8 *out);
/* The same, the file named as what in error texts. */
extern char *KmsReadKeyFileAs(const char *what, const char *path, uint8 *out);

/* The key pg_kms.master_key_file, else pg_kms.master_key_command, names. */
extern char *KmsLoadKeyFromSettings(uint8 *out);

#endif							/* PG_KMS_MASTER_KEY_SOURCE_H */
