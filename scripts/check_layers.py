#!/usr/bin/env python3
"""check_layers.py: the layer check of src/ (make check-layers, issue 10).

Every C file and header under src/ belongs to a module: the folder right under
src/ (src/keystore/keys.c -> keystore), or, for a file directly in src/, its
name without extension (src/pg_kms.c -> pg_kms).  Each module has a layer in
LAYERS below, the one place the order is written (README.md's "Layout"
paragraph repeats it for readers).  The check computes

  * the #include "..." graph between modules (from the sources), and
  * if the objects are built (src/**/*.o), the call graph between modules
    (undefined symbols of one object defined by another, from nm),

and fails on an edge that does not point to a strictly lower layer (an upward
or peer edge), on any cycle between modules, and on a file in no module of
the table.

It also checks the table rule: every table of schema kms (CREATE TABLE kms.x
in src/sql/, the install script's parts) is written by exactly one layer.
A module writes a table when a string literal of its C code (adjacent
literals joined, as the compiler does) holds INSERT INTO, UPDATE, DELETE FROM
or TRUNCATE [TABLE] [ONLY] kms.<table>; the install SQL is not C and does not
count.  A table written by modules of two layers, or by no C code, fails, as
does a write of a kms table the install script does not create.

--report prints the same findings and exits 0.
"""
import os
import re
import subprocess
import sys

# Layer order, lowest first.  Modules in one layer are peers: neither may use
# the other.  pg_kms (the module entry, src/pg_kms.c) is included by nobody.
LAYERS = [
    ("crypto",),                  # plain C over OpenSSL, no PostgreSQL headers
    ("common",),                  # errors, names, ids, uuid, ARNs, tags, fmgr helpers, secure memory, hooks
    ("aws",),                     # AWS client: SigV4, credentials, HTTPS (libcurl), JSON 1.1 calls
    ("catalog",),                 # SPI as the extension owner, authorisation helpers
    ("audit",),                   # events, queue, aggregate, drain jobs
    ("provider",),                # key providers: interface, local master key
    ("cache",),                   # shared key cache (its region holds the provider's master slot)
    ("keystore",),                # keys, versions, aliases, grants, material, master key
    ("envelope",),                # encryption context, encrypt/decrypt data
    ("kms", "secrets"),           # SQL entry points: KMS | Secrets Manager
    ("rotation",),                # secret rotation, key rotation and deletion jobs
    ("worker",),                  # background workers, job registry
    ("pg_kms",),                  # module entry: _PG_init, all hooks and callbacks
]
LAYER = {m: i for i, mods in enumerate(LAYERS) for m in mods}

INC_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# C string literals (with escapes), comments (skipped), and what lies between
# two literals that the compiler joins (white space and comments only).
LIT_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)"|/\*.*?\*/|//[^\n]*|\'(?:[^\'\\\n]|\\.)*\'', re.S)
GAP_RE = re.compile(r'\A(?:\s|/\*.*?\*/|//[^\n]*)*\Z', re.S)
WRITE_RE = re.compile(r'\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?'
                      r'((?:"?kms"?\."?\w+"?\s*,\s*)*"?kms"?\."?\w+"?)', re.I)
TABLE_RE = re.compile(r'\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"?kms"?\."?(\w+)"?', re.I)


def c_literals(text):
    """The string literals of C source text, adjacent ones joined."""
    out, cur, end = [], None, None
    for m in LIT_RE.finditer(text):
        if m.group(0).startswith('"'):
            if cur is not None and GAP_RE.match(text[end:m.start()]):
                cur += m.group(1)
            else:
                if cur is not None:
                    out.append(cur)
                cur = m.group(1)
            end = m.end()
    if cur is not None:
        out.append(cur)
    return out


def table_writers(src, files):
    """{table: {module: [evidence]}} for the tables of schema kms."""
    tables = set()
    sqldir = os.path.join(src, "sql")
    if os.path.isdir(sqldir):
        for n in sorted(os.listdir(sqldir)):
            if n.endswith(".sql"):
                tables.update(t.lower() for t in TABLE_RE.findall(open(os.path.join(sqldir, n), encoding="utf-8").read()))
    writers = {t: {} for t in tables}
    for f in files:
        if not f.endswith(".c"):
            continue
        text = open(os.path.join(src, f), encoding="utf-8").read()
        for lit in (l.replace("\\\"", "\"") for l in c_literals(text)):
            for m in WRITE_RE.finditer(lit):
                for name in re.split(r"\s*,\s*", m.group(2)):
                    t = name.split(".", 1)[1].strip('"').lower()
                    writers.setdefault(t, {}).setdefault(module_of(f), []).append(
                        "src/%s: %s kms.%s" % (f, " ".join(m.group(1).upper().split()), t))
    return tables, writers


