#!/usr/bin/env bash
# scripts/test.sh: run all pg_kms tests on a fresh Debian 12 machine, as root.
#
#   sudo bash scripts/test.sh                  # everything (.ci/run calls this)
#   sudo bash scripts/test.sh --only regress   # or tap | interop | docs | standalone | package | quickstart
#                                              # (--only may be repeated or a,b)
#   PG_KMS_ROOT=/tmp/mine sudo -E bash scripts/test.sh
#                       # install into a private, relocated copy of
#                       # PostgreSQL under that folder instead of /usr, so
#                       # several checkouts can be tested at once
#   PG_KMS_TAP_TESTS='test/t/050_upgrade.pl' sudo -E bash scripts/test.sh --only tap
#                       # only these TAP files
#
# Steps: install packages; build and install the extension; stand-alone
# crypto checks (KAT, fuzz); a throwaway cluster under /tmp preloading pg_kms
# with a generated master key; pg_regress (sql/) and isolation specs
# (test/specs) against it; the interop tests (test/interop/test_*.{sh,py});
# the TAP tests (test/t/*.pl, which make their own clusters); the Debian
# package (scripts/build-deb.sh, lintian, then test/package/test_deb.sh
# installs it with dpkg, uses it, removes it, and make install puts the
# build back).  Everything it
# starts is stopped and every temp dir removed on exit, also on failure.
# The last line is "N passed, M failed"; the exit status is non-zero if
# anything failed.
set -uo pipefail
exec </dev/null

T_START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1

export PG_CONFIG=/usr/bin/pg_config
# PG_KMS_ROOT: a private copy of PostgreSQL 15 (bin, lib, share, relocated:
# postgres finds its share and lib folders relative to its own binary), and
# the extension installed there with DESTDIR.  Empty: the system's.
ROOT=${PG_KMS_ROOT:-}
PGBIN=$ROOT/usr/lib/postgresql/15/bin
# Debian's python3 first (the PATH may carry a pyenv python without
# python3-cryptography & co), PostgreSQL's binaries before that.
SAFE_PATH="$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH="$PGBIN:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset PGSERVICE PGPASSWORD PGOPTIONS PGSSLMODE

# Per-step limits (seconds); the whole suite should stay far below CI's 90 min.
TIMEOUT_BUILD=900 TIMEOUT_STANDALONE=900 TIMEOUT_REGRESS=1200 TIMEOUT_INTEROP=300 TIMEOUT_TAP=1800

usage() {
	sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 2
}

ONLY=()
while [ $# -gt 0 ]; do
	case "$1" in
		--only) [ $# -ge 2 ] || usage; IFS=, read -r -a o <<<"$2"; ONLY+=("${o[@]}"); shift 2 ;;
		--only=*) IFS=, read -r -a o <<<"${1#--only=}"; ONLY+=("${o[@]}"); shift ;;
		-h|--help) usage ;;
		*) echo "unknown argument: $1" >&2; usage ;;
	esac
done
for s in "${ONLY[@]+"${ONLY[@]}"}"; do
	case "$s" in regress|tap|interop|docs|standalone|package|quickstart) ;; *) echo "unknown --only value: $s" >&2; usage ;; esac
