#!/usr/bin/env python3
"""Secret values stay out of the server log on Debian 12's own clients.

With log_statement = 'all', a value written as a literal is in the log (the
statement text holds it).  Passed as a bind parameter it is not, provided
log_parameter_max_length = 0 (PostgreSQL logs bind parameters with the
statement otherwise).  Checked with clients we did not write:

- psycopg 3 (Debian's python3-psycopg), which binds parameters on the server
  ($1, the extended protocol) where psycopg2 interpolates them on the client;
- node-postgres (npm `pg`), test/interop/node/values_out_of_logs.js;
- psql 15, which has no \\bind (psql 16 has): a value read with \\copy travels
  in the COPY data stream, which log_statement does not log;
- and, so that the check can fail: psycopg 3 with log_parameter_max_length
  = -1 logs the value in the DETAIL line, and a literal is logged.

Needs PGHOST/PGPORT/PGUSER/PGDATABASE of a superuser connection (to set the
log settings per session) and PG_KMS_SERVER_LOG, the server's log file.
"""
import os
import secrets
import subprocess
import sys
import tempfile
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
LOG = os.environ.get('PG_KMS_SERVER_LOG')
results = []


def check(ok, what):
    results.append(ok)
    print(('ok - ' if ok else 'not ok - ') + what)


def log_text():
    time.sleep(0.3)  # the server writes its log line as it runs the statement
    with open(LOG, 'rb') as f:
        return f.read()


def marker(tag):
    return f'{tag}-{secrets.token_hex(12)}'


def psycopg3(value, name, param_len):
    with psycopg.connect() as conn:
        conn.execute("SET log_statement = 'all'")
        conn.execute(f'SET log_parameter_max_length = {param_len}')
        conn.execute('SELECT create_secret(%s, %s)', (name, value))
        got = conn.execute('SELECT get_secret(%s)', (name,)).fetchone()[0]
        conn.execute('SELECT delete_secret(%s, force_delete_without_recovery => true)', (name,))
        return got


def main():
    if not LOG or not os.path.exists(LOG):
        print('not ok - PG_KMS_SERVER_LOG is not set to the server log file')
        return 1
    # 1. psycopg 3, bind parameters, log_parameter_max_length = 0
    v = marker('psycopg3')
    check(psycopg3(v, 'interop/psycopg3', 0) == v, 'psycopg 3: create_secret and get_secret with bind parameters')
    check(v.encode() not in log_text(), 'psycopg 3: the value is not in the log (log_statement = all, log_parameter_max_length = 0)')

    # 2. the same with PostgreSQL's default: the DETAIL line holds the value
    v = marker('psycopg3-default')
    psycopg3(v, 'interop/psycopg3-default', -1)
    check(v.encode() in log_text(), 'psycopg 3 with log_parameter_max_length = -1: the value is logged (the documented leak)')

    # 3. a literal: in the statement text
    v = marker('literal')
    with psycopg.connect() as conn:
        conn.execute("SET log_statement = 'all'")
        conn.execute(f"SELECT create_secret('interop/literal', '{v}')")
        conn.execute("SELECT delete_secret('interop/literal', force_delete_without_recovery => true)")
    check(v.encode() in log_text(), 'a literal is logged with the statement (the documented leak)')

    # 4. node-postgres
    v = marker('node')
    env = dict(os.environ, PGOPTIONS='-c log_parameter_max_length=0')
    node_dir = os.path.join(HERE, 'node')
    if not os.path.isdir(os.path.join(node_dir, 'node_modules', 'pg')):
        r = subprocess.run(['npm', 'ci', '--no-audit', '--no-fund'], cwd=node_dir,
                           capture_output=True, text=True, timeout=240)
        if r.returncode != 0:
            print(r.stdout[-2000:], r.stderr[-2000:])
    r = subprocess.run(['node', os.path.join(node_dir, 'values_out_of_logs.js'), 'interop/node', v],
                       env=env, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, 'node-postgres: create_secret and get_secret with bind parameters'
          + ('' if r.returncode == 0 else ': ' + r.stderr.strip()[-500:]))
    check(v.encode() not in log_text(), 'node-postgres: the value is not in the log')
    with psycopg.connect() as conn:
        conn.execute("SELECT delete_secret('interop/node', force_delete_without_recovery => true)")

    # 5. psql 15: the value from a file through \copy, never in a statement
    v = marker('psql')
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'value.txt')
        with open(path, 'w') as f:
            f.write(v + '\n')
        os.chmod(d, 0o755)
        os.chmod(path, 0o644)
        script = (
            "SET log_statement = 'all';\n"
            "CREATE TEMP TABLE v (value text);\n"
            f"\\copy v FROM '{path}'\n"
            "SELECT create_secret('interop/psql', value) IS NOT NULL FROM v;\n"
            "SELECT get_secret('interop/psql') = value FROM v;\n"
            "SELECT delete_secret('interop/psql', force_delete_without_recovery => true) IS NOT NULL;\n")
        r = subprocess.run(['psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1'], input=script,
                           capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and r.stdout.split()[-3:] == ['t', 't', 't'],
          'psql 15: create_secret from a value read with \\copy' + ('' if r.returncode == 0 else ': ' + r.stderr))
    check(v.encode() not in log_text(), 'psql 15 with \\copy: the value is not in the log')

    passed = sum(1 for x in results if x)
    print(f'{passed} passed, {len(results) - passed} failed')
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
