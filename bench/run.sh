#!/usr/bin/env bash
# bench/run.sh: pg_kms benchmark (what `make bench` runs).
#
#   sudo bash bench/run.sh               # full run: every section (about 25 minutes on 2 cores)
#   sudo bash bench/run.sh --quick       # smoke run (about 6 minutes)
#   sudo bash bench/run.sh --no-build    # skip install-deps and make install
#   PG_KMS_ROOT=/tmp/mine sudo -E bash bench/run.sh
#                       # a private, relocated copy of PostgreSQL under that
#                       # folder (as scripts/test.sh makes), pg_kms installed
#                       # there with DESTDIR, instead of the system's
#
# One throwaway cluster (mktemp dir in /tmp, owned by the postgres OS user,
# unix socket in that dir, free port), stopped and removed on exit.  Per-row
# cost of kms_encrypt/kms_decrypt against a scan baseline, md5 and pgcrypto
# (EXPLAIN (ANALYZE, TIMING OFF) execution time, functions interleaved in a
# random order per rep, medians), per-call TPS through pgbench -M simple,
# provider calls from kms_cache_stats(), and backend peak memory (VmHWM).
# Method: docs/performance.md.  Sizes via environment variables:
#   BENCH_ROWS_100 (1000000)  BENCH_ROWS_32 (100000)  BENCH_ROWS_4K (1000)
#   BENCH_REPS (7)  BENCH_PGBENCH_SECONDS (10)  BENCH_PGBENCH_ROUNDS (3)
#   BENCH_PGP_ROWS (2000)  BENCH_SEED (random order seed; default: time)
#   BENCH_KEY_CACHE_TTL (3600: pg_kms.key_cache_ttl, seconds, beyond the run)
#   BENCH_TCE_ROWS (1000000: rows of 100 B of the column encryption section)
#   BENCH_TCE_LOOKUPS (20000)  BENCH_ONLY=tce|audit (that section alone)
#   BENCH_PARALLEL_ROWS (5000000)  BENCH_ONLY=parallel (bench/bench_parallel.py alone)
#   BENCH_ONLY=scale: bench/bench_scale.py (BENCH_SCALE_KEYS, BENCH_SCALE_SECRETS)
# The last line is "N passed, M failed" over the bar checks; the exit status
# is 0 even when a bar is missed, and non-zero only when the run broke.
set -uo pipefail
exec </dev/null

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1

ROOT=${PG_KMS_ROOT:-}
PGBIN=$ROOT/usr/lib/postgresql/15/bin
export PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
SAFE_PATH="$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH="$PGBIN:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C.UTF-8 LANG=C.UTF-8
unset PGSERVICE PGPASSWORD PGOPTIONS PGSSLMODE PGDATABASE PGUSER PGHOST PGPORT

usage() {
	sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 2
}

QUICK=0 BUILD=1
while [ $# -gt 0 ]; do
	case "$1" in
		--quick) QUICK=1 ;;
		--no-build) BUILD=0 ;;
		-h|--help) usage ;;
		*) echo "unknown argument: $1" >&2; usage ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	: "${BENCH_ROWS_100:=100000}" "${BENCH_ROWS_32:=10000}" "${BENCH_ROWS_4K:=200}"
	: "${BENCH_REPS:=3}" "${BENCH_PGBENCH_SECONDS:=3}" "${BENCH_PGBENCH_ROUNDS:=3}" "${BENCH_PGP_ROWS:=300}"
	: "${BENCH_TCE_ROWS:=100000}" "${BENCH_PARALLEL_ROWS:=500000}"
	: "${BENCH_SCALE_KEYS:=2500}" "${BENCH_SCALE_SECRETS:=10000}"
else
	: "${BENCH_ROWS_100:=1000000}" "${BENCH_ROWS_32:=100000}" "${BENCH_ROWS_4K:=1000}"
	: "${BENCH_REPS:=7}" "${BENCH_PGBENCH_SECONDS:=10}" "${BENCH_PGBENCH_ROUNDS:=3}" "${BENCH_PGP_ROWS:=2000}"
	: "${BENCH_TCE_ROWS:=1000000}"
