/*-------------------------------------------------------------------------
 *
 * steps.c
 *	  The rotation state in the catalog, the strategies (built-in and
 *	  custom), and the four steps: createSecret, setSecret, testSecret,
 *	  finishSecret.
 *
 * IDENTIFICATION
 *	  src/rotation/steps.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>
#include <fcntl.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_auth_members.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_shdepend.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "parser/parse_func.h"
#include "utils/json.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/catcache.h"
#include "utils/fmgroids.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/varlena.h"

#include "cache/cache.h"
#include "keystore/keystore.h"
#include "rotation/rotation.h"
#include "rotation/scram.h"
#include "secrets/secrets.h"

#include "rotation/rotation_internal.h"

/* ----------------------------------------------------------------
 * Catalog helpers
 * ----------------------------------------------------------------
 */
const char *const rotation_columns =
"SELECT secret_id, arn, name, rotation_strategy, rotation_rules, rotation_role::oid, "
"rotation_token, rotation_step, rotation_attempts, rotation_enabled, "
"rotation_function::oid, rotation_clone::oid FROM kms.secret ";

void
RowFromSpi(RotationRow *r)
{
	HeapTuple	tup = SPI_tuptable->vals[0];
	TupleDesc	td = SPI_tuptable->tupdesc;
	bool		isnull;
	Datum		d;

	memset(r, 0, sizeof(*r));
	memcpy(r->id, DatumGetUUIDP(SPI_getbinval(tup, td, 1, &isnull))->data, 16);
	r->arn = SPI_getvalue(tup, td, 2);
	r->name = SPI_getvalue(tup, td, 3);
	r->strategy = SPI_getvalue(tup, td, 4);
	d = SPI_getbinval(tup, td, 5, &isnull);
	r->rules = isnull ? NULL : DatumGetJsonbPCopy(d);
	d = SPI_getbinval(tup, td, 6, &isnull);
	r->role = isnull ? InvalidOid : DatumGetObjectId(d);
	r->token = SPI_getvalue(tup, td, 7);
	r->step = SPI_getvalue(tup, td, 8);
	r->attempts = DatumGetInt32(SPI_getbinval(tup, td, 9, &isnull));
	r->enabled = DatumGetBool(SPI_getbinval(tup, td, 10, &isnull));
	d = SPI_getbinval(tup, td, 11, &isnull);
	r->function = isnull ? InvalidOid : DatumGetObjectId(d);
	d = SPI_getbinval(tup, td, 12, &isnull);
	r->clone = isnull ? InvalidOid : DatumGetObjectId(d);
}

/* Strings from SPI_getvalue live in the SPI context: copy them out. */
void
RowCopyOut(RotationRow *r, MemoryContext cxt)
{
	CP(arn);
	CP(name);
	CP(strategy);
	CP(token);
	CP(step);
#undef CP
	if (r->rules)
	{
		Jsonb	   *j = MemoryContextAlloc(cxt, VARSIZE(r->rules));

		memcpy(j, r->rules, VARSIZE(r->rules));
		r->rules = j;
	}
}

/*
 * Between kms_pg_upgrade_prepare() and kms_pg_upgrade_finish() the pinned
 * functions are text (src/sql/058_custody.sql): no rotation reads them.
 */
bool
KmsRotationPreparedForUpgrade(void)
{
	Oid			nsp = get_namespace_oid("kms", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("secret", nsp) : InvalidOid;
	AttrNumber	att = OidIsValid(rel) ? get_attnum(rel, "rotation_function") : InvalidAttrNumber;

	return att != InvalidAttrNumber && get_atttype(rel, att) == TEXTOID;
}

void
RotationCheckNotPreparedForUpgrade(void)
{
	if (KmsRotationPreparedForUpgrade())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_REQUEST), errhidestmt(true),
				 errmsg("InvalidRequestException: pg_kms in this database is prepared for pg_upgrade; secret rotation waits until kms_pg_upgrade_finish()"),
				 errhint("After pg_upgrade, or if it was called by mistake, run SELECT kms_pg_upgrade_finish() as a superuser.")));
}

