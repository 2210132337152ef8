"""bench_tce.py: the column encryption section of the pg_kms benchmark
(issue 13; bench.py calls run()).  One cluster, one run, every case
interleaved in a random order per rep, medians of BENCH_REPS reps after a
warm-up rep, BENCH_TCE_ROWS rows of 100 bytes (default 1000000):

  INSERT ... SELECT of N rows into
    plain     a text column
    tce       an encrypted_text column (sealed by the type on the way in)
    trigger   the hand-written alternative: a bytea column filled by a
              BEFORE INSERT trigger calling kms_encrypt()
  SELECT sum(length(..)) over the N rows, reading the plaintext of
    plain     the text column
    tce       the encrypted_text column (v::text decrypts)
    trigger   the view calling kms_decrypt_text() over the trigger's table
  the per-row cost of kms_encrypt() and kms_decrypt() over the same values
  (minus a scan of the same rows), and
  an equality lookup by index, 20000 (at most N) lookups per rep from a
  PL/pgSQL loop: a deterministic encrypted_text column with a unique index
  against a plain text column with one.

Times are EXPLAIN (ANALYZE, TIMING OFF) execution times (triggers included)
and clock_timestamp() around the lookup loop.  Bars (issue 13): the per-row
overhead of tce over plain at most 1.5x the per-row kms_encrypt (INSERT) /
kms_decrypt (SELECT) cost, and at most half the trigger/view overhead; the
deterministic lookup within 2x of the plain one.
"""
import json
import os
import statistics
import time

ROWS = int(os.environ.get("BENCH_TCE_ROWS", "1000000"))
LOOKUPS = min(ROWS, int(os.environ.get("BENCH_TCE_LOOKUPS", "20000")))
ALIAS = "alias/bench/tce"


def _setup(psql, log):
    t = time.time()
    psql("""
SELECT kms_create_alias('{a}', kms_create_key(description => 'bench tce'));
CREATE TABLE tce_src AS
  SELECT g AS id, rpad(md5(g::text), 100, md5((g + 1)::text) || md5((g + 2)::text)) AS v
    FROM generate_series(1, {n}) g;
ALTER TABLE tce_src ADD PRIMARY KEY (id);
CREATE TABLE tce_blob AS SELECT id, kms_encrypt('{a}', v) AS c FROM tce_src;
CREATE TABLE tce_ins_plain (id int, v text);
CREATE TABLE tce_ins_tce (id int, v encrypted_text('{a}'));
CREATE TABLE tce_ins_trigger (id int, v text, c bytea);
CREATE FUNCTION tce_bench_seal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.c := kms_encrypt('{a}', NEW.v);
	NEW.v := NULL;
	RETURN NEW;
END $$;
CREATE TRIGGER seal BEFORE INSERT ON tce_ins_trigger FOR EACH ROW EXECUTE FUNCTION tce_bench_seal();
CREATE VIEW tce_ins_trigger_v AS SELECT id, kms_decrypt_text(c) AS v FROM tce_ins_trigger;
-- read side: the same rows, kept
CREATE TABLE tce_rd_plain AS SELECT id, v FROM tce_src;
CREATE TABLE tce_rd_tce (id int, v encrypted_text('{a}'));
INSERT INTO tce_rd_tce SELECT id, v FROM tce_src;
CREATE TABLE tce_rd_trigger (id int, v text, c bytea);
CREATE TRIGGER seal BEFORE INSERT ON tce_rd_trigger FOR EACH ROW EXECUTE FUNCTION tce_bench_seal();
INSERT INTO tce_rd_trigger SELECT id, v FROM tce_src;
CREATE VIEW tce_rd_trigger_v AS SELECT id, kms_decrypt_text(c) AS v FROM tce_rd_trigger;
-- lookups: a unique index on each
CREATE TABLE tce_lk_plain AS SELECT id, v FROM tce_src;
CREATE UNIQUE INDEX ON tce_lk_plain (v);
CREATE TABLE tce_lk_det (id int, v encrypted_text('{a}', 'deterministic'));
INSERT INTO tce_lk_det SELECT id, v FROM tce_src;
CREATE UNIQUE INDEX ON tce_lk_det (v);
CREATE FUNCTION tce_bench_lookup(kind text, k int, n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	p text;
	r int;
	found_n int := 0;
BEGIN
	t0 := clock_timestamp();
	FOR i IN 1 .. k LOOP
		SELECT v INTO p FROM tce_src WHERE id = 1 + (i::bigint * 7919) % n;
		IF kind = 'det' THEN
			SELECT id INTO r FROM tce_lk_det WHERE v = p::encrypted_text;
		ELSE
			SELECT id INTO r FROM tce_lk_plain WHERE v = p;
		END IF;
		IF r IS NOT NULL THEN found_n := found_n + 1; END IF;
	END LOOP;
	IF found_n <> k THEN
		RAISE EXCEPTION 'lookup %: % of % found', kind, found_n, k;
	END IF;
	RETURN extract(epoch FROM clock_timestamp() - t0) * 1e9 / k;
END $$;
VACUUM (FREEZE, ANALYZE) tce_src, tce_blob, tce_rd_plain, tce_rd_tce, tce_rd_trigger, tce_lk_plain, tce_lk_det;
CHECKPOINT;
""".format(a=ALIAS, n=ROWS), "tce setup")
    log("   tce tables built in %.0f s (%d rows of 100 bytes)" % (time.time() - t, ROWS))


