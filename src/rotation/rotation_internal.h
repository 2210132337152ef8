/*-------------------------------------------------------------------------
 *
 * rotation_internal.h
 *	  Rotation's internal interface, shared by the files of src/rotation/
 *	  only: schedule.c (settings, rotation rules), steps.c (rotation state,
 *	  strategies, the four steps), roles.c (credentials, and the roles a
 *	  rotation may change and log in as), jobs.c (the worker's jobs, step
 *	  timeout, test-only crash injection), rotation_sql.c (SQL functions),
 *	  scram.c (the SCRAM client).  May call: secrets/ (secrets.h only),
 *	  keystore/, cache/, audit/, catalog/, common/, crypto/.
 *
 *	  RotateSecret and CancelRotateSecret; the four-step rotation of a
 *	  secret (createSecret, setSecret, testSecret, finishSecret) as AWS's
 *	  rotation Lambdas run it; the built-in strategies for PostgreSQL role
 *	  credentials (postgres_single_user, postgres_alternating_users) and
 *	  custom SQL strategies; schedules (AutomaticallyAfterDays, rate(),
 *	  cron()); automatic key rotation; the end of deletion windows.
 *
 *	  Crash safety.  The state of a rotation is a handful of columns of
 *	  kms.secret: rotation_token (the client request token, which is the
 *	  AWSPENDING version id), rotation_step (the next step to run),
 *	  attempts, next attempt, last error.  The worker runs one step per
 *	  transaction: the step's effect (a new version, an ALTER ROLE, a label
 *	  move) and the advance of rotation_step commit together, so after a
 *	  crash the step that did not commit runs again.  Every step is
 *	  idempotent: createSecret does nothing if the version exists,
 *	  setSecret nothing if the pending credentials log in already,
 *	  finishSecret nothing if AWSCURRENT is on the token already.
 *
 *	  Passwords.  setSecret sends ALTER ROLE ... PASSWORD with a
 *	  SCRAM-SHA-256 verifier computed here (scram.c), never the plaintext.
 *	  Logins (setSecret's guard, testSecret) go to this server only: the
 *	  secret's host must be a local name (pg_kms.rotation_local_hosts, a
 *	  socket directory) and its port this server's, and the worker then
 *	  connects to itself with the SCRAM-SHA-256-only client of scram.c,
 *	  which never sends a password in clear text or as MD5.  Secret JSON
 *	  is parsed in C and errors about it never quote it.
 *
 *	  Who runs what.  The worker is a superuser, but acts for the role that
 *	  configured rotation (rotation_role).  Built-in strategies change only
 *	  plain login roles (no SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS,
 *	  nor a member of such a role) that the configurer may change by
 *	  PostgreSQL's own rules, checked by rotate_secret and before every
 *	  step, with the DDL run as the configurer; and only when the current
 *	  (or previous) credentials in the secret log in to this server (AWS's
 *	  guard against a confused deputy).  A custom strategy function is
 *	  pinned by OID, must be owned by the configurer or a superuser, and
 *	  runs with the configurer's privileges, as if it had called it.
 *	  Every step runs under pg_kms.rotation_step_timeout.
 *
 *	  Locking: a step locks its secret's row (FOR UPDATE SKIP LOCKED when
 *	  choosing work), so the worker and rotate_secret() serialize per
 *	  secret; keys are chosen the same way.
 *
 * IDENTIFICATION
 *	  src/rotation/rotation_internal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_KMS_ROTATION_INTERNAL_H
#define PG_KMS_ROTATION_INTERNAL_H

#include "access/xact.h"
#include "catalog/kms_catalog.h"
#include "rotation/rotation.h"
#include "secrets/secrets.h"
#include "utils/jsonb.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/pg_list.h"

#define STRATEGY_SINGLE		"postgres_single_user"
#define STRATEGY_ALTERNATE	"postgres_alternating_users"
#define CLONE_SUFFIX		"_clone"
/* the RDS rotation Lambdas' EXCLUDE_CHARACTERS default */
#define ROTATION_EXCLUDE	":/@\"'\\"
#define ROTATION_PW_LEN		32
#define MAX_BACKOFF_SECS	3600