done
want() {
	[ ${#ONLY[@]} -eq 0 ] && return 0
	local s
	for s in "${ONLY[@]}"; do [ "$s" = "$1" ] && return 0; done
	return 1
}

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh must run as root (it installs packages and the extension, and runs servers as the postgres user): sudo bash scripts/test.sh" >&2
	exit 1
fi

# ---------------------------------------------------------------- bookkeeping
PASSED=0 FAILED=0
STEP_LINES=()
FAIL_NAMES=()
now() { date +%s; }
record() {	# record STEP STATUS NPASS NFAIL SECONDS [note]
	STEP_LINES+=("$(printf '%-12s %-7s %5s %5s %6ss  %s' "$1" "$2" "$3" "$4" "$5" "${6:-}")")
	PASSED=$((PASSED + $3))
	FAILED=$((FAILED + $4))
	[ "$4" -gt 0 ] && FAIL_NAMES+=("$1")
	return 0
}
banner() { printf '\n==== %s ====\n' "$*"; }
bounded() {	# bounded FILE BYTES: print the head of a file, say if cut
	local f=$1 n=${2:-20000}
	[ -s "$f" ] || return 0
	echo "---- $f (first $n bytes) ----"
	head -c "$n" "$f"
	[ "$(stat -c %s "$f")" -gt "$n" ] && echo "... [cut]"
	echo "---- end of $f ----"
}
as_pg() { (cd / && runuser -u postgres -- env PATH="$SAFE_PATH" "$@"); }

# ------------------------------------------------------------ temp dirs, trap
WORK=$(mktemp -d /tmp/pg_kms_test.XXXXXX) || exit 1
chmod 755 "$WORK"
TAPDIR=""
CLUSTER_UP=0
CLEANED=0

stop_cluster() {
	if [ -f "$WORK/data/postmaster.pid" ]; then
		as_pg pg_ctl -D "$WORK/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_pg pg_ctl -D "$WORK/data" -m immediate -w -t 30 stop >/dev/null 2>&1
	fi
	CLUSTER_UP=0
}
cleanup() {
	[ "$CLEANED" = 1 ] && return 0
	CLEANED=1
	# A step still running (we were interrupted): end its process group.
	local p
	p=$(cat "$WORK/child.pid" 2>/dev/null)
	if [ -n "$p" ] && kill -0 -- "-$p" 2>/dev/null; then
		kill -TERM -- "-$p" 2>/dev/null
		sleep 2
		kill -KILL -- "-$p" 2>/dev/null
	fi
	stop_cluster
	# TAP nodes left behind by a killed or timed-out prove: stop exactly those
	# servers whose data directories are in our temp tree.
	if [ -n "$TAPDIR" ] && [ -d "$TAPDIR" ]; then
		find "$TAPDIR" -name postmaster.pid -type f 2>/dev/null | while read -r pidf; do
			as_pg pg_ctl -D "$(dirname "$pidf")" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		done
		rm -rf "$TAPDIR"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

finish() {
	cleanup
	banner "summary"
	local l
	printf '%-12s %-7s %5s %5s %7s\n' step result pass fail time
	for l in "${STEP_LINES[@]+"${STEP_LINES[@]}"}"; do echo "$l"; done
	[ ${#FAIL_NAMES[@]} -gt 0 ] && echo "failed steps: ${FAIL_NAMES[*]}"
	echo "total time: $(( $(now) - T_START ))s"
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# run_logged LOGFILE TIMEOUT CMD...: run CMD (in $RUN_CWD if set) with a time
# limit, show its output live and keep a copy.  The command runs in its own
# process group (timeout's), recorded so that cleanup can end it when we are
# interrupted.
run_logged() {
	local log=$1 to=$2 rc
	shift 2
	rm -f "$log.rc"
	(
		cd "${RUN_CWD:-.}" || exit 1
		timeout --kill-after=30 "$to" "$@" </dev/null &
		echo $! >"$WORK/child.pid"
		wait $!
		echo $? >"$log.rc"
	) 2>&1 | tee "$log" &
	wait $!
	rm -f "$WORK/child.pid"
	rc=$(cat "$log.rc" 2>/dev/null) || rc=1
	[ "$rc" -eq 124 ] && echo "!! timed out after ${to}s: $*" | tee -a "$log"
	return "$rc"
}

# ------------------------------------------------------------------- 1. deps
banner "install dependencies"
t=$(now)
if ! bash "$REPO/scripts/install-deps.sh"; then
	record deps FAIL 0 1 $(( $(now) - t )) "scripts/install-deps.sh failed"
	finish
fi

if [ -n "$ROOT" ]; then
	mkdir -p "$ROOT/usr/lib/postgresql" "$ROOT/usr/share/postgresql"
	[ -x "$PGBIN/postgres" ] || cp -a /usr/lib/postgresql/15 "$ROOT/usr/lib/postgresql/"
	[ -d "$ROOT/usr/share/postgresql/15" ] || cp -a /usr/share/postgresql/15 "$ROOT/usr/share/postgresql/"
	chmod 755 "$ROOT" "$ROOT/usr" 2>/dev/null
	echo "private PostgreSQL in $ROOT (PG_KMS_ROOT)"
fi
INSTALL_ARGS=()
[ -n "$ROOT" ] && INSTALL_ARGS=(DESTDIR="$ROOT")

# -------------------------------------------------------- 2. standalone crypto
if want standalone; then
	banner "stand-alone crypto checks (make check-standalone)"
	t=$(now)
	if [ ! -f test/kat/kat_gcm.c ] && [ ! -f test/fuzz/fuzz_ciphertext.c ]; then
		echo "SKIP: test/kat/kat_gcm.c and test/fuzz/fuzz_ciphertext.c do not exist yet"
		record standalone SKIP 0 0 0 "sources not written yet"
	else
		missing_src=""
		for f in test/kat/kat_gcm.c test/fuzz/fuzz_ciphertext.c; do
			[ -f "$f" ] || missing_src="$missing_src $f"
		done
		[ -n "$missing_src" ] && echo "!! missing:$missing_src (the target needs both)"
		rm -f test/kat/kat_gcm test/fuzz/fuzz_ciphertext
		run_logged "$WORK/standalone.log" "$TIMEOUT_STANDALONE" make --no-print-directory PG_CONFIG="$PG_CONFIG" check-standalone
		rc=$?
		# kat_gcm's "N passed, M failed" counts its vectors; the fuzz run
		# (millions of checks) counts as one test.
		read -r np nf < <(awk '
			/^\.\/test\/kat\/kat_gcm/ { s = "kat" }
			/^\.\/test\/fuzz\/fuzz_ciphertext/ { s = "fuzz" }
			/^[0-9]+ passed, [0-9]+ failed$/ {
				if (s == "kat") { p += $1; f += $3 }
				else if (s == "fuzz") { if ($3 == 0) p += 1; else f += 1 }
			}
			END { print p + 0, f + 0 }' "$WORK/standalone.log")
		if [ $rc -eq 0 ]; then
			[ "$np" -eq 0 ] && np=1
			record standalone PASS "$np" "$nf" $(( $(now) - t ))
		else
			[ "$nf" -eq 0 ] && nf=1
			record standalone FAIL "$np" "$nf" $(( $(now) - t )) "make check-standalone"
		fi
	fi
fi

if ! want regress && ! want tap && ! want interop && ! want docs && ! want package && ! want quickstart; then
	finish
fi

# ------------------------------------------------------ 3. build and install
banner "build and install (make clean; make; make install)"
t=$(now)
make --no-print-directory PG_CONFIG="$PG_CONFIG" clean >/dev/null 2>&1
BUILD_OK=0
if run_logged "$WORK/build.log" "$TIMEOUT_BUILD" make --no-print-directory -j2 PG_CONFIG="$PG_CONFIG" &&
	run_logged "$WORK/install.log" "$TIMEOUT_BUILD" make --no-print-directory PG_CONFIG="$PG_CONFIG" "${INSTALL_ARGS[@]+"${INSTALL_ARGS[@]}"}" install; then
	EXTVERSION=$(sed -nE "s/^default_version = '([^']+)'.*/\1/p" pg_kms.control)
	if [ -f "$ROOT$($PG_CONFIG --pkglibdir)/pg_kms.so" ] && [ -f "$ROOT$($PG_CONFIG --sharedir)/extension/pg_kms--$EXTVERSION.sql" ]; then
		BUILD_OK=1
	else
		echo "!! make install did not install pg_kms.so and pg_kms--$EXTVERSION.sql"
	fi
fi
if [ $BUILD_OK = 1 ]; then
	record build PASS 0 0 $(( $(now) - t ))
else
	record build FAIL 0 1 $(( $(now) - t )) "build/install failed; server tests not run"
	for s in regress tap interop; do want $s && record $s "NOT RUN" 0 1 0 "build failed"; done
	finish
fi

# --------------------------------------------------- 4. throwaway cluster
free_port() {	# a random high port nobody listens on (loopback or socket)
	local p i
	for i in $(seq 1 100); do
		p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
		[ -e "$WORK/.s.PGSQL.$p" ] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

start_cluster() {
	banner "throwaway cluster in $WORK"
	chown postgres:postgres "$WORK"
	# Master key: 64 hex chars + newline, owned by postgres, 0600, outside PGDATA.
	( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/master.key"; echo >>"$WORK/master.key" )
	chown postgres:postgres "$WORK/master.key"
	chmod 600 "$WORK/master.key"
	if ! as_pg initdb -D "$WORK/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1; then
		cat "$WORK/initdb.log"
		return 1
	fi
	local attempt
	for attempt in 1 2 3; do
		PORT=$(free_port) || { echo "!! no free port found"; return 1; }
		cat >"$WORK/data/pg_kms_test.conf" <<-EOF
			# written by scripts/test.sh
			port = $PORT
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$WORK'
			shared_preload_libraries = 'pg_kms'
			pg_kms.master_key_file = '$WORK/master.key'
			fsync = off
			full_page_writes = off
			synchronous_commit = off
			max_prepared_transactions = 10
			logging_collector = off
			lc_messages = 'C'
			log_min_messages = warning
			log_line_prefix = '%m [%p] %q%a '
		EOF
		# Optional extra settings the test suite needs (e.g. worker naptimes).
		if [ -f "$REPO/test/test.conf" ]; then
			cat "$REPO/test/test.conf" >>"$WORK/data/pg_kms_test.conf"
		fi
		chown postgres:postgres "$WORK/data/pg_kms_test.conf"
		grep -q "^include = 'pg_kms_test.conf'" "$WORK/data/postgresql.conf" ||
			echo "include = 'pg_kms_test.conf'" >>"$WORK/data/postgresql.conf"
		if as_pg pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w -t 60 start >"$WORK/pg_ctl.log" 2>&1; then
			CLUSTER_UP=1
			break
		fi
		cat "$WORK/pg_ctl.log"
		# A port race is worth another try; anything else is not.
		grep -q 'could not bind\|already in use' "$WORK/server.log" 2>/dev/null || return 1
	done
	[ "$CLUSTER_UP" = 1 ] || return 1
	export PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
	if ! psql -X -q -v ON_ERROR_STOP=1 -c 'SELECT 1' >/dev/null; then
		echo "!! the server started but does not answer"
		return 1
	fi
	echo "server up: PGHOST=$PGHOST PGPORT=$PGPORT; $(psql -XAtc 'SHOW shared_preload_libraries')"
	return 0
}

server_log_tail() {
	if [ -s "$WORK/server.log" ]; then
		echo "---- server log (last 60 lines of $WORK/server.log) ----"
		tail -n 60 "$WORK/server.log" | head -c 20000
		echo "---- end of server log ----"
	fi
}

# parse_pg_regress LOG: sets NP / NF from "name ... ok" / "... FAILED" lines.
parse_pg_regress() {
	NP=$(grep -cE '\.\.\. +ok( |$)' "$1" || true)
	NF=$(grep -cE '\.\.\. +(FAILED|failed)( |$)' "$1" || true)
}

CLUSTER_OK=0
WANT_SERVER_LOG=0
if want regress || want interop || want docs; then
	t=$(now)
	if start_cluster; then
		CLUSTER_OK=1
		record cluster PASS 0 0 $(( $(now) - t ))
	else
		server_log_tail
		record cluster FAIL 0 1 $(( $(now) - t )) "could not start the throwaway cluster"
		want regress && record regress "NOT RUN" 0 1 0 "no cluster"
		want interop && record interop "NOT RUN" 0 1 0 "no cluster"
		want docs && record docs "NOT RUN" 0 1 0 "no cluster"
	fi
fi

# ------------------------------------- 4b. layers: include graph, inventory
# Issue 10: src/ includes and calls point one way (make check-layers), and what a
# refactor must not change (messages, settings, shmem, SQL symbols) equals
# test/layers/inventory.before.  PG_KMS_INVENTORY_OUT=FILE keeps a copy of
# the current inventory (to update the file, with the reason in the commit).
if want regress && [ $CLUSTER_OK = 1 ]; then
	banner "layers (make check-layers, test/layers/inventory.sh)"
	t=$(now)
	lp=0 lf=0
	if run_logged "$WORK/layers.log" 120 make --no-print-directory PG_CONFIG="$PG_CONFIG" check-layers; then
		lp=$((lp + 1))
	else
		lf=$((lf + 1))
	fi
	bash test/layers/inventory.sh "$REPO/pg_kms.so" >"$WORK/inventory.now" 2>&1
	[ -n "${PG_KMS_INVENTORY_OUT:-}" ] && cp "$WORK/inventory.now" "$PG_KMS_INVENTORY_OUT"
	if diff -u test/layers/inventory.before "$WORK/inventory.now"; then
		lp=$((lp + 1))
	else
		echo "!! inventory differs from test/layers/inventory.before (see above)"
		lf=$((lf + 1))
	fi
	if [ $lf -gt 0 ]; then
		record layers FAIL $lp $lf $(( $(now) - t ))
	else
		record layers PASS $lp 0 $(( $(now) - t ))
	fi
fi

# ------------------------------------------------ 5. pg_regress + isolation
if want regress && [ $CLUSTER_OK = 1 ]; then
	banner "pg_regress (sql/ -> expected/)"
	t=$(now)
	rm -rf results regression.diffs regression.out
	if ! compgen -G 'sql/[0-9]*.sql' >/dev/null; then
		echo "SKIP: no sql/[0-9]*.sql tests yet"
		record regress SKIP 0 0 0 "no tests yet"
	else
		run_logged "$WORK/regress.log" "$TIMEOUT_REGRESS" \
			make --no-print-directory PG_CONFIG="$PG_CONFIG" installcheck TAP_TESTS= ISOLATION=
		rc=$?
		parse_pg_regress "$WORK/regress.log"
		if [ $rc -ne 0 ]; then
			[ "$NF" -eq 0 ] && NF=1
			bounded regression.diffs 30000
			WANT_SERVER_LOG=1
			record regress FAIL "$NP" "$NF" $(( $(now) - t )) "see regression.diffs"
		else
			record regress PASS "$NP" 0 $(( $(now) - t ))
		fi
	fi

	banner "isolation (test/specs -> test/expected)"
	t=$(now)
	rm -rf test/output_iso
	if ! compgen -G 'test/specs/*.spec' >/dev/null; then
		echo "SKIP: no test/specs/*.spec yet"
		record isolation SKIP 0 0 0 "no specs yet"
	else
		run_logged "$WORK/isolation.log" "$TIMEOUT_REGRESS" \
			make --no-print-directory PG_CONFIG="$PG_CONFIG" installcheck TAP_TESTS= REGRESS=
		rc=$?
		parse_pg_regress "$WORK/isolation.log"
		if [ $rc -ne 0 ]; then
			[ "$NF" -eq 0 ] && NF=1
			bounded test/output_iso/regression.diffs 30000
			WANT_SERVER_LOG=1
			record isolation FAIL "$NP" "$NF" $(( $(now) - t )) "see test/output_iso/regression.diffs"
		else
			record isolation PASS "$NP" 0 $(( $(now) - t ))
		fi
	fi
fi

# -------------------------------------------------------------- 6. interop
if want interop && [ $CLUSTER_OK = 1 ]; then
	banner "interop tests (test/interop/test_*.sh|py)"
	t=$(now)
	IP=0 IF=0 names=""
	for f in test/interop/test_*.sh test/interop/test_*.py; do
		[ -f "$f" ] || continue
		if [ ! -x "$f" ]; then
			echo "!! $f is not executable: not run (chmod +x it)"
			continue
		fi
		case "$f" in
			*.py) cmd=(/usr/bin/python3 "$f") ;;
			*) cmd=(bash "$f") ;;
		esac
		echo "--- $f"
		ti=$(now)
		if run_logged "$WORK/interop.log" "$TIMEOUT_INTEROP" env PATH="$SAFE_PATH" \
			PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" PGDATABASE="$PGDATABASE" \
			PG_KMS_MASTER_KEY_FILE="$WORK/master.key" PG_KMS_SERVER_LOG="$WORK/server.log" "${cmd[@]}"; then
			echo "ok   $f ($(( $(now) - ti ))s)"
			# a file that counts its checks ("N passed, M failed") adds them
			n=$(sed -nE 's/^([0-9]+) passed, 0 failed$/\1/p' "$WORK/interop.log" | tail -n 1)
			IP=$((IP + ${n:-1}))
		else
			echo "FAIL $f ($(( $(now) - ti ))s)"
			IF=$((IF + 1))
			names="$names $(basename "$f")"
		fi
	done
	if [ $((IP + IF)) -eq 0 ]; then
		echo "SKIP: no executable test/interop/test_*.sh|py yet"
		record interop SKIP 0 0 0 "no tests yet"
	elif [ $IF -gt 0 ]; then
		WANT_SERVER_LOG=1
		record interop FAIL $IP $IF $(( $(now) - t )) "failed:$names"
	else
		record interop PASS $IP 0 $(( $(now) - t ))
	fi
fi

# ---------------------------------------------------------------- 6b. docs
if want docs && [ $CLUSTER_OK = 1 ]; then
	banner "documentation examples (test/docs/run_doc_examples.py over README.md, docs/)"
	t=$(now)
	run_logged "$WORK/docs.log" "$TIMEOUT_INTEROP" env PATH="$SAFE_PATH" \
		PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" /usr/bin/python3 test/docs/run_doc_examples.py
	rc=$?
	read -r np nf < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$WORK/docs.log" | tail -n 1)
	np=${np:-0} nf=${nf:-0}
	if [ $rc -eq 0 ]; then
		record docs PASS "$np" 0 $(( $(now) - t ))
	else
		[ "$nf" -eq 0 ] && nf=1
		WANT_SERVER_LOG=1
		record docs FAIL "$np" "$nf" $(( $(now) - t ))
	fi
fi

[ "$WANT_SERVER_LOG" = 1 ] && server_log_tail
stop_cluster

# ------------------------------------------------------------------ 7. TAP
if want tap; then
	banner "TAP tests (test/t/*.pl)"
	t=$(now)
	if ! compgen -G 'test/t/*.pl' >/dev/null; then
		echo "SKIP: no test/t/*.pl yet"
		record tap SKIP 0 0 0 "no tests yet"
	else
		# PostgreSQL::Test::Cluster runs initdb and postgres, which refuse
		# root: run prove as postgres in a copy of the tree it can write.
		# TAP 126 checks the aws provider against an AWS emulator none of us
		# wrote (moto, with IAM signature checks).  moto is not packaged in
		# Debian 12 or npm: when this machine has one installed (PATH, or
		# root's pyenv), start it for that test; otherwise 126 skips.
		MOTO_PID=
		if [ -z "${PG_KMS_MOTO_URL:-}" ]; then
			moto=$(command -v moto_server 2>/dev/null || true)
			[ -z "$moto" ] && [ -x "${HOME:-/root}/.pyenv/shims/moto_server" ] && moto="${HOME:-/root}/.pyenv/shims/moto_server"
			if [ -n "$moto" ]; then
				mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
				INITIAL_NO_AUTH_ACTION_COUNT=4 "$moto" -p "$mport" >"$WORK/moto.log" 2>&1 &
				MOTO_PID=$!
				for _ in $(seq 1 100); do
					python3 -c "import socket; socket.create_connection(('127.0.0.1', $mport), 1)" 2>/dev/null && break
					sleep 0.1
				done
				export PG_KMS_MOTO_URL="http://127.0.0.1:$mport"
				echo "moto_server ($moto) on port $mport for TAP 126"
			fi
		fi
		TAPDIR=$(mktemp -d /tmp/pg_kms_tap.XXXXXX)
		tar -C "$REPO" --exclude=./.git --exclude=./tmp_check --exclude=./results -cf - . | tar -C "$TAPDIR" -xf -
		chown -R postgres:postgres "$TAPDIR"
		RUN_CWD=/ run_logged "$WORK/tap.log" "$TIMEOUT_TAP" runuser -u postgres -- env PATH="$SAFE_PATH" \
			${PG_KMS_MOTO_URL:+PG_KMS_MOTO_URL="$PG_KMS_MOTO_URL"} \
			make --no-print-directory -C "$TAPDIR" PG_CONFIG="$PG_CONFIG" bindir="$PGBIN" installcheck REGRESS= ISOLATION= \
			${PG_KMS_TAP_TESTS:+PROVE_TESTS="$PG_KMS_TAP_TESTS"}
		rc=$?
		if [ -n "$MOTO_PID" ]; then
			kill "$MOTO_PID" 2>/dev/null
			wait "$MOTO_PID" 2>/dev/null
			unset PG_KMS_MOTO_URL
		fi
		total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$WORK/tap.log" | tail -n 1)
		total=${total:-0}
		# Failed subtests count one each; a file in the summary report with
		# none failed died or had a wrong plan: it counts as one failure.
		read -r nfsub ndied < <(sed -nE 's/.*\(Wstat: .*Tests: [0-9]+ Failed: ([0-9]+)\).*/\1/p' "$WORK/tap.log" |
			awk '{ if ($1 > 0) f += $1; else d += 1 } END { print f + 0, d + 0 }')
		np=$(( total - nfsub ))
		nf=$(( nfsub + ndied ))
		[ $np -lt 0 ] && np=0
		if [ $rc -ne 0 ]; then
			[ "$nf" -eq 0 ] && nf=1
			for lf in "$TAPDIR"/tmp_check/log/regress_log_*; do
				[ -f "$lf" ] || continue
				b=$(basename "$lf"); b=${b#regress_log_}
				if grep -qE "^test/t/$b\.pl .*(Wstat|Dubious|Failed)|^test/t/$b\.pl \(Wstat" "$WORK/tap.log"; then
					echo "---- last 80 lines of $b's log ----"
					tail -n 80 "$lf" | head -c 20000
				fi
			done
			record tap FAIL $np "$nf" $(( $(now) - t )) "see output above"
		else
			record tap PASS $np 0 $(( $(now) - t ))
		fi
	fi
fi

# -------------------------------------------------------------- 8. package
if want package; then
	banner "Debian package (scripts/build-deb.sh, test/package/test_deb.sh)"
	t=$(now)
	if /usr/bin/python3 test/package/validate_meta.py; then
		record meta PASS 1 0 0 "META.json (PGXN Meta Spec 1.0.0)"
	else
		record meta FAIL 0 1 0 "META.json (PGXN Meta Spec 1.0.0)"
	fi
	if [ -n "$ROOT" ]; then
		echo "SKIP: the package test installs into the system; not with PG_KMS_ROOT"
		record package SKIP 0 0 0 "PG_KMS_ROOT set"
	elif run_logged "$WORK/deb.log" "$TIMEOUT_BUILD" bash "$REPO/scripts/build-deb.sh" "$WORK/deb"; then
		run_logged "$WORK/package.log" "$TIMEOUT_INTEROP" bash "$REPO/test/package/test_deb.sh" "$WORK/deb"
		rc=$?
		read -r np nf < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$WORK/package.log" | tail -n 1)
		np=${np:-0} nf=${nf:-0}
		# the package is removed again: put this build back where it was
		make --no-print-directory PG_CONFIG="$PG_CONFIG" install >/dev/null 2>&1
		if [ $rc -eq 0 ]; then
			record package PASS $((np + 1)) 0 $(( $(now) - t )) "build + lintian counted as one"
		else
			[ "$nf" -eq 0 ] && nf=1
			record package FAIL $((np + 1)) "$nf" $(( $(now) - t ))
		fi
	else
		record package FAIL 0 1 $(( $(now) - t )) "scripts/build-deb.sh failed"
	fi
fi

# ----------------------------------------------------------- 9. quick start
if want quickstart; then
	banner "quick start (scripts/quickstart.sh, twice; README transcript)"
	t=$(now)
	if [ -n "$ROOT" ]; then
		echo "SKIP: the quick start installs into the system; not with PG_KMS_ROOT"
		record quickstart SKIP 0 0 0 "PG_KMS_ROOT set"
	else
		had_cluster=0 had_key=0
		[ -n "$(pg_lsclusters -h 2>/dev/null | awk '$1 == "15" && $2 == "pg_kms_demo"')" ] && had_cluster=1
		[ -e /etc/pg_kms/master.key ] && had_key=1
		qp=0 qf=0
		if run_logged "$WORK/quickstart1.log" "$TIMEOUT_INTEROP" bash "$REPO/scripts/quickstart.sh"; then
			qp=$((qp + 1))
			if [ $had_cluster = 0 ]; then
				# a first run: the README shows its output
				if /usr/bin/python3 test/docs/check_quickstart.py README.md "$WORK/quickstart1.log"; then
					qp=$((qp + 1))
				else
					qf=$((qf + 1))
				fi
			fi
		else
			echo "!! scripts/quickstart.sh failed"
			qf=$((qf + 1))
		fi
		if run_logged "$WORK/quickstart2.log" "$TIMEOUT_INTEROP" bash "$REPO/scripts/quickstart.sh" &&
			grep -q 'logged in over TCP (SCRAM) as app with the rotated password' "$WORK/quickstart2.log" &&
			grep -q '^up to date: ' "$WORK/quickstart2.log"; then
			echo "ok - a second run rebuilds nothing and rotates the secret again"
			qp=$((qp + 1))
		else
			echo "not ok - a second run of scripts/quickstart.sh"
			qf=$((qf + 1))
		fi
		if [ $had_cluster = 0 ]; then
			pg_dropcluster 15 pg_kms_demo --stop >/dev/null 2>&1
		fi
		[ $had_key = 0 ] && rm -f /etc/pg_kms/master.key
		if [ $qf -eq 0 ]; then
			record quickstart PASS $qp 0 $(( $(now) - t ))
		else
			record quickstart FAIL $qp $qf $(( $(now) - t ))
		fi
	fi
fi

finish
