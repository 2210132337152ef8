#!/usr/bin/env bash
# scripts/build-deb.sh: build the Debian package postgresql-<major>-pg-kms
# for every PostgreSQL major version installed (debian/pgversions), the
# Debian way (pg_buildext through dh --with pgxs_loop), and check it with
# lintian.  The .deb files land in dist/ (or in the folder given):
#
#   sudo bash scripts/build-deb.sh            # -> dist/postgresql-15-pg-kms_1.3_amd64.deb
#   sudo apt-get install ./dist/postgresql-15-pg-kms_1.3_amd64.deb
#
# The build runs in a copy of the tracked files, so the checkout stays as
# it is.  Exits non-zero if the build fails or lintian reports an error.
set -euo pipefail
exec </dev/null

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$REPO/dist}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

missing=()
for p in debhelper dpkg-dev lintian postgresql-server-dev-all libssl-dev libcurl4-openssl-dev; do
	[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "build-deb: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi

BUILD=$(mktemp -d /tmp/pg_kms_deb.XXXXXX)
trap 'rm -rf "$BUILD"' EXIT
mkdir "$BUILD/pg-kms"
# the files git knows (tracked, or new and not ignored), without build output
(cd "$REPO" && { git ls-files -co --exclude-standard 2>/dev/null || find . -path ./.git -prune -o -type f -print; } |
	grep -vE '(^|/)(dist|tmp_check|results)/|\.(o|so|bc)$' | tar -cf - -T -) | tar -C "$BUILD/pg-kms" -xf -

cd "$BUILD/pg-kms"
pg_buildext checkcontrol >/dev/null 2>&1 || pg_buildext updatecontrol
if ! dpkg-buildpackage -us -uc -b >"$BUILD/build.log" 2>&1; then
	tail -n 60 "$BUILD/build.log"
	echo "build-deb: dpkg-buildpackage failed" >&2
	exit 1
fi
cd "$BUILD"
echo "build-deb: built $(ls ./*.deb | xargs -n1 basename | tr '\n' ' ')"
# lintian: errors fail the build; warnings are shown
lintian --tag-display-limit 0 ./*.changes 2>&1 | grep -v 'running with root privileges' | tee "$BUILD/lintian.log" || true
if grep -q '^E:' "$BUILD/lintian.log"; then
	echo "build-deb: lintian reports errors" >&2
	exit 1
fi
echo "build-deb: lintian reports no errors"
cp ./*.deb "$OUT/"
ls -1 "$OUT"/*.deb
