#!/usr/bin/env python3
"""Encrypted columns through the clients applications use (issue 13).

Every write path of psycopg2 (client-side literals: execute, executemany),
psycopg 3 (server-side binding, text and binary parameters; COPY text and
binary through cursor.copy) and node-postgres (test/interop/node/
tce_clients.js: untyped $1, typed, a named statement, Buffer parameters in
binary format) stores ciphertext under the column's key -- checked with
kms_column_value_info() and by scanning the table's file and the WAL written
since the start (after a CHECKPOINT) and the server log for the marked
values: zero hits -- and reads the plaintext back in each client.  A role
without Decrypt on the key gets 42501 (AccessDeniedException) in each one.

Needs PGHOST/PGPORT/PGUSER/PGDATABASE of a superuser connection and
PG_KMS_SERVER_LOG, the server's log file (scripts/test.sh sets them).
"""
import json
import os
import secrets
import subprocess
import sys

import psycopg
import psycopg2
import psycopg2.extras
from psycopg import sql

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, 'node')
LOG = os.environ.get('PG_KMS_SERVER_LOG')
RUN = secrets.token_hex(6)
PREFIX = f'tcem{RUN}'            # every value written starts with it
TABLE = f'tce_interop_{RUN}'
ALIAS = f'alias/interop/tce-{RUN}'
READER = f'tce_interop_reader_{RUN}'
results = []


def check(ok, what):
    results.append(bool(ok))
    print(('ok - ' if ok else 'not ok - ') + what)


def superuser():
    return psycopg.connect(autocommit=True)


def setup():
    with superuser() as conn:
        key = conn.execute('SELECT kms_create_key(%s)', (f'interop tce {RUN}',)).fetchone()[0]
        conn.execute('SELECT kms_create_alias(%s, %s)', (ALIAS, key))
        conn.execute(sql.SQL('CREATE TABLE {} (id int PRIMARY KEY, path text NOT NULL, '
                             't encrypted_text({}), b encrypted_bytea({}))').format(
            sql.Identifier(TABLE), sql.Literal(ALIAS), sql.Literal(ALIAS)))
        conn.execute(sql.SQL('CREATE ROLE {} LOGIN').format(sql.Identifier(READER)))
        conn.execute(sql.SQL('GRANT SELECT ON {} TO {}').format(sql.Identifier(TABLE), sql.Identifier(READER)))
        wal = conn.execute('SELECT pg_walfile_name(pg_current_wal_lsn())').fetchone()[0]
        return key, wal


def expected_rows():
    """id -> (path, text value, bytea value) of every row the writers write."""
    rows = {}
    def add(i, path, tag):
        rows[i] = (path, f'{PREFIX}-{tag}', f'{PREFIX}-{tag}-b'.encode())
    add(1, 'psycopg2 execute', 'pg2-execute')
    for i in range(2, 5):
        add(i, 'psycopg2 executemany', f'pg2-many-{i}')
    add(5, 'psycopg2 execute_values', 'pg2-values-5')
    add(100, 'psycopg3 text params', 'pg3-text')
    add(101, 'psycopg3 binary params', 'pg3-binary')
    add(102, 'psycopg3 executemany', 'pg3-many-102')
    add(103, 'psycopg3 executemany', 'pg3-many-103')
    add(104, 'psycopg3 prepared', 'pg3-prepared')
    for i in (110, 111):
        add(i, 'psycopg3 copy text', f'pg3-copy-text-{i}')
    for i in (120, 121):
        add(i, 'psycopg3 copy binary', f'pg3-copy-binary-{i}')
    add(300, 'node untyped', 'node-untyped')
    add(301, 'node typed text', 'node-typed-text')
    add(302, 'node typed encrypted', 'node-typed-enc')
    add(303, 'node named', 'node-named-303')
    add(304, 'node named', 'node-named-304')
    add(305, 'node buffer', 'node-buffer')
    return rows


def write_psycopg2(rows):
    conn = psycopg2.connect('')
    try:
        with conn, conn.cursor() as cur:
            ins = f'INSERT INTO {TABLE} (id, path, t, b) VALUES (%s, %s, %s, %s)'
            p, t, b = rows[1]
            cur.execute(ins, (1, p, t, psycopg2.Binary(b)))
            cur.executemany(ins, [(i, rows[i][0], rows[i][1], psycopg2.Binary(rows[i][2])) for i in range(2, 5)])
            psycopg2.extras.execute_values(cur, f'INSERT INTO {TABLE} (id, path, t, b) VALUES %s',
                                           [(5, rows[5][0], rows[5][1], psycopg2.Binary(rows[5][2]))])
    finally:
        conn.close()


