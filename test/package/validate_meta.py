#!/usr/bin/env python3
"""Check META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/meta/spec.txt).

The rules are written out here from the spec: required keys, Terms, SemVer
versions, license shortcuts, provides entries, prereq phases and
relationships, resources, release status, no unknown keys but x_ ones.
Also checks what only this repository can know: the files named exist (after
a build), the version agrees with pg_kms.control, and the distribution
version is the extension version.  Prints "N passed, M failed"."""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEMVER = re.compile(r'^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)'
                    r'(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?'
                    r'(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$')
TERM = re.compile(r'^[^/\\\s\x00-\x1f\x7f]{2,}$')
LICENSES = {'agpl_3', 'apache_1_1', 'apache_2_0', 'artistic_1', 'artistic_2', 'bsd', 'freebsd',
            'gfdl_1_2', 'gfdl_1_3', 'gpl_1', 'gpl_2', 'gpl_3', 'lgpl_2_1', 'lgpl_3_0', 'mit',
            'mozilla_1_0', 'mozilla_1_1', 'openssl', 'perl_5', 'postgresql', 'qpl_1_0', 'ssleay',
            'sun', 'zlib', 'open_source', 'restricted', 'unrestricted', 'unknown'}
TOP = {'name', 'version', 'abstract', 'maintainer', 'license', 'provides', 'meta-spec',
       'description', 'generated_by', 'tags', 'no_index', 'prereqs', 'release_status', 'resources'}
PHASES = {'configure', 'build', 'test', 'runtime', 'develop'}
RELATIONS = {'requires', 'recommends', 'suggests', 'conflicts'}
VRANGE = re.compile(r'^\s*(?:(?:[<>]=?|[=!]=)\s*)?\S+(?:\s*,\s*(?:(?:[<>]=?|[=!]=)\s*)?\S+)*\s*$')

errors = []


def err(msg):
    errors.append(msg)


def custom(k):
    return re.match(r'^[xX]_.', k) is not None


def nonempty_str(v, where):
    if not isinstance(v, str) or not v:
        err(f'{where}: must be a non-empty string')


def version(v, where):
    if not isinstance(v, str) or not SEMVER.match(v):
        err(f'{where}: {v!r} is not a SemVer version')


def version_range(v, where):
    if v == 0 or (isinstance(v, str) and v == '0'):
        return
    if not isinstance(v, str) or not VRANGE.match(v):
        err(f'{where}: {v!r} is not a version range')
        return
    for part in v.split(','):
        ver = re.sub(r'^\s*(?:[<>]=?|[=!]=)?\s*', '', part).strip()
        version(ver, where)


def path(v, where):
    if not isinstance(v, str) or not v or v.startswith('/') or '\\' in v:
        err(f'{where}: {v!r} is not a relative unix path')


