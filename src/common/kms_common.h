/*-------------------------------------------------------------------------
 *
 * kms_common.h
 *	  The lowest PostgreSQL layer of pg_kms (src/common/): error names and
 *	  SQLSTATEs, operations, key states and usages with their names, UUID
 *	  and random-id helpers, ARNs, tags, fmgr helpers, protected memory and
 *	  the module's own state (loaded through shared_preload_libraries?).
 *
 *	  Owns: pg_kms.region, pg_kms.account_id (arn.c), pg_kms.protect_memory
 *	  (secure_mem.c).  May call: crypto/ only.  Every other part includes
 *	  this header; it includes nothing of pg_kms but crypto/crypto.h.  The
 *	  layer order is written in README.md ("Layout") and enforced by
 *	  make check-layers (scripts/check_layers.py).
 *
 * IDENTIFICATION
 *	  src/common/kms_common.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_COMMON_H
#define PG_KMS_COMMON_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "crypto/crypto.h"

#if PG_VERSION_NUM < 140000
#error "pg_kms requires PostgreSQL 14 or later"
#endif

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(x) EmitWarningsOnPlaceholders(x)
#endif

/* PostgreSQL 18 replaced pg_attribute_noreturn() with pg_noreturn */
#ifndef pg_attribute_noreturn
#define pg_attribute_noreturn()
#endif

/* ----------------------------------------------------------------
 * Error names.  Every error carries the AWS exception name a user would
 * look up, as the first word of the message, and a stable SQLSTATE
 * (docs/errors.md lists them).  Class "KM" is pg_kms's own.
 * ----------------------------------------------------------------
 */
#define KMS_SQLSTATE_DISABLED			MAKE_SQLSTATE('K','M','0','0','1')
#define KMS_SQLSTATE_INVALID_STATE		MAKE_SQLSTATE('K','M','0','0','2')
#define KMS_SQLSTATE_INVALID_CIPHERTEXT MAKE_SQLSTATE('K','M','0','0','3')
#define KMS_SQLSTATE_INCORRECT_KEY		MAKE_SQLSTATE('K','M','0','0','4')
#define KMS_SQLSTATE_INVALID_KEY_USAGE	MAKE_SQLSTATE('K','M','0','0','5')
#define KMS_SQLSTATE_INVALID_MAC		MAKE_SQLSTATE('K','M','0','0','6')
#define KMS_SQLSTATE_INVALID_GRANT_ID	MAKE_SQLSTATE('K','M','0','0','7')
#define KMS_SQLSTATE_INVALID_MARKER		MAKE_SQLSTATE('K','M','0','0','8')
#define KMS_SQLSTATE_KEY_UNAVAILABLE	MAKE_SQLSTATE('K','M','0','0','9')
#define KMS_SQLSTATE_INTERNAL			MAKE_SQLSTATE('K','M','0','1','0')
#define KMS_SQLSTATE_TAG				MAKE_SQLSTATE('K','M','0','1','1')
#define KMS_SQLSTATE_INVALID_ARN		MAKE_SQLSTATE('K','M','0','1','2')
#define KMS_SQLSTATE_INVALID_GRANT_TOKEN MAKE_SQLSTATE('K','M','0','1','3')
#define KMS_SQLSTATE_CONFLICT			MAKE_SQLSTATE('K','M','0','1','4')
#define KMS_SQLSTATE_DEPENDENCY_TIMEOUT MAKE_SQLSTATE('K','M','0','1','5')
#define KMS_SQLSTATE_DRY_RUN			MAKE_SQLSTATE('K','M','0','1','6')	/* DryRun=true would succeed */
/* Secrets Manager */
#define KMS_SQLSTATE_DECRYPTION_FAILURE MAKE_SQLSTATE('K','M','1','0','1')
#define KMS_SQLSTATE_ENCRYPTION_FAILURE MAKE_SQLSTATE('K','M','1','0','2')
#define KMS_SQLSTATE_INVALID_REQUEST	MAKE_SQLSTATE('K','M','1','0','3')
#define KMS_SQLSTATE_INVALID_NEXT_TOKEN MAKE_SQLSTATE('K','M','1','0','4')
#define KMS_SQLSTATE_PRECONDITION		MAKE_SQLSTATE('K','M','1','0','5')

