#!/usr/bin/env bash
# scripts/quickstart.sh: set pg_kms up on this machine and run the example.
#
#   sudo bash scripts/quickstart.sh
#
# Installs the Debian 12 packages it needs, builds and installs the
# extension (incrementally: a second run rebuilds only what changed),
# creates a master key (/etc/pg_kms/master.key, kept if it exists), creates
# a Debian cluster "15/pg_kms_demo" (pg_createcluster: port 5433, data in
# /var/lib/postgresql/15/pg_kms_demo, settings in
# /etc/postgresql/15/pg_kms_demo/conf.d/pg_kms.conf) preloading pg_kms,
# starts it (restarts it when the build or the settings changed), creates or
# updates the extension and runs the example.  The server is left running
# and starts at boot with the other Debian clusters
# (pg_ctlcluster 15 pg_kms_demo start|stop|status).  Safe to run again.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=/usr/bin/pg_config
PGBIN=/usr/lib/postgresql/15/bin
KEYDIR=/etc/pg_kms
KEYFILE=$KEYDIR/master.key
CLUSTER=pg_kms_demo
CONFDIR=/etc/postgresql/15/$CLUSTER
LOGFILE=/var/log/postgresql/postgresql-15-$CLUSTER.log
SOCKDIR=/var/run/postgresql
PORT=5433
# the demo cluster of earlier quick starts (a plain initdb directory)
OLD_PGDATA=/var/lib/postgresql/pg_kms_demo
export PATH="$PGBIN:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C.UTF-8 LANG=C.UTF-8

say() { printf '\n==> %s\n' "$*"; }
as_pg() { (cd / && runuser -u postgres -- env PATH="$PATH" "$@"); }

if [ "$(id -u)" -ne 0 ]; then
	echo "run as root: sudo bash scripts/quickstart.sh" >&2
	exit 1
fi

say "installing packages (if missing)"
bash "$REPO/scripts/install-deps.sh"

say "building and installing pg_kms"
cd "$REPO"
# Incremental: make rebuilds what changed.  A build made against another
# PostgreSQL is cleaned first.
stamp=.quickstart-build
if [ "$(cat "$stamp" 2>/dev/null)" != "$($PG_CONFIG --version)" ]; then
	make --no-print-directory PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1 || true
fi
make --no-print-directory -j2 PG_CONFIG="$PG_CONFIG" </dev/null >/tmp/pg_kms_quickstart_build.log 2>&1 ||
	{ tail -n 40 /tmp/pg_kms_quickstart_build.log; echo "build failed (full log: /tmp/pg_kms_quickstart_build.log)" >&2; exit 1; }
$PG_CONFIG --version >"$stamp"
# Install only what differs from the installed files.
ext="$($PG_CONFIG --sharedir)/extension"
changed=0
cmp -s pg_kms.so "$($PG_CONFIG --pkglibdir)/pg_kms.so" || changed=1
for f in pg_kms.control sql/pg_kms--*.sql; do
	cmp -s "$f" "$ext/$(basename "$f")" || changed=1
done
if [ $changed = 1 ]; then
	make --no-print-directory PG_CONFIG="$PG_CONFIG" install </dev/null >>/tmp/pg_kms_quickstart_build.log 2>&1 ||
		{ tail -n 40 /tmp/pg_kms_quickstart_build.log; echo "make install failed" >&2; exit 1; }
	echo "installed $($PG_CONFIG --pkglibdir)/pg_kms.so"
else
	echo "up to date: $($PG_CONFIG --pkglibdir)/pg_kms.so"
fi

say "master key $KEYFILE"
install -d -m 0750 -o root -g postgres "$KEYDIR"
if [ -e "$KEYFILE" ]; then
	echo "exists, kept as it is"
else
	tmp=$(mktemp "$KEYDIR/.master.key.XXXXXX")
	chmod 600 "$tmp"
	od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp"
	echo >>"$tmp"
	chown postgres:postgres "$tmp"
	mv -n "$tmp" "$KEYFILE"
	rm -f "$tmp"
	echo "created (32 random bytes, hex). Back it up: data encrypted under it is lost without it."
fi
# The server insists on a key that only its owner can read.
chown postgres:postgres "$KEYFILE"
chmod 600 "$KEYFILE"

