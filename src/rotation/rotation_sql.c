/*-------------------------------------------------------------------------
 *
 * rotation_sql.c
 *	  The SQL functions of rotation: rotate_secret, cancel_rotate_secret,
 *	  kms_rotation_run_job, kms_rotation_next_due.
 *
 * IDENTIFICATION
 *	  src/rotation/rotation_sql.c
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
 * SQL: rotate_secret, cancel_rotate_secret
 * ----------------------------------------------------------------
 */
static void
ResultJson(StringInfo buf, KmsSecretInfo *info, const char *version_id)
{
	appendStringInfoString(buf, "{\"ARN\": ");
	escape_json(buf, info->arn);
	appendStringInfoString(buf, ", \"Name\": ");
	escape_json(buf, info->name);
	if (version_id)
	{
		appendStringInfoString(buf, ", \"VersionId\": ");
		escape_json(buf, version_id);
	}
	appendStringInfoChar(buf, '}');
}

static void
InvalidRequest(const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_INVALID_REQUEST), errhidestmt(true),
			 errmsg("InvalidRequestException: %s", msg),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * The username of the secret's AWSCURRENT, if the caller can read it (a
 * customer key may deny it Decrypt) and it is RDS-style JSON; else NULL,
 * and the worker finds out.  Read in a subtransaction, so that any error
 * is dropped cleanly; only the username leaves it.
 */
typedef struct UsernameRead
{
	const uint8 *id;
	MemoryContext cxt;
	char	   *user;
} UsernameRead;

static void
CurrentUsername1(void *arg)
{
	UsernameRead *u = (UsernameRead *) arg;
	char	   *value = KmsSecretGetString(u->id, NULL, "AWSCURRENT", NULL);

	if (value)
	{
		Creds		cur;

		ParseCreds(value, "AWSCURRENT", &cur);
		kms_cleanse(value, strlen(value));
		u->user = MemoryContextStrdup(u->cxt, cur.username);
		WipeCreds(&cur);
	}
}

static char *
CurrentUsername(const uint8 *id)
{
	UsernameRead u = {id, CurrentMemoryContext, NULL};
	ErrorData  *edata = KmsRunInSubTransaction(CurrentUsername1, NULL, &u);

	if (edata != NULL)
	{
		FreeErrorData(edata);
		return NULL;
	}
	return u.user;
}

/*
 * The role a rotation runs as, and the strategy function in *fn; errors
 * out if what the rotation will change is not that role's to change.
 */
static Oid
RotationConfigurer(const char *strategy, RotationRow *r, KmsSecretInfo *info,
				   Oid *fn)
{
	Oid			configurer;
	const char *eff_strategy;

	/*
	 * Who configures a strategy runs it; otherwise the first configurer
	 * stays.  What the rotation will change must be the configurer's to
	 * change: checked here for a clear error, and again at every step.
	 */
	configurer = strategy || !OidIsValid(r->role) ? GetUserId() : r->role;
	eff_strategy = strategy ? strategy : r->strategy;
	if (!strategy)
		*fn = r->function;
	if (!IsBuiltin(eff_strategy))
	{
		if (!OidIsValid(*fn))
			InvalidRequest(psprintf("the rotation function %s of secret \"%s\" is not pinned (configured before pg_kms 1.1)",
									eff_strategy, info->name),
						   "Give rotation_strategy again.");
		CheckStrategyFunction(*fn, configurer, info->name);
	}
	else
	{
		bool		alternate = strcmp(eff_strategy, STRATEGY_ALTERNATE) == 0;
		char	   *user = CurrentUsername(info->id);

		/* roles that do not exist yet are checked when the worker gets to them */
		if (user && OidIsValid(get_role_oid(user, true)))
			CheckRotationRoles(r, configurer, alternate, user,
							   alternate ? AltUsername(user) : user);
	}
	return configurer;
}