/* Generic names map to PostgreSQL's own codes. */
#define KMS_SQLSTATE_ACCESS_DENIED		ERRCODE_INSUFFICIENT_PRIVILEGE	/* 42501 */
#define KMS_SQLSTATE_NOT_FOUND			ERRCODE_UNDEFINED_OBJECT		/* 42704 */
#define KMS_SQLSTATE_ALREADY_EXISTS		ERRCODE_DUPLICATE_OBJECT		/* 42710 */
#define KMS_SQLSTATE_VALIDATION			ERRCODE_INVALID_PARAMETER_VALUE /* 22023 */
#define KMS_SQLSTATE_INVALID_ALIAS_NAME ERRCODE_INVALID_NAME			/* 42602 */
#define KMS_SQLSTATE_LIMIT_EXCEEDED		ERRCODE_PROGRAM_LIMIT_EXCEEDED	/* 54000 */
#define KMS_SQLSTATE_UNSUPPORTED		ERRCODE_FEATURE_NOT_SUPPORTED	/* 0A000 */
#define KMS_SQLSTATE_READ_ONLY			ERRCODE_READ_ONLY_SQL_TRANSACTION /* 25006 */

/*
 * kms_error(Name, SQLSTATE, fmt, ...): raise ERROR whose message starts
 * with the AWS exception name, e.g. "NotFoundException: key ... ".
 * The statement is hidden from the log line, since it may hold a secret.
 */
