/*-------------------------------------------------------------------------
 *
 * rotation.c
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
 *	  src/rotation/rotation.c
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

extern PGDLLEXPORT Datum get_random_password(PG_FUNCTION_ARGS);

#define STRATEGY_SINGLE		"postgres_single_user"
#define STRATEGY_ALTERNATE	"postgres_alternating_users"
#define CLONE_SUFFIX		"_clone"
/* the RDS rotation Lambdas' EXCLUDE_CHARACTERS default */
#define ROTATION_EXCLUDE	":/@\"'\\"
#define ROTATION_PW_LEN		32
#define MAX_BACKOFF_SECS	3600

char	   *kms_rotation_test_crash_at = NULL;
char	   *kms_rotation_local_hosts = NULL;
int			kms_rotation_login_timeout = 5;	/* s */
int			kms_rotation_step_timeout = 60; /* s */

static const char *const steps[] = {"createSecret", "setSecret", "testSecret", "finishSecret"};

/* ----------------------------------------------------------------
 * Settings
 * ----------------------------------------------------------------
 */
static bool
check_crash_at(char **newval, void **extra, GucSource source)
{
	char	   *v = *newval;
	const char *colon;
	size_t		len;

	if (v == NULL || v[0] == '\0' || strcmp(v, "none") == 0)
		return true;
	colon = strchr(v, ':');
	len = colon ? (size_t) (colon - v) : strlen(v);
	if (colon && strcmp(colon, ":before") != 0 && strcmp(colon, ":after") != 0)
	{
		GUC_check_errdetail("The suffix must be \":before\" or \":after\".");
		return false;
	}
	for (int i = 0; i < lengthof(steps); i++)
		if (strlen(steps[i]) == len && strncmp(v, steps[i], len) == 0)
			return true;
	GUC_check_errdetail("Valid values are none, createSecret, setSecret, testSecret, finishSecret, optionally followed by :before or :after.");
	return false;
}

/*
 * pg_kms.rotation_jobs: the rotation jobs can be paused without stopping
 * the audit drain; kms_rotation_run_job() still runs them by hand.
 */
bool		kms_rotation_jobs = true;

void
KmsRotationDefineGucs(void)
{
	DefineCustomBoolVariable("pg_kms.rotation_jobs",
							 "Runs due secret rotations, key rotations and deletions in the pg_kms rotation worker.",
							 "Off pauses them cluster-wide (the audit worker goes on); kms_rotation_run_job() still runs them by hand.",
							 &kms_rotation_jobs,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("pg_kms.rotation_test_crash_at",
							   "TEST ONLY: makes the pg_kms worker kill itself with SIGKILL at a rotation step.",
							   "none, or createSecret, setSecret, testSecret or finishSecret, optionally with "
							   ":before (before that step's transaction commits) or :after (just after; the default). "
							   "Fires once per rotation and step (a marker file in the data directory remembers it). "
							   "Never set it on a server that matters.",
							   &kms_rotation_test_crash_at,
							   "none",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   check_crash_at, NULL, NULL);
	DefineCustomStringVariable("pg_kms.rotation_local_hosts",
							   "Host names that designate this server in a rotated secret (besides its unix_socket_directories).",
							   "The built-in rotation strategies change roles of this cluster only, so a secret's host must "
							   "be one of these (and its port this server's port); the worker then logs in to this server "
							   "itself (over 127.0.0.1, ::1 for ::1, or the socket directory the secret names), never to "
							   "an address the secret chooses.",
							   &kms_rotation_local_hosts,
							   "localhost,127.0.0.1,::1",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT | GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("pg_kms.rotation_login_timeout",
							"How long a SCRAM login of the rotation worker may take.",
							NULL,
							&kms_rotation_login_timeout,
							5, 1, 600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_kms.rotation_step_timeout",
							"How long one step of a secret rotation may run before it is cancelled and recorded as failed.",
							"Applies to built-in and custom strategies alike; a timed-out step is retried with back-off.",
							&kms_rotation_step_timeout,
							60, 1, 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

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

static void RulesError(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

static void
RulesError(const char *fmt,...)
{
	char		buf[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
			 errmsg("InvalidParameterException: %s", buf)));
}

static const char *const month_names[] = {"", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"", "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static int
CronNumber(const char **p, const char *field, int lo, int hi, const char *const *names)
{
	const char *s = *p;
	long		v;
	char	   *end;

	if (names && isalpha((unsigned char) s[0]))
	{
		for (int i = lo; i <= hi; i++)
			if (pg_strncasecmp(s, names[i], 3) == 0 && !isalpha((unsigned char) s[3]))
			{
				*p = s + 3;
				return i;
			}
		RulesError("cron %s field: unknown name", field);
	}
	if (!isdigit((unsigned char) s[0]))
		RulesError("cron %s field: expected a number, \"*\" or a list", field);
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE || v < lo || v > hi)
		RulesError("cron %s field: %.*s is outside %d..%d", field, (int) Min(end - s, 20), s, lo, hi);
	*p = end;
	return (int) v;
}

/* One cron field into set[lo..hi]; returns true if it was '?'. */
static bool
CronField(const char *text, const char *field, bool *set, int lo, int hi,
		  const char *const *names, bool allow_q)
{
	const char *p = text;

	if (strcmp(text, "?") == 0)
	{
		if (!allow_q)
			RulesError("cron %s field: \"?\" is allowed only in day-of-month or day-of-week", field);
		for (int i = lo; i <= hi; i++)
			set[i] = true;
		return true;
	}
	if (strpbrk(text, "LW#"))
		RulesError("cron %s field: L, W and # are not supported by pg_kms", field);
	for (;;)
	{
		int			a,
					b,
					step = 1;

		if (*p == '*')
		{
			a = lo;
			b = hi;
			p++;
		}
		else
		{
			a = b = CronNumber(&p, field, lo, hi, names);
			if (*p == '-')
			{
				p++;
				b = CronNumber(&p, field, lo, hi, names);
				if (b < a)
					RulesError("cron %s field: range %d-%d is backwards", field, a, b);
			}
		}
		if (*p == '/')
		{
			const char *q = ++p;

			step = CronNumber(&p, field, 1, hi - lo + 1 > 1 ? hi - lo + 1 : 1, NULL);
			(void) q;
			if (a == b)
				b = hi;
		}
		for (int i = a; i <= b; i += step)
			set[i] = true;
		if (*p == '\0')
			break;
		if (*p != ',')
			RulesError("cron %s field: unexpected \"%c\"", field, *p);
		p++;
	}
	return false;
}

static void
ParseCron(const char *expr, CronSpec *c)
{
	char	   *copy = pstrdup(expr);
	char	   *fields[7];
	int			n = 0;
	char	   *tok;
	char	   *save = NULL;
	int			hours[24],
				nh = 0,
				nm = 0;
	bool		dow_q;

	for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
	{
		if (n == 7)
			break;
		fields[n++] = tok;
	}
	if (n != 6)
		RulesError("a cron expression has 6 fields: minutes hours day-of-month month day-of-week year");
	memset(c, 0, sizeof(*c));
	CronField(fields[0], "minutes", c->minute, 0, 59, NULL, false);
	CronField(fields[1], "hours", c->hour, 0, 23, NULL, false);
	c->dom_any = CronField(fields[2], "day-of-month", c->dom, 1, 31, NULL, true);
	CronField(fields[3], "month", c->month, 1, 12, month_names, false);
	dow_q = CronField(fields[4], "day-of-week", c->dow, 1, 7, dow_names, true);
	if (c->dom_any == dow_q)
		RulesError("a cron expression needs \"?\" in exactly one of day-of-month and day-of-week");
	if (strcmp(fields[5], "*") == 0)
		c->year_any = true;
	else
	{
		bool		years[2200];

		memset(years, 0, sizeof(years));
		CronField(fields[5], "year", years, 1970, 2199, NULL, false);
		for (int y = 1970; y < 2200; y++)
			c->year[y - 1970] = years[y];
	}
	/* Secrets Manager: at most every four hours, windows on the hour */
	for (int i = 0; i < 60; i++)
		nm += c->minute[i];
	if (nm != 1)
		RulesError("a rotation schedule can run at most every 4 hours: give one value for minutes");
	for (int i = 0; i < 24; i++)
		if (c->hour[i])
			hours[nh++] = i;
	for (int i = 1; i < nh; i++)
		if (hours[i] - hours[i - 1] < 4)
			RulesError("a rotation schedule can run at most every 4 hours: hours %d and %d are too close",
					   hours[i - 1], hours[i]);
	if (nh > 1 && hours[0] + 24 - hours[nh - 1] < 4)
		RulesError("a rotation schedule can run at most every 4 hours: hours %d and %d are too close",
				   hours[nh - 1], hours[0]);
}

/* Hours between consecutive windows of a cron schedule (min), for Duration. */
static int
CronMinGap(CronSpec *c)
{
	int			prev = -1,
				first = -1,
				gap = 24;

	for (int i = 0; i < 24; i++)
		if (c->hour[i])
		{
			if (prev >= 0 && i - prev < gap)
				gap = i - prev;
			if (first < 0)
				first = i;
			prev = i;
		}
	if (first >= 0 && prev != first && first + 24 - prev < gap)
		gap = first + 24 - prev;
	return gap;
}

/* The next time after t at which the cron schedule fires (0 if never). */
static TimestampTz
CronNext(CronSpec *c, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz day;
	int			minute = -1;

	for (int i = 0; i < 60; i++)
		if (c->minute[i] && minute < 0)
			minute = i;
	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return 0;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (tm2timestamp(&tm, 0, NULL, &day) != 0)
		return 0;
	for (int d = 0; d < 366 * 230; d++, day += USECS_PER_DAY)
	{
		int			wday;

		if (timestamp2tm(day, NULL, &tm, &fsec, NULL, NULL) != 0)
			return 0;
		if (tm.tm_year >= 2200)
			return 0;
		if (!c->year_any && (tm.tm_year < 1970 || !c->year[tm.tm_year - 1970]))
			continue;
		if (!c->month[tm.tm_mon])
			continue;
		wday = j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday)) + 1;	/* SUN = 1 */
		if (c->dom_any ? !c->dow[wday] : !c->dom[tm.tm_mday])
			continue;
		for (int h = 0; h < 24; h++)
		{
			TimestampTz cand;

			if (!c->hour[h])
				continue;
			cand = day + h * USECS_PER_HOUR + minute * USECS_PER_MINUTE;
			if (cand > t)
				return cand;
		}
	}
	return 0;
}

/*
 * A whole number in lo..hi from s (digits only, an optional sign), or
 * RulesError: never a bare overflow, never a silent wrap.
 */
static int
RulesNumber(const char *s, const char *name, long lo, long hi)
{
	char	   *end;
	long		n;

	errno = 0;
	if (!(isdigit((unsigned char) s[0]) || ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char) s[1]))))
		RulesError("%s must be an integer", name);
	n = strtol(s, &end, 10);
	if (*end != '\0')
		RulesError("%s must be an integer", name);
	if (errno == ERANGE || n < lo || n > hi)
		RulesError("%s must be %ld to %ld", name, lo, hi);
	return (int) n;
}

