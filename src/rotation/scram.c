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
 *	  KmsScramLogin: a minimal client of the PostgreSQL protocol that logs
 *	  in to this server with SCRAM-SHA-256 and nothing else (libpq 15 has
 *	  no require_auth, so it would answer a cleartext or MD5 request with
 *	  the password).  Any other authentication request, and a server that
 *	  lets the login in without SCRAM (trust, peer), ends the attempt
 *	  before the password or anything derived from it is sent.  The server
 *	  signature is verified.  The socket is non-blocking, every wait is a
 *	  WaitLatchOrSocket with CHECK_FOR_INTERRUPTS, and the whole login has
 *	  a deadline.
 *
 * IDENTIFICATION
 *	  src/rotation/scram.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/base64.h"
#include "common/saslprep.h"
#include "libpq/crypt.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "common/kms_common.h"
#include "rotation/scram.h"

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
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errhidestmt(true), errmsg("out of memory")));
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

/* ----------------------------------------------------------------
 * SCRAM-SHA-256 login (client side, RFC 5802 / RFC 7677, no channel
 * binding: the login goes to this server over a Unix socket or loopback)
 * ----------------------------------------------------------------
 */
#define LOGIN_MAX_MSG		65536
#define SCRAM_NONCE_LEN		18
#define SCRAM_MAX_ITERATIONS 1000000	/* keeps one PBKDF2 well under a second */

/* AuthenticationRequest codes (protocol 3.0) */
#define AUTH_OK				0
#define AUTH_KRB5			2
#define AUTH_CLEARTEXT		3
#define AUTH_MD5			5
#define AUTH_SCM			6
#define AUTH_GSS			7
#define AUTH_GSS_CONT		8
#define AUTH_SSPI			9
#define AUTH_SASL			10
#define AUTH_SASL_CONTINUE	11
#define AUTH_SASL_FINAL		12

typedef enum LoginState
{
	LOGIN_START,				/* startup sent */
	LOGIN_SENT_FIRST,			/* client-first sent */
	LOGIN_SENT_FINAL,			/* client-final sent */
	LOGIN_VERIFIED,				/* server signature checked */
	LOGIN_AUTHED,				/* AuthenticationOk after a verified SCRAM */
	LOGIN_QUERIED				/* SELECT 1 sent */
} LoginState;

typedef struct LoginConn
{
	pgsocket	sock;
	TimestampTz deadline;
	char	   *err;			/* why the login failed (never a secret) */
	LoginState	state;
	char	   *client_first_bare;
	char	   *client_nonce;
	uint8		server_key[SHA256_LEN];
	char	   *auth_message;
} LoginConn;

static bool
LoginFail(LoginConn *c, const char *fmt,...) pg_attribute_printf(2, 3);

static bool
LoginFail(LoginConn *c, const char *fmt,...)
{
	char		buf[512];
	va_list		ap;

	if (c->err == NULL)
	{
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		c->err = pstrdup(buf);
	}
	return false;
}

/* Wait for the socket (event) until the deadline; interrupts are served. */
static bool
LoginWait(LoginConn *c, int event)
{
	for (;;)
	{
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), c->deadline);
		int			rc;

		if (remaining <= 0)
			return LoginFail(c, "timed out after pg_kms.rotation_login_timeout");
		rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | event,
							   c->sock, remaining, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (rc & event)
			return true;
	}
}

static bool
LoginSend(LoginConn *c, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = send(c->sock, data, len, MSG_NOSIGNAL);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
			{
				if (!LoginWait(c, WL_SOCKET_WRITEABLE))
					return false;
				continue;
			}
			return LoginFail(c, "could not send to the server: %s", strerror(errno));
		}
		data += n;
		len -= n;
	}
	return true;
}

static bool
LoginRecv(LoginConn *c, char *buf, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = recv(c->sock, buf, len, 0);

		if (n == 0)
			return LoginFail(c, "the server closed the connection");
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
			{
				if (!LoginWait(c, WL_SOCKET_READABLE))
					return false;
				continue;
			}
			return LoginFail(c, "could not receive from the server: %s", strerror(errno));
		}
		buf += n;
		len -= n;
	}
	return true;
}