#define kms_error(name, code, ...) \
	ereport(ERROR, (errcode(code), errhidestmt(true), \
					errmsg(#name ": " __VA_ARGS__)))
#define kms_error_detail(name, code, detail, ...) \
	ereport(ERROR, (errcode(code), errhidestmt(true), \
					errmsg(#name ": " __VA_ARGS__), errdetail("%s", detail)))

/* ----------------------------------------------------------------
 * KMS operations: bits for grants and privilege checks.  The names are
 * AWS's grant operation names (kms_create_grant takes them).
 * ----------------------------------------------------------------
 */
typedef enum KmsOp
{
	KMS_OP_DECRYPT = 0,
	KMS_OP_ENCRYPT,
	KMS_OP_GENERATE_DATA_KEY,
	KMS_OP_GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
	KMS_OP_REENCRYPT_FROM,
	KMS_OP_REENCRYPT_TO,
	KMS_OP_CREATE_GRANT,
	KMS_OP_RETIRE_GRANT,
	KMS_OP_DESCRIBE_KEY,
	KMS_OP_GENERATE_MAC,
	KMS_OP_VERIFY_MAC,
	KMS_NUM_GRANT_OPS,			/* operations below are not grantable */
	KMS_OP_MANAGE = KMS_NUM_GRANT_OPS	/* key management: owner or kms_admin */
} KmsOp;

#define KMS_OPBIT(op)		((uint32) 1 << (op))
#define KMS_ALL_GRANT_OPS	(KMS_OPBIT(KMS_NUM_GRANT_OPS) - 1)

extern const char *const KmsOpNames[];	/* indexed by KmsOp, incl. MANAGE */
extern int	KmsOpFromName(const char *name);	/* -1 if not a grant op */

/* Key states, as AWS names them (we use four of the eight). */
typedef enum KmsKeyState
{
	KMS_STATE_ENABLED = 0,
	KMS_STATE_DISABLED,
	KMS_STATE_PENDING_DELETION,
	KMS_STATE_DELETED			/* material destroyed; the row is a tombstone */
} KmsKeyState;

extern const char *const KmsKeyStateNames[];

typedef enum KmsKeyUsage
{
	KMS_USAGE_ENCRYPT_DECRYPT = 0,
	KMS_USAGE_GENERATE_VERIFY_MAC
} KmsKeyUsage;

/* ----------------------------------------------------------------
 * ARNs (arn.c): pg_kms.region and pg_kms.account_id
 * ----------------------------------------------------------------
 */
extern char *kms_region;
extern char *kms_account_id;

extern void KmsArnDefineGucs(void);
/* Account id and region used in ARNs. */
extern const char *KmsAccountId(void);
/* Where the database's stored account id comes from (catalog/, at _PG_init). */
extern void KmsSetAccountIdSource(const char *(*source) (void));
/* The ARN of a key, of an alias ("alias/..."). */
extern char *KmsKeyArn(const char *key_id_str);
extern char *KmsAliasArn(const char *alias_name);

/* ----------------------------------------------------------------
 * Protected memory (secure_mem.c): pg_kms.protect_memory
 * ----------------------------------------------------------------
 */
extern bool kms_protect_memory;

extern void KmsSecureMemDefineGucs(void);
/* Make this process non-dumpable once it holds key material. */
extern void KmsProtectProcessMemory(void);

/* ----------------------------------------------------------------
 * Module state (module.c)
 * ----------------------------------------------------------------
 */
/* Set by _PG_init when loaded through shared_preload_libraries. */
extern bool kms_preloaded;

/*
 * Error out unless pg_kms was loaded through shared_preload_libraries and
 * the caller's shared memory is attached.
 */
extern void KmsCheckPreloaded(bool attached);

/*
 * A background-worker job (worker/ runs them; audit/ and rotation/ define
 * theirs; _PG_init registers them).  run() does one unit of work inside a transaction the worker has
 * started (SPI connected, snapshot pushed) and returns true if more work is
 * due right away.  committed(), if set, runs after that transaction
 * committed; aborted(), if set, when it failed.  Jobs with primary_only
 * are skipped on a standby.
 */
typedef struct KmsWorkerJob
{
	const char *name;
	bool		(*run) (void);
	void		(*committed) (void);
	void		(*aborted) (void);
	bool		primary_only;
} KmsWorkerJob;

/*
 * Wake the background worker that runs requested work (rotation), through
 * the function the worker layer installs at _PG_init; a no-op before.
 */
extern void KmsSetWorkerWake(void (*wake) (void));
extern void KmsWakeWorker(void);

/* ----------------------------------------------------------------
 * Tags (tags.c), shared by keys and secrets
 * ----------------------------------------------------------------
 */
typedef struct KmsTagStyle
{
	const char *key_member;		/* "TagKey" (KMS) or "Key" (Secrets Manager) */
	const char *value_member;
	const char *format_error;	/* exception name for a malformed list */
	int			format_code;
	const char *tag_error;		/* ... for a bad key or value */
	int			tag_code;
	const char *limit_error;	/* ... for too many tags */
	int			limit_code;
	const char *resource;		/* "key" or "secret", for messages */
	int			max_tags;
} KmsTagStyle;

extern const KmsTagStyle KmsKeyTagStyle;
extern const KmsTagStyle KmsSecretTagStyle;

/* Validate tags (list or object form) and return them as a jsonb object. */
extern Jsonb *KmsParseTags(Jsonb *jb, const KmsTagStyle *style);

/* ----------------------------------------------------------------
 * Helpers (util.c)
 * ----------------------------------------------------------------
 */

/* A text argument as a C string, NULL for SQL NULL. */
static inline char *
KmsArgText(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* CreateGrant's operations (text[]) as C strings; see util.c. */
extern char **KmsArgOperations(FunctionCallInfo fcinfo, int n, bool secrets_api,
							   int *count);

struct Tuplestorestate;
extern struct Tuplestorestate *KmsStartSRF(FunctionCallInfo fcinfo, TupleDesc *tupdesc);
extern void KmsUuidToString(const uint8 *uuid, char *out37);
extern bool KmsUuidFromString(const char *s, uint8 *out16);
/* Hex: encode n bytes (out: 2n + 1); decode 2n digits (false if not hex). */
extern void KmsHexEncode(const uint8 *in, size_t n, char *out);
extern bool KmsHexDecode(const char *in, size_t n, uint8 *out, bool upper_ok);
/* A random version 4 UUID (false: no randomness); random bytes as hex. */
extern bool KmsRandomUuid(uint8 *out);
extern char *KmsRandomHex(int nbytes);
/* A key id (UUID) as a uuid Datum (palloc'd). */
extern Datum KmsUuidDatum(const uint8 *key_id);

#endif							/* PG_KMS_COMMON_H */
