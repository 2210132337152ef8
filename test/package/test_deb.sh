#!/usr/bin/env bash
# test/package/test_deb.sh DEB_DIR: install the package built by
# scripts/build-deb.sh and use it: dpkg -i, a throwaway cluster that
# preloads pg_kms from the package's files, CREATE EXTENSION, a key, an
# encrypt/decrypt round trip, a secret; then dpkg -r.  Root only.  Prints
# "N passed, M failed" last.
set -uo pipefail
exec </dev/null
DEBDIR=$1
PGBIN=/usr/lib/postgresql/15/bin
PASS=0 FAIL=0
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; PASS=$((PASS + 1)); else echo "not ok - $2"; FAIL=$((FAIL + 1)); fi; }
as_pg() { (cd / && runuser -u postgres -- "$@"); }

DEB=$(ls "$DEBDIR"/postgresql-15-pg-kms_*.deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || { echo "no postgresql-15-pg-kms .deb in $DEBDIR"; echo "0 passed, 1 failed"; exit 1; }
W=$(mktemp -d /tmp/pg_kms_pkg.XXXXXX)
chmod 755 "$W"
chown postgres:postgres "$W"
cleanup() {
	[ -f "$W/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$W/data" -m immediate -w stop >/dev/null 2>&1
	dpkg -r postgresql-15-pg-kms >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

dpkg -i "$DEB" >"$W/dpkg.log" 2>&1
ok $? "dpkg -i $(basename "$DEB")"
# (the listing is read whole first: grep -q stopping early would SIGPIPE
# dpkg -L, and pipefail would count that as a failure)
files=$(dpkg -L postgresql-15-pg-kms)
grep -qx '/usr/lib/postgresql/15/lib/pg_kms.so' <<<"$files"
ok $? "the package owns pg_kms.so"
for f in pg_kms.control pg_kms--1.0.sql pg_kms--1.1.sql pg_kms--1.0--1.1.sql pg_kms--1.1--1.2.sql pg_kms--1.2.sql pg_kms--1.2--1.3.sql pg_kms--1.3.sql; do
	grep -qx "/usr/share/postgresql/15/extension/$f" <<<"$files"
	ok $? "the package owns $f"
done

( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$W/master.key"; echo >>"$W/master.key" )
chown postgres:postgres "$W/master.key"
as_pg "$PGBIN/initdb" -D "$W/data" -U postgres -A trust --no-sync >"$W/initdb.log" 2>&1
ok $? "initdb"
PORT=$(( 30000 + RANDOM % 20000 ))
cat >>"$W/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$W'
shared_preload_libraries = 'pg_kms'
pg_kms.master_key_file = '$W/master.key'
CONF
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/server.log" -w -t 60 start >/dev/null 2>&1
ok $? "a server preloading the packaged pg_kms starts"
q() { as_pg "$PGBIN/psql" -X -h "$W" -p "$PORT" -U postgres -d postgres -Atq -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
out=$(q "CREATE EXTENSION pg_kms; SELECT extversion FROM pg_extension WHERE extname = 'pg_kms'")
[ "$out" = "$(sed -nE "s/^default_version = '([^']+)'.*/\1/p" /usr/share/postgresql/15/extension/pg_kms.control)" ]
ok $? "CREATE EXTENSION pg_kms ($out)"
k=$(q "SELECT kms_create_key(description => 'package test')")
out=$(q "SELECT convert_from(kms_decrypt(kms_encrypt('$k', 'from the package')), 'UTF8')")
[ "$out" = "from the package" ]
ok $? "encrypt and decrypt with a new key"
out=$(q "SELECT create_secret('pkg/secret', '{\"password\":\"p\"}') IS NOT NULL; SELECT get_secret('pkg/secret')::jsonb ->> 'password'")
[ "$(echo "$out" | tail -n 1)" = "p" ]
ok $? "create_secret and get_secret"
[ $FAIL -gt 0 ] && tail -n 30 "$W/server.log" "$W/dpkg.log" 2>/dev/null
echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