say "demo cluster 15/$CLUSTER (port $PORT)"
# An earlier quick start's plain demo server holds the port: stop it (its
# data stays where it is).
if [ -f "$OLD_PGDATA/postmaster.pid" ]; then
	as_pg pg_ctl -D "$OLD_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
	echo "stopped the demo server of an earlier quick start ($OLD_PGDATA, kept)"
fi
cluster_status() { pg_lsclusters -h 2>/dev/null | awk -v c="$CLUSTER" '$1 == "15" && $2 == c {print $4}'; }
if [ -z "$(cluster_status)" ]; then
	if [ -S "$SOCKDIR/.s.PGSQL.$PORT" ] || (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
		echo "port $PORT is taken by another server: stop it, or free the port, and run again" >&2
		exit 1
	fi
	pg_createcluster 15 "$CLUSTER" --port "$PORT" --locale C.UTF-8 --encoding UTF8 \
		-- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
	# Local connections as the database user postgres: OS users postgres and
	# root (and the sudo caller) through a peer map; everyone else by peer
	# name or with a password over TCP.
	cat >"$CONFDIR/pg_hba.conf" <<-'HBA'
		# pg_kms demo cluster (scripts/quickstart.sh)
		local   all   postgres                  peer map=pg_kms_demo
		local   all   all                       peer
		host    all   all       127.0.0.1/32    scram-sha-256
		host    all   all       ::1/128         scram-sha-256
	HBA
	printf 'pg_kms_demo  postgres  postgres\npg_kms_demo  root      postgres\n' >>"$CONFDIR/pg_ident.conf"
	if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && [ "$SUDO_USER" != postgres ]; then
		printf 'pg_kms_demo  %s  postgres\n' "$SUDO_USER" >>"$CONFDIR/pg_ident.conf"
	fi
	chown postgres:postgres "$CONFDIR/pg_hba.conf" "$CONFDIR/pg_ident.conf"
	echo "created (pg_createcluster 15 $CLUSTER)"
else
	echo "exists"
fi
install -d -o postgres -g postgres "$CONFDIR/conf.d"
conf="$CONFDIR/conf.d/pg_kms.conf"
new_conf="# written by scripts/quickstart.sh (rewritten on every run)
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$KEYFILE'"
conf_changed=0
if [ "$(cat "$conf" 2>/dev/null)" != "$new_conf" ]; then
	printf '%s\n' "$new_conf" >"$conf"
	chown postgres:postgres "$conf"
	conf_changed=1
fi

if [ "$(cluster_status)" = online ]; then
	# restart only when the build or the settings changed
	action=""
	if [ $changed = 1 ] || [ $conf_changed = 1 ]; then action=restart; fi
else
	action=start
fi
if [ -n "$action" ]; then
	if ! pg_ctlcluster 15 "$CLUSTER" "$action"; then
		tail -n 30 "$LOGFILE" >&2 || true
		echo "could not $action the demo cluster (log: $LOGFILE)" >&2
		exit 1
	fi
	echo "server ${action}ed (log: $LOGFILE)"
else
	echo "running; nothing changed"
fi

# A demo database made by an older version is upgraded in place (its keys
# and secrets stay).  One made by another development build of the same
# version keeps that build's objects (CREATE EXTENSION IF NOT EXISTS adds
# nothing): that is reported, and the script stops; it never drops the
# extension.
version=$(sed -nE "s/^default_version = '([^']+)'.*/\1/p" "$(pg_config --sharedir)/extension/pg_kms.control")
script="$(pg_config --sharedir)/extension/pg_kms--$version.sql"
installed=$(as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -Atq -c \
	"SELECT count(*) FROM pg_extension WHERE extname = 'pg_kms'")
if [ "$installed" = "1" ]; then
	as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
		-c "SET client_min_messages = warning" -c "ALTER EXTENSION pg_kms UPDATE"
fi
if [ "$installed" = "1" ] && [ -f "$script" ]; then
	# Compare the demo database's pg_kms objects (columns of kms.*, the
	# extension's functions) with a fresh install of this build's script.
	probe="SELECT string_agg(x, ',' ORDER BY x) FROM (
		SELECT c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) AS x
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		 WHERE c.relnamespace = 'kms'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
		UNION ALL
		SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
		  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
		  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_kms') s"
	q() { as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d "$1" -Atq -v ON_ERROR_STOP=1 -c "$2"; }
	q postgres "DROP DATABASE IF EXISTS pg_kms_quickstart_probe" >/dev/null
	q postgres "CREATE DATABASE pg_kms_quickstart_probe" >/dev/null
	q pg_kms_quickstart_probe "SET client_min_messages = warning; CREATE EXTENSION pg_kms" >/dev/null
	want_schema=$(q pg_kms_quickstart_probe "$probe")
	q postgres "DROP DATABASE pg_kms_quickstart_probe" >/dev/null
	if [ "$(q postgres "$probe")" != "$want_schema" ]; then
		# Never drop the extension: its keys may be the only copy of
		# what encrypted data depends on.  Say what to do instead.
		echo "the demo database holds pg_kms objects of another development build of version $version," >&2
		echo "which differ from this build's; it is left as it is." >&2
		echo "To start the demo afresh (its keys and secrets are lost): sudo pg_dropcluster 15 $CLUSTER --stop" >&2
		echo "and run this script again." >&2
		exit 1
	fi
