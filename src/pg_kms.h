/*-------------------------------------------------------------------------
 *
 * pg_kms.h
 *	  Declarations shared by the parts of pg_kms: settings, error names,
 *	  operations, and the C interfaces the layers call one another through
 *	  (SQL entry points -> secrets -> key store -> key cache -> providers ->
 *	  crypto).
 *
 * IDENTIFICATION
 *	  src/pg_kms.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_H
#define PG_KMS_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "crypto.h"

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
 * Settings (pg_kms.c)
 * ----------------------------------------------------------------
 */
extern char *kms_master_key_file;
extern char *kms_master_key_command;
extern char *kms_previous_master_key_file;
extern char *kms_provider_name;
extern char *kms_region;
extern char *kms_account_id;
extern int	kms_key_cache_size;
extern int	kms_key_cache_ttl;		/* seconds */
extern bool kms_protect_memory;

/* ----------------------------------------------------------------
 * Key store (keystore.c): the catalog of keys, versions, aliases, grants.
 * ----------------------------------------------------------------
 */

/*
 * What a backend caches about one key for the current user.  Valid until
 * the shared generation counter moves (cache.c).
 */
typedef struct KmsKeyInfo
{
	uint8		key_id[KMS_KEY_ID_LEN]; /* hash key: MUST BE FIRST */
	char		key_id_str[37];
	KmsKeyState state;
	KmsKeyUsage usage;
	char		key_spec[24];
	int32		current_version;
	int32		material_len;	/* bytes of each version's material */
	Oid			owner;
	Oid			checked_user;	/* role the bits below were computed for */
	uint32		allowed_ops;	/* KMS_OPBIT()s that role may perform */
	bool		may_manage;		/* owner, kms_admin or superuser */
	bool		valid;
} KmsKeyInfo;

/*
 * Resolve a key reference (key id, key ARN, alias name, alias ARN) and check
 * that the current user may perform op on it.  Raises NotFoundException
 * (only to roles that could know), AccessDeniedException otherwise.
 * Does not check the key state: see KmsCheckUsable().
 */
extern KmsKeyInfo *KmsResolveKey(const char *keyref, KmsOp op);

/* The same, from a key id out of a ciphertext blob; NULL if no such key. */
extern KmsKeyInfo *KmsLookupKeyById(const uint8 *key_id);

/* Privilege check on an already resolved key (errors out if denied). */
extern void KmsCheckAccess(KmsKeyInfo *key, KmsOp op, const char *keyref);

/* Raise DisabledException / KMSInvalidStateException unless Enabled. */
extern void KmsCheckUsable(KmsKeyInfo *key);

/* The key ARN of a key. */
extern char *KmsKeyArn(const char *key_id_str);

/* Account id and region used in ARNs. */
extern const char *KmsAccountId(void);

/* Fetch the wrapped material of (key, version) from the catalog (palloc'd). */
extern bytea *KmsFetchWrappedMaterial(const uint8 *key_id, int32 version);

/* Run catalog SQL as the extension owner with a safe search_path. */
typedef struct KmsCatalogState
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	bool		spi_connected;
} KmsCatalogState;

extern void KmsCatalogEnter(KmsCatalogState *st);
extern void KmsCatalogExit(KmsCatalogState *st);

/* OID of kms.key (its relcache invalidations announce pg_kms changes) */
extern Oid	KmsKeyRelationId(void);
extern Oid	KmsKeyRelationIdIfKnown(void);

/* Refuse writes on a standby / in a read-only transaction. */
extern void KmsCheckWritable(const char *operation);

/*
 * Create a key from C (the secrets store creates alias/pg_kms/secrets with
 * it).  Returns the new key id (text).  owner is the role that holds it.
 */
extern char *KmsCreateKeyInternal(const char *description, KmsKeyUsage usage,
								  const char *key_spec, Jsonb *tags, Oid owner);
extern void KmsCreateAliasInternal(const char *alias_name, const char *key_id_str);

/* True if the current user is a member of kms_admin (or superuser). */
extern bool KmsIsAdmin(void);

/* ----------------------------------------------------------------
 * Envelope encryption (kms_data.c), for SQL entry points and for the
 * secrets store alike.  The encryption context is given as pairs.
 * ----------------------------------------------------------------
 */
typedef struct KmsContext
{
	int			npairs;
	KmsContextPair *pairs;
} KmsContext;

/* Build a context from a jsonb object of strings (NULL -> empty). */
extern void KmsContextFromJsonb(Jsonb *jb, KmsContext *ctx);

/*
 * Encrypt data under key (already resolved, access and state checked by the
 * caller).  Returns a palloc'd blob.
 */
extern bytea *KmsEncryptData(KmsKeyInfo *key, const char *data, Size len,
							 KmsContext *ctx);

/*
 * Decrypt a blob.  expected_keyref, if not NULL, must name the key that
 * encrypted it (IncorrectKeyException).  op is the operation checked on the
 * blob's key (Decrypt, or ReEncryptFrom).  If check_access is false the
 * caller has already authorised the use (the secrets store's own key).
 * Returns the plaintext (palloc'd) and the key in *key_out (may be NULL).
 */
extern bytea *KmsDecryptData(bytea *blob, KmsContext *ctx,
							 const char *expected_keyref, KmsOp op,
							 bool check_access, KmsKeyInfo **key_out);

/* ----------------------------------------------------------------
 * Audit (audit.c, docs/audit.md).  One event per call: operation is the
 * AWS operation name, resource a key id, alias name or secret ARN/name,
 * version a key version (0: none) or a secret version id, outcome
 * "success" or the AWS exception name.  params, if not NULL, is a JSON
 * object of request parameters that are safe to show (built with
 * KmsAuditParamStr/Int, then KmsAuditParams): never a plaintext, a
 * password or key material.  The event is queued for kms.audit and
 * logged before the function returns; a rollback does not undo it.
 * ----------------------------------------------------------------
 */
extern void KmsAudit(const char *operation, const char *resource,
					 int32 version, const char *outcome);
extern void KmsAuditEx(const char *operation, const char *resource,
					   const char *version, const char *outcome,
					   const char *params);
extern void KmsAuditParamStr(StringInfo params, const char *name, const char *value);
extern void KmsAuditParamInt(StringInfo params, const char *name, int64 value);
extern char *KmsAuditParams(StringInfo params);

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

/* Helpers */

/* A text argument as a C string, NULL for SQL NULL. */
static inline char *
KmsArgText(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

struct Tuplestorestate;
extern struct Tuplestorestate *KmsStartSRF(FunctionCallInfo fcinfo, TupleDesc *tupdesc);
extern void KmsUuidToString(const uint8 *uuid, char *out37);
extern bool KmsUuidFromString(const char *s, uint8 *out16);
extern text *KmsJsonbGetText(Jsonb *jb, const char *key);

#endif							/* PG_KMS_H */