fi
: "${BENCH_SEED:=$(date +%s)}" "${BENCH_KEY_CACHE_TTL:=3600}"
: "${BENCH_TCE_LOOKUPS:=20000}" "${BENCH_ONLY:=}"
for v in BENCH_ROWS_100 BENCH_ROWS_32 BENCH_ROWS_4K BENCH_REPS BENCH_PGBENCH_SECONDS BENCH_PGBENCH_ROUNDS BENCH_PGP_ROWS BENCH_SEED BENCH_KEY_CACHE_TTL BENCH_TCE_ROWS BENCH_TCE_LOOKUPS; do
	case "${!v}" in ''|*[!0-9]*) echo "bench: $v must be a positive integer, got '${!v}'" >&2; exit 2 ;; esac
	[ "${!v}" -gt 0 ] || { echo "bench: $v must be > 0" >&2; exit 2; }
done
case "$BENCH_ONLY" in ''|tce|audit|parallel|scale) ;; *) echo "bench: BENCH_ONLY must be empty, tce, audit, parallel or scale, got '$BENCH_ONLY'" >&2; exit 2 ;; esac
export BENCH_ROWS_100 BENCH_ROWS_32 BENCH_ROWS_4K BENCH_REPS BENCH_PGBENCH_SECONDS BENCH_PGBENCH_ROUNDS BENCH_PGP_ROWS BENCH_SEED BENCH_QUICK=$QUICK
export BENCH_TCE_ROWS BENCH_TCE_LOOKUPS BENCH_ONLY
[ -n "${BENCH_PARALLEL_ROWS:-}" ] && export BENCH_PARALLEL_ROWS
[ -n "${BENCH_SCALE_KEYS:-}" ] && export BENCH_SCALE_KEYS
[ -n "${BENCH_SCALE_SECRETS:-}" ] && export BENCH_SCALE_SECRETS