fi

say "example: KMS (aws kms create-key, create-alias, encrypt, decrypt)"
as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<'SQL'
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_kms;
RESET client_min_messages;
\set ECHO queries
SELECT kms_create_key(description => 'MyKMSKey quick start') AS key_id \gset
\echo :key_id
\set ECHO none
SELECT EXISTS (SELECT 1 FROM kms_list_aliases() WHERE alias_name = 'alias/MyKMSKey') AS alias_exists \gset
\if :alias_exists
\echo 'alias/MyKMSKey exists: pointing it at the new key'
\set ECHO queries
SELECT kms_update_alias('alias/MyKMSKey', :'key_id') \gset
\else
\set ECHO queries
SELECT kms_create_alias('alias/MyKMSKey', :'key_id') \gset
\endif
SELECT kms_enable_key_rotation('alias/MyKMSKey') \gset
SELECT alias_name, target_key_id FROM kms_list_aliases() WHERE alias_name = 'alias/MyKMSKey';
SELECT encode(kms_encrypt('alias/MyKMSKey', 'hello, pg_kms'), 'base64') AS ciphertext \gset
\echo :ciphertext
\set ECHO none
\echo 'SELECT kms_decrypt_text(decode(:''ciphertext'', ''base64'')) AS plaintext;'
SELECT kms_decrypt_text(decode(:'ciphertext', 'base64')) AS plaintext;
\pset format unaligned
\pset tuples_only on
\set ECHO queries
SELECT jsonb_pretty(kms_describe_key('alias/MyKMSKey')) AS key_metadata;
\set ECHO none
SQL

say "example: Secrets Manager (create-secret, get-secret-value, rotate-secret)"
# The database user the secret holds: created once, with a random password
# that only the secret knows from then on.
as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q -v port="$PORT" <<'SQL'
\pset footer off
SET client_min_messages = warning;
-- get_secret raises when the secret does not exist
DO $$
BEGIN
	PERFORM get_secret('MyDatabaseSecret');
	PERFORM set_config('quickstart.secret_exists', 'true', false);
EXCEPTION WHEN OTHERS THEN
	PERFORM set_config('quickstart.secret_exists', 'false', false);
END $$;
SELECT NOT current_setting('quickstart.secret_exists')::boolean AS secret_missing,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') AS role_missing \gset
RESET client_min_messages;
\if :secret_missing
\set ECHO queries
SELECT create_secret('MyDatabaseSecret',
       jsonb_build_object('engine', 'postgres', 'host', 'localhost', 'port', :port,
                          'username', 'app', 'password', get_random_password(),
                          'dbname', 'postgres')::text,
       description => 'the app''s database login') ->> 'Name' AS created;
\set ECHO none
\else
\echo 'secret MyDatabaseSecret exists already'
-- one made by an earlier quick start holds only a user name and password:
-- give it what a rotation needs (an RDS-style value), keeping the password
SELECT NOT (get_secret('MyDatabaseSecret')::jsonb ? 'engine') AS needs_engine \gset
\if :needs_engine
SELECT put_secret_value('MyDatabaseSecret',
       (get_secret('MyDatabaseSecret')::jsonb || jsonb_build_object('engine', 'postgres', 'host', 'localhost',
        'port', :port, 'username', 'app', 'dbname', 'postgres'))::text) ->> 'Name' AS updated \gset