static int
JsonbIntField(JsonbValue *v, const char *name, long lo, long hi)
{
	if (v->type == jbvNumeric)
		return RulesNumber(DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric))),
						   name, lo, hi);
	if (v->type == jbvString)
		return RulesNumber(pnstrdup(v->val.string.val, v->val.string.len), name, lo, hi);
	RulesError("%s must be an integer", name);
}

static JsonbValue *
RuleMember(Jsonb *jb, const char *aws, const char *snake)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, aws, strlen(aws), NULL);

	if (v == NULL)
		v = getKeyJsonValueFromContainer(&jb->root, snake, strlen(snake), NULL);
	if (v && v->type == jbvNull)
		return NULL;
	return v;
}

/*
 * Validate rotation_rules as AWS does and parse them into r.  Returns the
 * normalized rules (AWS member names) as a jsonb.
 */
static Jsonb *
ParseRules(Jsonb *jb, Rules *r)
{
	JsonbValue *days,
			   *expr,
			   *dur;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	StringInfoData out;

	memset(r, 0, sizeof(*r));
	if (jb == NULL)
		return NULL;
	if (!JB_ROOT_IS_OBJECT(jb))
		RulesError("rotation_rules must be a JSON object such as {\"AutomaticallyAfterDays\": 30} or {\"ScheduleExpression\": \"rate(10 days)\"}");
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *k = pnstrdup(v.val.string.val, v.val.string.len);

			if (strcmp(k, "AutomaticallyAfterDays") != 0 && strcmp(k, "ScheduleExpression") != 0 &&
				strcmp(k, "Duration") != 0 && strcmp(k, "automatically_after_days") != 0 &&
				strcmp(k, "schedule_expression") != 0 && strcmp(k, "duration") != 0)
				RulesError("unknown member \"%s\" in rotation_rules (AutomaticallyAfterDays, ScheduleExpression, Duration)", k);
		}
	}
	days = RuleMember(jb, "AutomaticallyAfterDays", "automatically_after_days");
	expr = RuleMember(jb, "ScheduleExpression", "schedule_expression");
	dur = RuleMember(jb, "Duration", "duration");

	if (days && expr)
		RulesError("give either AutomaticallyAfterDays or ScheduleExpression, not both");
	if (!days && !expr)
		RulesError("rotation_rules needs AutomaticallyAfterDays or ScheduleExpression");
	if (days)
	{
		r->kind = RULE_DAYS;
		r->n = JsonbIntField(days, "AutomaticallyAfterDays", 1, 1000);
	}
	else
	{
		char	   *e;
		char	   *unit;
		char	   *numtext;
		long		n;

		if (expr->type != jbvString)
			RulesError("ScheduleExpression must be a string");
		e = pnstrdup(expr->val.string.val, expr->val.string.len);
		r->expression = e;
		if (strncmp(e, "rate(", 5) == 0)
		{
			/* rate(<digits> <unit>): no sscanf, whose %d wraps silently */
			const char *p = e + 5;
			const char *q;
			char	   *end;

			for (q = p; isdigit((unsigned char) *q); q++)
				;
			if (q == p || *q != ' ' || e[strlen(e) - 1] != ')')
				RulesError("ScheduleExpression \"%s\" is not valid: use rate(N hours) or rate(N days)", e);
			numtext = pnstrdup(p, q - p);
			unit = pnstrdup(q + 1, strlen(q + 1) - 1);
			errno = 0;
			n = strtol(numtext, &end, 10);
			if (errno == ERANGE || n > 999 * 24)
				n = 999 * 24 + 1;	/* too large for any unit: the range checks below say so */
			if (strcmp(unit, "hours") == 0 || strcmp(unit, "hour") == 0)
			{
				if (n < 4)
					RulesError("ScheduleExpression \"%s\": rotation can run at most every 4 hours", e);
				if (n > 999 * 24)
					RulesError("ScheduleExpression \"%s\": the longest interval is 999 days", e);
				r->kind = RULE_RATE_HOURS;
			}
			else if (strcmp(unit, "days") == 0 || strcmp(unit, "day") == 0)
			{
				if (n < 1 || n > 999)
					RulesError("ScheduleExpression \"%s\": the number of days must be 1 to 999", e);
				r->kind = RULE_RATE_DAYS;
			}
			else
				RulesError("ScheduleExpression \"%s\": the unit must be hours or days", e);
			r->n = (int) n;
		}
		else if (strncmp(e, "cron(", 5) == 0 && e[strlen(e) - 1] == ')')
		{
			char	   *inner = pnstrdup(e + 5, strlen(e) - 6);

			ParseCron(inner, &r->cron);
			r->kind = RULE_CRON;
			if (CronNext(&r->cron, GetCurrentTimestamp()) == 0)
				RulesError("ScheduleExpression \"%s\" never fires", e);
		}
		else
			RulesError("ScheduleExpression \"%s\" is not valid: use rate(...) or cron(...)", e);
	}
	if (dur)
	{
		char	   *d;
		char	   *end;
		long		h;
		int			limit;

		if (dur->type != jbvString)
			RulesError("Duration must be a string such as \"3h\"");
		d = pnstrdup(dur->val.string.val, dur->val.string.len);
		h = strtol(d, &end, 10);
		if (!isdigit((unsigned char) d[0]) || strcmp(end, "h") != 0 || strlen(d) > 3)
			RulesError("Duration \"%s\" is not valid: use \"<hours>h\", such as \"3h\"", d);
		if (h < 1 || h > 24)
			RulesError("Duration must be 1h to 24h");
		if (r->kind == RULE_DAYS)
			RulesError("Duration goes with ScheduleExpression, not with AutomaticallyAfterDays");
		limit = r->kind == RULE_RATE_HOURS ? Min(r->n, 24) :
			r->kind == RULE_CRON ? CronMinGap(&r->cron) : 24;
		if (h > limit)
			RulesError("Duration %ldh is longer than the interval between rotation windows", h);
		if (r->kind == RULE_CRON)
			for (int i = 0; i < 24; i++)
				if (r->cron.hour[i] && i + h > 24)
					RulesError("a rotation window must not cross into the next UTC day: %02d:00 + %ldh", i, h);
		r->duration = (int) h;
	}

	initStringInfo(&out);
	if (r->kind == RULE_DAYS)
		appendStringInfo(&out, "{\"AutomaticallyAfterDays\": %d}", r->n);
	else
	{
		appendStringInfoString(&out, "{\"ScheduleExpression\": ");
		escape_json(&out, r->expression);
		if (r->duration)
			appendStringInfo(&out, ", \"Duration\": \"%dh\"", r->duration);
		appendStringInfoChar(&out, '}');
	}
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/* NextRotationDate: the next window start after base (UTC). */
static TimestampTz
NextRotation(Rules *r, TimestampTz base)
{
	switch (r->kind)
	{
		case RULE_DAYS:
			return base + (int64) r->n * USECS_PER_DAY;
		case RULE_RATE_HOURS:
			return base - base % USECS_PER_HOUR + (int64) r->n * USECS_PER_HOUR;
		case RULE_RATE_DAYS:
			return base - base % USECS_PER_DAY + (int64) r->n * USECS_PER_DAY;
		case RULE_CRON:
			return CronNext(&r->cron, base);
		default:
			return 0;
	}
}