# case -> (statement before, timed statement).  INSERT targets are emptied
# first, then a CHECKPOINT (untimed) lets the server recycle the WAL segments
# the previous cases wrote, as it does in steady state: without it the bench
# cluster (max_wal_size 8GB, no checkpoint in a run) writes every INSERT's WAL
# into new, zero-filled segments (XLogFileInit), which costs in proportion to
# the WAL bytes and so penalizes whichever case writes more (the encrypted
# rows are 61 bytes longer) with a cost a running server does not pay.
CASES = {
    "ins_plain": ("TRUNCATE tce_ins_plain; CHECKPOINT", "INSERT INTO tce_ins_plain SELECT id, v FROM tce_src"),
    "ins_tce": ("TRUNCATE tce_ins_tce; CHECKPOINT", "INSERT INTO tce_ins_tce SELECT id, v FROM tce_src"),
    "ins_trigger": ("TRUNCATE tce_ins_trigger; CHECKPOINT",
                    "INSERT INTO tce_ins_trigger (id, v) SELECT id, v FROM tce_src"),
    "sel_plain": (None, "SELECT sum(length(v)) FROM tce_rd_plain"),
    "sel_tce": (None, "SELECT sum(length(v::text)) FROM tce_rd_tce"),
    "sel_trigger": (None, "SELECT sum(length(v)) FROM tce_rd_trigger_v"),
    "scan_src": (None, "SELECT sum(length(v)) FROM tce_src"),
    "kms_encrypt": (None, "SELECT sum(length(kms_encrypt('%s', v))) FROM tce_src" % ALIAS),
    "scan_blob": (None, "SELECT sum(length(c)) FROM tce_blob"),
    "kms_decrypt": (None, "SELECT sum(length(kms_decrypt(c))) FROM tce_blob"),
    "lookup_plain": (None, None),
    "lookup_det": (None, None),
}


def _timed(psql, case):
    before, stmt = CASES[case]
    if case.startswith("lookup_"):
        out = psql("SELECT tce_bench_lookup('%s', %d, %d);" % (case[7:], LOOKUPS, ROWS), case)
        return float(out.strip().splitlines()[-1])          # ns per lookup
    sql = ("%s;\n" % before if before else "") + \
        "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) %s;" % stmt
    out = psql(sql, case).strip()
    doc = json.loads(out[out.index("["):])
    return float(doc[0]["Execution Time"]) * 1e6 / ROWS      # ns per row


def run(psql, log, fmt_table, rng, reps):
    """Returns the bar checks [(label, measured, target, ok)] and the report's lines."""
    log("-- column encryption (tce): %d rows of 100 B, %d lookups, %d reps after a warm-up, random order"
        % (ROWS, LOOKUPS, reps))
    _setup(psql, log)
    times = {}
    for rep in range(reps + 1):
        order = list(CASES)
        rng.shuffle(order)
        t = time.time()
        for case in order:
            v = _timed(psql, case)
            if rep >= 1:
                times.setdefault(case, []).append(v)
        log("   tce rep %d%s done in %.1f s" % (rep, " (warm-up)" if rep == 0 else "", time.time() - t))
    med = {c: statistics.median(v) for c, v in times.items()}
    enc_cost = med["kms_encrypt"] - med["scan_src"]
    dec_cost = med["kms_decrypt"] - med["scan_blob"]
    ins_tce = med["ins_tce"] - med["ins_plain"]
    ins_trg = med["ins_trigger"] - med["ins_plain"]
    sel_tce = med["sel_tce"] - med["sel_plain"]
    sel_trg = med["sel_trigger"] - med["sel_plain"]

    lines = []
    out = lines.append
    out("")
    out("== Column encryption (encrypted_text) against plain text and a trigger + view, "
        "%d rows of 100 B, median of %d reps (ns per row)" % (ROWS, reps))
    out("")
    rows = []
    for op, plain, tce, trg in (("INSERT ... SELECT", "ins_plain", "ins_tce", "ins_trigger"),
                                ("SELECT plaintext", "sel_plain", "sel_tce", "sel_trigger")):
        rows.append([op, "%.0f" % med[plain], "%.0f" % med[tce], "%.0f" % med[trg],
                     "%+.0f" % (med[tce] - med[plain]), "%+.0f" % (med[trg] - med[plain])])
    out(fmt_table(["operation", "plain text", "encrypted_text", "trigger + view",
                   "tce overhead", "trigger overhead"], rows))
    out("   per-row kms_encrypt %.0f ns, kms_decrypt %.0f ns (minus a scan of the same rows)" % (enc_cost, dec_cost))
    out("   lookup by index (ns per lookup, incl. fetching the probe value): plain %.0f, deterministic %.0f"
        % (med["lookup_plain"], med["lookup_det"]))
    out("   all reps: " + "; ".join("%s %s" % (c, "/".join("%.0f" % x for x in times[c])) for c in CASES))

    checks = []

    def ratio(label, a, b, limit):
        r = a / b if b > 0 else float("inf")
        checks.append((label, "%.2fx" % r, "<= %.1fx" % limit, r <= limit))
    ratio("tce INSERT overhead / kms_encrypt per row", ins_tce, enc_cost, 1.5)
    ratio("tce SELECT overhead / kms_decrypt per row", sel_tce, dec_cost, 1.5)
    ratio("tce INSERT overhead / trigger overhead", ins_tce, ins_trg, 0.5)
    ratio("tce SELECT overhead / view overhead", sel_tce, sel_trg, 0.5)
    ratio("deterministic lookup / plain lookup (index)", med["lookup_det"], med["lookup_plain"], 2.0)
    return checks, lines
