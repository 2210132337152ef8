/*-------------------------------------------------------------------------
 *
 * roles.c
 *	  Role credentials in a secret (AWS RDS-style JSON) and which roles a
 *	  rotation may change and log in as (the confused-deputy guards).
 *
 * IDENTIFICATION
 *	  src/rotation/roles.c
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
void
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

void
WipeCreds(Creds *c)
{
	if (c->password)
		kms_cleanse(c->password, strlen(c->password));
}

/* Load a version's credentials, or false if there is no such version. */
bool
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
bool
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

void
LocalTarget(Creds *c, KmsLoginTarget *t)
{
	(void) LocalTargetExt(c, t, true);
}

/*
 * Log in to this server as the credentials say (SCRAM-SHA-256 only) and
 * run SELECT 1.  On failure, *err says why (never with the password).
 */
bool
TryLogin(Creds *c, char **err)
{
	KmsLoginTarget t;

	LocalTarget(c, &t);
	return KmsScramLogin(&t, c->username, c->dbname, c->password,
						 kms_rotation_login_timeout * 1000, err);
}

/* The other user of alternating rotation: app <-> app_clone (AWS's rule). */
char *
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
void
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
Oid
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

		KmsSecretUpdateRotation(r->id, "rotation_clone = $2::pg_catalog.regrole", 1, &t, &v, NULL);
		r->clone = clone_oid;
	}
	return clone_oid;
}

/*
 * All the role checks of a rotation from the credentials cur (AWSCURRENT)
 * to the user pending_user, for the configurer: what setSecret will
 * change must be changeable.  Run by rotate_secret and before steps.
 */
void
CheckRotationRoles(RotationRow *r, Oid configurer, bool alternate, const char *cur_user,
				   const char *pending_user)
{
	/* unresolved (restored without it, or dropped): nobody to act for */
	if (!OidIsValid(configurer) || !SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(configurer)))
		kms_error(InvalidRequestException, KMS_SQLSTATE_INVALID_REQUEST,
				  "the role that configured rotation of secret \"%s\" no longer exists", r->name);
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
