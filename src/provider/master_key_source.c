/*-------------------------------------------------------------------------
 *
 * master_key_source.c
 *	  Where the local provider's master key comes from: the settings
 *	  pg_kms.master_key_file, pg_kms.master_key_command and
 *	  pg_kms.master_key_command_timeout, pg_kms.previous_master_key_file and
 *	  pg_kms.master_keyring_directory, and reading a key from a file
 *	  (regular, mode 0600 or stricter, outside the data directory) or from
 *	  a command's output: 32 raw bytes or 64 hex digits.  The command runs
 *	  in its own process group, for at most
 *	  pg_kms.master_key_command_timeout, and a backend waiting for it can
 *	  be cancelled (the command is killed then).  No key material in any
 *	  error text.  local.c keeps the key once read.
 *
 *	  May call: common/.
 *
 * IDENTIFICATION
 *	  src/provider/master_key_source.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/guc.h"

#include "provider/provider.h"
#include "provider/master_key_source.h"

char	   *kms_master_key_file = NULL;
char	   *kms_master_key_command = NULL;
char	   *kms_previous_master_key_file = NULL;
char	   *kms_master_keyring_directory = NULL;
int			kms_master_key_command_timeout = 30;

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
							   "Used when pg_kms.master_key_file is not set. Run at server start; if it fails, run again by the first call that needs the key (with backoff).",
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

	DefineCustomIntVariable("pg_kms.master_key_command_timeout",
							"Longest time one run of pg_kms.master_key_command may take.",
							"A command still running then is killed and counts as failed.",
							&kms_master_key_command_timeout,
							30, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S | GUC_SUPERUSER_ONLY,
							NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.master_keyring_directory",
							   "Directory of earlier master key files (the keyring).",
							   "Each file holds one earlier master key (same rules as pg_kms.master_key_file); key material wrapped under any of them is read, and kms_rotate_master_key() rewraps it under the current key. Read at server start; at most 32 keys.",
							   &kms_master_keyring_directory,
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
	return KmsReadKeyFileAs("pg_kms.master_key_file", path, out);
}

/* The same, naming the file as what (a setting, or "keyring file"). */
char *
KmsReadKeyFileAs(const char *what, const char *path, uint8 *out)
{
	struct stat st;
	FILE	   *f;
	uint8		buf[200];
	size_t		n;
	const char *err;
	char	   *real;
	char	   *realdata;

	if (stat(path, &st) != 0)
		return psprintf("could not access %s \"%s\": %m", what, path);
	if (!S_ISREG(st.st_mode))
		return psprintf("%s \"%s\" is not a regular file", what, path);
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return psprintf("%s \"%s\" has group or world access permissions; it must be mode 0600 or stricter", what, path);
	real = realpath(path, NULL);
	realdata = DataDir ? realpath(DataDir, NULL) : NULL;
	if (real && realdata)
	{
		size_t		dl = strlen(realdata);
		bool		inside = strncmp(real, realdata, dl) == 0 && real[dl] == '/';

		free(real);
		free(realdata);
		if (inside)
			return psprintf("%s \"%s\" is inside the data directory; keep it outside, where backups and replicas do not copy it", what, path);
	}
	else
	{
		free(real);
		free(realdata);
	}
	f = fopen(path, "rb");
	if (f == NULL)
		return psprintf("could not open %s \"%s\": %m", what, path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	err = KmsParseMasterKey(buf, n, out);
	kms_cleanse(buf, sizeof(buf));
	if (err)
		return psprintf("%s \"%s\" is not a valid master key: %s (it has %zu bytes)", what, path, err, n);
	return NULL;
}

/* End the command's process group and reap it. */
static void
KmsEndCommand(pid_t pid)
{
	int			status;

	(void) kill(-pid, SIGKILL);
	(void) kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/*
 * Run the command with its standard output read into buf (at most cap
 * bytes), for at most pg_kms.master_key_command_timeout.  In a backend, a
 * cancel or termination interrupts the wait (the command is killed first).
 * Returns the exit status (-1: could not run, -2: timed out).
 */
static int
KmsRunCommandTimed(const char *cmd, uint8 *buf, size_t cap, size_t *len)
{
	int			pfd[2];
	pid_t		pid;
	int			status = 0;
	bool		timed_out = false;
	instr_time	start,
				now;
	long		limit_ms = (long) kms_master_key_command_timeout * 1000L;

	*len = 0;
	if (pipe(pfd) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0)
	{
		sigset_t	none;

		/* its own process group, so that a timeout ends all of it */
		(void) setpgid(0, 0);
		sigemptyset(&none);
		(void) sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(pfd[1], STDOUT_FILENO) < 0)
			_exit(126);
		close(pfd[0]);
		close(pfd[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
		_exit(127);
	}
	(void) setpgid(pid, pid);
	close(pfd[1]);
	INSTR_TIME_SET_CURRENT(start);

	PG_TRY();
	{
		for (;;)
		{
			struct pollfd p;
			long		elapsed;
			int			rc;

			INSTR_TIME_SET_CURRENT(now);
			INSTR_TIME_SUBTRACT(now, start);
			elapsed = (long) INSTR_TIME_GET_MILLISEC(now);
			if (elapsed >= limit_ms)
			{
				timed_out = true;
				break;
			}
			p.fd = pfd[0];
			p.events = POLLIN;
			p.revents = 0;
			/* short slices: a cancel is seen within 100 ms */
			rc = poll(&p, 1, (int) Min(limit_ms - elapsed, 100L));
			if (IsUnderPostmaster)
				CHECK_FOR_INTERRUPTS();
			if (rc < 0 && errno != EINTR)
				break;
			if (rc > 0)
			{
				ssize_t		r;

				if (*len >= cap)
					break;		/* too long to be a key */
				r = read(pfd[0], buf + *len, cap - *len);
				if (r == 0)
					break;		/* end of output */
				if (r < 0 && errno != EINTR && errno != EAGAIN)
					break;
				if (r > 0)
					*len += r;
			}
		}
	}
	PG_CATCH();
	{
		close(pfd[0]);
		KmsEndCommand(pid);
		kms_cleanse(buf, cap);
		PG_RE_THROW();
	}
	PG_END_TRY();
	close(pfd[0]);

	/* output ended: wait for the exit, within what is left of the limit */
	while (!timed_out)
	{
		pid_t		r = waitpid(pid, &status, WNOHANG);
		long		elapsed;

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
		{
			status = -1;
			break;
		}
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		elapsed = (long) INSTR_TIME_GET_MILLISEC(now);
		if (elapsed >= limit_ms)
			timed_out = true;
		else
			pg_usleep(10000L);
	}
	if (timed_out)
	{
		KmsEndCommand(pid);
		return -2;
	}
	if (status == -1)
		return -1;
	/* the whole group: nothing the command started outlives it */
	(void) kill(-pid, SIGKILL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static char *
KmsRunMasterKeyCommand(const char *cmd, uint8 *out)
{
	uint8		buf[200];
	size_t		n;
	int			rc;
	const char *err;

	rc = KmsRunCommandTimed(cmd, buf, sizeof(buf), &n);
	if (rc == -1)
	{
		kms_cleanse(buf, sizeof(buf));
		return psprintf("could not run pg_kms.master_key_command: %m");
	}
	if (rc == -2)
	{
		kms_cleanse(buf, sizeof(buf));
		return psprintf("pg_kms.master_key_command did not finish within pg_kms.master_key_command_timeout (%d s) and was killed",
						kms_master_key_command_timeout);
	}
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