/* ----------------------------------------------------------------
 * Catalog helpers
 * ----------------------------------------------------------------
 */
static Datum
IdDatum(const uint8 *id)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	memcpy(u->data, id, 16);
	return UUIDPGetDatum(u);
}

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

static const char *const rotation_columns =
"SELECT secret_id, arn, name, rotation_strategy, rotation_rules, rotation_role::oid, "
"rotation_token, rotation_step, rotation_attempts, rotation_enabled, "
"rotation_function::oid, rotation_clone::oid FROM kms.secret ";

static void
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
static void
RowCopyOut(RotationRow *r, MemoryContext cxt)
{
#define CP(f) do { if (r->f) r->f = MemoryContextStrdup(cxt, r->f); } while (0)
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

static bool
LoadRow(const uint8 *id, RotationRow *r)
{
	KmsCatalogState st;
	Oid			t = UUIDOID;
	Datum		v = IdDatum(id);
	MemoryContext cxt = CurrentMemoryContext;
	bool		found;

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

/* Run an UPDATE of kms.secret for one secret: "SET <set> WHERE id = $1". */
static void
UpdateSecretRow(const uint8 *id, const char *set, int nargs, Oid *types, Datum *values,
				const char *nulls)
{
	KmsCatalogState st;
	Oid			t[8];
	Datum		v[8];
	char		n[9];

	t[0] = UUIDOID;
	v[0] = IdDatum(id);
	n[0] = ' ';
	for (int i = 0; i < nargs; i++)
	{
		t[i + 1] = types[i];
		v[i + 1] = values[i];
		n[i + 1] = nulls ? nulls[i] : ' ';
	}
	n[nargs + 1] = '\0';
	KmsCatalogEnter(&st);
	KmsExec(psprintf("UPDATE kms.secret SET %s WHERE secret_id = $1", set),
			nargs + 1, t, v, n, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
}

/* ----------------------------------------------------------------
 * Strategies
 * ----------------------------------------------------------------
 */
static bool
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
static void
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

static char *
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
	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_VALIDATION), errhidestmt(true),
				 errmsg("InvalidParameterException: rotation_strategy \"%s\" is neither %s, %s nor a function (secret_id text, client_request_token text, step text)",
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

static char *
JsonField(Jsonb *jb, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);

	if (v == NULL)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	if (v->type == jbvBool)
		return pstrdup(v->val.boolean ? "true" : "false");
	return NULL;
}

/* Parse a version's JSON without ever quoting it in an error. */
static void
ParseCreds(const char *value, const char *what, Creds *c)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *volatile jb = NULL;

	memset(c, 0, sizeof(*c));
	PG_TRY();
	{
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(value)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		jb = NULL;
	}
	PG_END_TRY();
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the %s version of the secret is not a JSON object with engine, host, username and password", what);
	c->json = jb;
	c->engine = JsonField(jb, "engine");
	c->host = JsonField(jb, "host");
	c->port = JsonField(jb, "port");
	c->username = JsonField(jb, "username");
	c->password = JsonField(jb, "password");
	c->dbname = JsonField(jb, "dbname");
	c->ssl = JsonField(jb, "ssl");
	if (c->engine == NULL || (strcmp(c->engine, "postgres") != 0 &&
							  strcmp(c->engine, "aurora-postgresql") != 0))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the %s version of the secret needs \"engine\": \"postgres\"", what);
	if (c->host == NULL || c->username == NULL || c->password == NULL)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the %s version of the secret needs host, username and password", what);
	if (c->port == NULL)
		c->port = "5432";
	if (c->dbname == NULL)
		c->dbname = "postgres";
}

static void
WipeCreds(Creds *c)
{
	if (c->password)
		kms_cleanse(c->password, strlen(c->password));
}

/* Load a version's credentials, or false if there is no such version. */
static bool
LoadCreds(const uint8 *id, const char *version_id, const char *stage, Creds *c)
{
	char	   *value = KmsSecretGetString(id, version_id, stage, NULL);

	if (value == NULL)
		return false;
	ParseCreds(value, stage ? stage : "pending", c);
	kms_cleanse(value, strlen(value));
	return true;
}

/*
 * The secret's host and port must designate this server: a name listed in
 * pg_kms.rotation_local_hosts or one of unix_socket_directories, and this
 * server's port.  The login then goes to this server itself (loopback or
 * the named socket directory), never to an address the secret chooses, so
 * a secret cannot make the worker vouch for a role of this cluster with a
 * password some other server accepts, nor send anything elsewhere.
 */
static bool
LocalTargetExt(Creds *c, KmsLoginTarget *t, bool raise)
{
	char	   *end;
	long		port;
	char	   *list;
	List	   *names = NIL;
	ListCell   *lc;
	char	   *host = pstrdup(c->host);

	memset(t, 0, sizeof(*t));
	canonicalize_path(host);
	list = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
	if (SplitDirectoriesString(list, ',', &names))
		foreach(lc, names)
		{
			char	   *dir = (char *) lfirst(lc);

			if (dir[0] == '/' && strcmp(dir, host) == 0)
				t->socket_dir = pstrdup(dir);
		}
	if (t->socket_dir == NULL)
	{
		list = pstrdup(kms_rotation_local_hosts ? kms_rotation_local_hosts : "");
		names = NIL;
		if (SplitGUCList(list, ',', &names))
			foreach(lc, names)
			{
				if (pg_strcasecmp((char *) lfirst(lc), c->host) == 0)
					t->address = strcmp(c->host, "::1") == 0 ? "::1" : "127.0.0.1";
			}
	}
	if (t->socket_dir == NULL && t->address == NULL && !raise)
		return false;
	if (t->socket_dir == NULL && t->address == NULL)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the secret's host \"%s\" is not this server (pg_kms.rotation_local_hosts, unix_socket_directories): pg_kms rotates roles of this cluster only",
				  c->host);
	errno = 0;
	port = strtol(c->port, &end, 10);
	if ((*end != '\0' || errno != 0 || port != PostPortNumber) && !raise)
		return false;
	if (*end != '\0' || errno != 0 || port != PostPortNumber)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the secret's port %s is not this server's (%d): pg_kms rotates roles of this cluster only",
				  c->port, PostPortNumber);
	t->port = PostPortNumber;
	return true;
}

