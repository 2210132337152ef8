#!/usr/bin/python3
"""bench_scale.py: the scale section of the pg_kms benchmark (issue 16;
bench/run.sh runs it for BENCH_ONLY=scale, in the cluster it started).

One cluster, one run.  Per-call cost through pgbench -M simple (1 client,
BENCH_PGBENCH_ROUNDS rounds of BENCH_PGBENCH_SECONDS, the cases in a random
order per round): the mean latency of the transactions of a round after its
first, from pgbench's per-transaction log, median over the rounds.  The
first transaction of each connection is the warm-up, not counted: it uses
every key the case may use (audit off for it), as a long-lived connection
has; the cost of a first use is the key cache section's.  The cases:

  get_secret        one of 10 secrets (the backend's secret cache hits)
  get_secret RR     a random secret of all, in a REPEATABLE READ transaction
                    (the cache is not used there: every call reads the catalog)
  kms_decrypt       a constant 100 B blob
  describe_key      a random key of all (kms_describe_key by key id)
  describe_secret   a random secret of all, by name
  list_secrets      a name filter matching one random secret of all

first with 10 keys and 10 secrets, then again after creating
BENCH_SCALE_KEYS keys (10000) and BENCH_SCALE_SECRETS secrets (100000) in a
few big statements (pg_kms.audit off for the setup only).  Bar: each cost
at scale within 1.2x of the cost with 10.

Then the key cache: per-row cost of kms_decrypt over blobs of W keys in
key order, a second pass timed (EXPLAIN ANALYZE, TIMING OFF, net of the
scan), for W = 10, pg_kms.key_cache_size / 2 and 2 x pg_kms.key_cache_size
(cycled in order, so the shared cache's LRU misses every time), with the
cache's misses and provider calls of that pass.  And backend memory: VmHWM
and RssAnon of a fresh backend after decrypting and encrypting under 10
keys, and under all keys.
"""
import os
import random
import re
import statistics
import subprocess
import sys
import time

import bench
from bench import BenchError, fmt_table, log, one, psql

ENV = os.environ
NKEYS = int(ENV.get("BENCH_SCALE_KEYS", "10000"))
NSECRETS = int(ENV.get("BENCH_SCALE_SECRETS", "100000"))
SMALL = 10
SECONDS = int(ENV.get("BENCH_PGBENCH_SECONDS", "10"))
ROUNDS = int(ENV.get("BENCH_PGBENCH_ROUNDS", "3"))
WORK = ENV.get("BENCH_WORK", "/tmp")
BAR = 1.2
BATCH = 10000


def secret_name(expr):
    return "'scale/app/n' || lpad((%s)::text, 7, '0')" % expr


def add_keys(upto):
    """Keys 1..upto in scale_keys (key id, a 100 B blob under it)."""
    have = int(one("SELECT count(*) FROM scale_keys"))
    for lo in range(have + 1, upto + 1, BATCH):
        hi = min(upto, lo + BATCH - 1)
        psql("SET pg_kms.audit = off;\n"
             "INSERT INTO scale_keys SELECT g, k, kms_encrypt(k, convert_to(repeat('k', 100), 'UTF8'))\n"
             "  FROM generate_series(%d, %d) g, LATERAL kms_create_key(description => 'scale ' || g) k;"
             % (lo, hi), "create keys")


def add_secrets(upto):
    have = int(one("SELECT count(*) FROM kms.secret WHERE name LIKE 'scale/app/n%'"))
    for lo in range(have + 1, upto + 1, BATCH):
        hi = min(upto, lo + BATCH - 1)
        psql("SET pg_kms.audit = off;\n"
             "SELECT count(create_secret(%s, '{\"password\":\"p' || g || '\"}')) FROM generate_series(%d, %d) g;"
             % (secret_name("g"), lo, hi), "create secrets")


def scripts(nkeys, nsecrets, blob):
    s = {}
    s["get_secret"] = ("\\set r random(1, %d)\nSELECT length(get_secret(%s));\n"
                       % (SMALL, secret_name(":r")))
    s["get_secret RR"] = ("\\set r random(1, %d)\nBEGIN ISOLATION LEVEL REPEATABLE READ;\n"
                          "SELECT length(get_secret(%s));\nCOMMIT;\n" % (nsecrets, secret_name(":r")))
    s["kms_decrypt"] = "SELECT length(kms_decrypt('\\x%s'::bytea));\n" % blob
    s["describe_key"] = ("\\if :warm\nSET pg_kms.audit = off;\n"
                         "SELECT count(kms_describe_key(key_id)) FROM scale_keys WHERE i <= %d;\n"
                         "RESET pg_kms.audit;\n\\set warm 0\n\\endif\n"
                         "\\set r random(1, %d)\n"
                         "SELECT length(kms_describe_key(key_id)::text) FROM scale_keys WHERE i = :r;\n"
                         % (nkeys, nkeys))
    s["describe_secret"] = ("\\set r random(1, %d)\nSELECT length(describe_secret(%s)::text);\n"
                            % (nsecrets, secret_name(":r")))
    s["list_secrets"] = ("\\set r random(1, %d)\n"
                         "SELECT count(*) FROM list_secrets(jsonb_build_array(jsonb_build_object("
                         "'Key', 'name', 'Values', jsonb_build_array('n' || lpad(:r::text, 7, '0')))));\n"
                         % nsecrets)
    files = {}
    for name, text in s.items():
        path = os.path.join(WORK, "scale_%s.sql" % name.replace(" ", "_"))
        with open(path, "w") as f:
            f.write(text)
        files[name] = path
    return files