def write_psycopg3(rows):
    with psycopg.connect() as conn:
        ins = f'INSERT INTO {TABLE} (id, path, t, b) VALUES (%s, %s, %s, %s)'
        with conn.cursor() as cur:
            cur.execute(ins, (100, *rows[100]))                       # server-side binding, text
        with conn.cursor(binary=True) as cur:
            cur.execute(ins, (101, *rows[101]), binary=True)          # binary parameters
        with conn.cursor() as cur:
            cur.executemany(ins, [(i, *rows[i]) for i in (102, 103)])
            cur.execute(ins, (104, *rows[104]), prepare=True)         # a named prepared statement
        with conn.cursor() as cur:
            with cur.copy(f'COPY {TABLE} (id, path, t, b) FROM STDIN') as copy:
                for i in (110, 111):
                    copy.write_row((i, *rows[i]))
            with cur.copy(f'COPY {TABLE} (id, path, t, b) FROM STDIN (FORMAT BINARY)') as copy:
                # binary COPY: encrypted_text's receive takes the text's bytes
                copy.set_types(['int4', 'text', 'text', 'bytea'])
                for i in (120, 121):
                    copy.write_row((i, *rows[i]))
        conn.commit()


def npm_ready():
    if os.path.isdir(os.path.join(NODE_DIR, 'node_modules', 'pg')):
        return True
    r = subprocess.run(['npm', 'ci', '--no-audit', '--no-fund'], cwd=NODE_DIR,
                       capture_output=True, text=True, timeout=240)
    if r.returncode != 0:
        print(r.stdout[-2000:], r.stderr[-2000:])
    return r.returncode == 0


def node(*args, env=None):
    return subprocess.run(['node', os.path.join(NODE_DIR, 'tce_clients.js'), *args],
                          env=env or os.environ, capture_output=True, text=True, timeout=120)


def byte_scan(marker):
    """Hits of marker in the table's file, the WAL since the start, and the server log."""
    hits = []
    with superuser() as conn:
        conn.execute('CHECKPOINT')
        for path, in conn.execute(
                'SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = %s::regclass '
                'OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = %s::regclass)', (TABLE, TABLE)):
            data = conn.execute('SELECT pg_read_binary_file(%s)', (path,)).fetchone()[0]
            if marker in data:
                hits.append(path)
        for name, in conn.execute('SELECT name FROM pg_ls_waldir() WHERE name >= %s AND length(name) = 24 ORDER BY name',
                                  (WAL_START,)).fetchall():
            data = conn.execute('SELECT pg_read_binary_file(%s)', ('pg_wal/' + name,)).fetchone()[0]
            if marker in data:
                hits.append('pg_wal/' + name)
    if LOG and os.path.exists(LOG):
        with open(LOG, 'rb') as f:
            if marker in f.read():
                hits.append('server log')
    return hits