/* One backend message: type, body (palloc'd, NUL-terminated), length. */
static bool
LoginRecvMsg(LoginConn *c, char *type, char **body, int *len)
{
	char		hdr[5];
	uint32		n;

	if (!LoginRecv(c, hdr, 5))
		return false;
	*type = hdr[0];
	memcpy(&n, hdr + 1, 4);
	n = pg_ntoh32(n);
	if (n < 4 || n > LOGIN_MAX_MSG)
		return LoginFail(c, "the server sent a message of invalid length (is it PostgreSQL?)");
	*len = (int) n - 4;
	*body = palloc(*len + 1);
	(*body)[*len] = '\0';
	return LoginRecv(c, *body, *len);
}

/* Send a frontend message: type byte (0: none, the startup packet), body. */
static bool
LoginSendMsg(LoginConn *c, char type, const char *body, int len)
{
	StringInfoData m;
	uint32		n = pg_hton32((uint32) len + 4);
	bool		ok;

	initStringInfo(&m);
	if (type)
		appendStringInfoChar(&m, type);
	appendBinaryStringInfo(&m, (char *) &n, 4);
	appendBinaryStringInfo(&m, body, len);
	ok = LoginSend(c, m.data, m.len);
	kms_cleanse(m.data, m.len);
	pfree(m.data);
	return ok;
}

static void
PutInt32(StringInfo s, uint32 v)
{
	v = pg_hton32(v);
	appendBinaryStringInfo(s, (char *) &v, 4);
}

/* The 'M' field of an ErrorResponse. */
static const char *
ErrorField(const char *body, int len, char field)
{
	const char *p = body;

	while (p < body + len && *p)
	{
		char		f = *p++;

		if (f == field)
			return p;
		p += strlen(p) + 1;
	}
	return "unknown error";
}

/* SASL: the server offers SCRAM-SHA-256, or we stop here. */
static bool
ScramFirst(LoginConn *c, const char *mechs, int len)
{
	const char *p = mechs;
	bool		found = false;
	uint8		raw[SCRAM_NONCE_LEN];
	StringInfoData m;
	bool		ok;

	while (p < mechs + len && *p)
	{
		if (strcmp(p, "SCRAM-SHA-256") == 0)
			found = true;
		p += strlen(p) + 1;
	}
	if (!found)
		return LoginFail(c, "the server offered no SCRAM-SHA-256 authentication: pg_kms did not send the password");
	if (kms_random_bytes(raw, sizeof(raw)) != 0)
		elog(ERROR, "could not generate random bytes");
	c->client_nonce = B64(raw, sizeof(raw));
	c->client_first_bare = psprintf("n=,r=%s", c->client_nonce);

	initStringInfo(&m);
	appendStringInfoString(&m, "SCRAM-SHA-256");
	appendStringInfoChar(&m, '\0');
	PutInt32(&m, (uint32) (3 + strlen(c->client_first_bare)));
	appendStringInfo(&m, "n,,%s", c->client_first_bare);
	ok = LoginSendMsg(c, 'p', m.data, m.len);
	c->state = LOGIN_SENT_FIRST;
	return ok;
}

