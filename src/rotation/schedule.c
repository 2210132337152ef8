/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  Rotation's settings, and rotation rules: AutomaticallyAfterDays,
 *	  rate() and cron() schedules, and the next rotation time.
 *
 * IDENTIFICATION
 *	  src/rotation/schedule.c
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
 * Settings
 * ----------------------------------------------------------------
 */
char	   *kms_rotation_test_crash_at = NULL;
char	   *kms_rotation_local_hosts = NULL;
int			kms_rotation_login_timeout = 5;	/* s */
int			kms_rotation_step_timeout = 60; /* s */

const char *const rotation_steps[ROTATION_NSTEPS] = {"createSecret", "setSecret", "testSecret", "finishSecret"};

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
	for (int i = 0; i < ROTATION_NSTEPS; i++)
		if (strlen(rotation_steps[i]) == len && strncmp(v, rotation_steps[i], len) == 0)
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

/* rate(<digits> <unit>) of ScheduleExpression e, into r. */
static void
ParseRate(const char *e, Rules *r)
{
	const char *p = e + 5;
	const char *q;
	char	   *end;
	char	   *unit;
	char	   *numtext;
	long		n;

	/* digits by hand: no sscanf, whose %d wraps silently */
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

/* The Duration member of rotation_rules (hours of a rotation window). */
static void
ParseDuration(JsonbValue *dur, Rules *r)
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
	/* Duration goes with AutomaticallyAfterDays too (RotationRulesType) */
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

/*
 * Validate rotation_rules as AWS does and parse them into r.  Returns the
 * normalized rules (AWS member names) as a jsonb.
 */
Jsonb *
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

		if (expr->type != jbvString)
			RulesError("ScheduleExpression must be a string");
		e = pnstrdup(expr->val.string.val, expr->val.string.len);
		r->expression = e;
		if (strncmp(e, "rate(", 5) == 0)
			ParseRate(e, r);
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
		ParseDuration(dur, r);

	initStringInfo(&out);
	if (r->kind == RULE_DAYS)
	{
		appendStringInfo(&out, "{\"AutomaticallyAfterDays\": %d", r->n);
		if (r->duration)
			appendStringInfo(&out, ", \"Duration\": \"%dh\"", r->duration);
		appendStringInfoChar(&out, '}');
	}
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
TimestampTz
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
