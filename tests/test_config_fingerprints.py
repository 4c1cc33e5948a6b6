"""Every config under configs/ resolves to exactly what it resolved to when its fingerprint was
stored: moving repeated blocks into configs/_base_ (or any other refactoring) must not change a
single value. The fingerprint is a SHA-256 of ``Config.fromfile(p).to_dict()`` in a canonical
form (keys sorted, tuples kept apart from lists, every leaf with its type).

A deliberate change to a config changes its fingerprint: check the diff the failure prints, then
store the new fingerprints with ``python tests/test_config_fingerprints.py --update``.
"""
import hashlib
import json
import os.path as osp
import sys

from config_variants import resolved
from conftest import CONFIG_IDS, REPO

STORE = osp.join(REPO, 'tests', 'data', 'config_fingerprints.json')


def canonical(node):
    """A JSON-able form of a resolved config that tells every type apart."""
    if isinstance(node, dict):
        return {'dict': [[str(k), canonical(v)]
                         for k, v in sorted(node.items(), key=lambda kv: str(kv[0]))]}
    if isinstance(node, (list, tuple)):
        return {type(node).__name__: [canonical(v) for v in node]}
    if node is None or isinstance(node, (bool, int, float, str)):
        return {type(node).__name__: repr(node)}
    return {'repr': repr(node)}


def fingerprint(config_id: str) -> str:
    text = json.dumps(canonical(resolved(config_id)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def stored() -> dict:
    with open(STORE) as f:
        return json.load(f)


def test_canonical_form_tells_types_and_values_apart():
    base = canonical({'a': (1, 2), 'b': 0.1})
    assert canonical({'a': [1, 2], 'b': 0.1}) != base  # tuple vs list
    assert canonical({'a': (1, 2), 'b': 0.10000001}) != base
    assert canonical({'a': (1, 2), 'b': '0.1'}) != base  # str vs float
    assert canonical({'b': 0.1, 'a': (1, 2)}) == base  # key order does not matter


def test_every_config_has_a_fingerprint():
    assert sorted(stored()) == sorted(CONFIG_IDS), (
        'configs added or removed: store their fingerprints with '
        'python tests/test_config_fingerprints.py --update')


def test_resolved_configs_are_unchanged():
    """One test for all: each is a fraction of a second of config parsing (cached for the other
    config suites)."""
    expected = stored()
    changed = [c for c in CONFIG_IDS if c in expected and fingerprint(c) != expected[c]]
    assert not changed, (
        f'these configs resolve to another config than the stored one: {changed}. Print one '
        'with tools/misc/print_config.py; if the change is deliberate, store the new '
        'fingerprints: python tests/test_config_fingerprints.py --update')


if __name__ == '__main__':
    if sys.argv[1:] != ['--update']:
        raise SystemExit('usage: python tests/test_config_fingerprints.py --update')
    sys.path.insert(0, REPO)
    with open(STORE, 'w') as f:
        json.dump({c: fingerprint(c) for c in CONFIG_IDS}, f, indent=1, sort_keys=True)
        f.write('\n')
    print(f'{len(CONFIG_IDS)} fingerprints -> {STORE}')