CASES = ["get_secret", "get_secret RR", "kms_decrypt", "describe_key", "describe_secret", "list_secrets"]


def pgbench_us(script_file, seconds, warmup=False):
    """Mean latency (us) of the transactions after the first, 1 client, and
    the first one's (the warm-up's); a warm-up run may have no others."""
    prefix = os.path.join(WORK, "scale_log")
    for f in os.listdir(WORK):
        if f.startswith("scale_log."):
            os.unlink(os.path.join(WORK, f))
    r = subprocess.run(["pgbench", "-n", "-M", "simple", "-c", "1", "-j", "1", "-T", str(seconds),
                        "-D", "warm=1", "-l", "--log-prefix=" + prefix, "-f", script_file],
                       capture_output=True, text=True, cwd=WORK)
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    if r.returncode != 0 or (failed and int(failed.group(1)) > 0):
        raise BenchError("pgbench %s failed (rc %d): %s" % (os.path.basename(script_file), r.returncode,
                                                           (r.stdout + r.stderr).strip()[-600:]))
    lat = []
    first_us = 0
    for f in os.listdir(WORK):
        if f.startswith("scale_log."):
            with open(os.path.join(WORK, f)) as fh:
                rows = [l.split() for l in fh if l.strip()]
            first = min(int(x[1]) for x in rows)
            first_us = max([first_us] + [int(x[2]) for x in rows if int(x[1]) == first])
            lat += [int(x[2]) for x in rows if int(x[1]) != first]
            os.unlink(os.path.join(WORK, f))
    if warmup:
        return None, first_us
    if len(lat) < 10:
        raise BenchError("pgbench %s: only %d transactions" % (os.path.basename(script_file), len(lat)))
    return sum(lat) / len(lat), first_us


def per_call(files, rng):
    """Median per-call us per case over ROUNDS rounds, cases shuffled per round."""
    extra = {}
    for name in CASES:		# warm-up: plans, pages; how long a connection's first call takes
        extra[name] = int(pgbench_us(files[name], 1, warmup=True)[1] / 1e6) + 1
    us = {c: [] for c in CASES}
    for _ in range(ROUNDS):
        order = list(CASES)
        rng.shuffle(order)
        for name in order:		# SECONDS measured after the warm-up transaction
            us[name].append(pgbench_us(files[name], SECONDS + extra[name])[0])
    return {c: statistics.median(v) for c, v in us.items()}


def check_phase(nsecrets):
    n = one("SELECT count(*) FROM list_secrets(jsonb_build_array(jsonb_build_object("
            "'Key', 'name', 'Values', jsonb_build_array('n' || lpad(%d::text, 7, '0')))))" % nsecrets)
    if n != "1":
        raise BenchError("the list_secrets name filter found %s secrets, not 1" % n)


