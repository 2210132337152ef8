#!/usr/bin/python3
"""Independent reference implementation of the pg_kms ciphertext format v1.

Written from docs/ciphertext-format.md alone, with Debian's
python3-cryptography, so that tests can check the C code against it both
ways.  It is also the executable companion of that document.

  kms_blob.py decrypt --master-key-file F --wrapped-hex HEX --blob-hex HEX
                      [--context JSON]                  -> plaintext hex
  kms_blob.py encrypt --master-key-file F --wrapped-hex HEX --key-id UUID
                      --version N --plaintext-hex HEX [--context JSON]
                      [--salt-hex HEX --nonce-hex HEX]  -> blob hex
  kms_blob.py wrap    --master-key-file F --key-id UUID --version N
                      [--material-hex HEX] [--nonce-hex HEX] -> wrapped hex
  kms_blob.py kcv     --master-key-file F               -> KCV hex
  kms_blob.py selftest

--salt-hex and --nonce-hex exist only to produce reproducible test vectors:
real encryptions must use fresh random values.
"""

import argparse
import json
import os
import struct
import sys
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_V1 = 0x01
HEADER_LEN = 45                   # format 1 | key id 16 | version 4 | D 12 | N 12
TAG_LEN = 16
OVERHEAD = HEADER_LEN + TAG_LEN   # 61
HKDF_INFO = b"pg_kms v1 data key"
WRAP_FORMAT_V1 = 0x01
WRAP_AAD_PREFIX = b"pg_kms wrap v1"
KCV_LABEL = b"pg_kms key check value v1"