bool
LoadRow(const uint8 *id, RotationRow *r)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = KmsUuidDatum(id);
	MemoryContext cxt = CurrentMemoryContext;
	bool		found;

	RotationCheckNotPreparedForUpgrade();
	KmsCatalogEnter(&st);
	found = KmsExec(psprintf("%s WHERE secret_id = $1 FOR UPDATE", rotation_columns),
					1, &t, &v, NULL, false, SPI_OK_SELECT) == 1;
	if (found)
	{
		RowFromSpi(r);
		RowCopyOut(r, cxt);
	}
	KmsCatalogExit(&st);
	return found;
}

/* ----------------------------------------------------------------
 * Strategies
 * ----------------------------------------------------------------
 */
bool
IsBuiltin(const char *strategy)
{
	return strategy && (strcmp(strategy, STRATEGY_SINGLE) == 0 ||
						strcmp(strategy, STRATEGY_ALTERNATE) == 0);
}

/*
 * A custom strategy: a function (text, text, text) the current role may
 * execute.  Returns its OID, or InvalidOid if the name resolves to none.
 */
static Oid
LookupStrategyFunction(const char *name)
{
	Oid			fn = InvalidOid;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};

	{
		List	   *names = NIL;

		PG_TRY();
		{
			names = stringToQualifiedNameList(name);
		}
		PG_CATCH();
		{
			FlushErrorState();
			names = NIL;
		}
		PG_END_TRY();
		if (names != NIL)
			fn = LookupFuncName(names, 3, argtypes, true);
	}
	return fn;
}

/* to_regprocedure() returns NULL for unknown names: call it by hand. */
static Oid
ToRegprocedure(const char *name)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		d;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(name);
	fcinfo->args[0].isnull = false;
	d = to_regprocedure(fcinfo);
	return fcinfo->isnull ? InvalidOid : DatumGetObjectId(d);
}

/*
 * A custom strategy runs with the configurer's privileges, so it must be
 * code only the configurer (or a superuser) can change: its owner may
 * CREATE OR REPLACE it at any time.  The function is pinned by OID, so
 * shadowing it by name does nothing; its owner and the configurer's
 * EXECUTE are checked at configuration and before every step.
 */
void
CheckStrategyFunction(Oid fn, Oid configurer, const char *secret_name)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the rotation function of secret \"%s\" no longer exists", secret_name);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	if (owner != configurer && !superuser_arg(owner))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: rotation function %s is owned by role \"%s\", but it would run with the privileges of role \"%s\"",
						format_procedure_qualified(fn), GetUserNameFromId(owner, true) ? GetUserNameFromId(owner, true) : "?",
						GetUserNameFromId(configurer, false)),
				 errhint("A rotation function must be owned by the role that configures rotation or by a superuser.")));
	if (pg_proc_aclcheck(fn, configurer, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" may not execute rotation function %s",
						GetUserNameFromId(configurer, false), format_procedure(fn))));
}

char *
ValidateStrategy(const char *strategy, Oid *fn_out)
{
	Oid			fn;
	HeapTuple	tup;
	Form_pg_proc proc;
	bool		ok;

	*fn_out = InvalidOid;
	if (IsBuiltin(strategy))
		return pstrdup(strategy);
	if (strchr(strategy, '('))
		fn = ToRegprocedure(strategy);
	else
		fn = LookupStrategyFunction(strategy);
	/* a strategy that resolves to nothing is what an unknown Lambda ARN is to AWS */
	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_NOT_FOUND), errhidestmt(true),
				 errmsg("ResourceNotFoundException: rotation_strategy \"%s\" is neither %s, %s nor a function (secret_id text, client_request_token text, step text)",
						strategy, STRATEGY_SINGLE, STRATEGY_ALTERNATE)));
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fn);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	ok = proc->pronargs == 3 && proc->proargtypes.values[0] == TEXTOID &&
		proc->proargtypes.values[1] == TEXTOID && proc->proargtypes.values[2] == TEXTOID &&
		proc->prokind == PROKIND_FUNCTION && !proc->proretset;
	ReleaseSysCache(tup);
	if (!ok)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("InvalidParameterException: rotation function %s must be a function (secret_id text, client_request_token text, step text)",
						format_procedure(fn))));
	if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\" may not execute rotation function %s",
						GetUserNameFromId(GetUserId(), false), format_procedure(fn))));
	*fn_out = fn;
	return format_procedure_qualified(fn);
}

