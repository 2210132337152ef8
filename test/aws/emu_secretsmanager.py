"""Secrets Manager for the loopback emulator (test/aws/emulator.py): tests only.

emulator.py hands every secretsmanager.* request (SigV4 already verified,
faults already applied) to handle(op, body, ctx) -> (status, dict).

Operations: GetSecretValue, CreateSecret, PutSecretValue, DescribeSecret,
UpdateSecretVersionStage, DeleteSecret (documented AWS behaviour only: a
secret is found by full ARN or name; VersionId and VersionStage must agree;
AWSCURRENT moving drags AWSPREVIOUS along; a secret scheduled for deletion
is InvalidRequestException).

State: <state dir>/secretsmanager.json, read again whenever it changes on
disk, so a test seeds secrets by writing that file (no signing needed) and
they survive an emulator restart:

  {"secrets": {"<name>": {"arn": "...", "deleted": false,
                           "decryption_failure": false,
                           "versions": {"<version id>": {"SecretString": "..." | "SecretBinary": "<base64>",
                                                          "CreatedDate": 1700000000.5,
                                                          "VersionStages": ["AWSCURRENT"]}}}}}

"decryption_failure": true makes GetSecretValue answer DecryptionFailure.
"""
import json
import os
import secrets as _secrets
import string
import time
import uuid

_STATE = {"path": None, "mtime": None, "data": {"secrets": {}}}


class _Err(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _path(ctx):
    d = ctx.get("state_dir")
    return os.path.join(d, "secretsmanager.json") if d else None


def _load(ctx):
    p = _path(ctx)
    if p is None:
        return _STATE["data"]
    try:
        m = os.stat(p).st_mtime_ns
    except FileNotFoundError:
        return _STATE["data"]
    if _STATE["path"] != p or _STATE["mtime"] != m:
        with open(p) as f:
            _STATE["data"] = json.load(f)
        _STATE["data"].setdefault("secrets", {})
        _STATE["path"], _STATE["mtime"] = p, m
    return _STATE["data"]


def _save(ctx):
    p = _path(ctx)
    if p is None:
        return
    tmp = p + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_STATE["data"], f)
    os.replace(tmp, p)
    _STATE["path"], _STATE["mtime"] = p, os.stat(p).st_mtime_ns


def _find(data, secret_id):
    if not isinstance(secret_id, str) or not secret_id:
        raise _Err("InvalidParameterException", "SecretId is required")
    for name, s in data["secrets"].items():
        if secret_id in (name, s["arn"]):
            return name, s
    raise _Err("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")


def _version(s, vid, stage):
    if vid is not None:
        v = s["versions"].get(vid)
        if v is None or (stage is not None and stage not in v["VersionStages"]):
            raise _Err("ResourceNotFoundException",
                       "Secrets Manager can't find the specified secret value for VersionId: %s" % vid)
        return vid, v
    stage = stage or "AWSCURRENT"
    for k, v in s["versions"].items():
        if stage in v["VersionStages"]:
            return k, v
    raise _Err("ResourceNotFoundException",
               "Secrets Manager can't find the specified secret value for staging label: %s" % stage)


def _move_stage(s, stage, to_vid):
    old = None
    for k, v in s["versions"].items():
        if stage in v["VersionStages"]:
            old = k
            v["VersionStages"].remove(stage)
    s["versions"][to_vid]["VersionStages"].append(stage)
    if stage == "AWSCURRENT" and old and old != to_vid:
        _move_stage(s, "AWSPREVIOUS", old)


def _arn(ctx, name):
    suffix = "".join(_secrets.choice(string.ascii_letters + string.digits) for _ in range(6))
    return "arn:aws:secretsmanager:%s:%s:secret:%s-%s" % (ctx.get("region", "us-east-1"),
                                                         ctx.get("account", "111122223333"),
                                                         name, suffix)


def _put(s, body, default_stages):
    vid = body.get("ClientRequestToken") or str(uuid.uuid4())
    if ("SecretString" in body) == ("SecretBinary" in body):
        raise _Err("InvalidParameterException", "give exactly one of SecretString and SecretBinary")
    v = {k: body[k] for k in ("SecretString", "SecretBinary") if k in body}
    v["CreatedDate"] = round(time.time(), 3)
    v["VersionStages"] = []
    s["versions"][vid] = v
    for st in body.get("VersionStages") or default_stages:
        _move_stage(s, st, vid)
    return vid


def handle(op, body, ctx):
    ctx = ctx or {}
    lock = ctx.get("lock")
    if lock is None:
        return _handle(op, body, ctx)
    with lock:
        return _handle(op, body, ctx)


def _handle(op, body, ctx):
    try:
        data = _load(ctx)
        if op == "GetSecretValue":
            name, s = _find(data, body.get("SecretId"))
            if s.get("deleted"):
                raise _Err("InvalidRequestException",
                           "You can't perform this operation on the secret because it was marked for deletion.")
            if s.get("decryption_failure"):
                raise _Err("DecryptionFailure",
                           "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
            vid, v = _version(s, body.get("VersionId"), body.get("VersionStage"))
            out = {"ARN": s["arn"], "Name": name, "VersionId": vid,
                   "VersionStages": list(v["VersionStages"]), "CreatedDate": v["CreatedDate"]}
            for k in ("SecretString", "SecretBinary"):
                if k in v:
                    out[k] = v[k]
            return 200, out
        if op == "CreateSecret":
            name = body.get("Name")
            if not name or name in data["secrets"]:
                raise _Err("ResourceExistsException", "the secret %s already exists." % name)
            s = {"arn": _arn(ctx, name), "versions": {}, "deleted": False}
            data["secrets"][name] = s
            out = {"ARN": s["arn"], "Name": name}
            if "SecretString" in body or "SecretBinary" in body:
                out["VersionId"] = _put(s, body, ["AWSCURRENT"])
            _save(ctx)
            return 200, out
        if op == "PutSecretValue":
            name, s = _find(data, body.get("SecretId"))
            vid = _put(s, body, ["AWSCURRENT"])
            _save(ctx)
            return 200, {"ARN": s["arn"], "Name": name, "VersionId": vid,
                         "VersionStages": s["versions"][vid]["VersionStages"]}
        if op == "UpdateSecretVersionStage":
            name, s = _find(data, body.get("SecretId"))
            to = body.get("MoveToVersionId")
            if to not in s["versions"]:
                raise _Err("InvalidParameterException", "MoveToVersionId is not a version of the secret")
            _move_stage(s, body["VersionStage"], to)
            _save(ctx)
            return 200, {"ARN": s["arn"], "Name": name}
        if op == "DescribeSecret":
            name, s = _find(data, body.get("SecretId"))
            return 200, {"ARN": s["arn"], "Name": name,
                         "VersionIdsToStages": {k: v["VersionStages"] for k, v in s["versions"].items()
                                                if v["VersionStages"]}}
        if op == "DeleteSecret":
            name, s = _find(data, body.get("SecretId"))
            s["deleted"] = True
            _save(ctx)
            return 200, {"ARN": s["arn"], "Name": name, "DeletionDate": time.time() + 30 * 86400}
        raise _Err("UnknownOperationException", "operation %s is not emulated" % op)
    except _Err as e:
        return e.status, {"__type": e.code, "message": e.message}