def main():
    with open(os.path.join(ROOT, 'META.json'), encoding='utf-8') as f:
        meta = json.load(f)
    if not isinstance(meta, dict):
        err('META.json: not an object')
        return
    for k in ('name', 'version', 'abstract', 'maintainer', 'license', 'provides', 'meta-spec'):
        if k not in meta:
            err(f'missing required key {k}')
    for k in meta:
        if k not in TOP and not custom(k):
            err(f'unknown key {k}')
    if not isinstance(meta.get('name'), str) or not TERM.match(meta['name']):
        err('name: not a Term')
    version(meta.get('version'), 'version')
    nonempty_str(meta.get('abstract'), 'abstract')
    for k in ('description', 'generated_by'):
        if k in meta:
            nonempty_str(meta[k], k)
    m = meta.get('maintainer')
    if isinstance(m, list):
        if not m:
            err('maintainer: empty list')
        for i, x in enumerate(m):
            nonempty_str(x, f'maintainer[{i}]')
    else:
        nonempty_str(m, 'maintainer')
    lic = meta.get('license')
    if isinstance(lic, str):
        if lic not in LICENSES:
            err(f'license: {lic!r} is not a known shortcut')
    elif isinstance(lic, list):
        if not lic or any(x not in LICENSES for x in lic):
            err('license: list of unknown shortcuts')
    elif isinstance(lic, dict):
        if not lic or any(not isinstance(u, str) or not re.match(r'^[a-z][a-z0-9+.-]*:', u) for u in lic.values()):
            err('license: object values must be URIs')
    else:
        err('license: wrong type')
    prov = meta.get('provides')
    if not isinstance(prov, dict) or not prov:
        err('provides: must be a non-empty object')
        prov = {}
    for name, ext in prov.items():
        if not TERM.match(name):
            err(f'provides: {name!r} is not a Term')
        if not isinstance(ext, dict):
            err(f'provides.{name}: not an object')
            continue
        for k in ext:
            if k not in ('file', 'version', 'abstract', 'docfile', 'docpath') and not custom(k):
                err(f'provides.{name}: unknown key {k}')
        for k in ('file', 'version'):
            if k not in ext:
                err(f'provides.{name}: missing {k}')
        version(ext.get('version'), f'provides.{name}.version')
        for k in ('file', 'docfile'):
            if k in ext:
                path(ext[k], f'provides.{name}.{k}')
                if not os.path.exists(os.path.join(ROOT, ext[k])):
                    err(f'provides.{name}.{k}: {ext[k]} does not exist (after a build)')
        if 'abstract' in ext:
            nonempty_str(ext['abstract'], f'provides.{name}.abstract')
    ms = meta.get('meta-spec')
    if not isinstance(ms, dict) or ms.get('version') != '1.0.0':
        err('meta-spec: version must be 1.0.0')
    elif any(k not in ('version', 'url') and not custom(k) for k in ms):
        err('meta-spec: unknown key')
    if 'release_status' in meta and meta['release_status'] not in ('stable', 'testing', 'unstable'):
        err('release_status: not stable, testing or unstable')
    if 'tags' in meta:
        t = meta['tags']
        if not isinstance(t, list) or not t or any(
                not isinstance(x, str) or not re.match(r'^[^/\\\x00-\x1f\x7f]{2,255}$', x) for x in t):
            err('tags: must be a non-empty list of Tags (2 to 255 characters, no slash, backslash or control character)')
    if 'no_index' in meta:
        ni = meta['no_index']
        if not isinstance(ni, dict) or not ni:
            err('no_index: must be an object')
        else:
            for k, v in ni.items():
                if k not in ('file', 'directory') and not custom(k):
                    err(f'no_index: unknown key {k}')
                vals = v if isinstance(v, list) else [v]
                for x in vals:
                    path(x, f'no_index.{k}')
    if 'prereqs' in meta:
        pr = meta['prereqs']
        if not isinstance(pr, dict) or not pr:
            err('prereqs: must be a non-empty object')
        else:
            for phase, rels in pr.items():
                if phase not in PHASES and not custom(phase):
                    err(f'prereqs: unknown phase {phase}')
                    continue
                if not isinstance(rels, dict) or not rels:
                    err(f'prereqs.{phase}: must be a non-empty object')
                    continue
                for rel, deps in rels.items():
                    if rel not in RELATIONS and not custom(rel):
                        err(f'prereqs.{phase}: unknown relationship {rel}')
                        continue
                    if not isinstance(deps, dict) or not deps:
                        err(f'prereqs.{phase}.{rel}: must be a non-empty object')
                        continue
                    for dep, rng in deps.items():
                        if not TERM.match(dep):
                            err(f'prereqs.{phase}.{rel}: {dep!r} is not a Term')
                        version_range(rng, f'prereqs.{phase}.{rel}.{dep}')
    if 'resources' in meta:
        r = meta['resources']
        if not isinstance(r, dict) or not r:
            err('resources: must be a non-empty object')
        else:
            for k in r:
                if k not in ('homepage', 'bugtracker', 'repository') and not custom(k):
                    err(f'resources: unknown key {k}')
    # This repository: the extension's version is the control file's.
    with open(os.path.join(ROOT, 'pg_kms.control'), encoding='utf-8') as f:
        ctl = re.search(r"^default_version\s*=\s*'([^']+)'", f.read(), re.M).group(1)
    want = ctl if ctl.count('.') == 2 else ctl + '.0'
    if prov.get('pg_kms', {}).get('version') != want or meta.get('version') != want:
        err(f'version: META.json says {meta.get("version")}, pg_kms.control says {ctl} ({want})')
    if prov.get('pg_kms', {}).get('file') != f'sql/pg_kms--{ctl}.sql':
        err(f'provides.pg_kms.file: should be sql/pg_kms--{ctl}.sql')


main()
for e in errors:
    print('not ok -', e)
if not errors:
    print('ok - META.json follows the PGXN Meta Spec 1.0.0')
print(f'{0 if errors else 1} passed, {len(errors)} failed')
sys.exit(1 if errors else 0)