static void
LocalTarget(Creds *c, KmsLoginTarget *t)
{
	(void) LocalTargetExt(c, t, true);
}

/*
 * Log in to this server as the credentials say (SCRAM-SHA-256 only) and
 * run SELECT 1.  On failure, *err says why (never with the password).
 */
static bool
TryLogin(Creds *c, char **err)
{
	KmsLoginTarget t;

	LocalTarget(c, &t);
	return KmsScramLogin(&t, c->username, c->dbname, c->password,
						 kms_rotation_login_timeout * 1000, err);
}

/* The other user of alternating rotation: app <-> app_clone (AWS's rule). */
static char *
AltUsername(const char *user)
{
	size_t		len = strlen(user);
	size_t		slen = strlen(CLONE_SUFFIX);

	if (len > slen && strcmp(user + len - slen, CLONE_SUFFIX) == 0)
		return pnstrdup(user, len - slen);
	if (len + slen > NAMEDATALEN - 1)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "unable to clone user \"%s\": the name with %s appended would exceed %d characters",
				  user, CLONE_SUFFIX, NAMEDATALEN - 1);
	return psprintf("%s%s", user, CLONE_SUFFIX);
}

/* ----------------------------------------------------------------
 * Which roles a rotation may change
 *
 * The worker is a superuser, but a built-in strategy changes a role only
 * as far as the rotation's configurer (kms.secret.rotation_role) could
 * itself, by PostgreSQL's rules, checked when rotation is configured and
 * again before every step (privileges may have been revoked since), and
 * the statements run as the configurer, so the server enforces the same.
 * Only plain login roles are rotated: no SUPERUSER, CREATEROLE,
 * REPLICATION or BYPASSRLS, nor a member of a role that has one.
 * ----------------------------------------------------------------
 */
static bool
RoleAttr(Oid roleid, bool *super, bool *createrole, bool *createdb)
{
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(roleid));
	Form_pg_authid f;

	if (!HeapTupleIsValid(tup))
		return false;
	f = (Form_pg_authid) GETSTRUCT(tup);
	*super = f->rolsuper;
	*createrole = f->rolcreaterole;
	*createdb = f->rolcreatedb;
	ReleaseSysCache(tup);
	return true;
}

/*
 * May configurer set target's password?  PostgreSQL's rule for ALTER ROLE
 * ... PASSWORD (src/backend/commands/user.c, AlterRole):
 *	 PG 15: a SUPERUSER or REPLICATION target needs a superuser; otherwise
 *			CREATEROLE, or the role itself;
 *	 PG 16+: a SUPERUSER target needs a superuser; otherwise CREATEROLE
 *			together with ADMIN OPTION on the role, or the role itself.
 */
static bool
MayAlterPassword(Oid configurer, Oid target)
{
	bool		c_super,
				c_createrole,
				c_createdb,
				t_super,
				t_createrole,
				t_createdb;
	HeapTuple	tup;
	bool		t_replication;

	if (!RoleAttr(configurer, &c_super, &c_createrole, &c_createdb) ||
		!RoleAttr(target, &t_super, &t_createrole, &t_createdb))
		return false;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(target));
	t_replication = ((Form_pg_authid) GETSTRUCT(tup))->rolreplication;
	ReleaseSysCache(tup);
	if (c_super)
		return true;
#if PG_VERSION_NUM >= 160000
	if (t_super)
		return false;
	if (configurer == target)
		return true;
	return c_createrole && is_admin_of_role(configurer, target);
#else
	if (t_super || t_replication)
		return false;
	if (configurer == target)
		return true;
	return c_createrole;
#endif
}

/*
 * May configurer CREATE ROLE (the clone)?  user.c, CreateRole: CREATEROLE
 * (PG 16+: and CREATEDB to give CREATEDB).
 */
static bool
MayCreateRole(Oid configurer, bool give_createdb)
{
	bool		c_super,
				c_createrole,
				c_createdb;

	if (!RoleAttr(configurer, &c_super, &c_createrole, &c_createdb))
		return false;
	if (c_super)
		return true;
#if PG_VERSION_NUM >= 160000
	if (give_createdb && !c_createdb)
		return false;
#endif
	return c_createrole;
}

/*
 * May configurer GRANT role TO another?  user.c, AddRoleMems:
 *	 PG 15: a SUPERUSER role needs a superuser; otherwise CREATEROLE or
 *			ADMIN OPTION on the role;
 *	 PG 16+: a SUPERUSER role needs a superuser; otherwise ADMIN OPTION.
 */
static bool
MayGrantRole(Oid configurer, Oid role)
{
	bool		c_super,
				c_createrole,
				c_createdb,
				r_super,
				r_createrole,
				r_createdb;

	if (!RoleAttr(configurer, &c_super, &c_createrole, &c_createdb) ||
		!RoleAttr(role, &r_super, &r_createrole, &r_createdb))
		return false;
	if (c_super)
		return true;
	if (r_super)
		return false;
#if PG_VERSION_NUM >= 160000
	return is_admin_of_role(configurer, role);
#else
	return c_createrole || is_admin_of_role(configurer, role);
#endif
}

static const char *
PrivilegedAttr(Form_pg_authid f)
{
	if (f->rolsuper)
		return "SUPERUSER";
	if (f->rolcreaterole)
		return "CREATEROLE";
	if (f->rolreplication)
		return "REPLICATION";
	if (f->rolbypassrls)
		return "BYPASSRLS";
	return NULL;
}

/*
 * Refuse a role we will not change: one that does not exist (if
 * must_exist), NOLOGIN (if need_login), privileged, a member of a
 * privileged role, or one the configurer may not set the password of.
 * Returns its OID (InvalidOid if it does not exist and need not).
 */
static Oid
CheckTarget(Oid configurer, const char *name, bool must_exist, bool need_login)
{
	HeapTuple	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(name));
	Form_pg_authid f;
	Oid			roleid;
	const char *attr;
	bool		login;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	t;
	char	   *via = NULL;
	const char *via_attr = NULL;

	if (!HeapTupleIsValid(tup))
	{
		if (must_exist)
			kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
					  "role \"%s\" named by the secret does not exist", name);
		return InvalidOid;
	}
	f = (Form_pg_authid) GETSTRUCT(tup);
	roleid = f->oid;
	attr = PrivilegedAttr(f);
	login = f->rolcanlogin;
	ReleaseSysCache(tup);
	if (attr && strcmp(attr, "SUPERUSER") == 0)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "role \"%s\" is a superuser: pg_kms does not rotate superuser passwords; rotate a dedicated role",
				  name);
	if (attr)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "role \"%s\" has the %s attribute: pg_kms rotates only plain login roles", name, attr);
	if (need_login && !login)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "role \"%s\" is NOLOGIN: pg_kms rotates only login roles", name);

	/* a member of a privileged role can SET ROLE to it */
	rel = table_open(AuthIdRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (via == NULL && HeapTupleIsValid(t = systable_getnext(scan)))
	{
		Form_pg_authid p = (Form_pg_authid) GETSTRUCT(t);
		const char *pa = PrivilegedAttr(p);

		/* predefined roles that reach the server's files and programs */
		if (pa == NULL && (p->oid == ROLE_PG_EXECUTE_SERVER_PROGRAM ||
						   p->oid == ROLE_PG_READ_SERVER_FILES ||
						   p->oid == ROLE_PG_WRITE_SERVER_FILES))
			pa = "server file or program access of";

		if (pa && p->oid != roleid && is_member_of_role(roleid, p->oid))
		{
			via = pstrdup(NameStr(p->rolname));
			via_attr = pa;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (via)
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "role \"%s\" is a member of role \"%s\", which has the %s%s: pg_kms rotates only plain login roles",
				  name, via, via_attr, strncmp(via_attr, "server", 6) == 0 ? " a superuser" : " attribute");

	if (!OidIsValid(configurer) || !SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(configurer)))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the role that configured rotation no longer exists: configure it again with rotate_secret");
	if (!MayAlterPassword(configurer, roleid))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\", which configures this rotation, may not change the password of role \"%s\"",
						GetUserNameFromId(configurer, false), name),
				 errhint("PostgreSQL's rule for ALTER ROLE ... PASSWORD applies: the role itself, or CREATEROLE%s.",
#if PG_VERSION_NUM >= 160000
						 " with ADMIN OPTION on the role"
#else
						 ""
#endif
						 )));
	return roleid;
}

