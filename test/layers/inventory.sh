#!/usr/bin/env bash
# test/layers/inventory.sh: print what a refactor of src/ must not change,
# sorted, so that two runs diff cleanly (test/layers/inventory.before is the
# output at the start of issue 10; scripts/test.sh compares against it).
#
#   bash test/layers/inventory.sh [SO]     # SO: built pg_kms.so (default ./pg_kms.so)
#
# Sections:
#   [messages]  every ereport/elog/kms_error/GUC_check_* format string and every
#               shared-memory / LWLock tranche name in src/ (test/layers/messages.py)
#   [sql]       the install script's CREATE FUNCTION names and the C symbols they
#               bind (AS 'MODULE_PATHNAME', 'sym')
#   [symbols]   nm -D --defined-only SO: those symbols and their pg_finfo_ records
#   [settings]  pg_settings rows for pg_kms.% (all columns that do not depend on
#               this cluster's paths), if psql reaches a server with pg_kms loaded
#   [shmem]     pg_shmem_allocations rows named pg_kms% (name, size)
# Server sections are printed only when psql (PGHOST/PGPORT/...) answers; the
# comparison in scripts/test.sh runs with the suite's cluster up.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SO=${1:-$REPO/pg_kms.so}
cd "$REPO" || exit 1

echo "[messages]"
python3 test/layers/messages.py src

echo "[sql]"
# One CREATE FUNCTION per name(args) and its link symbol, whatever the layout.
cat src/sql/*.sql | python3 -c '
import re, sys
sql = sys.stdin.read()
sql = re.sub(r"--[^\n]*", "", sql)
out = set()
for m in re.finditer(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([\w.]+)\s*\((.*?)\)\s*RETURNS(.*?);", sql, re.S | re.I):
    name, args, rest = m.group(1), " ".join(m.group(2).split()), m.group(3)
    sym = re.search(r"MODULE_PATHNAME\x27\s*,\s*\x27(\w+)\x27", rest)
    out.add("%s(%s) -> %s" % (name, args, sym.group(1) if sym else "(sql)"))
print("\n".join(sorted(out)))
' > /tmp/inventory_sql.$$
cat /tmp/inventory_sql.$$

echo "[symbols]"
if [ -f "$SO" ]; then
	syms=$(sed -nE 's/.* -> ([A-Za-z_0-9]+)$/\1/p' /tmp/inventory_sql.$$ | grep -v '^(sql)$' | sort -u)
	nm -D --defined-only "$SO" | awk '{ print $NF }' | sort -u >/tmp/inventory_nm.$$
	for s in $syms; do
		for n in "$s" "pg_finfo_$s"; do
			if grep -qx "$n" /tmp/inventory_nm.$$; then echo "$n"; else echo "MISSING $n"; fi
		done
	done | sort
	grep -E '^(_PG_init|Pg_magic_func|KmsWorkerMain|KmsRotationWorkerMain)$' /tmp/inventory_nm.$$ || true
else
	echo "(no $SO)"
fi
rm -f /tmp/inventory_sql.$$ /tmp/inventory_nm.$$

if [ "$(psql -XAtqc "SELECT 1 FROM pg_settings WHERE name LIKE 'pg_kms.%' LIMIT 1" 2>/dev/null)" = 1 ]; then
	echo "[settings]"
	psql -XAtq -F ' | ' -c "SELECT name, unit, category, short_desc, extra_desc, context, vartype,
			min_val, max_val, boot_val, enumvals FROM pg_settings WHERE name LIKE 'pg_kms.%' ORDER BY name"
	echo "[shmem]"
	psql -XAtq -F ' | ' -c "SELECT name, size FROM pg_shmem_allocations WHERE name LIKE 'pg_kms%' ORDER BY name"
else
	echo "[settings]"
	echo "(no server)"
fi