def module_of(rel):
    """rel: path relative to src/."""
    parts = rel.split("/")
    if len(parts) > 1:
        return parts[0]
    return os.path.splitext(parts[0])[0]


def main():
    report = "--report" in sys.argv
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.join(repo, "src")
    files = []
    for d, _, names in os.walk(src):
        for n in names:
            if n.endswith((".c", ".h")):
                files.append(os.path.relpath(os.path.join(d, n), src))
    files.sort()
    by_base = {}
    for f in files:
        by_base.setdefault(f, f)
    problems = []
    edges = {}          # (from_mod, to_mod) -> [evidence]

    def add(a, b, why):
        if a != b:
            edges.setdefault((a, b), []).append(why)

    for f in files:
        m = module_of(f)
        if m not in LAYER:
            problems.append("src/%s: module %r is in no layer of scripts/check_layers.py" % (f, m))
            continue
        text = open(os.path.join(src, f), encoding="utf-8").read()
        for inc in INC_RE.findall(text):
            # resolve like the compiler: next to the file, then -Isrc
            cand = [os.path.normpath(os.path.join(os.path.dirname(f), inc)), os.path.normpath(inc)]
            target = next((c for c in cand if c in by_base), None)
            if target is None:
                continue        # a PostgreSQL or system header
            add(m, module_of(target), "src/%s includes \"%s\"" % (f, inc))

    # calls, from the built objects
    objs = [f[:-2] + ".o" for f in files if f.endswith(".c") and os.path.exists(os.path.join(src, f[:-2] + ".o"))]
    if objs:
        defined, undefined = {}, {}
        for o in objs:
            path = os.path.join(src, o)
            out = subprocess.run(["nm", path], capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "U":
                    undefined.setdefault(o, set()).add(parts[1])
                elif len(parts) == 3 and parts[1] in "TDBR":
                    defined[parts[2]] = o
        for o, syms in undefined.items():
            for s in sorted(syms):
                if s in defined:
                    add(module_of(o), module_of(defined[s]), "src/%s calls %s (src/%s)" % (o[:-2] + ".c", s, defined[s][:-2] + ".c"))

    for (a, b), why in sorted(edges.items()):
        if a not in LAYER or b not in LAYER:
            continue
        if LAYER[b] >= LAYER[a]:
            kind = "peer" if LAYER[b] == LAYER[a] else "upward"
            problems.append("%s edge %s (layer %d) -> %s (layer %d): %s%s" % (
                kind, a, LAYER[a], b, LAYER[b], "; ".join(why[:3]),
                " (+%d more)" % (len(why) - 3) if len(why) > 3 else ""))

    # cycles: strongly connected components of the module graph (Tarjan)
    graph = {}
    for (a, b) in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    for comp in sccs:
        problems.append("cycle between modules: " + ", ".join(comp))

    # the table rule: one writing layer per table of schema kms
    tables, writers = table_writers(src, files)
    for t in sorted(writers):
        mods = writers[t]
        layers = sorted({LAYER[m] for m in mods if m in LAYER})
        if t not in tables:
            problems.append("table kms.%s is written but not created in src/sql/: %s" % (
                t, "; ".join(w for m in sorted(mods) for w in mods[m][:1])))
        elif not mods:
            problems.append("table kms.%s is written by no C code (the rule: exactly one layer)" % t)
        elif len(layers) != 1:
            problems.append("table kms.%s is written by %d layers (%s): %s" % (
                t, len(layers), ", ".join(sorted(mods)),
                "; ".join(w for m in sorted(mods) for w in mods[m][:2])))

    order = " -> ".join(" | ".join(mods) for mods in LAYERS)
    print("layer order: " + order)
    print("%d files, %d module edges (%s)" % (len(files), len(edges),
          "includes and calls" if objs else "includes only; build for calls"))
    print("kms tables and their writers: " + "; ".join(
        "%s: %s" % (t, ", ".join(sorted(writers[t])) or "none") for t in sorted(writers)))
    for p in problems:
        print(("REPORT: " if report else "ERROR: ") + p)
    if problems and not report:
        print("check-layers: %d problem(s)" % len(problems))
        return 1
    print("check-layers: %s" % ("ok" if not problems else "%d problem(s), report mode" % len(problems)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
