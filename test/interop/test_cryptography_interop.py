#!/usr/bin/python3
"""Interop: pg_kms ciphertext against an independent implementation.

Python's `cryptography` (Debian's python3-cryptography), driven by
kms_blob.py, which follows docs/ciphertext-format.md and nothing else,
decrypts blobs made by kms_encrypt from the master key file and the wrapped
version material alone; and kms_decrypt accepts blobs that Python made.
Contexts, rotation (two versions) and sizes 1 B .. 64 KiB are covered.

Environment: PGHOST, PGPORT, PGUSER, PGDATABASE of a server that preloads
pg_kms, and PG_KMS_MASTER_KEY_FILE, the file that server reads.
"""
import os
import sys

import psycopg2
import psycopg2.extras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kms_blob  # noqa: E402

passed = failed = 0


def check(name, cond):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + name)
    else:
        failed += 1
        print("not ok - " + name)


def main():
    master = kms_blob.read_master_key(os.environ["PG_KMS_MASTER_KEY_FILE"])
    conn = psycopg2.connect(dbname=os.environ.get("PGDATABASE", "postgres"))
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_kms")
    cur.execute("SELECT kms_create_key(description => 'interop')")
    key_id = cur.fetchone()[0]

    def wrapped(version):
        cur.execute("SELECT material FROM kms.key_version WHERE key_id = %s AND version = %s",
                    (key_id, version))
        return bytes(cur.fetchone()[0])

    def material(version):
        return kms_blob.unwrap(master, bytes.fromhex(key_id.replace("-", "")), version,
                               wrapped(version))

    # The server's KCV is the one the documented formula gives.
    cur.execute("SELECT kcv FROM kms.master WHERE id = 1")
    check("key check value matches the documented formula",
          bytes(cur.fetchone()[0]) == kms_blob.master_kcv(master))

    contexts = [{}, {"tenant": "42"}, {"b": "2", "a": "1", "ab": "c"}, {"ünï": "cödé"}]
    sizes = [1, 15, 16, 17, 100, 4096, 65536]
    for version in (1, 2):
        if version == 2:
            cur.execute("SELECT kms_rotate_key_on_demand(%s)", (key_id,))
        m = material(version)
        for ctx in contexts:
            for n in sizes:
                pt = os.urandom(n)
                cur.execute("SELECT kms_encrypt(%s, %s, %s::jsonb)",
                            (key_id, psycopg2.Binary(pt), psycopg2.extras.Json(ctx)))
                blob = bytes(cur.fetchone()[0])
                ok = len(blob) == n + kms_blob.OVERHEAD
                hdr = kms_blob.parse_blob(blob)
                ok = ok and kms_blob.decrypt(m, blob, ctx) == pt
                check("python decrypts kms_encrypt v%d ctx=%s n=%d" % (version, sorted(ctx), n), ok)

        # and the other way: python encrypts, the server decrypts
        for ctx in contexts:
            pt = os.urandom(300)
            blob = kms_blob.encrypt(m, bytes.fromhex(key_id.replace("-", "")), version, pt, ctx)
            cur.execute("SELECT kms_decrypt(%s, %s::jsonb)",
                        (psycopg2.Binary(blob), psycopg2.extras.Json(ctx)))
            check("kms_decrypt accepts a python blob v%d ctx=%s" % (version, sorted(ctx)),
                  bytes(cur.fetchone()[0]) == pt)

    # A python blob under a wrong context is refused by the server.
    blob = kms_blob.encrypt(material(2), bytes.fromhex(key_id.replace("-", "")), 2, b"x", {"a": "1"})
    try:
        cur.execute("SELECT kms_decrypt(%s, %s::jsonb)",
                    (psycopg2.Binary(blob), psycopg2.extras.Json({"a": "2"})))
        check("wrong context refused", False)
    except psycopg2.Error as e:
        check("wrong context refused with InvalidCiphertextException (KM003)",
              e.pgcode == "KM003" and "InvalidCiphertextException" in e.pgerror)

    # Data keys: the plaintext data key is what the blob holds.
    cur.execute("SELECT plaintext, ciphertext_blob FROM kms_generate_data_key(%s, 'AES_256')",
                (key_id,))
    pt, blob = (bytes(x) for x in cur.fetchone())
    check("generate_data_key blob decrypts to its plaintext in python",
          kms_blob.decrypt(material(2), blob, {}) == pt)

    cur.execute("SELECT kms_schedule_key_deletion(%s, 7)", (key_id,))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    import psycopg2.extras  # noqa: F401
    sys.exit(main())