/* Record a secret's rotation configuration (and start it if immediately). */
static void
WriteRotationConfig(const uint8 *id, const char *strategy, Jsonb *norm,
					Rules *rules, Oid configurer, const char *token,
					bool immediately, Oid fn)
{
	Oid			t[7] = {TEXTOID, JSONBOID, OIDOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, OIDOID};
	Datum		v[7];
	char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	TimestampTz next = 0;

	v[0] = CStringGetTextDatum(strategy);
	if (norm)
		v[1] = JsonbPGetDatum(norm);
	else
		n[1] = 'n';
	v[2] = ObjectIdGetDatum(configurer);
	v[3] = CStringGetTextDatum(token);
	if (norm && !immediately)
		next = NextRotation(rules, GetCurrentTransactionStartTimestamp());
	v[4] = TimestampTzGetDatum(next);
	if (next == 0)
		n[4] = 'n';
	v[5] = BoolGetDatum(immediately);
	v[6] = ObjectIdGetDatum(fn);
	if (!OidIsValid(fn))
		n[6] = 'n';
	KmsSecretUpdateRotation(id,
					"rotation_enabled = true, rotation_strategy = $2, rotation_lambda_arn = $2, "
					"rotation_rules = $3, rotation_role = $4::regrole, "
					"rotation_function = $8::pg_catalog.regprocedure, "
					"rotation_token = CASE WHEN $7 THEN $5 END, "
					"rotation_step = CASE WHEN $7 THEN 'createSecret' END, "
					"rotation_started = CASE WHEN $7 THEN pg_catalog.now() END, "
					"rotation_attempts = 0, rotation_next_attempt = NULL, "
					"rotation_last_error = NULL, rotation_last_error_date = NULL, "
					"next_rotation_date = CASE WHEN $7 THEN next_rotation_date ELSE $6 END",
					7, t, v, n);
}

KMS_AUDITED_ENTRY(rotate_secret, "RotateSecret", 0)
{
	char	   *ref = KmsArgText(fcinfo, 0);
	char	   *strategy = KmsArgText(fcinfo, 1);
	Jsonb	   *rules_arg = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	bool		immediately = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	char	   *token = KmsArgText(fcinfo, 4);
	KmsSecretInfo info;
	RotationRow r;
	Rules		rules;
	Jsonb	   *norm = NULL;
	char	   *pending;
	char	   *current;
	StringInfoData buf;
	char		tok[37];
	Oid			fn = InvalidOid;
	Oid			configurer;

	if (ref == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION, "secret_id is required");
	/* a length outside the model's: AWS's framework error, as in secrets/ */
	if (token && (strlen(token) < 32 || strlen(token) > 64))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("ValidationException: 1 validation error detected: Value '%s' at 'clientRequestToken' failed to satisfy constraint: Member must have length %s",
						token, strlen(token) < 32 ? "greater than or equal to 32" : "less than or equal to 64")));
	/* arguments first: AWS validates them before looking at the secret */
	if (rules_arg)
		norm = ParseRules(rules_arg, &rules);
	if (strategy)
		strategy = ValidateStrategy(strategy, &fn);

	KmsSecretForRotation(ref, &info);
	if (info.deleted)
		InvalidRequest(psprintf("secret \"%s\" is marked for deletion", info.name),
					   "Restore it with restore_secret() first.");
	if (!LoadRow(info.id, &r))
		elog(ERROR, "secret vanished");

	/* an in-flight rotation: the same token is an idempotent retry */
	if (r.token)
	{
		if (token && strcmp(token, r.token) == 0)
		{
			initStringInfo(&buf);
			ResultJson(&buf, &info, r.token);
			PG_RETURN_JSONB_P(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
		}
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_REQUEST), errhidestmt(true),
				 errmsg("InvalidRequestException: A previous rotation isn't complete. That rotation will be reattempted."),
				 errdetail("The rotation of secret \"%s\" to version \"%s\" is at %s.",
						   info.name, r.token, r.step),
				 errhint("Wait for it, or cancel it with cancel_rotate_secret().")));
	}
	pending = KmsSecretStageHolder(info.id, "AWSPENDING");
	current = KmsSecretStageHolder(info.id, "AWSCURRENT");
	if (pending && (current == NULL || strcmp(pending, current) != 0))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_REQUEST), errhidestmt(true),
				 errmsg("InvalidRequestException: A previous rotation isn't complete. That rotation will be reattempted."),
				 errdetail("Secret \"%s\" has an AWSPENDING version (\"%s\") other than AWSCURRENT.",
						   info.name, pending),
				 errhint("Remove the label with update_secret_version_stage(secret, 'AWSPENDING', remove_from_version_id => ...).")));
	if (strategy == NULL && r.strategy == NULL)
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_INVALID_REQUEST), errhidestmt(true),
				 errmsg("InvalidRequestException: You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call."),
				 errdetail("Secret \"%s\" has no rotation strategy.", info.name),
				 errhint("Give rotation_strategy: postgres_single_user, postgres_alternating_users, or a function (secret_id text, client_request_token text, step text).")));
	if (norm == NULL && r.rules != NULL)
	{
		norm = r.rules;
		ParseRules(norm, &rules);
	}

	configurer = RotationConfigurer(strategy, &r, &info, &fn);

	if (token && KmsSecretVersionExists(info.id, token))
		InvalidRequest(psprintf("a version with client request token \"%s\" already exists", token), NULL);
	if (token == NULL)
	{
		uint8		u[16];

		if (!KmsRandomUuid(u))
			elog(ERROR, "could not generate random bytes");
		KmsUuidToString(u, tok);
		token = tok;
	}

	WriteRotationConfig(info.id, strategy ? strategy : r.strategy, norm,
						norm ? &rules : NULL, configurer, token, immediately, fn);

	/*
	 * A custom strategy, as AWS runs a rotation Lambda: the AWSPENDING
	 * version named by the token is made now, before createSecret runs.
	 * RotateImmediately = false: "Secrets Manager tests the rotation
	 * configuration by running the testSecret step of the Lambda rotation
	 * function.  The test creates an AWSPENDING version of the secret and
	 * then removes it" (RotateSecret API reference); a failing test fails
	 * the call, and nothing of it stays.
	 */
	if (!IsBuiltin(strategy ? strategy : r.strategy))
	{
		if (immediately)
			(void) KmsSecretCreatePending(info.id, token, false);
		else
		{
			RotationRow tr;

			if (!LoadRow(info.id, &tr))
				elog(ERROR, "secret vanished");
			tr.token = token;
			(void) KmsSecretCreatePending(info.id, token, true);
			RunCustomTestStep(&tr);
			KmsSecretDeleteVersion(info.id, token);
		}
	}
	KmsSecretChanged(info.id);
	KmsRotationWakeAtCommit();
	{
		StringInfoData p;

		initStringInfo(&p);
		if (strategy)
			KmsAuditParamStr(&p, "rotationLambdaARN", strategy);
		if (norm)
			KmsAuditParamStr(&p, "rotationRules", JsonbToCString(NULL, &norm->root, VARSIZE(norm)));
		KmsAuditParamStr(&p, "rotateImmediately", immediately ? "true" : "false");
		if (KmsArgText(fcinfo, 4))
			KmsAuditParamStr(&p, "clientRequestToken", token);
		KmsAuditEx("RotateSecret", info.arn, immediately ? token : NULL, "success", KmsAuditParams(&p));
	}

	initStringInfo(&buf);
	ResultJson(&buf, &info, immediately ? token : NULL);
	PG_RETURN_JSONB_P(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
}

