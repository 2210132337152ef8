"""bench_audit.py: the audit section of the pg_kms benchmark (issue 16;
BENCH_ONLY=audit runs it alone, bench.py calls run()).

  drain     with pg_kms.audit_secret_reads = 'each', one statement reads a
            secret BENCH_AUDIT_EVENTS times (default 200000): one event and
            one log line per read.  A server-side function times the
            statement, then polls kms_audit_stats() until the audit worker
            has written them all; events/s drained = events / (statement
            start .. last one written).  The statement waits when the queue
            (pg_kms.audit_queue_size) is full, so this is the rate the whole
            path sustains; the tail (the backlog at the end of the statement
            over the time to write it) is the worker alone.  Medians of
            BENCH_REPS reps after a warm-up rep.
  pgbench   -n -M simple, 1 and 2 clients, interleaved rounds (as bench.py):
            SELECT md5('x'); get_secret with 'aggregate' (the default) and
            with 'each' (set for the connection through PGOPTIONS).

Bars (issue 16): drained >= 100,000 events/s with 'each'; pgbench get_secret
>= 0.90x md5 with 'aggregate', >= 0.70x with 'each', 1 and 2 clients.
"""
import os
import re
import statistics
import subprocess
import time

EVENTS = int(os.environ.get("BENCH_AUDIT_EVENTS", "200000"))
PGB_SECONDS = int(os.environ.get("BENCH_PGBENCH_SECONDS", "10"))
PGB_ROUNDS = int(os.environ.get("BENCH_PGBENCH_ROUNDS", "3"))
WORK = os.environ.get("BENCH_WORK", "/tmp")
SECRET = "bench/audit/secret"


def _setup(psql):
    psql("""
SELECT create_secret('@SECRET@', '{"username":"app","password":"x"}')
 WHERE NOT EXISTS (SELECT 1 FROM list_secrets() WHERE name = '@SECRET@');
CREATE OR REPLACE FUNCTION bench_audit_drain(n int, timeout_s float8 DEFAULT 300)
RETURNS TABLE (produce_s float8, total_s float8, backlog bigint, tail_s float8,
               waits bigint, only_logged bigint)
LANGUAGE plpgsql AS $f$
DECLARE
  s0 record; s1 record; s record;
  t0 timestamptz; t1 timestamptz; t2 timestamptz;
BEGIN
  -- start from an empty queue
  FOR i IN 1 .. 6000 LOOP
    EXIT WHEN (SELECT queue_length FROM kms_audit_stats()) = 0;
    PERFORM pg_sleep(0.01);
  END LOOP;
  SELECT * INTO s0 FROM kms_audit_stats();
  t0 := clock_timestamp();
  PERFORM count(get_secret('@SECRET@')) FROM generate_series(1, n);
  t1 := clock_timestamp();
  SELECT * INTO s1 FROM kms_audit_stats();
  LOOP
    SELECT * INTO s FROM kms_audit_stats();
    EXIT WHEN s.events_written - s0.events_written >= n
           OR extract(epoch FROM clock_timestamp() - t0) > timeout_s;
    PERFORM pg_sleep(0.0005);
  END LOOP;
  t2 := clock_timestamp();
  produce_s := extract(epoch FROM t1 - t0);
  total_s := extract(epoch FROM t2 - t0);
  backlog := n - (s1.events_written - s0.events_written);
  tail_s := extract(epoch FROM t2 - t1);
  waits := s.producer_waits - s0.producer_waits;
  only_logged := s.events_only_logged - s0.events_only_logged;
  IF s.events_written - s0.events_written < n THEN
    RAISE EXCEPTION 'bench_audit_drain: only % of % events written in % s',
      s.events_written - s0.events_written, n, timeout_s;
  END IF;
  RETURN NEXT;
END $f$;
""".replace("@SECRET@", SECRET), "audit bench setup")


def _log_size():
    try:
        return os.path.getsize(os.path.join(WORK, "server.log"))
    except OSError:
        return None