/* ----------------------------------------------------------------
 * The four steps
 * ----------------------------------------------------------------
 */
static char *
NewPassword(void)
{
	static const bool excl[4] = {false, false, false, false};

	return KmsRandomPassword(ROTATION_PW_LEN, ROTATION_EXCLUDE, excl, false, true);
}

/* A copy of jb with key set to the string value (a new jsonb). */
static Jsonb *
JsonbSetString(Jsonb *jb, const char *key, const char *value)
{
	JsonbValue	scalar;
	Datum		path;
	Datum		elem = CStringGetTextDatum(key);

	scalar.type = jbvString;
	scalar.val.string.val = (char *) value;
	scalar.val.string.len = strlen(value);
	path = PointerGetDatum(construct_array(&elem, 1, TEXTOID, -1, false, TYPALIGN_INT));
	return DatumGetJsonbP(DirectFunctionCall4(jsonb_set, JsonbPGetDatum(jb), path,
											  JsonbPGetDatum(JsonbValueToJsonb(&scalar)),
											  BoolGetDatum(true)));
}

static void
StepCreate(RotationRow *r)
{
	Creds		cur;
	Jsonb	   *jb;
	char	   *pw;
	char	   *json;

	if (KmsSecretVersionExists(r->id, r->token))
		return;					/* idempotent: done before */
	if (!LoadCreds(r->id, NULL, "AWSCURRENT", &cur))
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "createSecret: secret \"%s\" has no AWSCURRENT SecretString", r->name);
	/* fail early, before a version exists, if setSecret would be refused */
	{
		KmsLoginTarget t;
		bool		alternate = strcmp(r->strategy, STRATEGY_ALTERNATE) == 0;

		LocalTarget(&cur, &t);
		CheckRotationRoles(r, r->role, alternate, cur.username,
						   alternate ? AltUsername(cur.username) : cur.username);
	}
	pw = NewPassword();
	jb = JsonbSetString(cur.json, "password", pw);
	if (strcmp(r->strategy, STRATEGY_ALTERNATE) == 0)
		jb = JsonbSetString(jb, "username", AltUsername(cur.username));
	json = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	KmsSecretPutString(r->id, r->token, json, list_make1("AWSPENDING"));
	kms_cleanse(json, strlen(json));
	kms_cleanse(pw, strlen(pw));
	WipeCreds(&cur);
}

static void
StepSet(RotationRow *r)
{
	Creds		pending,
				cur,
				prev;
	char	   *err = NULL;
	bool		alternate = strcmp(r->strategy, STRATEGY_ALTERNATE) == 0;
	KmsLoginTarget t;

	if (!LoadCreds(r->id, r->token, "AWSPENDING", &pending))
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "setSecret: version \"%s\" of secret \"%s\" is not AWSPENDING", r->token, r->name);
	if (!LoadCreds(r->id, NULL, "AWSCURRENT", &cur))
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "setSecret: secret \"%s\" has no AWSCURRENT version", r->name);
	LocalTarget(&pending, &t);
	LocalTarget(&cur, &t);
	if (alternate && strcmp(AltUsername(cur.username), pending.username) != 0)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "setSecret: the AWSPENDING username must be the alternate of the AWSCURRENT one (\"%s\")",
				  AltUsername(cur.username));
	if (!alternate && strcmp(cur.username, pending.username) != 0)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "setSecret: the AWSCURRENT and AWSPENDING versions name different users");
	/* re-checked at every step: the configurer's privileges may be gone */
	CheckRotationRoles(r, r->role, alternate, cur.username, pending.username);

	if (TryLogin(&pending, NULL))
		return;					/* set before (a retry after commit) */

	if (alternate)
	{
		/* the credentials being rotated must be valid: no confused deputy */
		if (!TryLogin(&cur, &err))
			kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
					  "setSecret: unable to log into the database with the AWSCURRENT version: %s", err);
		if (strlen(pending.username) > strlen(cur.username))
			EnsureClone(r, r->role, cur.username, pending.username, pending.password);	/* app -> app_clone */
		else
			SetRolePassword(r->role, pending.username, pending.password);
	}
	else
	{
		bool		ok;

		ok = TryLogin(&cur, &err);
		/* AWSPREVIOUS of this user on this server, if it is (else skip it) */
		if (!ok && LoadCreds(r->id, NULL, "AWSPREVIOUS", &prev))
		{
			if (strcmp(prev.username, pending.username) == 0 && LocalTargetExt(&prev, &t, false))
				ok = TryLogin(&prev, NULL);
			WipeCreds(&prev);
		}
		if (!ok)
			kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
					  "setSecret: unable to log into the database with the previous, current, or pending secret: %s",
					  err ? err : "");
		SetRolePassword(r->role, pending.username, pending.password);
	}
	WipeCreds(&pending);
	WipeCreds(&cur);
}