\endif
\endif
-- the role, with the secret's password when the secret is new; the
-- statement holds the password, so it is kept out of the log
\if :role_missing
CREATE ROLE app LOGIN;
\endif
\if :secret_missing
SET log_statement = 'none';
SELECT format('ALTER ROLE app PASSWORD %L', get_secret('MyDatabaseSecret')::jsonb ->> 'password') \gexec
RESET log_statement;
\endif
\set ECHO queries
SELECT get_secret('MyDatabaseSecret')::jsonb ->> 'username' AS username;
SELECT rotate_secret('MyDatabaseSecret',
       rotation_strategy => 'postgres_single_user',
       rotation_rules => '{"AutomaticallyAfterDays": 30}') ->> 'VersionId' AS rotating_to \gset
\set ECHO none
SQL
# The rotation worker runs the four steps (createSecret, setSecret,
# testSecret, finishSecret); wait for AWSCURRENT to move.
printf 'waiting for the rotation worker'
for i in $(seq 1 60); do
	done_=$(as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -Atq -c \
		"SELECT rotation_token IS NULL FROM kms.secret WHERE name = 'MyDatabaseSecret'")
	[ "$done_" = t ] && break
	printf '.'
	sleep 1
done
echo
as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<'SQL'
\pset footer off
\set ECHO queries
SELECT d ->> 'RotationEnabled' AS rotation_enabled, d -> 'RotationRules' AS rules,
       d ->> 'LastRotationError' AS last_error
  FROM describe_secret('MyDatabaseSecret') d;
SELECT array_to_string(version_stages, ',') AS stages
  FROM list_secret_version_ids('MyDatabaseSecret') ORDER BY created_date DESC LIMIT 2;
SQL

say "example: the seed's get_secret() in Python (psycopg 3), then a login with the rotated password"
as_pg env PGHOST="$SOCKDIR" PGPORT="$PORT" /usr/bin/python3 - <<'PY'
import json
import psycopg

def get_secret():
    # boto3.client('secretsmanager').get_secret_value(SecretId='MyDatabaseSecret')
    with psycopg.connect(dbname='postgres', user='postgres') as conn:
        value = conn.execute('SELECT get_secret(%s)', ('MyDatabaseSecret',)).fetchone()[0]
    return json.loads(value)

secret = get_secret()
print('get_secret():', {k: ('*' * 8 if k == 'password' else v) for k, v in secret.items()})
with psycopg.connect(host='127.0.0.1', port=secret['port'], dbname=secret['dbname'],
                     user=secret['username'], password=secret['password']) as conn:
    who = conn.execute('SELECT current_user').fetchone()[0]
print(f'logged in over TCP (SCRAM) as {who} with the rotated password')
PY

say "example: the audit trail (CloudTrail)"
# events reach kms.audit when the audit worker drains its queue
for i in $(seq 1 60); do
	n=$(as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -Atq -c \
		"SELECT count(*) FROM kms.audit WHERE operation = 'RotationSucceeded'")
	[ "${n:-0}" -gt 0 ] && break
	sleep 1
done
as_pg psql -X -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<'SQL'
\pset footer off
\set ECHO queries
SELECT operation, outcome, sum(event_count) AS calls FROM kms.audit
 WHERE operation IN ('CreateKey', 'Encrypt', 'Decrypt', 'GetSecretValue', 'RotateSecret', 'RotationSucceeded')
 GROUP BY 1, 2 ORDER BY 1, 2;
SQL

say "done: the demo server keeps running"
cat <<EOF
connect:   sudo psql -h $SOCKDIR -p $PORT -U postgres
           (as root or the postgres OS user: psql -h $SOCKDIR -p $PORT -U postgres)
status:    pg_lsclusters        (15/$CLUSTER starts at boot with the other clusters)
stop:      sudo pg_ctlcluster 15 $CLUSTER stop       (or start, restart, status)
master key: $KEYFILE (keep a copy; without it nothing encrypted here can be read)
EOF