ME=$(id -u)
if [ "$ME" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || { echo "bench: no 'postgres' OS user (install postgresql-15)" >&2; exit 1; }
	as_pg() { (cd / && runuser -u postgres -- env PATH="$SAFE_PATH" "$@"); }
	PGOS=postgres
else
	# Not root: run the server as ourselves (no build, no package install).
	as_pg() { "$@"; }
	PGOS=$(id -un)
	if [ "$BUILD" = 1 ]; then
		echo "bench: not root, so not building/installing (same as --no-build)"
		BUILD=0
	fi
fi

T0=$(date +%s)
echo "== pg_kms bench ($( [ "$QUICK" = 1 ] && echo quick || echo full ) run) $(date -u '+%Y-%m-%d %H:%M:%S UTC')"

# ------------------------------------------------------------ build/install
if [ "$BUILD" = 1 ]; then
	if [ -f scripts/install-deps.sh ]; then
		bash scripts/install-deps.sh || { echo "bench: install-deps failed" >&2; exit 1; }
	fi
	if [ -n "$ROOT" ]; then
		mkdir -p "$ROOT/usr/lib/postgresql" "$ROOT/usr/share/postgresql"
		[ -x "$PGBIN/postgres" ] || cp -a /usr/lib/postgresql/15 "$ROOT/usr/lib/postgresql/"
		[ -d "$ROOT/usr/share/postgresql/15" ] || cp -a /usr/share/postgresql/15 "$ROOT/usr/share/postgresql/"
		chmod 755 "$ROOT" "$ROOT/usr" 2>/dev/null
	fi
	if ! { make -s >/tmp/pg_kms_bench_build.$$ 2>&1 && make -s install ${ROOT:+DESTDIR="$ROOT"} >>/tmp/pg_kms_bench_build.$$ 2>&1; }; then
		cat /tmp/pg_kms_bench_build.$$
		rm -f /tmp/pg_kms_bench_build.$$
		echo "bench: build/install failed" >&2
		exit 1
	fi
	rm -f /tmp/pg_kms_bench_build.$$
	echo "built and installed pg_kms"
fi

EXTDIR="$ROOT$("$PG_CONFIG" --sharedir)/extension"
for e in pg_kms pgcrypto pg_prewarm; do
	if [ ! -f "$EXTDIR/$e.control" ]; then
		echo "bench: extension $e is not installed ($EXTDIR/$e.control missing);" \
			"install postgresql-contrib (bash scripts/install-deps.sh) and run make install" >&2
		exit 1
	fi
done
command -v pgbench >/dev/null || { echo "bench: pgbench not found" >&2; exit 1; }
[ -x /usr/bin/python3 ] || { echo "bench: /usr/bin/python3 not found" >&2; exit 1; }

# ------------------------------------------------------------ temp dir, trap
WORK=$(mktemp -d /tmp/pg_kms_bench.XXXXXX) || exit 1
chmod 755 "$WORK"
CLEANED=0
cleanup() {
	[ "$CLEANED" = 1 ] && return 0
	CLEANED=1
	if [ -f "$WORK/data/postmaster.pid" ]; then
		as_pg pg_ctl -D "$WORK/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_pg pg_ctl -D "$WORK/data" -m immediate -w -t 30 stop >/dev/null 2>&1
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM HUP

free_port() {	# a random high port nobody listens on
	local p i
	for i in $(seq 1 100); do
		p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# ------------------------------------------------------------ cluster
[ "$ME" -eq 0 ] && chown "$PGOS:" "$WORK"
( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$WORK/master.key"; echo >>"$WORK/master.key" )
[ "$ME" -eq 0 ] && chown "$PGOS:" "$WORK/master.key"
chmod 600 "$WORK/master.key"
if ! as_pg initdb -D "$WORK/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1; then
	cat "$WORK/initdb.log"
	echo "bench: initdb failed" >&2
	exit 1
fi
UP=0
for attempt in 1 2 3; do
	PORT=$(free_port) || { echo "bench: no free port" >&2; exit 1; }
	cat >"$WORK/data/pg_kms_bench.conf" <<-EOF
		# written by bench/run.sh (settings of docs/performance.md)
		port = $PORT
		listen_addresses = ''
		unix_socket_directories = '$WORK'
		shared_preload_libraries = 'pg_kms'
		pg_kms.master_key_file = '$WORK/master.key'
		# The key cache TTL (default 300 s) re-unwraps each key through the
		# provider once per TTL; it is set beyond the run so that the provider
		# count measures the per-row and per-call paths (BENCH_KEY_CACHE_TTL).
		pg_kms.key_cache_ttl = $BENCH_KEY_CACHE_TTL
		shared_buffers = 2GB
		max_parallel_workers_per_gather = 0
		jit = off
		autovacuum = off
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_wal_size = 8GB
		checkpoint_timeout = 1h
		logging_collector = off
		lc_messages = 'C'
		log_min_messages = warning
	EOF
	[ "$ME" -eq 0 ] && chown "$PGOS:" "$WORK/data/pg_kms_bench.conf"
	echo "include = 'pg_kms_bench.conf'" >>"$WORK/data/postgresql.conf"
	if as_pg pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w -t 120 start >"$WORK/pg_ctl.log" 2>&1; then
		UP=1
		break
	fi
	cat "$WORK/pg_ctl.log" "$WORK/server.log" 2>/dev/null | tail -20
	grep -q 'could not bind\|already in use' "$WORK/server.log" 2>/dev/null || break
	sed -i '$d' "$WORK/data/postgresql.conf"
done
[ "$UP" = 1 ] || { echo "bench: the server did not start" >&2; exit 1; }
export PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
export BENCH_WORK="$WORK" BENCH_T0="$T0"
echo "cluster: $WORK (port $PORT, socket in $WORK)"

# bench.py prints the report; its last line is "N passed, M failed".
if [ "$BENCH_ONLY" = parallel ]; then
	/usr/bin/python3 "$REPO/bench/bench_parallel.py"
	exit $?
fi
[ "$BENCH_ONLY" = scale ] && { /usr/bin/python3 "$REPO/bench/bench_scale.py"; exit $?; }
[ -n "$BENCH_ONLY" ] && { /usr/bin/python3 "$REPO/bench/bench.py"; exit $?; }

# The full run: bench.py (per row, per call, tce, audit), then the parallel
# and scale sections, each in a database of its own on the same cluster; the
# last line adds up the three "N passed, M failed" lines.
RC=0 NPASS=0 NFAIL=0
for part in main parallel scale; do
	if [ "$part" = main ]; then
		script=bench.py
	else
		script=bench_$part.py
		psql -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE bench_$part" >/dev/null || { RC=1; NFAIL=$((NFAIL + 1)); continue; }
		echo
		echo "=============================================================================="
	fi
	PGDATABASE=$([ "$part" = main ] && echo postgres || echo "bench_$part") \
		/usr/bin/python3 "$REPO/bench/$script" | tee "$WORK/$part.out"
	prc=${PIPESTATUS[0]}
	[ "$prc" = 0 ] || RC=1
	last=$(tail -n 1 "$WORK/$part.out")
	if [[ "$last" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		NPASS=$((NPASS + BASH_REMATCH[1])) NFAIL=$((NFAIL + BASH_REMATCH[2]))
	else
		NFAIL=$((NFAIL + 1)) RC=1
	fi
done
echo
echo "== whole run (main, parallel, scale): $(( $(date +%s) - T0 )) s"
echo "$NPASS passed, $NFAIL failed"
exit $RC
