#!/usr/bin/env python3
"""Compare the quick start transcript in README.md with a real run.

usage: check_quickstart.py README.md OUTPUT_OF_scripts/quickstart.sh

Every line the README shows between "==> example" and "==> done" must
appear in the real output, in the same order, after masking what differs on
every run (ids, ciphertext, times, account ids, counts); a line "..." in the
README stands for any number of lines.  Prints "N passed, M failed".
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_doc_examples import mask  # noqa: E402


def norm(line):
    line = mask(line.rstrip())
    line = re.sub(r'^\s*[A-Za-z0-9+/]{8,}={0,2}\s*$', '<base64>', line)     # the end of a wrapped blob
    line = re.sub(r'\|\s*\d+\s*$', '| <n>', line)                 # counts in a table's last column
    line = re.sub(r'(waiting for the rotation worker)\.*$', r'\1', line)
    line = re.sub(r'-{3,}', '---', line)                           # column widths follow the values
    line = re.sub(r'\s+', ' ', line).strip()
    return line


def transcript(readme):
    lines = open(readme, encoding='utf-8').read().split('\n')
    start = next(i for i, l in enumerate(lines) if l.startswith('    ==> example'))
    out = []
    for l in lines[start:]:
        if not l.startswith('    ') and l.strip():
            break
        out.append(l[4:])
        if l.startswith('    ==> done'):
            break
    return out


def main():
    shown = [norm(l) for l in transcript(sys.argv[1]) if l.strip()]
    got = [norm(l) for l in open(sys.argv[2], encoding='utf-8', errors='replace').read().split('\n') if l.strip()]
    i = 0
    missing = []
    for want in shown:
        if want == '...':
            continue
        j = i
        while j < len(got) and got[j] != want:
            j += 1
        if j == len(got):
            missing.append(want)
        else:
            i = j + 1
    for m in missing:
        print(f'not ok - README shows, the run did not print (in this order): {m}')
    if not missing:
        print(f'ok - the {len(shown)} lines of the README transcript appear in the run, in order')
    print(f'{0 if missing else 1} passed, {1 if missing else 0} failed')
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
