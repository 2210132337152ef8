/*-------------------------------------------------------------------------
 *
 * master_key_source.c
 *	  Where the local provider's master key comes from: the settings
 *	  pg_kms.master_key_file, pg_kms.master_key_command and
 *	  pg_kms.previous_master_key_file, and reading a key from a file
 *	  (regular, mode 0600 or stricter, outside the data directory) or from
 *	  a command's output: 32 raw bytes or 64 hex digits.  No key material
 *	  in any error text.  local.c keeps the key once read.
 *
 *	  May call: common/.
 *
 * IDENTIFICATION
 *	  src/provider/master_key_source.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "provider/provider.h"
#include "provider/master_key_source.h"

char	   *kms_master_key_file = NULL;
char	   *kms_master_key_command = NULL;
char	   *kms_previous_master_key_file = NULL;

void
KmsLocalProviderDefineGucs(void)
{
	DefineCustomStringVariable("pg_kms.master_key_file",
							   "Path of the local provider's master key file.",
							   "32 raw bytes or 64 hex characters; mode 0600 or stricter, outside the data directory. Read once at server start.",
							   &kms_master_key_file,
							   NULL,
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.master_key_command",
							   "Shell command that prints the local provider's master key.",
							   "Used when pg_kms.master_key_file is not set. Run once at server start.",
							   &kms_master_key_command,
							   NULL,
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.previous_master_key_file",
							   "Path of the master key being rotated away from.",
							   "Set it to the old master key while some database still has key material wrapped under it; kms_rotate_master_key() then rewraps that material under the current master key.",
							   &kms_previous_master_key_file,
							   NULL,
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

/*
 * Parse a master key: exactly 32 raw bytes, or 64 hex digits optionally
 * followed by white space.  Returns NULL or an error text.
 */
static const char *
KmsParseMasterKey(const uint8 *buf, size_t len, uint8 *out)
{
	size_t		hexlen = len;

	if (len == KMS_AES_KEY_LEN)
	{
		memcpy(out, buf, KMS_AES_KEY_LEN);
		return NULL;
	}
	while (hexlen > 0 && (buf[hexlen - 1] == '\n' || buf[hexlen - 1] == '\r' ||
						  buf[hexlen - 1] == ' ' || buf[hexlen - 1] == '\t'))
		hexlen--;
	if (hexlen == 2 * KMS_AES_KEY_LEN)
	{
		if (KmsHexDecode((const char *) buf, KMS_AES_KEY_LEN, out, true))
			return NULL;
		kms_cleanse(out, KMS_AES_KEY_LEN);
	}
	return "it is neither 32 raw bytes nor 64 hexadecimal digits";
}

/* Read a key file; returns NULL or an error text (palloc'd). */
char *
KmsReadMasterKeyFile(const char *path, uint8 *out)
{
	struct stat st;
	FILE	   *f;
	uint8		buf[200];
	size_t		n;
	const char *err;
	char	   *real;
	char	   *realdata;

	if (stat(path, &st) != 0)
		return psprintf("could not access pg_kms.master_key_file \"%s\": %m", path);
	if (!S_ISREG(st.st_mode))
		return psprintf("pg_kms.master_key_file \"%s\" is not a regular file", path);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return psprintf("pg_kms.master_key_file \"%s\" has group or world access permissions; it must be mode 0600 or stricter", path);
	real = realpath(path, NULL);
	realdata = DataDir ? realpath(DataDir, NULL) : NULL;
	if (real && realdata)
	{
		size_t		dl = strlen(realdata);
		bool		inside = strncmp(real, realdata, dl) == 0 && real[dl] == '/';

		free(real);
		free(realdata);
		if (inside)
			return psprintf("pg_kms.master_key_file \"%s\" is inside the data directory; keep it outside, where backups and replicas do not copy it", path);
	}
	else
	{
		free(real);
		free(realdata);
	}
	f = fopen(path, "rb");
	if (f == NULL)
		return psprintf("could not open pg_kms.master_key_file \"%s\": %m", path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	err = KmsParseMasterKey(buf, n, out);
	kms_cleanse(buf, sizeof(buf));
	if (err)
		return psprintf("pg_kms.master_key_file \"%s\" is not a valid master key: %s (it has %zu bytes)", path, err, n);
	return NULL;
}

static char *
KmsRunMasterKeyCommand(const char *cmd, uint8 *out)
{
	FILE	   *p;
	uint8		buf[200];
	size_t		n;
	int			rc;
	const char *err;

	fflush(NULL);
	p = popen(cmd, "r");
	if (p == NULL)
		return psprintf("could not run pg_kms.master_key_command: %m");
	n = fread(buf, 1, sizeof(buf), p);
	rc = pclose(p);
	if (rc != 0)
	{
		kms_cleanse(buf, sizeof(buf));
		return psprintf("pg_kms.master_key_command failed with exit status %d", rc);
	}
	err = KmsParseMasterKey(buf, n, out);
	kms_cleanse(buf, sizeof(buf));
	if (err)
		return psprintf("pg_kms.master_key_command did not print a valid master key: %s", err);
	return NULL;
}

/* The master key the settings name (file, else command); NULL or an error text. */
char *
KmsLoadKeyFromSettings(uint8 *out)
{
	if (kms_master_key_file && kms_master_key_file[0])
		return KmsReadMasterKeyFile(kms_master_key_file, out);
	if (kms_master_key_command && kms_master_key_command[0])
		return KmsRunMasterKeyCommand(kms_master_key_command, out);
	return pstrdup("no master key is configured: set pg_kms.master_key_file or pg_kms.master_key_command");
}
