/*-------------------------------------------------------------------------
 *
 * constraints.c
 *	  Grant constraints (CreateGrant's Constraints: EncryptionContextEquals,
 *	  EncryptionContextSubset): their validation, and the check of a call
 *	  that holds an operation only through grants with constraints.
 *
 *	  AWS API reference, GrantConstraints: "KMS applies the grant
 *	  constraints only to cryptographic operations that support an
 *	  encryption context ... in a grant constraint, the key in each
 *	  key-value pair is not case sensitive, but the value is case
 *	  sensitive."  CreateGrant, Constraints: "If a grant with a grant
 *	  constraint includes the CreateGrant operation, the constraint requires
 *	  that any grants created with the CreateGrant permission have an
 *	  equally strict or stricter encryption context constraint."
 *
 *	  The operations a role holds only through grants with constraints are
 *	  kept in the upper half of its cached allowed_ops
 *	  (KMS_CONSTRAINED_OPBIT), which grants nothing by itself: the fast path
 *	  of a role holding an operation otherwise is unchanged, and only a call
 *	  that needs a constrained grant reads the grants (KmsConstrainedAllows).
 *
 *	  May call: catalog/, common/, crypto/.
 *
 * Locking: none; catalog reads with the statement's snapshot.
 *
 * IDENTIFICATION
 *	  src/keystore/constraints.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "keystore/keystore.h"

#define KMS_CONSTRAINT_MAX_PAIRS	8
#define KMS_CONSTRAINT_MAX_VALUE	384

/* Is op one that grant constraints apply to? */
bool
KmsOpTakesConstraint(KmsOp op)
{
	switch (op)
	{
		case KMS_OP_ENCRYPT:
		case KMS_OP_DECRYPT:
		case KMS_OP_GENERATE_DATA_KEY:
		case KMS_OP_GENERATE_DATA_KEY_WITHOUT_PLAINTEXT:
		case KMS_OP_REENCRYPT_FROM:
		case KMS_OP_REENCRYPT_TO:
		case KMS_OP_CREATE_GRANT:
			return true;
		default:
			return false;
	}
}

/* The object member name of a constraint (jsonb), or NULL. */
static JsonbValue *
KmsConstraintMember(Jsonb *c, const char *name)
{
	return getKeyJsonValueFromContainer(&c->root, name, strlen(name), NULL);
}

/* Validate one member: an object of up to 8 string pairs. */
static void
KmsValidateConstraintPairs(JsonbValue *v, const char *name)
{
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "%s must be a JSON object of encryption context pairs", name);
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			n++;
		else if (tok == WJB_VALUE)
		{
			if (jv.type != jbvString)
				kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
						  "%s values must be strings", name);
			if (pg_mbstrlen_with_len(jv.val.string.val, jv.val.string.len) > KMS_CONSTRAINT_MAX_VALUE)
				kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
						  "%s values must be at most %d characters", name, KMS_CONSTRAINT_MAX_VALUE);
		}
	}
	if (n > KMS_CONSTRAINT_MAX_PAIRS)
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "%s can include up to %d encryption context pairs", name, KMS_CONSTRAINT_MAX_PAIRS);
}

/*
 * Validate CreateGrant's constraints: an object with EncryptionContextEquals
 * and/or EncryptionContextSubset.  Returns NULL for SQL NULL or {}.
 */
Jsonb *
KmsValidateConstraints(Jsonb *c)
{
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	int			n = 0;

	if (c == NULL)
		return NULL;
	if (!JB_ROOT_IS_OBJECT(c) || JB_ROOT_IS_SCALAR(c))
		kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
				  "constraints must be a JSON object with EncryptionContextEquals or EncryptionContextSubset");
	it = JsonbIteratorInit(&c->root);
	while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		if (!((jv.val.string.len == 23 && strncmp(jv.val.string.val, "EncryptionContextEquals", 23) == 0) ||
			  (jv.val.string.len == 23 && strncmp(jv.val.string.val, "EncryptionContextSubset", 23) == 0)))
			kms_error(ValidationException, KMS_SQLSTATE_VALIDATION,
					  "constraints member \"%s\" is not valid; use EncryptionContextEquals or EncryptionContextSubset",
					  pnstrdup(jv.val.string.val, jv.val.string.len));
		n++;
	}
	if (n == 0)
		return NULL;
	{
		JsonbValue *e = KmsConstraintMember(c, "EncryptionContextEquals");
		JsonbValue *s = KmsConstraintMember(c, "EncryptionContextSubset");

		if (e)
			KmsValidateConstraintPairs(e, "EncryptionContextEquals");
		if (s)
			KmsValidateConstraintPairs(s, "EncryptionContextSubset");
	}
	return c;
}

/* Does the request context hold key (case-insensitive) with value (exact)? */
static bool
KmsContextHas(const KmsContextPair *pairs, int npairs, const char *key, int keylen,
			  const char *val, int vallen)
{
	for (int i = 0; i < npairs; i++)
		if (pairs[i].keylen == (size_t) keylen &&
			pg_strncasecmp(pairs[i].key, key, keylen) == 0 &&
			pairs[i].vallen == (size_t) vallen &&
			memcmp(pairs[i].val, val, vallen) == 0)
			return true;
	return false;
}

