"""bench_parallel.py: the parallel query section of the pg_kms benchmark
(issue 16; bench/run.sh runs it alone with BENCH_ONLY=parallel, in the
cluster it made, PGHOST/PGPORT/PGUSER/PGDATABASE set).

A decrypting scan, SELECT sum(length(kms_decrypt(c))) FROM t, over
BENCH_PARALLEL_ROWS rows (default 5000000) of 100-byte plaintexts, serial
(max_parallel_workers_per_gather = 0) against 2 parallel workers with the
leader taking part, and the same scan without kms_decrypt both ways for
context.  The table is prewarmed into shared buffers.  Cases interleaved in
a random order per rep, medians of BENCH_REPS reps after a warm-up rep;
times are EXPLAIN (ANALYZE, TIMING OFF) execution times.  Small tables get
a parallel plan too (parallel_setup_cost = 0, min_parallel_table_scan_size
= 0); every parallel rep must have launched its 2 workers, and both plans
must give the same sum (checked in the warm-up rep).  Bar (issue 16): the decrypting scan with 2 workers
at least 1.6x faster than serial.  The last line is "N passed, M failed".
"""
import json
import os
import random
import statistics
import subprocess
import sys
import time

ROWS = int(os.environ.get("BENCH_PARALLEL_ROWS", "5000000"))
REPS = int(os.environ.get("BENCH_REPS", "7"))
SEED = int(os.environ.get("BENCH_SEED", str(int(time.time()))))
WORKERS = 2
BAR = 1.6
KEY = "alias/bench/parallel"

SERIAL = "SET max_parallel_workers_per_gather = 0;\n"
PARALLEL = ("SET max_parallel_workers_per_gather = %d; SET parallel_setup_cost = 0; "
            "SET min_parallel_table_scan_size = 0; SET parallel_leader_participation = on;\n" % WORKERS)
CASES = {
    "scan_serial": (SERIAL, "SELECT sum(length(c)) FROM par_bench"),
    "scan_2w": (PARALLEL, "SELECT sum(length(c)) FROM par_bench"),
    "decrypt_serial": (SERIAL, "SELECT sum(length(kms_decrypt(c))) FROM par_bench"),
    "decrypt_2w": (PARALLEL, "SELECT sum(length(kms_decrypt(c))) FROM par_bench"),
}


class BenchError(Exception):
    pass


def log(msg=""):
    print(msg, flush=True)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def psql(sql, what="psql"):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                       input=sql, capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError("%s failed (rc %d): %s" % (what, r.returncode, r.stderr.strip()[-2000:]))
    return r.stdout


def fmt_table(headers, rows):
    w = [len(h) for h in headers]
    for r in rows:
        for i, v in enumerate(r):
            w[i] = max(w[i], len(v))

    def cell(v, i):
        return " " + (v.ljust(w[i]) if i == 0 else v.rjust(w[i])) + " "
    lines = ["|".join(cell(h.center(w[i]), i) for i, h in enumerate(headers)).rstrip(),
             "+".join("-" * (w[i] + 2) for i in range(len(headers)))]
    for r in rows:
        lines.append("|".join(cell(v, i) for i, v in enumerate(r)).rstrip())
    return "\n".join(lines)


def setup():
    t = time.time()
    psql("""
CREATE EXTENSION IF NOT EXISTS pg_kms;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT kms_create_alias('{k}', kms_create_key(description => 'bench parallel'));
-- kms_encrypt runs in the workers here too
{par}
CREATE TABLE par_bench AS
  SELECT kms_encrypt('{k}', rpad(md5(g::text), 100, md5((g + 1)::text) || md5((g + 2)::text))) AS c
    FROM generate_series(1, {n}) g;
VACUUM (FREEZE, ANALYZE) par_bench;
CHECKPOINT;
SELECT pg_prewarm('par_bench');
""".format(k=KEY, n=ROWS, par=PARALLEL), "parallel setup")
    size = psql("SELECT pg_size_pretty(pg_relation_size('par_bench'));", "size").strip()
    log("   table built in %.0f s (%d rows of 100 B plaintext, %s)" % (time.time() - t, ROWS, size))


def timed(case, with_result):
    settings, stmt = CASES[case]
    out = psql(settings + "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) %s;\n" % stmt +
               ("%s;" % stmt if with_result else ""), case).strip().splitlines()
    total = out.pop() if with_result else None
    doc = json.loads("\n".join(out))
    launched = 0
    stack = [doc[0]["Plan"]]
    while stack:
        node = stack.pop()
        launched = max(launched, int(node.get("Workers Launched", 0)))
        stack.extend(node.get("Plans", []))
    if case.endswith("_2w") and launched != WORKERS:
        raise BenchError("%s launched %d workers, not %d (max_worker_processes, max_parallel_workers?)"
                         % (case, launched, WORKERS))
    return float(doc[0]["Execution Time"]), total


def main():
    rng = random.Random(SEED)
    log("== pg_kms parallel query: %d rows of 100 B, %d reps after a warm-up, random order (seed %d)"
        % (ROWS, REPS, SEED))
    log("   load average at start: %s" % loadavg())
    setup()
    times = {}
    sums = {}
    for rep in range(REPS + 1):
        order = list(CASES)
        rng.shuffle(order)
        t = time.time()
        for case in order:
            ms, total = timed(case, rep == 0)
            if rep == 0:
                sums.setdefault(case.split("_")[0], set()).add(total)
            if rep >= 1:
                times.setdefault(case, []).append(ms)
        log("   rep %d%s done in %.1f s, load %s" % (rep, " (warm-up)" if rep == 0 else "",
                                                    time.time() - t, loadavg()))
    for kind, s in sums.items():
        if len(s) != 1:
            raise BenchError("%s: serial and parallel sums differ: %s" % (kind, sorted(s)))
    med = {c: statistics.median(v) for c, v in times.items()}

    log("")
    log("== Parallel query: SELECT sum(length(kms_decrypt(c))) over %d rows, serial against %d workers "
        "(leader taking part), median of %d reps" % (ROWS, WORKERS, REPS))
    log("")
    rows = []
    for label, s, p in (("scan only (sum(length(c)))", "scan_serial", "scan_2w"),
                        ("decrypting scan (kms_decrypt)", "decrypt_serial", "decrypt_2w")):
        rows.append([label, "%.0f" % med[s], "%.0f" % (med[s] * 1e6 / ROWS),
                     "%.0f" % med[p], "%.0f" % (med[p] * 1e6 / ROWS), "%.2fx" % (med[s] / med[p])])
    log(fmt_table(["query", "serial ms", "ns/row", "%d workers ms" % WORKERS, "ns/row", "speed-up"], rows))
    log("   all reps (ms): " + "; ".join("%s %s" % (c, "/".join("%.0f" % x for x in times[c])) for c in CASES))
    log("   load average at end: %s" % loadavg())

    speedup = med["decrypt_serial"] / med["decrypt_2w"]
    checks = [("decrypting scan, %d workers / serial" % WORKERS, "%.2fx" % speedup,
               ">= %.1fx" % BAR, speedup >= BAR)]
    log("")
    log(fmt_table(["check", "measured", "target", "result"],
                  [[a, b, c, "PASS" if d else "MISS"] for a, b, c, d in checks]))
    npass = sum(1 for c in checks if c[3])
    log("%d passed, %d failed" % (npass, len(checks) - npass))
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except (BenchError, KeyError, ValueError, json.JSONDecodeError) as e:
        log("!! run error: %s" % e)
        log("run broke: 0 passed, 1 failed")
        rc = 1
    sys.exit(rc)
