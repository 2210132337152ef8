#!/usr/bin/env bash
# scripts/install-deps.sh: install the Debian 12 packages pg_kms needs to
# build, run and test.  Idempotent: when everything is installed already it
# only checks, and never touches the network.  Needs root (or sudo) only when
# something is missing.  Never reads stdin.
set -euo pipefail
exec </dev/null

PKGS=(
	postgresql-15 postgresql-server-dev-15
	postgresql-contrib            # pgcrypto, for benchmarks and tests
	libssl-dev libcurl4-openssl-dev build-essential pkg-config
	python3 python3-cryptography python3-botocore python3-psycopg2 python3-psycopg   # interop tests
	libipc-run-perl perl          # TAP tests (PostgreSQL::Test::Cluster, prove)
	openssl libio-socket-ssl-perl # aws TAP tests: the emulator's throwaway CA, HTTPS to its control API
	ca-certificates procps
	debhelper dpkg-dev lintian postgresql-server-dev-all   # the Debian package (scripts/build-deb.sh)
)

# node-postgres interop tests: Debian's Node.js and npm, unless a node is
# installed already.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages already installed"
else
	echo "install-deps: installing ${missing[*]}"
	SUDO=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			SUDO=(sudo -n)
		else
			echo "install-deps: missing packages and not root (run with sudo)" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	ok=0
	for attempt in 1 2 3; do
		if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update -q &&
			"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -q \
				--no-install-recommends "${missing[@]}"; then
			ok=1
			break
		fi
		echo "install-deps: apt-get failed (attempt $attempt), retrying in 10s" >&2
		sleep 10
	done
	if [ $ok -ne 1 ]; then
		echo "install-deps: apt-get install failed" >&2
		exit 1
	fi
fi

# Check that what the build and the tests use is really there.
fail=0
for f in /usr/bin/pg_config /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/pg_ctl \
	/usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk /usr/bin/prove /usr/bin/python3; do
	[ -e "$f" ] || { echo "install-deps: $f is missing" >&2; fail=1; }
done
/usr/bin/python3 -c 'import cryptography, botocore, psycopg2' ||
	{ echo "install-deps: /usr/bin/python3 cannot import cryptography/botocore/psycopg2" >&2; fail=1; }
perl -MIPC::Run -e 1 || { echo "install-deps: perl IPC::Run is missing" >&2; fail=1; }
id postgres >/dev/null 2>&1 || { echo "install-deps: OS user postgres does not exist" >&2; fail=1; }
exit $fail
