#!/usr/bin/env python3
"""A loopback AWS emulator for pg_kms's tests (never for production).

    python3 test/aws/emulator.py --port P --cert C --key K [--state DIR]
                                 [--account 111122223333] [--region us-east-1]

Serves HTTPS (the tests make a throwaway CA with the openssl CLI, so TLS
verification stays on in the client).  --port 0 picks a free port; the
first line on stdout is "READY <port>".

AWS JSON 1.1 requests (POST /, X-Amz-Target) are dispatched by target:
  TrentService.*    KMS, here: GenerateDataKey, Decrypt, Encrypt, DescribeKey
  secretsmanager.*  handed to test/aws/emu_secretsmanager.py if it exists, as
                    handle(op, body_dict, ctx) -> (status, dict)
Every one of them is SigV4-verified: botocore.auth.SigV4Auth recomputes the
signature over the request as received (the headers it lists as signed, the
body bytes) with the secret registered for the access key id; a mismatch is
InvalidSignatureException, an unknown key UnrecognizedClientException, a
session token past its expiry ExpiredTokenException.

Credential sources, on the same port:
  STS (POST / with Action=AssumeRoleWithWebIdentity, form encoded, XML answer)
  container credentials (GET /container-credentials, Authorization checked)
  IMDSv2 (PUT /latest/api/token, GET /latest/meta-data/iam/security-credentials/[role])
Each hands out fresh temporary credentials (registered for SigV4) that expire
after "temp_ttl" seconds (default 3600; control API).

Control API (no auth; loopback tests only):
  GET  /__calls                     {"TrentService.Decrypt": 3, ...}
  GET  /__requests                  the last 200 requests: target, akid, token?, status
  POST /__control {"op": ...}:
    reset_calls
    credentials  {access_key_id, secret_access_key[, session_token][, expires_in]}
    fault        {kind, count=1[, target][, seconds]} kinds: throttle, 500, 503,
                 slow (sleep seconds, then answer normally), malformed (2xx, not
                 JSON), expired_token, bad_signature (answers as if the signature
                 did not match), access_denied, disconnect (close, no answer)
    clear_faults
    create_key   {[alias], [key_id]} -> {KeyId, Arn}
    set_key      {key_id, enabled: bool}
    web_identity {role_arn, token}   (the JWT STS accepts for that role)
    container    {token}             (the Authorization value required)
    imds         {role}              (the instance role name; "" disables)
    temp_ttl     {seconds}
Keys and registered credentials persist in --state DIR (state.json), so a
test can stop and start the emulator and decrypt what it wrapped before.
"""
import argparse
import base64
import datetime
import hashlib
import importlib.util
import json
import os
import secrets
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
BLOB_MAGIC = b"EMU1"


class AwsError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def context_aad(ctx):
    """Length-prefixed canonical encoding of an encryption context."""
    if ctx is None:
        ctx = {}
    if not isinstance(ctx, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in ctx.items()):
        raise AwsError(400, "ValidationException", "EncryptionContext must map strings to strings")
    out = struct.pack(">I", len(ctx))
    for k in sorted(ctx):
        kb, vb = k.encode(), ctx[k].encode()
        out += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
    return out


