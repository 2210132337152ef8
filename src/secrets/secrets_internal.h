/*-------------------------------------------------------------------------
 *
 * secrets_internal.h
 *	  The secrets store's internal interface, shared by the files of
 *	  src/secrets/ only (store.c: lookup, privileges, keys and value
 *	  encryption; versions.c: versions, labels and the C interface for
 *	  rotation, secrets.h; read_sql.c, list_sql.c and write_sql.c: the SQL
 *	  entry points).
 *	  Owns kms.secret, kms.secret_version, kms.secret_stage and
 *	  kms.secret_grant.  May call: envelope/, keystore/, cache/, audit/,
 *	  catalog/, common/, crypto/.
 *
 *	  The secrets store: AWS Secrets Manager in SQL.  CreateSecret,
 *	  GetSecretValue (get_secret, get_secret_value, batch_get_secret_value),
 *	  PutSecretValue, UpdateSecret, UpdateSecretVersionStage,
 *	  DescribeSecret, ListSecrets, ListSecretVersionIds, DeleteSecret,
 *	  RestoreSecret, TagResource, UntagResource, GetRandomPassword, and
 *	  per-secret grants.
 *
 *	  A value is encrypted here, in C, under the secret's KMS key with the
 *	  encryption context {"SecretARN": arn, "SecretVersionId": version id}
 *	  (envelope/'s envelope encryption) before any catalog statement runs;
 *	  only the ciphertext is ever a parameter of one.  Plaintext never
 *	  reaches a table, the WAL, a statement text or an error message, and is
 *	  wiped from this backend's memory once the result is built.
 *
 *	  Who may do what (docs/secrets.md):
 *	  - superuser, and the secret's owner (the creating role and its
 *		members): everything;
 *	  - members of kms_admin: create secrets; DescribeSecret, UpdateSecret
 *		(metadata), DeleteSecret, RestoreSecret, TagResource and grants on
 *		every secret, but not the value: they grant only those operations,
 *		never GetSecretValue, PutSecretValue, RotateSecret or
 *		UpdateSecretVersionStage (the owner does);
 *	  - a grantee: the operations of its grants.
 *	  A role that may do nothing with a secret gets AccessDeniedException
 *	  whether it exists or not; only kms_admin learns ResourceNotFound.
 *	  A secret under a customer key also needs Encrypt (writes) or Decrypt
 *	  (reads) on that key; the default key alias/pg_kms/secrets is usable
 *	  by whoever may use the secret, as AWS's aws/secretsmanager is.  Which
 *	  rule applies to a version is decided by the key its ciphertext names,
 *	  so a re-key (UpdateSecret with kms_key_id) neither locks readers out
 *	  of versions left under the old key nor opens them without its grant.
 *
 * Locking: every write locks the secret's row (SELECT ... FOR UPDATE)
 * before it reads or changes versions or labels, so writers of one secret
 * serialize and AWSCURRENT is on exactly one version.  Labels are rows keyed
 * by (secret, label), so a label cannot be on two versions.  Creating the
 * default key takes a transaction-level advisory lock.
 *
 * Caching: GetSecretValue keeps, per backend, the resolved version's
 * ciphertext and the secret's owner and grants (never plaintext), valid
 * while the shared generation (cache/cache.c) stays put and no transaction of
 * this backend that could have filled it aborted.  Every write calls
 * KmsInvalidateAtCommit(), so all backends drop their caches after commit.
 *
 * IDENTIFICATION
 *	  src/secrets/secrets_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_SECRETS_INTERNAL_H
#define PG_KMS_SECRETS_INTERNAL_H

#include "audit/audit.h"
#include "cache/cache.h"
#include "envelope/envelope.h"
#include "keystore/keystore.h"
#include "secrets/secrets.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "executor/spi.h"

#define SECRET_DEFAULT_ALIAS	"alias/pg_kms/secrets"
#define SECRET_MAX_VALUE		65536
#define SECRET_MAX_STAGES		20
#define SECRET_MAX_VERSIONS		100
#define SECRET_MAX_TAGS			50
#define SECRET_CACHE_KEYLEN		1200
#define SECRET_CACHE_MAX		1024

/* ----------------------------------------------------------------
 * Operations: grantable names, as AWS's IAM actions.
 * ----------------------------------------------------------------
 */
