#!/usr/bin/env python3
"""Print, sorted and unique, every message format string pg_kms can raise or log
and every shared-memory / LWLock name it requests, as found in the C sources
under the given folder (default src/).  Used by test/layers/inventory.sh.

Each line is "<call> <first-args> | <string>": the call (errmsg, kms_error,
elog, ...), for kms_error* the AWS name and SQLSTATE macro, for elog the level,
then the concatenated string literal(s) of the call.  Where a call's format is
not a literal (errmsg("%s", msg)), the literal that is there is printed."""
import os
import re
import sys

CALLS = ("errmsg", "errmsg_internal", "errmsg_plural", "errdetail", "errdetail_internal",
         "errdetail_log", "errhint", "errcontext", "elog", "kms_error", "kms_error_detail",
         "GUC_check_errdetail", "GUC_check_errmsg", "GUC_check_errhint",
         "RequestNamedLWLockTranche", "GetNamedLWLockTranche", "ShmemInitStruct",
         "ShmemInitHash", "LWLockRegisterTranche")
CALL_RE = re.compile(r"\b(" + "|".join(CALLS) + r")\s*\(")
STR_RE = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def strip_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " * 0 + "\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def call_args(text, start):
    """text[start] is just after '('; return the argument text up to the match."""
    depth, i, n = 1, start, len(text)
    while i < n and depth:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return text[start:i - 1]


def split_top(args):
    parts, depth, cur, i = [], 0, [], 0
    while i < len(args):
        c = args[i]
        if c == '"':
            j = i + 1
            while j < len(args) and args[j] != '"':
                j += 2 if args[j] == "\\" else 1
            cur.append(args[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur).strip())
    return parts


def literal(expr):
    lits = STR_RE.findall(expr)
    return "".join(lits) if lits else None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    lines = set()
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith((".c", ".h")):
                continue
            text = strip_comments(open(os.path.join(d, f), encoding="utf-8").read())
            for m in CALL_RE.finditer(text):
                name = m.group(1)
                # skip the macro definitions themselves
                line_start = text.rfind("\n", 0, m.start()) + 1
                if text[line_start:m.start()].lstrip().startswith("#define"):
                    continue
                parts = split_top(call_args(text, m.end()))
                if name in ("kms_error", "kms_error_detail"):
                    head = " ".join(parts[:2])
                    rest = parts[2:]
                elif name == "elog":
                    head = parts[0]
                    rest = parts[1:]
                else:
                    head = ""
                    rest = parts
                msgs = [literal(p) for p in rest]
                msgs = [s for s in msgs if s is not None]
                msg = " || ".join(msgs) if msgs else "<no literal>"
                lines.add(("%s %s | %s" % (name, head, msg)).replace("  ", " "))
    for line in sorted(lines):
        print(line)


if __name__ == "__main__":
    main()