/* Is every pair of member (a jsonb object) in the request context? */
static bool
KmsContextIncludes(const KmsContextPair *pairs, int npairs, JsonbValue *member, int *count)
{
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	char	   *k = NULL;
	int			klen = 0;

	*count = 0;
	it = JsonbIteratorInit(member->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			k = jv.val.string.val;
			klen = jv.val.string.len;
		}
		else if (tok == WJB_VALUE)
		{
			(*count)++;
			if (jv.type != jbvString ||
				!KmsContextHas(pairs, npairs, k, klen, jv.val.string.val, jv.val.string.len))
				return false;
		}
	}
	return true;
}

/* Does a request with this encryption context satisfy constraint c? */
bool
KmsConstraintSatisfied(Jsonb *c, const KmsContextPair *pairs, int npairs)
{
	JsonbValue *e = KmsConstraintMember(c, "EncryptionContextEquals");
	JsonbValue *s = KmsConstraintMember(c, "EncryptionContextSubset");
	int			n;

	if (e)
	{
		/* the same pairs, no more (keys are distinct in a jsonb object) */
		if (!KmsContextIncludes(pairs, npairs, e, &n) || n != npairs)
			return false;
	}
	if (s && !KmsContextIncludes(pairs, npairs, s, &n))
		return false;
	return true;
}

/* The pairs of a jsonb object member, as a request context. */
static int
KmsMemberPairs(JsonbValue *member, KmsContextPair **out)
{
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	int			n = 0;
	KmsContextPair *pairs = palloc0(sizeof(KmsContextPair) * (KMS_CONSTRAINT_MAX_PAIRS + 1));

	it = JsonbIteratorInit(member->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE && n <= KMS_CONSTRAINT_MAX_PAIRS)
	{
		if (tok == WJB_KEY)
		{
			pairs[n].key = jv.val.string.val;
			pairs[n].keylen = jv.val.string.len;
		}
		else if (tok == WJB_VALUE && jv.type == jbvString)
		{
			pairs[n].val = jv.val.string.val;
			pairs[n].vallen = jv.val.string.len;
			n++;
		}
	}
	*out = pairs;
	return n;
}

/*
 * Is constraint newc equally strict or stricter than oldc: does every
 * request newc allows satisfy oldc?  No constraint (NULL) allows anything.
 */
bool
KmsConstraintStricter(Jsonb *newc, Jsonb *oldc)
{
	JsonbValue *e;
	JsonbValue *s;
	KmsContextPair *pairs;
	int			n;

	if (newc == NULL)
		return false;
	e = KmsConstraintMember(newc, "EncryptionContextEquals");
	s = KmsConstraintMember(newc, "EncryptionContextSubset");
	if (e)
	{
		/* newc allows exactly one context: it must satisfy oldc (and s) */
		n = KmsMemberPairs(e, &pairs);
		return KmsConstraintSatisfied(newc, pairs, n) && KmsConstraintSatisfied(oldc, pairs, n);
	}
	/* newc allows every superset of s: only a Subset oldc can hold for all */
	if (KmsConstraintMember(oldc, "EncryptionContextEquals") != NULL)
		return false;
	n = KmsMemberPairs(s, &pairs);
	return KmsConstraintSatisfied(oldc, pairs, n);
}

/*
 * A role that holds op on key_id only through grants with constraints:
 * may it perform this request?  Either a request with an encryption
 * context (pairs), or, for CreateGrant, the constraints of the grant it
 * creates (newc).  Reads the grants; only reached off the fast path.
 */
typedef struct KmsGrantCons
{
	Oid			grantee;
	Jsonb	   *constraints;
} KmsGrantCons;

bool
KmsConstrainedAllows(const uint8 *key_id, KmsOp op, const KmsContextPair *pairs,
					 int npairs, Jsonb *newc, bool for_grant)
{
	KmsCatalogState st;
	Oid			t[2] = {UUIDOID, TEXTOID};
	Datum		v[2];
	Oid			user = GetUserId();
	uint64		n;
	MemoryContext caller = CurrentMemoryContext;
	List	   *cons = NIL;
	ListCell   *lc;

	if (!for_grant && npairs < 0)
		return false;
	v[0] = KmsUuidDatum(key_id);
	v[1] = CStringGetTextDatum(KmsOpNames[op]);
	KmsCatalogEnter(&st);
	n = KmsExec("SELECT grantee::oid, constraints FROM kms.grants "
				"WHERE key_id = $1 AND constraints IS NOT NULL AND $2 = ANY (operations)",
				2, t, v, NULL, true, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		bool		cnull;
		HeapTuple	tup = SPI_tuptable->vals[i];
		Oid			grantee = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		Datum		c = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &cnull);
		MemoryContext old;
		KmsGrantCons *gc;

		if (cnull || isnull)
			continue;
		old = MemoryContextSwitchTo(caller);
		gc = palloc(sizeof(KmsGrantCons));
		gc->grantee = grantee;
		gc->constraints = DatumGetJsonbPCopy(c);
		cons = lappend(cons, gc);
		MemoryContextSwitchTo(old);
	}
	KmsCatalogExit(&st);

	foreach(lc, cons)
	{
		KmsGrantCons *gc = lfirst(lc);

		if (!has_privs_of_role(user, gc->grantee))
			continue;
		if (for_grant ? KmsConstraintStricter(newc, gc->constraints) :
			KmsConstraintSatisfied(gc->constraints, pairs, npairs))
			return true;
	}
	return false;
}