static void
StepTest(RotationRow *r)
{
	Creds		pending;
	char	   *err = NULL;

	if (!LoadCreds(r->id, r->token, "AWSPENDING", &pending))
		kms_error(ResourceNotFoundException, KMS_SQLSTATE_NOT_FOUND,
				  "testSecret: version \"%s\" of secret \"%s\" is not AWSPENDING", r->token, r->name);
	if (!TryLogin(&pending, &err))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "testSecret: unable to log into the database with the AWSPENDING version: %s", err);
	WipeCreds(&pending);
}

static void
StepFinish(RotationRow *r)
{
	if (KmsSecretVersionHasStage(r->id, r->token, "AWSCURRENT"))
		return;
	KmsSecretMoveStage(r->id, "AWSCURRENT", r->token);
	if (KmsSecretStageHolder(r->id, "AWSPENDING") != NULL)
		KmsSecretMoveStage(r->id, "AWSPENDING", NULL);
	KmsSecretChanged(r->id);
}

/*
 * A custom strategy: fn(secret_id, token, step) as the configuring role.
 * The function is the one pinned at configuration (by OID: no name is
 * resolved again), its owner and the configurer's EXECUTE re-checked.
 * restricted: run as a security-restricted operation (no temporary
 * tables, no SET ROLE), for a step run in a user's session rather than
 * by the worker.
 */
static void
StepCustom(RotationRow *r, const char *step, bool restricted)
{
	Oid			fn = r->function;
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	volatile bool pushed = false;

	if (!OidIsValid(fn))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the rotation function %s of secret \"%s\" is not pinned (configured before pg_kms 1.1): configure it again with rotate_secret",
				  r->strategy, r->name);
	if (!OidIsValid(r->role) || !SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(r->role)))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the role that configured rotation of secret \"%s\" no longer exists", r->name);
	CheckStrategyFunction(fn, r->role, r->name);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(r->role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   (restricted ? SECURITY_RESTRICTED_OPERATION : 0));
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		FmgrInfo	flinfo;
		LOCAL_FCINFO(fcinfo, 3);

		if (!ActiveSnapshotSet())
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			pushed = true;
		}
		fmgr_info(fn, &flinfo);
		InitFunctionCallInfoData(*fcinfo, &flinfo, 3, DEFAULT_COLLATION_OID, NULL, NULL);
		fcinfo->args[0].value = CStringGetTextDatum(r->arn);
		fcinfo->args[0].isnull = false;
		fcinfo->args[1].value = CStringGetTextDatum(r->token);
		fcinfo->args[1].isnull = false;
		fcinfo->args[2].value = CStringGetTextDatum(step);
		fcinfo->args[2].isnull = false;
		(void) FunctionCallInvoke(fcinfo);	/* any result, NULL included */
		if (pushed)
			PopActiveSnapshot();
	}
	PG_FINALLY();
	{
		AtEOXact_GUC(true, save_nestlevel);
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	CommandCounterIncrement();
	/* what the function did (or did not) is its business, as a Lambda's is */
}

/*
 * RotateImmediately = false with a custom strategy: AWS "tests the
 * rotation configuration by running the testSecret step of the Lambda
 * rotation function", on an AWSPENDING version it then removes.  r holds
 * the new configuration and, as token, the id of that version.  It runs in
 * the caller's session, which may not be the configurer's: restricted, so
 * that the session's temporary objects cannot be planted on it.
 */
void
RunCustomTestStep(RotationRow *r)
{
	StepCustom(r, "testSecret", true);
}