def _drain(psql, log, reps):
    res = []
    for rep in range(reps + 1):         # rep 0 is a warm-up
        before = _log_size()
        out = psql("SET pg_kms.audit_secret_reads = 'each';\n"
                   "SELECT * FROM bench_audit_drain(%d);" % EVENTS, "audit drain").strip().splitlines()[-1]
        after = _log_size()
        p, t, b, tail, w, ol = out.split("|")
        r = dict(produce=float(p), total=float(t), backlog=int(b), tail=float(tail),
                 waits=int(w), only_logged=int(ol),
                 log_bytes=(after - before) if before is not None and after is not None else None)
        log("   drain rep %d: %d events, statement %.3f s, drained after %.3f s (%.0f events/s), "
            "backlog at statement end %d drained in %.3f s, producer waits %d, only logged %d"
            % (rep, EVENTS, r["produce"], r["total"], EVENTS / r["total"], r["backlog"], r["tail"],
               r["waits"], r["only_logged"]))
        if rep > 0:
            res.append(r)
    return res


def _pgbench(script_file, clients, seconds, options=None):
    cmd = ["pgbench", "-n", "-M", "simple", "-c", str(clients), "-j", str(clients), "-f", script_file,
           "-T", str(seconds)]
    env = dict(os.environ)
    if options:
        env["PGOPTIONS"] = options
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError("pgbench %s -c %d failed: %s" % (os.path.basename(script_file), clients,
                                                            (r.stdout + r.stderr).strip()[-600:]))
    return float(m.group(1))


def _settle(psql):
    """Untimed, between pgbench runs: wait until the audit queue is empty,
    then VACUUM the audit table and CHECKPOINT.  A run with 'each' leaves
    hundreds of thousands of new audit rows; without this, autovacuum of
    kms.audit_log and the checkpoint they bring land in whichever run comes
    next, and on 2 cores that run loses up to a fifth of its TPS to work
    another run caused; so does the kernel writing back the ~200 MB of
    server log an 'each' run leaves dirty.  (The cost of 'each' itself is in
    its own runs.)"""
    psql("""
DO $$ BEGIN
  FOR i IN 1 .. 6000 LOOP
    EXIT WHEN (SELECT queue_length FROM kms_audit_stats()) = 0;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
VACUUM (ANALYZE) kms.audit_log;
CHECKPOINT;
""", "audit bench settle")
    os.sync()                           # the server log of an 'each' run: ~200 MB of dirty pages


def _tps(log, rng, psql):
    scripts = {"md5": ("SELECT md5('x');", None),
               "get_secret aggregate": ("SELECT get_secret('%s');" % SECRET, None),
               "get_secret each": ("SELECT get_secret('%s');" % SECRET, "-c pg_kms.audit_secret_reads=each")}
    files = {}
    for name, (text, _) in scripts.items():
        fn = os.path.join(WORK, "pgb_audit_%s.sql" % name.replace(" ", "_"))
        with open(fn, "w") as f:
            f.write(text + "\n")
        os.chmod(fn, 0o644)
        files[name] = fn
    pairs = [(n, c) for n in scripts for c in (1, 2)]
    for n, c in pairs:                  # warm-up
        _pgbench(files[n], c, 1, scripts[n][1])
    tps = {}
    log("-- audit pgbench: %d scripts x 1/2 clients, %d s per run, %d rounds in random order"
        % (len(scripts), PGB_SECONDS, PGB_ROUNDS))
    for rnd in range(PGB_ROUNDS):
        order = pairs[:]
        rng.shuffle(order)
        for n, c in order:
            _settle(psql)
            tps.setdefault((n, c), []).append(_pgbench(files[n], c, PGB_SECONDS, scripts[n][1]))
        log("   round %d: %s" % (rnd + 1, ", ".join("%s/%dc %.0f" % (n, c, tps[(n, c)][-1])
                                                      for n, c in sorted(order))))
    return {k: statistics.median(v) for k, v in tps.items()}, tps, list(scripts)