typedef enum SecretOp
{
	SEC_OP_GET_SECRET_VALUE = 0,
	SEC_OP_PUT_SECRET_VALUE,
	SEC_OP_DESCRIBE_SECRET,
	SEC_OP_UPDATE_SECRET,
	SEC_OP_UPDATE_SECRET_VERSION_STAGE,
	SEC_OP_DELETE_SECRET,
	SEC_OP_ROTATE_SECRET,
	SEC_OP_TAG_RESOURCE,
	SEC_NUM_GRANT_OPS,
	SEC_OP_MANAGE_GRANTS = SEC_NUM_GRANT_OPS	/* owner or kms_admin */
} SecretOp;

extern const char *const SecretOpNames[];

#define SEC_OPBIT(op)	((uint32) 1 << (op))
#define SEC_ADMIN_OPS	(SEC_OPBIT(SEC_OP_DESCRIBE_SECRET) | SEC_OPBIT(SEC_OP_UPDATE_SECRET) | \
						 SEC_OPBIT(SEC_OP_DELETE_SECRET) | SEC_OPBIT(SEC_OP_TAG_RESOURCE) | \
						 SEC_OPBIT(SEC_OP_MANAGE_GRANTS))
/*
 * Operations on a secret's value: reading it, writing it, having the worker
 * write it (RotateSecret), choosing which version is current.  Only the
 * owner or a superuser grants them, so kms_admin's management of a secret
 * never turns into use of it.
 */
#define SEC_VALUE_OPS	(SEC_OPBIT(SEC_OP_GET_SECRET_VALUE) | SEC_OPBIT(SEC_OP_PUT_SECRET_VALUE) | \
						 SEC_OPBIT(SEC_OP_ROTATE_SECRET) | \
						 SEC_OPBIT(SEC_OP_UPDATE_SECRET_VERSION_STAGE))

/* What we know about one secret; strings live in the caller's context. */
typedef struct SecretMeta
{
	uint8		id[16];
	char	   *arn;
	char	   *name;
	Oid			owner;
	bool		deleted;
	uint8		key_id[KMS_KEY_ID_LEN];
	bool		default_key;
	int			ngrants;
	Oid		   *grantees;
	uint32	   *grant_ops;
} SecretMeta;

/* One resolved version (for GetSecretValue); cached per backend. */
typedef struct SecretCacheEntry
{
	char		key[SECRET_CACHE_KEYLEN];	/* hash key: MUST BE FIRST */
	SecretMeta	meta;
	char		version_id[65];
	bool		binary;
	bytea	   *ciphertext;
	TimestampTz created;
	int			nstages;
	char	  **stages;
} SecretCacheEntry;

/* A value from the arguments; data points into the argument datum. */
typedef struct SecretValue
{
	bool		present;
	bool		binary;
	const char *data;
	Size		len;
} SecretValue;


/*
 * AWS's texts (the API model's) for the KMS failures and quotas of Secrets
 * Manager; what failed, in pg_kms's words, goes to the DETAIL:
 * secret_error(Name, SQLSTATE, TEXT, detail format, ...).
 */
#define SECRET_DECRYPT_TEXT	"Secrets Manager can't decrypt the protected secret text using the provided KMS key."
#define SECRET_ENCRYPT_TEXT	"Secrets Manager can't encrypt the protected secret text using the provided KMS key. " \
	"Check that the KMS key is available, enabled, and not in an invalid state."