KMS_AUDITED_ENTRY(cancel_rotate_secret, "CancelRotateSecret", 0)
{
	char	   *ref = KmsArgText(fcinfo, 0);
	KmsSecretInfo info;
	RotationRow r;
	char	   *pending;
	StringInfoData buf;

	if (ref == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION, "secret_id is required");
	KmsSecretForRotation(ref, &info);
	if (info.deleted)
		InvalidRequest(psprintf("secret \"%s\" is marked for deletion", info.name), NULL);
	if (!LoadRow(info.id, &r))
		elog(ERROR, "secret vanished");
	if (!r.enabled && r.token == NULL)
		InvalidRequest(psprintf("rotation is not enabled for secret \"%s\"", info.name), NULL);
	pending = KmsSecretStageHolder(info.id, "AWSPENDING");
	KmsSecretUpdateRotation(info.id, "rotation_enabled = false, next_rotation_date = NULL, "
					"rotation_token = NULL, rotation_step = NULL, rotation_attempts = 0, "
					"rotation_next_attempt = NULL",
					0, NULL, NULL, NULL);
	KmsSecretChanged(info.id);
	KmsAudit("CancelRotateSecret", info.arn, 0, "success");
	initStringInfo(&buf);
	ResultJson(&buf, &info, pending ? pending : r.token);
	PG_RETURN_JSONB_P(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
}

/*
 * kms_rotation_run_job(job): run one unit of a worker job in this
 * transaction (superuser only): 'secret rotation', 'key rotation' or
 * 'deletion'.  For tests and for servers without the worker.
 */
PG_FUNCTION_INFO_V1(kms_rotation_run_job);
Datum
kms_rotation_run_job(PG_FUNCTION_ARGS)
{
	char	   *job = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (!superuser())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: only a superuser may run worker jobs by hand")));
	KmsCheckWritable("kms_rotation_run_job");
	if (strcmp(job, "secret rotation") == 0)
		PG_RETURN_BOOL(KmsRotationSecretsJob());
	if (strcmp(job, "key rotation") == 0)
		PG_RETURN_BOOL(KmsRotationKeysJob());
	if (strcmp(job, "deletion") == 0)
		PG_RETURN_BOOL(KmsRotationDeletionJob());
	kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
			  "unknown job \"%s\": secret rotation, key rotation or deletion", job);
}

/* kms_rotation_next_due(): when the worker has rotation work next. */
PG_FUNCTION_INFO_V1(kms_rotation_next_due);
Datum
kms_rotation_next_due(PG_FUNCTION_ARGS)
{
	TimestampTz due;

	if (!KmsIsAdmin())
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: only kms_admin members may read the rotation schedule")));
	due = KmsRotationNextDue();
	if (due == 0)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(due);
}