def main():
    global WAL_START
    if not LOG or not os.path.exists(LOG):
        print('not ok - PG_KMS_SERVER_LOG is not set to the server log file')
        return 1
    key, WAL_START = setup()
    rows = expected_rows()
    try:
        write_psycopg2(rows)
        check(True, 'psycopg2: execute, executemany and execute_values (client-side literals) write')
    except Exception as e:  # noqa: BLE001
        check(False, f'psycopg2 writes: {e}')
    try:
        write_psycopg3(rows)
        check(True, 'psycopg 3: text and binary parameters, executemany, prepared, COPY text and binary write')
    except Exception as e:  # noqa: BLE001
        check(False, f'psycopg 3 writes: {e}')
    have_node = npm_ready()
    check(have_node, 'node-postgres is installed (npm ci)')
    if have_node:
        r = node('write', TABLE, PREFIX)
        check(r.returncode == 0, 'node-postgres: untyped, typed, named, Buffer parameters write'
              + ('' if r.returncode == 0 else ': ' + r.stderr.strip()[-500:]))

    with superuser() as conn:
        got = {i: (p, sealed, str(k), det) for i, p, sealed, k, det in conn.execute(
            f'SELECT id, path, (kms_column_value_info(t)).sealed AND (kms_column_value_info(b)).sealed, '
            f'(kms_column_value_info(t)).key_id, (kms_column_value_info(t)).deterministic FROM {TABLE}')}
        for path in sorted({v[0] for v in rows.values()}):
            ids = [i for i, v in rows.items() if v[0] == path]
            ok = all(i in got and got[i][1] and got[i][2] == key and got[i][3] is False for i in ids)
            check(ok, f'{path}: stored sealed under the column key (kms_column_value_info)')
        # plaintext back, through each client
        back3 = {i: (t, b) for i, t, b in conn.execute(f'SELECT id, t::text, b::bytea FROM {TABLE}')}
    check(all(back3.get(i) == (v[1], v[2]) for i, v in rows.items() if i in back3) and len(back3) == len(rows),
          'psycopg 3 reads every value back (explicit casts)')
    with psycopg.connect() as conn:
        cur = conn.cursor(binary=True)
        cur.execute(f'SELECT t, b FROM {TABLE} WHERE id = 100')
        t, b = cur.fetchone()
        check(bytes(t) == rows[100][1].encode() and bytes(b) == rows[100][2],
              'psycopg 3 binary results: the plaintext bytes (send)')
        t, = conn.execute(f'SELECT t FROM {TABLE} WHERE id = 101').fetchone()
        check(t == rows[101][1], 'psycopg 3 text results: the plaintext without a cast')
    conn2 = psycopg2.connect('')
    try:
        with conn2.cursor() as cur:
            cur.execute(f'SELECT id, t, b::bytea FROM {TABLE} ORDER BY id')
            back2 = {i: (t, bytes(b)) for i, t, b in cur.fetchall()}
        check(back2 == {i: (v[1], v[2]) for i, v in rows.items()}, 'psycopg2 reads every value back')
    finally:
        conn2.close()
    if have_node:
        r = node('read', TABLE)
        ok = r.returncode == 0
        if ok:
            back = json.loads(r.stdout)
            ok = all(back.get(str(i), [None])[0] == rows[i][1]
                     and back[str(i)][1] == '\\x' + rows[i][2].hex() for i in rows if i >= 300)
        check(ok, 'node-postgres reads every value back' + ('' if ok else ': ' + (r.stdout + r.stderr)[-500:]))

    # a role without Decrypt: 42501 in each client
    try:
        with psycopg.connect(user=READER) as conn:
            conn.execute(f'SELECT t FROM {TABLE} WHERE id = 1').fetchall()
        check(False, 'psycopg 3 without Decrypt: refused')
    except psycopg.Error as e:
        check(e.sqlstate == '42501', f'psycopg 3 without Decrypt: 42501 ({e.sqlstate})')
    try:
        c2 = psycopg2.connect(user=READER)
        try:
            with c2.cursor() as cur:
                cur.execute(f'SELECT t FROM {TABLE} WHERE id = 1')
                cur.fetchall()
            check(False, 'psycopg2 without Decrypt: refused')
        finally:
            c2.close()
    except psycopg2.Error as e:
        check(e.pgcode == '42501', f'psycopg2 without Decrypt: 42501 ({e.pgcode})')
    if have_node:
        r = node('denied', TABLE, env=dict(os.environ, PGUSER=READER))
        check(r.returncode == 0, 'node-postgres without Decrypt: 42501' + ('' if r.returncode == 0 else ': ' + r.stderr.strip()))

    # no plaintext in the table's file, the WAL or the log
    hits = byte_scan(PREFIX.encode())
    check(not hits, f'no marked value in the table file, the WAL since the start or the server log ({hits or "none"})')
    # the scan can see a value: the plain column path is in the same file
    hits = byte_scan(b'psycopg3 copy binary')
    check(any(h.startswith('base/') or h.startswith('pg_tblspc') for h in hits),
          'the scan finds the plaintext path column in the table file (the scan works)')

    with superuser() as conn:
        conn.execute(sql.SQL('DROP TABLE {}').format(sql.Identifier(TABLE)))
        conn.execute(sql.SQL('DROP ROLE {}').format(sql.Identifier(READER)))
    passed = sum(results)
    print(f'{passed} passed, {len(results) - passed} failed')
    return 0 if passed == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())