/* ----------------------------------------------------------------
 * Schedules: rotation_rules
 * ----------------------------------------------------------------
 */
typedef enum RuleKind
{
	RULE_NONE = 0,
	RULE_DAYS,					/* AutomaticallyAfterDays */
	RULE_RATE_HOURS,
	RULE_RATE_DAYS,
	RULE_CRON
} RuleKind;

typedef struct CronSpec
{
	bool		minute[60];
	bool		hour[24];
	bool		dom[32];		/* 1..31 */
	bool		month[13];		/* 1..12 */
	bool		dow[8];			/* 1..7, SUN = 1 */
	bool		dom_any;		/* '?' in day-of-month: match day-of-week */
	bool		year[2200 - 1970];
	bool		year_any;
} CronSpec;

typedef struct Rules
{
	RuleKind	kind;
	int			n;				/* days or hours */
	int			duration;		/* hours; 0 = default */
	CronSpec	cron;
	char	   *expression;		/* as given */
} Rules;

/* The rotation columns of one secret. */
typedef struct RotationRow
{
	uint8		id[16];
	char	   *arn;
	char	   *name;
	char	   *strategy;
	Jsonb	   *rules;
	Oid			role;			/* the configurer */
	char	   *token;
	char	   *step;
	int			attempts;
	bool		enabled;
	Oid			function;		/* a custom strategy, pinned */
	Oid			clone;			/* the clone pg_kms made for this secret */
} RotationRow;

#define CP(f) do { if (r->f) r->f = MemoryContextStrdup(cxt, r->f); } while (0)

/* ----------------------------------------------------------------
 * Role credentials in a secret (AWS RDS-style JSON)
 * ----------------------------------------------------------------
 */
typedef struct Creds
{
	Jsonb	   *json;
	char	   *engine;
	char	   *host;
	char	   *port;
	char	   *username;
	char	   *password;
	char	   *dbname;
	char	   *ssl;
} Creds;

/* Shared between the files of this folder */
#define ROTATION_NSTEPS 4
extern const char *const rotation_steps[ROTATION_NSTEPS];	/* createSecret ... finishSecret */
extern const char *const rotation_columns;

extern Jsonb *ParseRules(Jsonb *jb, Rules *r);
extern TimestampTz NextRotation(Rules *r, TimestampTz base);
extern void RowFromSpi(RotationRow *r);
extern void RowCopyOut(RotationRow *r, MemoryContext cxt);
extern bool LoadRow(const uint8 *id, RotationRow *r);
extern bool IsBuiltin(const char *strategy);
extern void CheckStrategyFunction(Oid fn, Oid configurer, const char *secret_name);
extern char *ValidateStrategy(const char *strategy, Oid *fn_out);
extern const char *RunStep(RotationRow *r);
extern void RunCustomTestStep(RotationRow *r);
extern bool KmsRotationPreparedForUpgrade(void);
extern void RotationCheckNotPreparedForUpgrade(void);
extern void RecordFailure(RotationRow *r, const char *message);
extern void ParseCreds(const char *value, const char *what, Creds *c);
extern void WipeCreds(Creds *c);
extern bool LoadCreds(const uint8 *id, const char *version_id, const char *stage, Creds *c);
extern bool LocalTargetExt(Creds *c, KmsLoginTarget *t, bool raise);
extern void LocalTarget(Creds *c, KmsLoginTarget *t);
extern bool TryLogin(Creds *c, char **err);
extern char *AltUsername(const char *user);
extern void SetRolePassword(Oid configurer, const char *user, const char *password);
extern Oid EnsureClone(RotationRow *r, Oid configurer, const char *base, const char *clone,
			const char *password);
extern void CheckRotationRoles(RotationRow *r, Oid configurer, bool alternate, const char *cur_user,
				   const char *pending_user);
extern void KmsRotationWakeAtCommit(void);

#endif							/* PG_KMS_ROTATION_INTERNAL_H */