def read_master_key(path):
    """32 raw bytes, or 64 hex characters optionally followed by a newline."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) == 32:
        return data
    if data.endswith(b"\n"):
        data = data[:-1]
    if len(data) == 64:
        try:
            return bytes.fromhex(data.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise ValueError("master key file must hold 32 raw bytes or 64 hex characters")


def encode_context(context):
    """Canonical encryption context: uint16 count, then sorted (len, key, len, value)."""
    pairs = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    if len(pairs) > 0xFFFF:
        raise ValueError("too many context pairs")
    out = struct.pack(">H", len(pairs))
    for k, v in pairs:           # bytes sort like memcmp, shorter first on a prefix
        if len(k) > 0xFFFF or len(v) > 0xFFFF:
            raise ValueError("context key or value longer than 65535 bytes")
        out += struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
    return out


def parse_blob(blob):
    if len(blob) < OVERHEAD or blob[0] != FORMAT_V1:
        raise ValueError("not a format-1 blob")
    version, = struct.unpack(">I", blob[17:21])
    if version == 0:
        raise ValueError("key version 0 is invalid")
    return {
        "key_id": blob[1:17],
        "version": version,
        "salt": blob[21:33],
        "nonce": blob[33:45],
        "ciphertext_and_tag": blob[45:],
    }


def wrap_aad(key_id, version):
    return WRAP_AAD_PREFIX + key_id + struct.pack(">I", version)


def wrap(master, key_id, version, material, nonce=None):
    nonce = nonce if nonce is not None else os.urandom(12)
    sealed = AESGCM(master).encrypt(nonce, material, wrap_aad(key_id, version))
    return bytes([WRAP_FORMAT_V1]) + nonce + sealed


def unwrap(master, key_id, version, wrapped):
    if len(wrapped) < 1 + 12 + 16 or wrapped[0] != WRAP_FORMAT_V1:
        raise ValueError("not a format-1 wrapped key")
    return AESGCM(master).decrypt(wrapped[1:13], wrapped[13:], wrap_aad(key_id, version))


def derive_data_key(material, salt):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=HKDF_INFO).derive(material)


def master_kcv(master):
    h = hmac.HMAC(master, hashes.SHA256())
    h.update(KCV_LABEL)
    return h.finalize()[:16]


def encrypt(material, key_id, version, plaintext, context, salt=None, nonce=None):
    salt = salt if salt is not None else os.urandom(12)
    nonce = nonce if nonce is not None else os.urandom(12)
    header = bytes([FORMAT_V1]) + key_id + struct.pack(">I", version) + salt + nonce
    sealed = AESGCM(derive_data_key(material, salt)).encrypt(
        nonce, plaintext, header + encode_context(context))
    return header + sealed


def decrypt(material, blob, context):
    h = parse_blob(blob)
    return AESGCM(derive_data_key(material, h["salt"])).decrypt(
        h["nonce"], h["ciphertext_and_tag"], blob[:HEADER_LEN] + encode_context(context))


def load_context(text):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate context key")
        return dict(pairs)
    ctx = json.loads(text, object_pairs_hook=no_duplicates) if text else {}
    if not isinstance(ctx, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in ctx.items()):
        raise ValueError("context must be a JSON object of strings")
    return ctx


def selftest():
    master = os.urandom(32)
    key_id = uuid.uuid4().bytes
    material = os.urandom(32)
    wrapped = wrap(master, key_id, 3, material)
    assert unwrap(master, key_id, 3, wrapped) == material
    for bad in (lambda: unwrap(master, key_id, 4, wrapped),
                lambda: unwrap(master, bytes(16), 3, wrapped),
                lambda: unwrap(master, key_id, 3, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))):
        try:
            bad()
            raise AssertionError("tampered wrap accepted")
        except InvalidTag:
            pass

    assert encode_context({}) == b"\x00\x00"
    assert encode_context({"b": "2", "aa": "3", "a": "1"}).hex() == \
        "0003" "000161000131" "00026161000133" "000162000132"

    ctx = {"tenant": "42", "purpose": "ssn"}
    for n in (0, 1, 16, 300):
        pt = os.urandom(n)
        blob = encrypt(material, key_id, 3, pt, ctx)
        assert len(blob) == OVERHEAD + n
        assert decrypt(material, blob, ctx) == pt
        for bad_blob, bad_ctx in ((blob[:-1] + bytes([blob[-1] ^ 1]), ctx),
                                  (blob[:5] + bytes([blob[5] ^ 1]) + blob[6:], ctx),
                                  (blob, {"tenant": "43", "purpose": "ssn"})):
            try:
                decrypt(material, bad_blob, bad_ctx)
                raise AssertionError("tampered blob accepted")
            except InvalidTag:
                pass

    # Known answers shared with test/kat/kat_gcm.c (computed independently).
    assert master_kcv(bytes(range(32))).hex() == "6a010a5925b51300e039bfa844eb39a6"
    assert derive_data_key(bytes(range(32)), bytes(range(0x40, 0x4c))).hex() == \
        "a3ae345ac4e881eeb3a6015038cfde29bfd9e19b85d3fccbc05fcbe29b5c19d3"
    print("selftest passed")


def key_version(text):
    v = int(text)
    if not 1 <= v <= 0xFFFFFFFF:
        raise ValueError("key version must be in 1..4294967295")
    return v


def main(argv):
    p = argparse.ArgumentParser(description="pg_kms ciphertext format v1 reference")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("decrypt", "encrypt", "wrap", "kcv"):
        s = sub.add_parser(name)
        s.add_argument("--master-key-file", required=True)
        if name in ("decrypt", "encrypt"):
            s.add_argument("--wrapped-hex", required=True)
            s.add_argument("--context", default="")
        if name in ("encrypt", "wrap"):
            s.add_argument("--key-id", required=True, type=uuid.UUID)
            s.add_argument("--version", required=True, type=key_version)
            s.add_argument("--nonce-hex", type=bytes.fromhex)
        if name == "decrypt":
            s.add_argument("--blob-hex", required=True)
        if name == "encrypt":
            s.add_argument("--plaintext-hex", required=True)
            s.add_argument("--salt-hex", type=bytes.fromhex)
        if name == "wrap":
            s.add_argument("--material-hex", type=bytes.fromhex)
    sub.add_parser("selftest")
    a = p.parse_args(argv)

    if a.cmd == "selftest":
        selftest()
        return 0
    master = read_master_key(a.master_key_file)
    if a.cmd == "kcv":
        print(master_kcv(master).hex())
    elif a.cmd == "wrap":
        material = a.material_hex if a.material_hex is not None else os.urandom(32)
        print(wrap(master, a.key_id.bytes, a.version, material, a.nonce_hex).hex())
    elif a.cmd == "decrypt":
        blob = bytes.fromhex(a.blob_hex)
        h = parse_blob(blob)
        material = unwrap(master, h["key_id"], h["version"], bytes.fromhex(a.wrapped_hex))
        print(decrypt(material, blob, load_context(a.context)).hex())
    else:
        material = unwrap(master, a.key_id.bytes, a.version, bytes.fromhex(a.wrapped_hex))
        print(encrypt(material, a.key_id.bytes, a.version, bytes.fromhex(a.plaintext_hex),
                      load_context(a.context), a.salt_hex, a.nonce_hex).hex())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InvalidTag:
        print("kms_blob.py: authentication failed", file=sys.stderr)
        sys.exit(1)
    except ValueError as e:
        print("kms_blob.py: %s" % e, file=sys.stderr)
        sys.exit(1)