/* Is member a direct member of role? */
static bool
DirectMember(Oid member, Oid role)
{
	HeapTuple	tup;
	bool		found = false;
	CatCList   *list = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(member));

	for (int i = 0; i < list->n_members; i++)
	{
		tup = &list->members[i]->tuple;
		if (((Form_pg_auth_members) GETSTRUCT(tup))->roleid == role)
			found = true;
	}
	ReleaseSysCacheList(list);
	return found;
}

/*
 * Is clone a role pg_kms made of base for this secret?  Either the one
 * recorded in kms.secret.rotation_clone, or one that has nothing of its
 * own: a direct member of base, no attribute base lacks, no membership
 * beyond base and base's, and no object, privilege or policy in any
 * database (pg_shdepend).  Anything else is somebody's role, and setting
 * its password would hand it over ("victim_clone").
 */
static bool
IsOurClone(Oid base, Oid clone, Oid recorded)
{
	bool		b_super,
				b_createrole,
				b_createdb,
				c_super,
				c_createrole,
				c_createdb;
	CatCList   *list;
	bool		ok = true;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key[2];

	if (OidIsValid(recorded) && recorded == clone)
		return true;
	if (!DirectMember(clone, base))
		return false;
	if (!RoleAttr(base, &b_super, &b_createrole, &b_createdb) ||
		!RoleAttr(clone, &c_super, &c_createrole, &c_createdb))
		return false;
	if (c_createdb && !b_createdb)
		return false;
	list = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(clone));
	for (int i = 0; i < list->n_members && ok; i++)
	{
		Oid			r = ((Form_pg_auth_members) GETSTRUCT(&list->members[i]->tuple))->roleid;

		if (r != base && !DirectMember(base, r))
			ok = false;
	}
	ReleaseSysCacheList(list);
	if (!ok)
		return false;

	rel = table_open(SharedDependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_shdepend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(AuthIdRelationId));
	ScanKeyInit(&key[1], Anum_pg_shdepend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(clone));
	scan = systable_beginscan(rel, SharedDependReferenceIndexId, true, NULL, 2, key);
	if (HeapTupleIsValid(systable_getnext(scan)))
		ok = false;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return ok;
}

/*
 * Run a utility statement as role (the configurer), so PostgreSQL applies
 * its own privilege rules to it as well as ours.
 */
static void
RunDDLAs(Oid role, const char *sql)
{
	Oid			save_userid;
	int			save_sec;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute(sql, false, 0);
		if (rc < 0)
			elog(ERROR, "pg_kms rotation statement failed (%d)", rc);
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
}

/* Only PASSWORD: PostgreSQL lets a role without CREATEROLE change that alone. */
static void
SetRolePassword(Oid configurer, const char *user, const char *password)
{
	char	   *verifier = KmsScramVerifier(password);

	RunDDLAs(configurer, psprintf("ALTER ROLE %s PASSWORD %s",
								  quote_identifier(user), quote_literal_cstr(verifier)));
}

/*
 * The roles base is a direct member of, and base itself, that clone does
 * not belong to yet: what EnsureClone grants.  Each must be grantable by
 * the configurer.
 */
static List *
CloneGrants(Oid configurer, Oid base, Oid clone, const char *clone_name)
{
	List	   *grants = NIL;
	CatCList   *list = SearchSysCacheList1(AUTHMEMMEMROLE, ObjectIdGetDatum(base));
	List	   *want = list_make1_oid(base);
	ListCell   *lc;

	for (int i = 0; i < list->n_members; i++)
		want = lappend_oid(want, ((Form_pg_auth_members) GETSTRUCT(&list->members[i]->tuple))->roleid);
	ReleaseSysCacheList(list);
	foreach(lc, want)
	{
		Oid			r = lfirst_oid(lc);

		if (OidIsValid(clone) && DirectMember(clone, r))
			continue;
		if (!MayGrantRole(configurer, r))
			ereport(ERROR,
					(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
					 errmsg("AccessDeniedException: role \"%s\", which configures this rotation, may not grant role \"%s\" to the clone \"%s\"",
							GetUserNameFromId(configurer, false), GetUserNameFromId(r, false), clone_name),
					 errhint("The clone gets the memberships of the original role; the configurer needs %s on each.",
#if PG_VERSION_NUM >= 160000
							 "ADMIN OPTION"
#else
							 "CREATEROLE or ADMIN OPTION"
#endif
							 )));
		grants = lappend_oid(grants, r);
	}
	return grants;
}

/*
 * Check (and, with password, do) the change of base -> clone: base a plain
 * login role the configurer administers; clone either absent (the
 * configurer may create it) or the clone pg_kms made for this secret; every
 * membership the clone gets grantable by the configurer.  Returns the
 * clone's OID after the change (InvalidOid when only checking an absent
 * clone).
 */
static Oid
EnsureClone(RotationRow *r, Oid configurer, const char *base, const char *clone,
			const char *password)
{
	Oid			base_oid = CheckTarget(configurer, base, true, true);
	Oid			clone_oid = CheckTarget(configurer, clone, false, true);
	HeapTuple	tup;
	Form_pg_authid b;
	bool		b_inherit,
				b_createdb;
	int			b_connlimit;
	List	   *grants;
	ListCell   *lc;
	StringInfoData sql;

	if (OidIsValid(clone_oid) && !IsOurClone(base_oid, clone_oid, r->clone))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "role \"%s\" exists but is not a clone of role \"%s\" that pg_kms made for this secret: pg_kms will not take it over",
				  clone, base);
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(base_oid));
	b = (Form_pg_authid) GETSTRUCT(tup);
	b_inherit = b->rolinherit;
	b_createdb = b->rolcreatedb;
	b_connlimit = b->rolconnlimit;
	ReleaseSysCache(tup);
	if (!OidIsValid(clone_oid) && !MayCreateRole(configurer, b_createdb))
		ereport(ERROR,
				(errcode(KMS_SQLSTATE_ACCESS_DENIED), errhidestmt(true),
				 errmsg("AccessDeniedException: role \"%s\", which configures this rotation, may not create the clone \"%s\"",
						GetUserNameFromId(configurer, false), clone),
				 errhint("Alternating users needs a configurer with CREATEROLE.")));
	grants = CloneGrants(configurer, base_oid, clone_oid, clone);
	if (password == NULL)
		return clone_oid;

	/* never CREATEROLE, whatever base has (base has none: CheckTarget) */
	initStringInfo(&sql);
	appendStringInfo(&sql, "%s ROLE %s WITH LOGIN %s %s CONNECTION LIMIT %d PASSWORD %s",
					 OidIsValid(clone_oid) ? "ALTER" : "CREATE", quote_identifier(clone),
					 b_inherit ? "INHERIT" : "NOINHERIT",
					 b_createdb ? "CREATEDB" : "NOCREATEDB",
					 b_connlimit, quote_literal_cstr(KmsScramVerifier(password)));
	RunDDLAs(configurer, sql.data);
	CommandCounterIncrement();
	foreach(lc, grants)
		RunDDLAs(configurer, psprintf("GRANT %s TO %s",
									  quote_identifier(GetUserNameFromId(lfirst_oid(lc), false)),
									  quote_identifier(clone)));
	clone_oid = get_role_oid(clone, false);
	if (clone_oid != r->clone)
	{
		Oid			t = OIDOID;
		Datum		v = ObjectIdGetDatum(clone_oid);

		UpdateSecretRow(r->id, "rotation_clone = $2::pg_catalog.regrole", 1, &t, &v, NULL);
		r->clone = clone_oid;
	}
	return clone_oid;
}

