#!/usr/bin/env python3
"""Run the SQL examples of README.md and docs/*.md against a fresh database.

Every indented or fenced code block whose first line starts with an SQL
keyword in capitals (SELECT, CREATE, ...) or a psql meta-command is an
example.  Each file gets a database of its own (CREATE EXTENSION pg_kms) and
its examples run in order, each in one psql session as the superuser, so a
later example sees what an earlier one made, as a reader would.

An example that shows output (psql's aligned table: a header line, a line
of dashes, rows) is compared with what psql prints, after masking values
that differ on every run (key ids, ARN suffixes, timestamps, base64
ciphertext), which docs may write as they come or as `...`.

HTML comments right before a block steer it (they do not show on a rendered
page):

  <!-- doc-test: skip REASON -->         not run (shell, signatures, ...)
  <!-- doc-test: error TEXT -->          must fail, with TEXT in the error
  <!-- doc-test: setup
       SQL ... -->                        hidden SQL run before the block
  <!-- doc-test: let <key id> = SQL -->  placeholder: '<key id>' in later
                                          blocks is replaced by the value of
                                          the SQL expression, quoted
  <!-- doc-test: replace A => B -->      the next block runs with text A
                                          replaced by B (a file path, say)
  <!-- doc-test: file -->                (anywhere) all blocks of this file
                                          that look like SQL must run: the
                                          default; `doc-test: off` turns a
                                          file off, with a reason

Needs PGHOST/PGPORT/PGUSER of a superuser.  Prints "ok"/"not ok" per
example and "N passed, M failed" last.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SQL_START = re.compile(r'^(SELECT|CREATE|INSERT|UPDATE|DELETE|ALTER|DROP|GRANT|REVOKE|SET|RESET|WITH|DO|'
                       r'BEGIN|COMMIT|ROLLBACK|CALL|EXPLAIN|COPY|VALUES|TABLE|PREPARE|EXECUTE)\b|^\\[a-z]')
DIRECTIVE = re.compile(r'<!--\s*doc-test:\s*(\w[\w-]*)\s*(.*?)\s*-->', re.S)
PLACEHOLDER = re.compile(r"'(<[a-z][a-z0-9 _-]*>)'")

MASKS = [
    (re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'), '<uuid>'),
    (re.compile(r'(secret:[A-Za-z0-9/_+=.@-]+)-[A-Za-z0-9]{6}\b'), r'\1-<rnd>'),
    (re.compile(r'\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d(:\d\d)?|Z)?'), '<time>'),
    (re.compile(r'\b\d{12}\b'), '<account>'),
    (re.compile(r'\b[0-9a-f]{64}\b'), '<hex64>'),
    (re.compile(r'[A-Za-z0-9+/]{40,}={0,2}'), '<base64>'),
]


def mask(text):
    for rx, rep in MASKS:
        text = rx.sub(rep, text)
    return text


def blocks(path):
    """Yield (line number, code, directives) for each code block."""
    lines = open(path, encoding='utf-8').read().split('\n')
    text = '\n'.join(lines)
    i = 0
    pending = []
    while i < len(lines):
        line = lines[i]
        # directives: an HTML comment (maybe several lines) before a block
        if '<!--' in line and 'doc-test:' in line:
            j = i
            chunk = line
            while '-->' not in chunk and j + 1 < len(lines):
                j += 1
                chunk += '\n' + lines[j]
            for m in DIRECTIVE.finditer(chunk):
                pending.append((m.group(1), m.group(2)))
            i = j + 1
            continue
        fenced = re.match(r'^(\s*)```(\w*)', line)
        if fenced:
            lang = fenced.group(2)
            j = i + 1
            body = []
            while j < len(lines) and not re.match(r'^\s*```', lines[j]):
                body.append(lines[j])
                j += 1
            if lang in ('', 'sql', 'psql'):
                yield i + 1, '\n'.join(body), pending
            pending = []
            i = j + 1
            continue
        prev_blank = i == 0 or lines[i - 1].strip() == ''
        if prev_blank and re.match(r'^( {4}|\t)\S', line):
            j = i
            body = []
            while j < len(lines) and (re.match(r'^( {4}|\t)', lines[j]) or
                                      (lines[j].strip() == '' and j + 1 < len(lines) and
                                       re.match(r'^( {4}|\t)\S', lines[j + 1]))):
                body.append(lines[j][4:] if lines[j].startswith('    ') else lines[j][1:])
                j += 1
            yield i + 1, '\n'.join(body), pending
            pending = []
            i = j
            continue
        if line.strip():
            pending = [p for p in pending if p[0] in ('let', 'file', 'off')]
        i += 1
    del text


def split_output(code):
    """Split a block into SQL and the psql output it shows (or None)."""
    lines = code.split('\n')
    for k in range(1, len(lines)):
        if re.match(r'^-[-+]*-$', lines[k].strip()) and lines[k - 1].strip():
            # the header is lines[k-1]; the SQL is everything before it
            return '\n'.join(lines[:k - 1]), '\n'.join(lines[k - 1:])
    return code, None


def psql(db, sql, expect_error=False):
    cmd = ['psql', '-X', '-d', db, '-v', 'ON_ERROR_STOP=1', '-P', 'footer=off']
    r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def normalise_output(text):
    out = []
    for line in text.split('\n'):
        s = line.rstrip()
        if s == '' or re.match(r'^\(\d+ rows?\)$', s):
            continue
        if re.match(r'^-[-+]*-$', s.strip()):
            out.append('---')		# column widths follow the (masked) values
            continue
        out.append(re.sub(r'\s+', ' ', mask(s)).strip())
    # "..." in the doc stands for anything: keep it as a wildcard
    return out


def matches(shown, got):
    if len(shown) != len(got):
        return False
    for a, b in zip(shown, got):
        if a == b:
            continue
        pattern = re.escape(a).replace(re.escape('...'), '.*')
        if not re.fullmatch(pattern, b):
            return False
    return True


def main():
    files = [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md')))
    results = []
    for path in files:
        rel = os.path.relpath(path, ROOT)
        text = open(path, encoding='utf-8').read()
        off = re.search(r'<!--\s*doc-test:\s*off\s*(.*?)-->', text, re.S)
        if off:
            print(f'# {rel}: off ({off.group(1).strip()})')
            continue
        db = 'doc_' + re.sub(r'[^a-z0-9]+', '_', os.path.splitext(os.path.basename(path))[0].lower())
        subprocess.run(['psql', '-X', '-q', '-d', 'postgres', '-c', f'DROP DATABASE IF EXISTS {db}',
                        '-c', f'CREATE DATABASE {db}'], check=True, capture_output=True)
        rc, out, err = psql(db, 'SET client_min_messages = warning; CREATE EXTENSION pg_kms;')
        if rc != 0:
            print(f'not ok - {rel}: CREATE EXTENSION: {err.strip()}')
            results.append(False)
            continue
        values = {}
        for lineno, code, directives in blocks(path):
            first = next((ln.strip() for ln in code.split('\n') if ln.strip()), '')
            kinds = dict(directives)
            for name, arg in directives:
                if name == 'let':
                    m = re.match(r'(<[^>]+>)\s*=\s*(.+)', arg, re.S)
                    if not m:
                        print(f'not ok - {rel}:{lineno}: bad let: {arg}')
                        results.append(False)
                        continue
                    rc, out, err = psql(db, f"\\pset format unaligned\n\\pset tuples_only on\nSELECT pg_catalog.quote_literal(({m.group(2)})::text);")
                    if rc != 0 or not out.strip():
                        print(f'not ok - {rel}:{lineno}: placeholder {m.group(1)}: {err.strip()}')
                        results.append(False)
                        continue
                    values[m.group(1)] = out.strip().split('\n')[-1]
            if 'skip' in kinds or not SQL_START.match(first):
                continue
            if 'setup' in kinds:
                rc, out, err = psql(db, kinds['setup'])
                if rc != 0:
                    print(f'not ok - {rel}:{lineno}: setup: {err.strip()}')
                    results.append(False)
                    continue
            sql, shown = split_output(code)
            for name, arg in directives:
                if name == 'replace' and '=>' in arg:
                    a, b = (x.strip() for x in arg.split('=>', 1))
                    sql = sql.replace(a, b)

            def subst(m):
                if m.group(1) not in values:
                    raise KeyError(m.group(1))
                return values[m.group(1)]
            try:
                sql = PLACEHOLDER.sub(subst, sql)
            except KeyError as e:
                print(f'not ok - {rel}:{lineno}: placeholder {e} has no doc-test: let')
                results.append(False)
                continue
            rc, out, err = psql(db, sql)
            label = f'{rel}:{lineno}: {first[:60]}'
            if 'error' in kinds:
                ok = rc != 0 and kinds['error'] in err
                print(('ok - ' if ok else 'not ok - ') + label + ' (fails as documented)'
                      + ('' if ok else f': rc={rc} {err.strip()[:300]}'))
                results.append(ok)
                continue
            if rc != 0:
                print(f'not ok - {label}: {err.strip()[:500]}')
                results.append(False)
                continue
            if shown is not None:
                want = normalise_output(shown)
                got = normalise_output(out)
                got = got[-len(want):] if len(got) >= len(want) else got
                ok = matches(want, got)
                print(('ok - ' if ok else 'not ok - ') + label + ' (output matches)')
                if not ok:
                    print('#   shown: ' + '\n#          '.join(want))
                    print('#   got:   ' + '\n#          '.join(got))
                results.append(ok)
            else:
                print(f'ok - {label}')
                results.append(True)
        subprocess.run(['psql', '-X', '-q', '-d', 'postgres', '-c', f'DROP DATABASE IF EXISTS {db}'],
                       capture_output=True)
    passed = sum(results)
    print(f'{passed} passed, {len(results) - passed} failed')
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