class State:
    def __init__(self, path, account, region):
        self.lock = threading.RLock()
        self.path = path
        self.account = account
        self.region = region
        self.calls = {}
        self.requests = []
        self.faults = []
        self.keys = {}          # key id -> {"material": hex, "enabled": bool, "aliases": [..]}
        self.creds = {"AKIDPGKMSTEST": {"secret": "pgkms/test/secret/key", "token": None, "expires": None}}
        self.web_identity = {}  # role arn -> jwt
        self.container_token = None
        self.imds_role = "pg-kms-test-role"
        self.temp_ttl = 3600
        self.load()
        if not self.keys:
            self.create_key("alias/pg_kms-test", "11111111-2222-3333-4444-555555555555")

    def load(self):
        if self.path and os.path.exists(self.path):
            with open(self.path) as f:
                d = json.load(f)
            self.keys = d.get("keys", {})
            self.creds = d.get("creds", self.creds)
            self.web_identity = d.get("web_identity", {})
            self.container_token = d.get("container_token")
            self.imds_role = d.get("imds_role", self.imds_role)
            self.temp_ttl = d.get("temp_ttl", self.temp_ttl)

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"keys": self.keys, "creds": self.creds, "web_identity": self.web_identity,
                       "container_token": self.container_token, "imds_role": self.imds_role,
                       "temp_ttl": self.temp_ttl}, f)
        os.replace(tmp, self.path)

    def arn(self, key_id):
        return "arn:aws:kms:%s:%s:key/%s" % (self.region, self.account, key_id)

    def create_key(self, alias=None, key_id=None):
        with self.lock:
            key_id = key_id or str(uuid.uuid4())
            self.keys[key_id] = {"material": secrets.token_hex(32), "enabled": True,
                                 "aliases": [alias] if alias else [], "created": time.time()}
            self.save()
            return key_id

    def resolve(self, ident):
        """Key id from a key id, key ARN, alias name or alias ARN."""
        if not isinstance(ident, str) or not ident:
            raise AwsError(400, "ValidationException", "KeyId is required")
        name = ident
        if ident.startswith("arn:"):
            parts = ident.split(":", 5)
            if len(parts) != 6 or parts[2] != "kms":
                raise AwsError(400, "InvalidArnException", "invalid ARN")
            name = parts[5]
            if name.startswith("key/"):
                name = name[4:]
        if name.startswith("alias/"):
            for kid, k in self.keys.items():
                if name in k["aliases"]:
                    return kid
            raise AwsError(400, "NotFoundException", "Alias %s is not found." % name)
        if name in self.keys:
            return name
        raise AwsError(400, "NotFoundException", "Key '%s' does not exist" % self.arn(name))

    def temp_creds(self):
        akid = "ASIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        token = "EMUTOKEN" + secrets.token_urlsafe(60)
        expires = time.time() + self.temp_ttl
        with self.lock:
            self.creds[akid] = {"secret": secret, "token": token, "expires": expires}
            self.save()
        exp = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return akid, secret, token, exp

    def take_fault(self, target):
        with self.lock:
            for f in self.faults:
                if f.get("target") in (None, target) and f["count"] > 0:
                    f["count"] -= 1
                    kind = dict(f)
                    self.faults = [x for x in self.faults if x["count"] > 0]
                    return kind
        return None


# ---------------------------------------------------------------- KMS

def kms_generate_data_key(st, body):
    kid = st.resolve(body.get("KeyId"))
    n = body.get("NumberOfBytes")
    spec = body.get("KeySpec")
    if (n is None) == (spec is None):
        raise AwsError(400, "ValidationException", "specify either KeySpec or NumberOfBytes")
    if spec is not None:
        n = {"AES_256": 32, "AES_128": 16}.get(spec)
        if n is None:
            raise AwsError(400, "ValidationException", "invalid KeySpec")
    if not isinstance(n, int) or not 1 <= n <= 1024:
        raise AwsError(400, "ValidationException", "NumberOfBytes out of range")
    plaintext = secrets.token_bytes(n)
    blob = encrypt_blob(st, kid, plaintext, body.get("EncryptionContext"))
    return {"KeyId": st.arn(kid), "Plaintext": b64(plaintext), "CiphertextBlob": b64(blob)}


def encrypt_blob(st, kid, plaintext, ctx):
    k = st.keys[kid]
    if not k["enabled"]:
        raise AwsError(400, "DisabledException", "%s is disabled." % st.arn(kid))
    aad = context_aad(ctx)
    nonce = secrets.token_bytes(12)
    header = BLOB_MAGIC + kid.encode().ljust(36, b" ")
    ct = AESGCM(bytes.fromhex(k["material"])).encrypt(nonce, plaintext, header + aad)
    return header + nonce + ct


def kms_encrypt(st, body):
    kid = st.resolve(body.get("KeyId"))
    pt = unb64(body.get("Plaintext"), "Plaintext")
    if not 1 <= len(pt) <= 4096:
        raise AwsError(400, "ValidationException", "Plaintext length out of range")
    blob = encrypt_blob(st, kid, pt, body.get("EncryptionContext"))
    return {"KeyId": st.arn(kid), "CiphertextBlob": b64(blob), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}


def kms_decrypt(st, body):
    blob = unb64(body.get("CiphertextBlob"), "CiphertextBlob")
    if len(blob) < 4 + 36 + 12 + 16 or blob[:4] != BLOB_MAGIC:
        raise AwsError(400, "InvalidCiphertextException", "")
    kid = blob[4:40].decode(errors="replace").strip()
    if kid not in st.keys:
        raise AwsError(400, "InvalidCiphertextException", "")
    if body.get("KeyId") is not None and st.resolve(body["KeyId"]) != kid:
        raise AwsError(400, "IncorrectKeyException",
                       "The key ID in the request does not identify a CMK that can perform this operation.")
    k = st.keys[kid]
    if not k["enabled"]:
        raise AwsError(400, "DisabledException", "%s is disabled." % st.arn(kid))
    aad = context_aad(body.get("EncryptionContext"))
    try:
        pt = AESGCM(bytes.fromhex(k["material"])).decrypt(blob[40:52], blob[52:], blob[:40] + aad)
    except Exception:
        raise AwsError(400, "InvalidCiphertextException", "")
    return {"KeyId": st.arn(kid), "Plaintext": b64(pt), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}