/*
 * All the role checks of a rotation from the credentials cur (AWSCURRENT)
 * to the user pending_user, for the configurer: what setSecret will
 * change must be changeable.  Run by rotate_secret and before steps.
 */
static void
CheckRotationRoles(RotationRow *r, Oid configurer, bool alternate, const char *cur_user,
				   const char *pending_user)
{
	if (!alternate)
	{
		(void) CheckTarget(configurer, pending_user, true, true);
		return;
	}
	if (strlen(pending_user) > strlen(cur_user))
		(void) EnsureClone(r, configurer, cur_user, pending_user, NULL);	/* app -> app_clone */
	else
	{
		/* app_clone -> app: app_clone must be app's clone */
		Oid			base = CheckTarget(configurer, pending_user, true, true);
		Oid			clone = get_role_oid(cur_user, true);

		if (!OidIsValid(clone) || !(clone == r->clone || DirectMember(clone, base)))
			kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
					  "role \"%s\" is not a clone of role \"%s\" (a member of it): pg_kms will not alternate between them",
					  cur_user, pending_user);
	}
}

/* ----------------------------------------------------------------
 * The four steps
 * ----------------------------------------------------------------
 */
static char *
NewPassword(void)
{
	text	   *t = DatumGetTextPP(DirectFunctionCall8Coll(get_random_password, InvalidOid,
														   Int64GetDatum(ROTATION_PW_LEN),
														   CStringGetTextDatum(ROTATION_EXCLUDE),
														   BoolGetDatum(false), BoolGetDatum(false),
														   BoolGetDatum(false), BoolGetDatum(false),
														   BoolGetDatum(false), BoolGetDatum(true)));
	char	   *s = text_to_cstring(t);

	kms_cleanse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	return s;
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
 */
static void
StepCustom(RotationRow *r, const char *step)
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
	SetUserIdAndSecContext(r->role, save_sec | SECURITY_LOCAL_USERID_CHANGE);
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

	if (strcmp(step, "createSecret") == 0 && !KmsSecretVersionExists(r->id, r->token))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "createSecret: rotation function %s did not create version \"%s\"",
				  r->strategy, r->token);
	if (strcmp(step, "finishSecret") == 0 && !KmsSecretVersionHasStage(r->id, r->token, "AWSCURRENT"))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "finishSecret: rotation function %s did not move AWSCURRENT to version \"%s\"",
				  r->strategy, r->token);
}

static int
StepIndex(const char *step)
{
	for (int i = 0; i < lengthof(steps); i++)
		if (step && strcmp(step, steps[i]) == 0)
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
	UpdateSecretRow(r->id, "rotation_token = NULL, rotation_step = NULL, rotation_attempts = 0, "
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
static const char *
RunStep(RotationRow *r)
{
	int			i = StepIndex(r->step);
	const char *step = steps[i];
	bool		custom = !IsBuiltin(r->strategy);

	/* AWS's prologue: a token already AWSCURRENT means the work is done */
	if (KmsSecretVersionHasStage(r->id, r->token, "AWSCURRENT"))
	{
		RotationDone(r);
		return "done";
	}
	if (i > 0 && !KmsSecretVersionHasStage(r->id, r->token, "AWSPENDING"))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "%s: version \"%s\" of secret \"%s\" is not AWSPENDING", step, r->token, r->name);

	if (custom)
		StepCustom(r, step);
	else if (i == 0)
		StepCreate(r);
	else if (i == 1)
		StepSet(r);
	else if (i == 2)
		StepTest(r);
	else
		StepFinish(r);

	if (i == lengthof(steps) - 1)
		RotationDone(r);
	else
	{
		Oid			t = TEXTOID;
		Datum		v = CStringGetTextDatum(steps[i + 1]);

		UpdateSecretRow(r->id, "rotation_step = $2, rotation_attempts = 0, rotation_next_attempt = NULL",
						1, &t, &v, NULL);
	}
	return step;
}

/* Record a failed step: attempts, back-off, the error for describe_secret. */
static void
RecordFailure(RotationRow *r, const char *message)
{
	Oid			t[2] = {TEXTOID, INT4OID};
	Datum		v[2];
	char	   *msg = psprintf("%s: %s", steps[StepIndex(r->step)], message);
	int			backoff = r->attempts >= 12 ? MAX_BACKOFF_SECS : Min(1 << r->attempts, MAX_BACKOFF_SECS);

	v[0] = CStringGetTextDatum(msg);
	v[1] = Int32GetDatum(backoff);
	UpdateSecretRow(r->id, "rotation_attempts = rotation_attempts + 1, rotation_last_error = $2, "
					"rotation_last_error_date = pg_catalog.now(), "
					"rotation_next_attempt = pg_catalog.now() + pg_catalog.make_interval(secs => $3)",
					2, t, v, NULL);
	ereport(LOG,
			(errmsg("pg_kms: rotation of secret \"%s\" failed (attempt %d), retrying in %d s",
					r->name, r->attempts + 1, backoff),
			 errdetail("%s", msg)));
	KmsAudit("RotationFailed", r->arn, 0, "RotationFailed");
}

/* ----------------------------------------------------------------
 * Test-only crash injection
 * ----------------------------------------------------------------
 */
static char crash_after_token[65];

static bool
CrashWanted(const char *step, bool before)
{
	const char *v = kms_rotation_test_crash_at;
	size_t		len;

	if (v == NULL || v[0] == '\0' || strcmp(v, "none") == 0)
		return false;
	len = strlen(step);
	if (strncmp(v, step, len) != 0)
		return false;
	if (before)
		return strcmp(v + len, ":before") == 0;
	return v[len] == '\0' || strcmp(v + len, ":after") == 0;
}

/* Die with SIGKILL once per (token, step, side): a marker file remembers. */
static void
CrashNow(const char *token, const char *step, bool before)
{
	char	   *line = psprintf("%s %s %s\n", token, step, before ? "before" : "after");
	char	   *path = psprintf("%s/pg_kms_rotation_crash.done", DataDir);
	FILE	   *f = AllocateFile(path, "r");
	char		buf[256];
	int			fd;

	if (f)
	{
		while (fgets(buf, sizeof(buf), f))
			if (strcmp(buf, line) == 0)
			{
				FreeFile(f);
				return;
			}
		FreeFile(f);
	}
	fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_APPEND | PG_BINARY);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t) strlen(line) || pg_fsync(fd) != 0)
		elog(ERROR, "could not write \"%s\": %m", path);
	CloseTransientFile(fd);
	ereport(LOG,
			(errmsg("pg_kms: rotation_test_crash_at: killing the worker with SIGKILL %s %s commits",
					before ? "before" : "after", step)));
	kill(MyProcPid, SIGKILL);
	for (;;)
		pg_usleep(1000000L);
}

/* ----------------------------------------------------------------
 * Step timeout (pg_kms.rotation_step_timeout)
 *
 * A timeout of our own rather than statement_timeout, which only
 * postgres.c arms (a background worker's SPI never does): when it fires it
 * cancels whatever the step is doing as a query cancel would (pg_sleep,
 * a lock wait, the login client's wait), and the step fails like any other.
 * ----------------------------------------------------------------
 */
static TimeoutId step_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t step_timed_out = false;