/* server-first-message "r=<nonce>,s=<salt>,i=<iterations>": send the proof */
static bool
ScramFinal(LoginConn *c, const char *server_first, const char *password)
{
	const char *r,
			   *s,
			   *i;
	char	   *nonce;
	char	   *salt_b64;
	char	   *salt;
	int			saltlen;
	long		iterations;
	char	   *end;
	char	   *prepped = NULL;
	const char *pw = password;
	pg_saslprep_rc rc;
	uint8		salted[SHA256_LEN];
	uint8		client_key[SHA256_LEN];
	uint8		stored_key[SHA256_LEN];
	uint8		client_sig[SHA256_LEN];
	uint8		proof[SHA256_LEN];
	char	   *final_no_proof;
	char	   *final;
	bool		ok;

	if (strncmp(server_first, "r=", 2) != 0 || (s = strstr(server_first, ",s=")) == NULL ||
		(i = strstr(s + 1, ",i=")) == NULL)
		return LoginFail(c, "the server sent an invalid SCRAM server-first-message");
	r = server_first + 2;
	nonce = pnstrdup(r, s - r);
	salt_b64 = pnstrdup(s + 3, i - (s + 3));
	errno = 0;
	iterations = strtol(i + 3, &end, 10);
	if (*end != '\0' || errno != 0 || iterations < 1 || iterations > SCRAM_MAX_ITERATIONS)
		return LoginFail(c, "the server asked for a SCRAM iteration count pg_kms does not accept (1 to %d)",
						 SCRAM_MAX_ITERATIONS);
	if (strlen(nonce) <= strlen(c->client_nonce) ||
		strncmp(nonce, c->client_nonce, strlen(c->client_nonce)) != 0)
		return LoginFail(c, "the server's SCRAM nonce does not extend the client's");
	salt = palloc(pg_b64_dec_len(strlen(salt_b64)) + 1);
	saltlen = pg_b64_decode(salt_b64, strlen(salt_b64), salt, pg_b64_dec_len(strlen(salt_b64)));
	if (saltlen <= 0)
		return LoginFail(c, "the server sent an invalid SCRAM salt");

	rc = pg_saslprep(password, &prepped);
	if (rc == SASLPREP_OOM)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errhidestmt(true), errmsg("out of memory")));
	if (rc == SASLPREP_SUCCESS)
		pw = prepped;
	if (PKCS5_PBKDF2_HMAC(pw, strlen(pw), (unsigned char *) salt, saltlen, (int) iterations,
						  EVP_sha256(), SHA256_LEN, salted) != 1)
		elog(ERROR, "could not compute PBKDF2-HMAC-SHA-256");
	if (prepped)
	{
		kms_cleanse(prepped, strlen(prepped));
		pfree(prepped);
	}

	final_no_proof = psprintf("c=biws,r=%s", nonce);	/* biws = base64("n,,") */
	c->auth_message = psprintf("%s,%s,%s", c->client_first_bare, server_first, final_no_proof);
	ScramHmac(salted, "Client Key", client_key);
	if (SHA256(client_key, SHA256_LEN, stored_key) == NULL)
		elog(ERROR, "could not compute SHA-256");
	ScramHmac(stored_key, c->auth_message, client_sig);
	for (int k = 0; k < SHA256_LEN; k++)
		proof[k] = client_key[k] ^ client_sig[k];
	ScramHmac(salted, "Server Key", c->server_key);
	final = psprintf("%s,p=%s", final_no_proof, B64(proof, SHA256_LEN));

	kms_cleanse(salted, sizeof(salted));
	kms_cleanse(client_key, sizeof(client_key));
	kms_cleanse(stored_key, sizeof(stored_key));
	kms_cleanse(client_sig, sizeof(client_sig));
	kms_cleanse(proof, sizeof(proof));

	ok = LoginSendMsg(c, 'p', final, strlen(final));
	kms_cleanse(final, strlen(final));
	c->state = LOGIN_SENT_FINAL;
	return ok;
}

/* server-final-message "v=<ServerSignature>": the server knows the verifier */
static bool
ScramVerify(LoginConn *c, const char *server_final)
{
	uint8		expected[SHA256_LEN];
	char		got[SHA256_LEN + 8];
	const char *v;
	const char *comma;
	int			vlen;
	int			n;

	if (strncmp(server_final, "e=", 2) == 0)
		return LoginFail(c, "the server refused the SCRAM proof (%s)", server_final + 2);
	if (strncmp(server_final, "v=", 2) != 0)
		return LoginFail(c, "the server sent an invalid SCRAM server-final-message");
	v = server_final + 2;
	comma = strchr(v, ',');
	vlen = comma ? (int) (comma - v) : (int) strlen(v);
	if (pg_b64_dec_len(vlen) > (int) sizeof(got))
		return LoginFail(c, "the server sent an invalid SCRAM server signature");
	n = pg_b64_decode(v, vlen, got, sizeof(got));
	ScramHmac(c->server_key, c->auth_message, expected);
	kms_cleanse(c->server_key, sizeof(c->server_key));
	if (n != SHA256_LEN || CRYPTO_memcmp(got, expected, SHA256_LEN) != 0)
		return LoginFail(c, "the server's SCRAM signature is wrong: it does not hold the role's verifier");
	c->state = LOGIN_VERIFIED;
	return true;
}