def run(psql, log, fmt_table, rng, reps):
    """Returns (checks, report lines); checks are (label, measured, target, ok)."""
    t = time.time()
    _setup(psql)
    q = psql("SELECT queue_capacity, queue_bytes_capacity FROM kms_audit_stats();").strip().split("|")
    log("-- audit drain: %d events per rep with 'each', queue of %s events (%s bytes), %d reps + warm-up"
        % (EVENTS, q[0], q[1], reps))
    drains = _drain(psql, log, reps)
    tps, tps_all, names = _tps(log, rng, psql)

    checks = []
    lines = ["", "== Audit (issue 16): drain and secret reads per call", ""]
    rate = statistics.median(EVENTS / r["total"] for r in drains)
    prod = statistics.median(EVENTS / r["produce"] for r in drains)
    tails = [r["backlog"] / r["tail"] for r in drains if r["tail"] > 0 and r["backlog"] > 0]
    tail = statistics.median(tails) if tails else None
    lb = [r["log_bytes"] / EVENTS for r in drains if r["log_bytes"]]
    rows = [["events per rep", str(EVENTS)],
            ["drained (statement start .. last row written), events/s", "%.0f" % rate],
            ["statement alone (read + queue + log line per event), events/s", "%.0f" % prod],
            ["worker alone (backlog at statement end / time to write it), events/s",
             "%.0f" % tail if tail else "no backlog"],
            ["producer waits (queue full) per rep", "%.0f" % statistics.median(r["waits"] for r in drains)],
            ["events only logged per rep", "%.0f" % statistics.median(r["only_logged"] for r in drains)],
            ["server log bytes per event", "%.0f" % statistics.median(lb) if lb else "?"]]
    lines.append(fmt_table(["drain with 'each' (median of %d reps)" % len(drains), "value"], rows, ["l", "r"]))
    checks.append(("audit drain with 'each', events/s", "%.0f" % rate, ">= 100000", rate >= 100000))

    prow = []
    for n in names:
        t1, t2 = tps.get((n, 1)), tps.get((n, 2))
        m1, m2 = tps.get(("md5", 1)), tps.get(("md5", 2))
        prow.append([n, "%.0f" % t1, "%.0f" % t2, "%.3f" % (t1 / m1), "%.3f" % (t2 / m2)])
    lines.append("")
    lines.append(fmt_table(["pgbench -M simple", "TPS 1 client", "TPS 2 clients", "x md5 1c", "x md5 2c"], prow))
    lines.append("   all rounds (TPS): " + "; ".join(
        "%s/%dc %s" % (n, c, "/".join("%.0f" % x for x in tps_all[(n, c)])) for n in names for c in (1, 2)))
    for n, lim in (("get_secret aggregate", 0.90), ("get_secret each", 0.70)):
        for c in (1, 2):
            r = tps[(n, c)] / tps[("md5", c)]
            checks.append(("pgbench %s TPS / md5('x'), %d client%s" % (n, c, "s" if c > 1 else ""),
                           "%.3f" % r, ">= %.2f" % lim, r >= lim))
    lines.append("   audit section run time %.0f s" % (time.time() - t))
    return checks, lines


def main(psql, log, fmt_table, rng, reps):
    """BENCH_ONLY=audit: this section alone, with its bar table; returns the exit status."""
    psql("CREATE EXTENSION pg_kms;", "create extension")
    checks, lines = run(psql, log, fmt_table, rng, reps)
    for line in lines:
        log(line)
    log("")
    log(fmt_table(["check", "measured", "target", "result"],
                  [[a, b, c, "PASS" if d else "MISS"] for a, b, c, d in checks]))
    npass = sum(1 for c in checks if c[3])
    log("%d passed, %d failed" % (npass, len(checks) - npass))
    return 0