static void
StepTimeoutHandler(void)
{
	step_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

static void
StepTimeoutArm(void)
{
	if (step_timeout_id == MAX_TIMEOUTS)
		step_timeout_id = RegisterTimeout(USER_TIMEOUT, StepTimeoutHandler);
	step_timed_out = false;
	enable_timeout_after(step_timeout_id, kms_rotation_step_timeout * 1000);
}

/* Returns true if the timeout fired. */
static bool
StepTimeoutDisarm(void)
{
	bool		fired;

	disable_timeout(step_timeout_id, false);
	fired = step_timed_out;
	step_timed_out = false;
	return fired;
}

/* ----------------------------------------------------------------
 * Jobs
 * ----------------------------------------------------------------
 */

/*
 * One unit of secret rotation: the next step of one rotation in progress
 * whose retry time has come, or the start of one scheduled rotation.
 * Errors of the step roll back a subtransaction and are recorded; the job
 * itself fails only if the catalog does.
 */
bool
KmsRotationSecretsJob(void)
{
	KmsCatalogState st;
	RotationRow r;
	bool		found;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	const char *volatile done = NULL;
	char	   *volatile error = NULL;

	crash_after_token[0] = '\0';
	KmsCatalogEnter(&st);
	found = KmsExec(psprintf("%s WHERE rotation_token IS NOT NULL AND deleted_date IS NULL "
							 "AND (rotation_next_attempt IS NULL OR rotation_next_attempt <= pg_catalog.now()) "
							 "ORDER BY rotation_next_attempt NULLS FIRST, secret_id LIMIT 1 FOR UPDATE SKIP LOCKED",
							 rotation_columns),
					0, NULL, NULL, NULL, false, SPI_OK_SELECT) == 1;
	if (found)
	{
		RowFromSpi(&r);
		RowCopyOut(&r, cxt);
	}
	else if (KmsExec(psprintf("%s WHERE rotation_enabled AND rotation_token IS NULL AND deleted_date IS NULL "
							  "AND next_rotation_date <= pg_catalog.now() "
							  "ORDER BY next_rotation_date, secret_id LIMIT 1 FOR UPDATE SKIP LOCKED",
							  rotation_columns),
					 0, NULL, NULL, NULL, false, SPI_OK_SELECT) == 1)
	{
		/* a scheduled rotation: start it, run it from the next call */
		Oid			t[2] = {UUIDOID, TEXTOID};
		Datum		v[2];
		uint8		u[16];
		char		tok[37];

		RowFromSpi(&r);
		RowCopyOut(&r, cxt);
		if (kms_random_bytes(u, sizeof(u)) != 0)
			elog(ERROR, "could not generate random bytes");
		u[6] = (u[6] & 0x0f) | 0x40;
		u[8] = (u[8] & 0x3f) | 0x80;
		KmsUuidToString(u, tok);
		v[0] = IdDatum(r.id);
		v[1] = CStringGetTextDatum(tok);
		KmsExec("UPDATE kms.secret SET rotation_token = $2, rotation_step = 'createSecret', "
				"rotation_attempts = 0, rotation_next_attempt = NULL, rotation_started = pg_catalog.now() "
				"WHERE secret_id = $1",
				2, t, v, NULL, false, SPI_OK_UPDATE);
		KmsCatalogExit(&st);
		KmsAudit("RotationStarted", r.arn, 0, "success");
		return true;
	}
	KmsCatalogExit(&st);
	if (!found)
		return false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		StepTimeoutArm();
		done = RunStep(&r);
		if (StepTimeoutDisarm() && QueryCancelPending)
			QueryCancelPending = false; /* fired after the step was done */
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		timed_out;

		timed_out = StepTimeoutDisarm();
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (timed_out && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			error = psprintf("the step was cancelled after %d s (pg_kms.rotation_step_timeout)",
							 kms_rotation_step_timeout);
		else
		{
			if (timed_out && QueryCancelPending)
				QueryCancelPending = false;
			error = edata->message ? edata->message : "unknown error";
		}
	}
	PG_END_TRY();

	if (error)
	{
		RecordFailure(&r, error);
		return true;			/* other secrets may be due */
	}
	if (IsBackgroundWorker && strcmp(done, "done") != 0)
	{
		if (CrashWanted(done, true))
			CrashNow(r.token, done, true);
		if (CrashWanted(done, false))
		{
			snprintf(crash_after_token, sizeof(crash_after_token), "%s", r.token);
			strlcpy(crash_after_token + strlen(crash_after_token) + 1, done,
					sizeof(crash_after_token) - strlen(crash_after_token) - 1);
		}
	}
	return true;
}

/* After the worker committed a step: the test-only ":after" crash. */
void
KmsRotationSecretsCommitted(void)
{
	if (crash_after_token[0] != '\0')
	{
		char		token[65];
		char		step[32];

		strlcpy(token, crash_after_token, sizeof(token));
		strlcpy(step, crash_after_token + strlen(crash_after_token) + 1, sizeof(step));
		crash_after_token[0] = '\0';
		CrashNow(token, step, false);
	}
}

/* Automatic key rotation: one key whose NextRotationDate has come. */
bool
KmsRotationKeysJob(void)
{
	KmsCatalogState st;
	uint8		key_id[KMS_KEY_ID_LEN];
	KmsKeyInfo	key;
	KmsKeyInfo *k;
	Oid			t = UUIDOID;
	Datum		v;
	bool		isnull;
	int32		version;
	char		kid[37];

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT key_id FROM kms.key WHERE rotation_enabled AND key_state = 'Enabled' "
				"AND next_rotation_date <= pg_catalog.now() "
				"ORDER BY next_rotation_date, key_id LIMIT 1 FOR UPDATE SKIP LOCKED",
				0, NULL, NULL, NULL, false, SPI_OK_SELECT) != 1)
	{
		KmsCatalogExit(&st);
		return false;
	}
	memcpy(key_id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull))->data,
		   KMS_KEY_ID_LEN);
	KmsCatalogExit(&st);

	k = KmsLookupKeyById(key_id);
	if (k == NULL)
		elog(ERROR, "key vanished during automatic rotation");
	key = *k;
	version = KmsRotateKeyMaterial(&key, "AUTOMATIC");

	v = KmsUuidDatum(key_id);
	KmsCatalogEnter(&st);
	/* the schedule keeps its anchor; a key that was disabled past it restarts from now */
	KmsExec("UPDATE kms.key SET next_rotation_date = CASE "
			"WHEN next_rotation_date + pg_catalog.make_interval(days => COALESCE(rotation_period_days, 365)) > pg_catalog.now() "
			"THEN next_rotation_date + pg_catalog.make_interval(days => COALESCE(rotation_period_days, 365)) "
			"ELSE pg_catalog.now() + pg_catalog.make_interval(days => COALESCE(rotation_period_days, 365)) END "
			"WHERE key_id = $1",
			1, &t, &v, NULL, false, SPI_OK_UPDATE);
	KmsCatalogExit(&st);
	KmsInvalidateAtCommit();
	KmsUuidToString(key_id, kid);
	KmsAudit("RotateKey", kid, version, "success");
	return true;
}

/*
 * Deletion windows: one key whose PendingDeletion window has passed
 * becomes Deleted and its material is destroyed (every version's wrapped
 * material is set NULL; aliases and grants go); then secrets whose
 * recovery window has passed are purged, a batch at a time.
 */
bool
KmsRotationDeletionJob(void)
{
	KmsCatalogState st;
	uint8		key_id[KMS_KEY_ID_LEN];
	Oid			t = UUIDOID;
	Datum		v;
	bool		isnull;
	char		kid[37];

	KmsCatalogEnter(&st);
	if (KmsExec("SELECT key_id FROM kms.key WHERE key_state = 'PendingDeletion' "
				"AND deletion_date <= pg_catalog.now() "
				"ORDER BY deletion_date, key_id LIMIT 1 FOR UPDATE SKIP LOCKED",
				0, NULL, NULL, NULL, false, SPI_OK_SELECT) == 1)
	{
		memcpy(key_id, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull))->data,
			   KMS_KEY_ID_LEN);
		v = KmsUuidDatum(key_id);
		KmsExec("UPDATE kms.key SET key_state = 'Deleted', rotation_enabled = false, "
				"next_rotation_date = NULL WHERE key_id = $1",
				1, &t, &v, NULL, false, SPI_OK_UPDATE);
		KmsExec("UPDATE kms.key_version SET material = NULL WHERE key_id = $1",
				1, &t, &v, NULL, false, SPI_OK_UPDATE);
		KmsExec("DELETE FROM kms.alias WHERE key_id = $1", 1, &t, &v, NULL, false, SPI_OK_DELETE);
		KmsExec("DELETE FROM kms.grants WHERE key_id = $1", 1, &t, &v, NULL, false, SPI_OK_DELETE);
		KmsCatalogExit(&st);
		KmsForgetKeyAtCommit(key_id);
		KmsInvalidateAtCommit();
		KmsUuidToString(key_id, kid);
		KmsAudit("DeleteKey", kid, 0, "success");
		return true;
	}
	KmsCatalogExit(&st);
	return KmsSecretsPurgeExpired(100) > 0;
}