#define SECRET_LIMIT_TEXT	"The request failed because it would exceed one of the Secrets Manager quotas."
#define secret_error(name, code, text, ...) \
	ereport(ERROR, (errcode(code), errhidestmt(true), \
					errmsg(#name ": " text), errdetail(__VA_ARGS__)))

/* One secret in a listing (list_sql.c; BatchGetSecretValue's filters too). */
typedef struct ListRow
{
	SecretMeta	meta;
	char	   *description;
	Jsonb	   *tags;
	Datum		values[12];
	bool		nulls[12];
} ListRow;

/* Shared between the files of this folder */

extern void SecretCacheCheck(void);
extern void SecretChanged(void);
extern bool LoadVersion(SecretMeta *m, const char *version_id, const char *stage,
			SecretCacheEntry *e, MemoryContext cxt);
extern char *ArgSecretId(FunctionCallInfo fcinfo, int n);
extern char *ArgTextOpt(FunctionCallInfo fcinfo, int n);
extern bool SecretCatalogHas12(void);
extern void SecretLengthError(const char *value, const char *member, size_t len,
							  int min, int max);
extern void SecretValidationError(const char *value, const char *member,
								  const char *constraint) pg_attribute_noreturn();
extern const char *StageOrderSql(const char *alias);
extern void ArgValue(FunctionCallInfo fcinfo, int nstring, int nbinary, SecretValue *v);
extern void ValidateName(const char *name);
extern void ValidateToken(const char *token, const char *what);
extern void ValidateStage(const char *stage);
extern void ValidateDescription(const char *description);
extern void ValidateType(const char *type);
extern void ValidateRotationToken(const char *token);
extern void SecretExists(const char *name, bool deleted) pg_attribute_noreturn();
extern void SecretAuditParam(StringInfo p, const char *name, const char *value);
extern char *StagesText(List *stages);
extern List *ArgStages(FunctionCallInfo fcinfo, int n);
extern Jsonb *NormalizeTags(Jsonb *jb);
extern void RandomBytes(uint8 *buf, size_t n);
extern void RandomUuid(uint8 *u);
extern void SecretRowsToSRF(FunctionCallInfo fcinfo, const uint8 *id,
							const char *sql, int ncols);
extern char *NewVersionId(void);
extern void RandomChars(char *out, int n, const char *set, int setlen);
extern char *NewSecretArn(const char *name);
extern Jsonb *JsonbFromString(StringInfo buf);
extern void JsonStr(StringInfo buf, bool *first, const char *key, const char *val);
extern void JsonDate(StringInfo buf, bool *first, const char *key, TimestampTz ts);
extern void JsonStrArray(StringInfo buf, bool *first, const char *key, char **items, int n);
extern char *SpiStr(uint64 row, int col, MemoryContext cxt);
extern Datum SpiDatum(uint64 row, int col, bool *isnull);
extern void SecretFromTuple(HeapTuple tup, TupleDesc td, SecretMeta *m, MemoryContext cxt);
extern bool SecretLoad(const char *ref, SecretMeta *m, MemoryContext cxt);
extern bool SecretLoadById(const uint8 *id, SecretMeta *m, bool for_update);
extern bool SecretAllowed(SecretMeta *m, SecretOp op);
extern bool SecretVisible(SecretMeta *m);
extern void SecretDenied(SecretOp op, const char *ref);
extern void SecretNotFound(SecretOp op, const char *ref);
extern void SecretNotDeleted(SecretMeta *m);
extern void SecretResolve(const char *ref, SecretOp op, SecretMeta *m);
extern void SecretLock(SecretMeta *m, const char *ref, SecretOp op);
extern void SecretForWrite(const char *ref, SecretOp op, const char *operation,
			   bool refuse_deleted, SecretMeta *m);
extern void SecretTouch(SecretMeta *m);
extern bool IsDefaultKeyRef(const char *ref);
extern void KeyForWrite(const char *ref, KmsKeyInfo *out);
extern void SecretKeyForWrite(SecretMeta *m, KmsKeyInfo *out);
extern bytea *SecretEncrypt(KmsKeyInfo *key, const char *arn, const char *version_id,
			  const char *data, Size len);
extern bytea *SecretDecrypt(bytea *blob, SecretMeta *m, const char *version_id);
extern void WipeBytea(bytea *b);
extern char *StageHolder(Datum sid, const char *stage);
extern void StageRemove(Datum sid, const char *stage);
extern void StageAttach(Datum sid, const char *stage, const char *version_id);
extern int VersionStages(Datum sid, const char *version_id, char ***out, MemoryContext cxt);
extern bytea *FetchVersion(SecretMeta *m, const char *version_id, bool *binary);
extern bool PutVersion(SecretMeta *m, KmsKeyInfo *key, SecretValue *val,
		   const char *version_id, List *stages);
extern Jsonb *WriteResult(SecretMeta *m, const char *version_id, bool with_stages);
extern bool VersionExists(Datum sid, const char *version_id);
extern List *ParseFilters(Jsonb *jb);
extern List *ListVisible(List *filters, bool include_deleted, bool desc, const char *order_col);
extern long ParseNextToken(const char *next_token);
extern int	ArgMaxResults(FunctionCallInfo fcinfo, int n, int max);

/*
 * A version without a value: RotateSecret makes the AWSPENDING version of a
 * custom strategy's rotation before it calls createSecret, as AWS does; its
 * ciphertext is empty until put_secret_value gives it its value.
 */
#define VersionHasNoValue(blob)	(VARSIZE_ANY_EXHDR(blob) == 0)

#endif							/* PG_KMS_SECRETS_INTERNAL_H */