/* Connect the non-blocking socket to the target. */
static bool
LoginConnect(LoginConn *c, const KmsLoginTarget *t)
{
	struct sockaddr_storage ss;
	socklen_t	sslen;
	int			family;

	memset(&ss, 0, sizeof(ss));
	if (t->socket_dir)
	{
		struct sockaddr_un *un = (struct sockaddr_un *) &ss;

		family = AF_UNIX;
		un->sun_family = AF_UNIX;
		if (snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%d", t->socket_dir, t->port) >=
			(int) sizeof(un->sun_path))
			return LoginFail(c, "the socket path is too long");
		sslen = sizeof(*un);
	}
	else if (strchr(t->address, ':'))
	{
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;

		family = AF_INET6;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = pg_hton16((uint16) t->port);
		if (inet_pton(AF_INET6, t->address, &in6->sin6_addr) != 1)
			return LoginFail(c, "invalid address \"%s\"", t->address);
		sslen = sizeof(*in6);
	}
	else
	{
		struct sockaddr_in *in4 = (struct sockaddr_in *) &ss;

		family = AF_INET;
		in4->sin_family = AF_INET;
		in4->sin_port = pg_hton16((uint16) t->port);
		if (inet_pton(AF_INET, t->address, &in4->sin_addr) != 1)
			return LoginFail(c, "invalid address \"%s\"", t->address);
		sslen = sizeof(*in4);
	}
	c->sock = socket(family, SOCK_STREAM, 0);
	if (c->sock == PGINVALID_SOCKET)
		return LoginFail(c, "could not create a socket: %s", strerror(errno));
	if (!pg_set_noblock(c->sock))
		return LoginFail(c, "could not make the socket non-blocking: %s", strerror(errno));
	if (connect(c->sock, (struct sockaddr *) &ss, sslen) < 0)
	{
		int			so_err = 0;
		socklen_t	l = sizeof(so_err);

		if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
			return LoginFail(c, "could not connect: %s", strerror(errno));
		if (!LoginWait(c, WL_SOCKET_WRITEABLE))
			return false;
		if (getsockopt(c->sock, SOL_SOCKET, SO_ERROR, &so_err, &l) < 0)
			so_err = errno;
		if (so_err != 0)
			return LoginFail(c, "could not connect: %s", strerror(so_err));
	}
	return true;
}