TimestampTz
KmsRotationNextDue(void)
{
	KmsCatalogState st;
	TimestampTz due = 0;
	bool		isnull;
	Datum		d;

	KmsCatalogEnter(&st);
	KmsExec("SELECT LEAST("
			" (SELECT min(COALESCE(rotation_next_attempt, '-infinity'::timestamptz)) FROM kms.secret "
			"   WHERE rotation_token IS NOT NULL AND deleted_date IS NULL),"
			" (SELECT min(next_rotation_date) FROM kms.secret WHERE rotation_enabled AND deleted_date IS NULL),"
			" (SELECT min(deletion_date) FROM kms.secret),"
			" (SELECT min(next_rotation_date) FROM kms.key WHERE rotation_enabled AND key_state = 'Enabled'),"
			" (SELECT min(deletion_date) FROM kms.key WHERE key_state = 'PendingDeletion'))",
			0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		due = DatumGetTimestampTz(d);
	KmsCatalogExit(&st);
	return due;
}

/* The rotation worker's jobs (registered by _PG_init, in this order). */
bool
KmsRotationJobsEnabled(void)
{
	return kms_rotation_jobs;
}

static bool
KmsRotationSecretsWorkerRun(void)
{
	return kms_rotation_jobs && KmsRotationSecretsJob();
}

static bool
KmsRotationKeysWorkerRun(void)
{
	return kms_rotation_jobs && KmsRotationKeysJob();
}

static bool
KmsRotationDeletionWorkerRun(void)
{
	return kms_rotation_jobs && KmsRotationDeletionJob();
}

const KmsWorkerJob KmsRotationSecretsWorkerJob =
{"secret rotation", KmsRotationSecretsWorkerRun, KmsRotationSecretsCommitted, NULL, true};
const KmsWorkerJob KmsRotationKeysWorkerJob =
{"key rotation", KmsRotationKeysWorkerRun, NULL, NULL, true};
const KmsWorkerJob KmsRotationDeletionWorkerJob =
{"deletion", KmsRotationDeletionWorkerRun, NULL, NULL, true};

/*
 * Wake the worker once this transaction commits, so a requested rotation
 * starts at once rather than after pg_kms.worker_naptime.
 */
static bool wake_pending = false;

/* Called from the module's transaction callback (src/pg_kms.c). */
void
KmsRotationXactCallback(XactEvent event)
{
	if (event == XACT_EVENT_COMMIT && wake_pending)
		KmsWakeWorker();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		wake_pending = false;
}

static void
KmsRotationWakeAtCommit(void)
{
	wake_pending = true;
}

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
static char *
CurrentUsername(const uint8 *id)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	char	   *volatile user = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		char	   *value = KmsSecretGetString(id, NULL, "AWSCURRENT", NULL);

		if (value)
		{
			Creds		cur;

			ParseCreds(value, "AWSCURRENT", &cur);
			kms_cleanse(value, strlen(value));
			user = MemoryContextStrdup(cxt, cur.username);
			WipeCreds(&cur);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		user = NULL;
	}
	PG_END_TRY();
	return user;
}

PG_FUNCTION_INFO_V1(rotate_secret);
Datum
rotate_secret(PG_FUNCTION_ARGS)
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
	const char *eff_strategy;

	if (ref == NULL)
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION, "secret_id is required");
	if (token && (strlen(token) < 32 || strlen(token) > 64))
		kms_error(InvalidParameterException, KMS_SQLSTATE_VALIDATION,
				  "client_request_token must be 32 to 64 characters");
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
		InvalidRequest(psprintf("a previous rotation of secret \"%s\" isn't complete (version \"%s\" is at %s)",
								info.name, r.token, r.step),
					   "Wait for it, or cancel it with cancel_rotate_secret().");
	}
	pending = KmsSecretStageHolder(info.id, "AWSPENDING");
	current = KmsSecretStageHolder(info.id, "AWSCURRENT");
	if (pending && (current == NULL || strcmp(pending, current) != 0))
		InvalidRequest(psprintf("secret \"%s\" has an AWSPENDING version (\"%s\") other than AWSCURRENT: a previous rotation isn't complete",
								info.name, pending),
					   "Remove the label with update_secret_version_stage(secret, 'AWSPENDING', remove_from_version_id => ...).");
	if (strategy == NULL && r.strategy == NULL)
		InvalidRequest(psprintf("secret \"%s\" has no rotation strategy", info.name),
					   "Give rotation_strategy: postgres_single_user, postgres_alternating_users, or a function (secret_id text, client_request_token text, step text).");
	if (norm == NULL && r.rules != NULL)
	{
		norm = r.rules;
		ParseRules(norm, &rules);
	}

	/*
	 * Who configures a strategy runs it; otherwise the first configurer
	 * stays.  What the rotation will change must be the configurer's to
	 * change: checked here for a clear error, and again at every step.
	 */
	configurer = strategy || !OidIsValid(r.role) ? GetUserId() : r.role;
	eff_strategy = strategy ? strategy : r.strategy;
	if (!strategy)
		fn = r.function;
	if (!IsBuiltin(eff_strategy))
	{
		if (!OidIsValid(fn))
			InvalidRequest(psprintf("the rotation function %s of secret \"%s\" is not pinned (configured before pg_kms 1.1)",
									eff_strategy, info.name),
						   "Give rotation_strategy again.");
		CheckStrategyFunction(fn, configurer, info.name);
	}
	else
	{
		bool		alternate = strcmp(eff_strategy, STRATEGY_ALTERNATE) == 0;
		char	   *user = CurrentUsername(info.id);

		/* roles that do not exist yet are checked when the worker gets to them */
		if (user && OidIsValid(get_role_oid(user, true)))
			CheckRotationRoles(&r, configurer, alternate, user,
							   alternate ? AltUsername(user) : user);
	}

	if (token && KmsSecretVersionExists(info.id, token))
		InvalidRequest(psprintf("a version with client request token \"%s\" already exists", token), NULL);
	if (token == NULL)
	{
		uint8		u[16];

		if (kms_random_bytes(u, sizeof(u)) != 0)
			elog(ERROR, "could not generate random bytes");
		u[6] = (u[6] & 0x0f) | 0x40;
		u[8] = (u[8] & 0x3f) | 0x80;
		KmsUuidToString(u, tok);
		token = tok;
	}

	{
		Oid			t[7] = {TEXTOID, JSONBOID, OIDOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, OIDOID};
		Datum		v[7];
		char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
		TimestampTz next = 0;

		v[0] = CStringGetTextDatum(strategy ? strategy : r.strategy);
		if (norm)
			v[1] = JsonbPGetDatum(norm);
		else
			n[1] = 'n';
		v[2] = ObjectIdGetDatum(configurer);
		v[3] = CStringGetTextDatum(token);
		if (norm && !immediately)
			next = NextRotation(&rules, GetCurrentTransactionStartTimestamp());
		v[4] = TimestampTzGetDatum(next);
		if (next == 0)
			n[4] = 'n';
		v[5] = BoolGetDatum(immediately);
		v[6] = ObjectIdGetDatum(fn);
		if (!OidIsValid(fn))
			n[6] = 'n';
		UpdateSecretRow(info.id,
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
	KmsSecretChanged(info.id);
	KmsRotationWakeAtCommit();
	KmsAudit("RotateSecret", info.arn, 0, "success");

	initStringInfo(&buf);
	ResultJson(&buf, &info, immediately ? token : NULL);
	PG_RETURN_JSONB_P(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
}

PG_FUNCTION_INFO_V1(cancel_rotate_secret);
Datum
cancel_rotate_secret(PG_FUNCTION_ARGS)
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
	UpdateSecretRow(info.id, "rotation_enabled = false, next_rotation_date = NULL, "
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