def kms_describe_key(st, body):
    kid = st.resolve(body.get("KeyId"))
    k = st.keys[kid]
    return {"KeyMetadata": {
        "AWSAccountId": st.account, "KeyId": kid, "Arn": st.arn(kid),
        "CreationDate": k.get("created", 0), "Enabled": k["enabled"],
        "KeyState": "Enabled" if k["enabled"] else "Disabled",
        "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT", "KeyManager": "CUSTOMER",
        "Origin": "AWS_KMS", "MultiRegion": False,
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]}}


KMS_OPS = {
    "GenerateDataKey": kms_generate_data_key,
    "Encrypt": kms_encrypt,
    "Decrypt": kms_decrypt,
    "DescribeKey": kms_describe_key,
}


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s, name):
    if not isinstance(s, str):
        raise AwsError(400, "ValidationException", "%s is required" % name)
    try:
        return base64.b64decode(s, validate=True)
    except Exception:
        raise AwsError(400, "SerializationException", "%s is not valid base64" % name)


# ---------------------------------------------------------------- server

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pg_kms-emulator"

    def log_message(self, fmt, *args):
        if os.environ.get("EMULATOR_VERBOSE"):
            sys.stderr.write("emulator: " + (fmt % args) + "\n")

    # -- plumbing
    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, payload, ctype="application/x-amz-json-1.1", extra=None):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _aws_error(self, e):
        self._send(e.status, {"__type": e.code, "message": e.message})

    @property
    def st(self):
        return self.server.state

    # -- SigV4
    def _verify_sigv4(self, body, service):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            raise AwsError(400, "MissingAuthenticationTokenException", "Missing Authentication Token")
        fields = {}
        for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        try:
            akid, date8, region, svc, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            sig = fields["Signature"]
        except (KeyError, ValueError):
            raise AwsError(400, "IncompleteSignatureException", "malformed Authorization header")
        cred = self.st.creds.get(akid)
        if cred is None:
            raise AwsError(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
        token = self.headers.get("X-Amz-Security-Token")
        if cred.get("token") and token != cred["token"]:
            raise AwsError(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if cred.get("expires") and time.time() > cred["expires"]:
            raise AwsError(400, "ExpiredTokenException", "The security token included in the request is expired")
        if svc != service or term != "aws4_request" or region != self.st.region:
            raise AwsError(400, "InvalidSignatureException", "Credential should be scoped to a valid region and service.")
        for h in ("host", "x-amz-date"):
            if h not in signed:
                raise AwsError(400, "InvalidSignatureException", "%s must be signed" % h)
        if token and "x-amz-security-token" not in signed:
            raise AwsError(400, "InvalidSignatureException", "x-amz-security-token must be signed")
        amzdate = self.headers.get("X-Amz-Date", "")
        try:
            t = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise AwsError(400, "IncompleteSignatureException", "bad X-Amz-Date")
        if abs(time.time() - t.timestamp()) > 300 or date8 != amzdate[:8]:
            raise AwsError(400, "InvalidSignatureException", "Signature expired")
        # recompute with botocore over what we received
        hdrs = {}
        for name in signed:
            vals = self.headers.get_all(name) or []
            if not vals:
                raise AwsError(400, "InvalidSignatureException", "signed header %s missing" % name)
            hdrs[name] = ",".join(vals)
        req = AWSRequest(method=self.command, url="https://%s%s" % (hdrs["host"], self.path),
                         data=body, headers=hdrs)
        req.context["timestamp"] = amzdate
        signer = SigV4Auth(Credentials(akid, cred["secret"], cred.get("token")), service, region)
        creq = signer.canonical_request(req)
        sts = signer.string_to_sign(req, creq)
        expect = signer.signature(sts, req)
        if expect != sig:
            raise AwsError(400, "InvalidSignatureException",
                           "The request signature we calculated does not match the signature you provided.")
        return akid

    # -- verbs
    def do_GET(self):
        p = urllib.parse.urlsplit(self.path).path
        if p == "/__calls":
            with self.st.lock:
                return self._send(200, dict(self.st.calls), "application/json")
        if p == "/__requests":
            with self.st.lock:
                return self._send(200, list(self.st.requests), "application/json")
        if p == "/container-credentials":
            return self._container()
        if p.startswith("/latest/meta-data/iam/security-credentials"):
            return self._imds_get(p)
        self._send(404, {"message": "not found"}, "application/json")

    def do_PUT(self):
        body = self._body()
        if self.path == "/latest/api/token":
            self._count("IMDS.Token")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl:
                return self._send(400, b"", "text/plain")
            tok = "IMDSTOKEN-" + secrets.token_hex(16)
            self.server.imds_tokens.add(tok)
            return self._send(200, tok.encode(), "text/plain")
        self._send(404, {"message": "not found"}, "application/json")

    def do_POST(self):
        body = self._body()
        p = urllib.parse.urlsplit(self.path).path
        if p == "/__control":
            return self._control(body)
        target = self.headers.get("X-Amz-Target")
        if target is None:
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                return self._sts(body)
            return self._send(400, {"__type": "UnknownOperationException"})
        self._count(target)
        fault = self.st.take_fault(target)
        status = 200
        akid = None
        try:
            if fault:
                k = fault["kind"]
                if k == "slow":
                    time.sleep(float(fault.get("seconds", 5)))
                elif k == "disconnect":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                elif k == "throttle":
                    raise AwsError(400, "ThrottlingException", "Rate exceeded")
                elif k in ("500", "503"):
                    raise AwsError(int(k), "KMSInternalException" if k == "500" else "ServiceUnavailableException",
                                   "internal failure")
                elif k == "expired_token":
                    raise AwsError(400, "ExpiredTokenException", "The security token included in the request is expired")
                elif k == "bad_signature":
                    raise AwsError(400, "InvalidSignatureException",
                                   "The request signature we calculated does not match the signature you provided.")
                elif k == "access_denied":
                    raise AwsError(400, "AccessDeniedException", "User is not authorized to perform: kms:Decrypt")
            service, _, op = target.partition(".")
            svc = {"TrentService": "kms", "secretsmanager": "secretsmanager"}.get(service)
            if svc is None:
                raise AwsError(400, "UnknownOperationException", "")
            if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
                raise AwsError(400, "SerializationException", "Content-Type must be application/x-amz-json-1.1")
            akid = self._verify_sigv4(body, svc)
            try:
                req = json.loads(body.decode() or "{}")
            except ValueError:
                raise AwsError(400, "SerializationException", "body is not JSON")
            if not isinstance(req, dict):
                raise AwsError(400, "SerializationException", "body is not a JSON object")
            if fault and fault["kind"] == "malformed":
                self._record(target, akid, 200)
                return self._send(200, b'{"Plaintext": "trunc', )
            if svc == "kms":
                fn = KMS_OPS.get(op)
                if fn is None:
                    raise AwsError(400, "UnknownOperationException", op)
                with self.st.lock:
                    out = fn(self.st, req)
                self._record(target, akid, 200)
                return self._send(200, out)
            mod = self.server.secretsmanager
            if mod is None:
                raise AwsError(400, "UnknownOperationException", "no Secrets Manager module")
            ctx = {"account": self.st.account, "region": self.st.region, "access_key_id": akid,
                   "state_dir": self.server.state_dir, "lock": self.st.lock,
                   "kms_encrypt": lambda key, pt, ec=None: encrypt_blob(self.st, self.st.resolve(key), pt, ec),
                   "kms_decrypt": lambda blob, ec=None: base64.b64decode(
                       kms_decrypt(self.st, {"CiphertextBlob": b64(blob), "EncryptionContext": ec or {}})["Plaintext"])}
            status, out = mod.handle(op, req, ctx)
            self._record(target, akid, status)
            return self._send(status, out)
        except AwsError as e:
            self._record(target, akid, e.status, e.code)
            return self._aws_error(e)

    # -- helpers
    def _count(self, target):
        with self.st.lock:
            self.st.calls[target] = self.st.calls.get(target, 0) + 1

    def _record(self, target, akid, status, code=None):
        with self.st.lock:
            self.st.requests.append({"target": target, "access_key_id": akid, "status": status,
                                     "code": code, "token": bool(self.headers.get("X-Amz-Security-Token")),
                                     "signed_headers": (self.headers.get("Authorization", "")
                                                        .partition("SignedHeaders=")[2].partition(",")[0])})
            del self.st.requests[:-200]

    def _control(self, body):
        try:
            req = json.loads(body.decode() or "{}")
        except ValueError:
            return self._send(400, {"message": "bad json"}, "application/json")
        op = req.get("op")
        st = self.st
        out = {"ok": True}
        with st.lock:
            if op == "reset_calls":
                st.calls = {}
                st.requests = []
            elif op == "credentials":
                exp = req.get("expires_in")
                st.creds[req["access_key_id"]] = {"secret": req["secret_access_key"],
                                                  "token": req.get("session_token"),
                                                  "expires": time.time() + exp if exp is not None else None}
                st.save()
            elif op == "fault":
                st.faults.append({"kind": str(req["kind"]), "count": int(req.get("count", 1)),
                                  "target": req.get("target"), "seconds": req.get("seconds")})
            elif op == "clear_faults":
                st.faults = []
            elif op == "create_key":
                kid = st.create_key(req.get("alias"), req.get("key_id"))
                out = {"KeyId": kid, "Arn": st.arn(kid)}
            elif op == "set_key":
                st.keys[st.resolve(req["key_id"])]["enabled"] = bool(req["enabled"])
                st.save()
            elif op == "web_identity":
                st.web_identity[req["role_arn"]] = req["token"]
                st.save()
            elif op == "container":
                st.container_token = req.get("token")
                st.save()
            elif op == "imds":
                st.imds_role = req.get("role") or ""
                st.save()
            elif op == "temp_ttl":
                st.temp_ttl = int(req["seconds"])
                st.save()
            else:
                return self._send(400, {"message": "unknown op %r" % op}, "application/json")
        self._send(200, out, "application/json")

    def _sts(self, body):
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        action = (form.get("Action") or [""])[0]
        self._count("STS." + action)
        ns = "https://sts.amazonaws.com/doc/2011-06-15/"
        if action != "AssumeRoleWithWebIdentity":
            return self._send(400, ('<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>InvalidAction</Code>'
                                    '<Message>unknown action</Message></Error></ErrorResponse>' % ns).encode(), "text/xml")
        role = (form.get("RoleArn") or [""])[0]
        jwt = (form.get("WebIdentityToken") or [""])[0]
        if not jwt or self.st.web_identity.get(role) != jwt:
            return self._send(400, ('<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>'
                                    '<Message>token rejected</Message></Error></ErrorResponse>' % ns).encode(), "text/xml")
        akid, secret, token, exp = self.st.temp_creds()
        xml = ('<AssumeRoleWithWebIdentityResponse xmlns="%s"><AssumeRoleWithWebIdentityResult>'
               '<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>'
               '<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>'
               '<AssumedRoleUser><Arn>%s/pg_kms</Arn></AssumedRoleUser>'
               '</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>%s</RequestId>'
               '</ResponseMetadata></AssumeRoleWithWebIdentityResponse>'
               % (ns, akid, secret, token, exp, role, uuid.uuid4()))
        self._send(200, xml.encode(), "text/xml")

    def _container(self):
        self._count("Container.Credentials")
        want = self.st.container_token
        if want is not None and self.headers.get("Authorization") != want:
            return self._send(401, {"message": "unauthorized"}, "application/json")
        akid, secret, token, exp = self.st.temp_creds()
        self._send(200, {"AccessKeyId": akid, "SecretAccessKey": secret, "Token": token,
                         "Expiration": exp, "RoleArn": "arn:aws:iam::%s:role/task" % self.st.account},
                   "application/json")

    def _imds_get(self, p):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        if tok not in self.server.imds_tokens:
            return self._send(401, b"", "text/plain")
        role = self.st.imds_role
        rest = p[len("/latest/meta-data/iam/security-credentials"):].strip("/")
        if not role:
            return self._send(404, b"", "text/plain")
        if rest == "":
            self._count("IMDS.Role")
            return self._send(200, role.encode(), "text/plain")
        if rest != role:
            return self._send(404, b"", "text/plain")
        self._count("IMDS.Credentials")
        akid, secret, token, exp = self.st.temp_creds()
        self._send(200, {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": akid,
                         "SecretAccessKey": secret, "Token": token, "Expiration": exp}, "text/plain")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--state")
    ap.add_argument("--account", default="111122223333")
    ap.add_argument("--region", default="us-east-1")
    a = ap.parse_args()

    if a.state:
        os.makedirs(a.state, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.state = State(os.path.join(a.state, "state.json") if a.state else None, a.account, a.region)
    srv.state_dir = a.state
    srv.imds_tokens = set()
    srv.secretsmanager = None
    smpath = os.path.join(HERE, "emu_secretsmanager.py")
    if os.path.exists(smpath):
        spec = importlib.util.spec_from_file_location("emu_secretsmanager", smpath)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        srv.secretsmanager = mod
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