static int
StepIndex(const char *step)
{
	for (int i = 0; i < ROTATION_NSTEPS; i++)
		if (step && strcmp(step, rotation_steps[i]) == 0)
			return i;
	return 0;
}

/* The rotation of r is complete: clear its state, schedule the next one. */
static void
RotationDone(RotationRow *r)
{
	Rules		rules;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz next = 0;
	Oid			t = TIMESTAMPTZOID;
	Datum		v;
	char		n = ' ';

	if (r->rules)
	{
		ParseRules(r->rules, &rules);
		next = NextRotation(&rules, now);
	}
	v = TimestampTzGetDatum(next);
	if (next == 0)
		n = 'n';
	KmsSecretUpdateRotation(r->id, "rotation_token = NULL, rotation_step = NULL, rotation_attempts = 0, "
					"rotation_next_attempt = NULL, rotation_last_error = NULL, "
					"rotation_last_error_date = NULL, last_rotated_date = pg_catalog.now(), "
					"next_rotation_date = $2",
					1, &t, &v, &n);
	KmsAudit("RotationSucceeded", r->arn, 0, "success");
}

/*
 * Run the next step of r's rotation (r locked).  Returns the step run, or
 * "done".  Errors propagate.
 */
const char *
RunStep(RotationRow *r)
{
	int			i = StepIndex(r->step);
	const char *step = rotation_steps[i];
	bool		custom = !IsBuiltin(r->strategy);

	/*
	 * A custom strategy gets AWS's contract: the AWSPENDING version named by
	 * the token exists (without a value) before createSecret is called, and
	 * all four steps are called whatever the function did; the checks are
	 * the function's, as they are a rotation Lambda's (AWS's templates
	 * check every step).  The built-in strategies run AWS's templates'
	 * prologue here: a token already AWSCURRENT means the work is done, and
	 * after createSecret the token must carry AWSPENDING.
	 */
	if (custom)
	{
		if (i == 0)
			(void) KmsSecretCreatePending(r->id, r->token, false);
	}
	else
	{
		if (KmsSecretVersionHasStage(r->id, r->token, "AWSCURRENT"))
		{
			RotationDone(r);
			return "done";
		}
		if (i > 0 && !KmsSecretVersionHasStage(r->id, r->token, "AWSPENDING"))
			kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
					  "%s: version \"%s\" of secret \"%s\" is not AWSPENDING", step, r->token, r->name);
	}

	if (custom)
		StepCustom(r, step, false);
	else if (i == 0)
		StepCreate(r);
	else if (i == 1)
		StepSet(r);
	else if (i == 2)
		StepTest(r);
	else
		StepFinish(r);

	if (i == ROTATION_NSTEPS - 1)
		RotationDone(r);
	else
	{
		Oid			t = TEXTOID;
		Datum		v = CStringGetTextDatum(rotation_steps[i + 1]);

		KmsSecretUpdateRotation(r->id, "rotation_step = $2, rotation_attempts = 0, rotation_next_attempt = NULL",
						1, &t, &v, NULL);
	}
	return step;
}

/* Record a failed step: attempts, back-off, the error for describe_secret. */
void
RecordFailure(RotationRow *r, const char *message)
{
	Oid			t[2] = {TEXTOID, INT4OID};
	Datum		v[2];
	char	   *msg = psprintf("%s: %s", rotation_steps[StepIndex(r->step)], message);
	int			backoff = r->attempts >= 12 ? MAX_BACKOFF_SECS : Min(1 << r->attempts, MAX_BACKOFF_SECS);

	v[0] = CStringGetTextDatum(msg);
	v[1] = Int32GetDatum(backoff);
	KmsSecretUpdateRotation(r->id, "rotation_attempts = rotation_attempts + 1, rotation_last_error = $2, "
					"rotation_last_error_date = pg_catalog.now(), "
					"rotation_next_attempt = pg_catalog.now() + pg_catalog.make_interval(secs => $3)",
					2, t, v, NULL);
	ereport(LOG,
			(errmsg("pg_kms: rotation of secret \"%s\" failed (attempt %d), retrying in %d s",
					r->name, r->attempts + 1, backoff),
			 errdetail("%s", msg)));
	KmsAudit("RotationFailed", r->arn, 0, "RotationFailed");
}