/* The protocol conversation, once connected. */
static pg_noinline bool
LoginConverse(LoginConn *c, const char *user, const char *dbname, const char *password)
{
	StringInfoData m;

	initStringInfo(&m);
	PutInt32(&m, 196608);		/* protocol 3.0 */
	appendStringInfo(&m, "user%c%s%cdatabase%c%s%capplication_name%cpg_kms rotation%c%c",
					 0, user, 0, 0, dbname, 0, 0, 0, 0);
	if (!LoginSendMsg(c, 0, m.data, m.len))
		return false;

	for (;;)
	{
		char		type;
		char	   *body = NULL;
		int			len = 0;

		if (!LoginRecvMsg(c, &type, &body, &len))
			return false;
		switch (type)
		{
			case 'E':
				return LoginFail(c, "%s", ErrorField(body, len, 'M'));
			case 'N':
			case 'v':			/* NegotiateProtocolVersion */
			case 'S':
			case 'K':
			case 'T':
			case 'D':
			case 'C':
			case 'I':
				break;
			case 'R':
				{
					uint32		code;

					if (len < 4)
						return LoginFail(c, "the server sent an invalid authentication request");
					memcpy(&code, body, 4);
					code = pg_ntoh32(code);
					switch (code)
					{
						case AUTH_SASL:
							if (c->state != LOGIN_START)
								return LoginFail(c, "the server restarted SASL authentication");
							if (!ScramFirst(c, body + 4, len - 4))
								return false;
							break;
						case AUTH_SASL_CONTINUE:
							if (c->state != LOGIN_SENT_FIRST)
								return LoginFail(c, "the server sent SASL data out of order");
							if (!ScramFinal(c, body + 4, password))
								return false;
							break;
						case AUTH_SASL_FINAL:
							if (c->state != LOGIN_SENT_FINAL)
								return LoginFail(c, "the server sent SASL data out of order");
							if (!ScramVerify(c, body + 4))
								return false;
							break;
						case AUTH_OK:
							if (c->state != LOGIN_VERIFIED)
								return LoginFail(c, "the server let the login in without SCRAM-SHA-256 authentication "
												 "(a trust, peer or ident line in pg_hba.conf?): pg_kms proves credentials with SCRAM-SHA-256 only");
							c->state = LOGIN_AUTHED;
							break;
						case AUTH_CLEARTEXT:
							return LoginFail(c, "the server asked for the password in clear text (pg_hba.conf method \"password\"): "
											 "pg_kms logs in with SCRAM-SHA-256 only and did not send it");
						case AUTH_MD5:
							return LoginFail(c, "the server asked for MD5 password authentication: "
											 "pg_kms logs in with SCRAM-SHA-256 only and did not send the password");
						case AUTH_KRB5:
						case AUTH_SCM:
						case AUTH_GSS:
						case AUTH_GSS_CONT:
						case AUTH_SSPI:
						default:
							return LoginFail(c, "the server asked for authentication method %u: pg_kms logs in with SCRAM-SHA-256 only",
											 code);
					}
				}
				break;
			case 'Z':
				if (c->state == LOGIN_AUTHED)
				{
					/* the session works: run SELECT 1 */
					if (!LoginSendMsg(c, 'Q', "SELECT 1", 9))
						return false;
					c->state = LOGIN_QUERIED;
				}
				else if (c->state == LOGIN_QUERIED)
					return true;
				else
					return LoginFail(c, "the server sent ReadyForQuery before authentication");
				break;
			default:
				return LoginFail(c, "the server sent an unexpected message (type %d)", (int) (unsigned char) type);
		}
		pfree(body);
	}
}

bool
KmsScramLogin(const KmsLoginTarget *target, const char *user, const char *dbname,
			  const char *password, int timeout_ms, char **err)
{
	LoginConn	c;
	volatile bool ok = false;

	memset(&c, 0, sizeof(c));
	c.sock = PGINVALID_SOCKET;
	c.state = LOGIN_START;
	c.deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	if (password == NULL || password[0] == '\0')
	{
		if (err)
			*err = pstrdup("the password is empty: pg_kms never logs in without one");
		return false;
	}
	PG_TRY();
	{
		ok = LoginConnect(&c, target) && LoginConverse(&c, user, dbname, password);
		if (ok)
			(void) LoginSendMsg(&c, 'X', "", 0);	/* Terminate; errors do not matter */
	}
	PG_FINALLY();
	{
		if (c.sock != PGINVALID_SOCKET)
			closesocket(c.sock);
		kms_cleanse(c.server_key, sizeof(c.server_key));
	}
	PG_END_TRY();
	if (err)
		*err = ok ? NULL : (c.err ? c.err : pstrdup("login failed"));
	return ok;
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

/*
 * kms.rotation_login_selftest(host, port, username, password, dbname):
 * run the SCRAM login client against host (a socket directory or an IP
 * address) and return NULL on success or why it failed (superuser only;
 * for the tests, which also point it at fake servers).
 */
PG_FUNCTION_INFO_V1(kms_rotation_login_selftest);
Datum
kms_rotation_login_selftest(PG_FUNCTION_ARGS)
{
	char	   *host = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		port = PG_GETARG_INT32(1);
	char	   *user = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *password = text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *dbname = text_to_cstring(PG_GETARG_TEXT_PP(4));
	int32		timeout_ms = PG_GETARG_INT32(5);
	KmsLoginTarget t;
	char	   *err = NULL;
	bool		ok;

	if (!superuser())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: only a superuser may run the login self-test")));
	memset(&t, 0, sizeof(t));
	if (host[0] == '/')
		t.socket_dir = host;
	else
		t.address = host;
	t.port = port;
	ok = KmsScramLogin(&t, user, dbname, password, timeout_ms, &err);
	kms_cleanse(password, strlen(password));
	if (ok)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(err));
}