def exec_ms(sql):
    out = one("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql)
    return float(re.search(r'"Execution Time": ([0-9.]+)', out).group(1))


def lru(cache_size):
    """Per-row cost of kms_decrypt over W keys in order, second pass."""
    sets = [("10 keys", min(SMALL, NKEYS)), ("cache/2", min(cache_size // 2, NKEYS)),
            ("2 x cache", min(2 * cache_size, NKEYS))]
    rows = []
    for label, w in sets:
        q = "SELECT sum(length(kms_decrypt(b))) FROM (SELECT b FROM scale_keys WHERE i <= %d ORDER BY i) s" % w
        base = "SELECT sum(length(b)) FROM (SELECT b FROM scale_keys WHERE i <= %d ORDER BY i) s" % w
        cols = "misses, provider_calls, evictions"
        out = psql("\n".join([
            "SELECT 'x', " + cols + " FROM kms_cache_stats();",
            "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) %s;" % q,
            "SELECT 'a', " + cols + " FROM kms_cache_stats();",
            "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) %s;" % q,
            "SELECT 'b', " + cols + " FROM kms_cache_stats();",
            "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) %s;" % base,
            "SET pg_kms.audit = off;",
            "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) %s;" % q,
        ]), "lru " + label)
        st = {l.split("|")[0]: [int(x) for x in l.split("|")[1:]] for l in out.splitlines()
              if l[:2] in ("x|", "a|", "b|")}
        times = [float(x) for x in re.findall(r'"Execution Time": ([0-9.]+)', out)]
        net_ns = (times[1] - times[2]) * 1e6 / w
        quiet_ns = (times[3] - times[2]) * 1e6 / w
        d = [b - a for a, b in zip(st["a"], st["b"])]
        rows.append([label, str(w), "%.0f" % net_ns, "%.0f" % quiet_ns, str(d[0]), str(d[1]), str(d[2])])
    return rows


def memory(nkeys):
    def probe(n):
        out = psql("SELECT sum(length(kms_decrypt(b))) + sum(length(kms_encrypt(key_id, 'x'::bytea))) "
                   "FROM scale_keys WHERE i <= %d;\n%s" % (n, bench.status_sql("m")), "memory")
        for line in out.splitlines():
            f = line.split("|")
            if f[0] == "m":
                return int(f[2]), int(f[4])
        raise BenchError("no memory status")
    return probe(min(SMALL, nkeys)), probe(nkeys)


def main():
    rng = random.Random(int(ENV.get("BENCH_SEED", str(int(time.time())))))
    if NKEYS < SMALL or NSECRETS < SMALL:
        raise BenchError("BENCH_SCALE_KEYS and BENCH_SCALE_SECRETS must be at least %d" % SMALL)
    log("== Scale (issue 16): %d keys, %d secrets against %d and %d; pgbench -M simple, 1 client, "
        "%d s x %d rounds; load %s" % (NKEYS, NSECRETS, SMALL, SMALL, SECONDS, ROUNDS, bench.loadavg()))
    psql("CREATE EXTENSION IF NOT EXISTS pg_kms;\n"
         "CREATE TABLE scale_keys (i int PRIMARY KEY, key_id text NOT NULL, b bytea NOT NULL);",
         "setup")
    cache_size = int(one("SHOW pg_kms.key_cache_size"))
    add_keys(SMALL)
    add_secrets(SMALL)
    psql("VACUUM ANALYZE;", "vacuum")
    blob = one("SELECT encode(b, 'hex') FROM scale_keys WHERE i = 1")
    check_phase(SMALL)
    small = per_call(scripts(SMALL, SMALL, blob), rng)
    log("   small: done (load %s)" % bench.loadavg())

    t = time.time()
    add_keys(NKEYS)
    tk = time.time() - t
    add_secrets(NSECRETS)
    ts = time.time() - t - tk
    psql("VACUUM ANALYZE;", "vacuum")
    log("   setup: %d keys in %.0f s, %d secrets in %.0f s (load %s)"
        % (NKEYS - SMALL, tk, NSECRETS - SMALL, ts, bench.loadavg()))
    check_phase(NSECRETS)
    large = per_call(scripts(NKEYS, NSECRETS, blob), rng)
    log("   large: done (load %s)" % bench.loadavg())

    checks = []
    rows = []
    for c in CASES:
        us_s, us_l = small[c], large[c]
        ratio = us_l / us_s
        rows.append([c, "%.1f" % us_s, "%.1f" % us_l, "%.2f" % ratio])
        checks.append(("scale: %s at %d/%d vs %d" % (c, NKEYS, NSECRETS, SMALL), "%.2fx" % ratio,
                       "<= %.1fx" % BAR, ratio <= BAR))
    log("")
    log("-- per call, us (mean pgbench latency after the warm-up transaction, median of %d rounds;"
        " statement round trip included)" % ROUNDS)
    log(fmt_table(["case", "10 keys/secrets", "%d/%d" % (NKEYS, NSECRETS), "ratio"], rows))

    log("")
    log("-- key cache (pg_kms.key_cache_size = %d): kms_decrypt over W keys in order, second pass"
        " (and a third with pg_kms.audit off: one audit aggregate per key and statement is the rest);"
        " misses, provider calls, evictions of the second pass" % cache_size)
    log(fmt_table(["working set", "W", "ns/row", "audit off", "misses", "provider calls", "evictions"],
                  lru(cache_size)))

    (h10, a10), (hall, aall) = memory(NKEYS)
    log("")
    log("-- backend memory after kms_decrypt + kms_encrypt under W keys (fresh backend), kB")
    log(fmt_table(["W", "VmHWM", "RssAnon"], [[str(SMALL), str(h10), str(a10)],
                                              [str(NKEYS), str(hall), str(aall)]]))
    grow = (aall - a10) / 1024.0
    checks.append(("scale: backend RssAnon growth, %d keys vs %d" % (NKEYS, SMALL), "%.1f MB" % grow,
                   "<= 16 MB", grow <= 16))

    log("")
    log(fmt_table(["check", "measured", "target", "result"],
                  [[a, b, c, "PASS" if d else "MISS"] for a, b, c, d in checks]))
    npass = sum(1 for c in checks if c[3])
    log("   run time %d s; load %s" % (bench.elapsed(), bench.loadavg()))
    log("%d passed, %d failed" % (npass, len(checks) - npass))
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except (BenchError, KeyError, ValueError, AttributeError) as e:
        log("!! run error: %s" % e)
        log("run broke: 0 passed, 1 failed")
        rc = 1
    sys.exit(rc)
