"""Packaging: the plugin installs into an environment that lacks mmdet and mmseg, without
touching what is there, and its metadata asks for ranges, never pins."""
import json
import os
import os.path as osp
import subprocess
import sys
import sysconfig
from importlib import metadata

from conftest import REPO


def _site_without(tmp_path, hidden=('mmdet', 'mmseg', 'mmsegmentation')) -> str:
    """A folder that links every package of this venv except ``hidden``: an existing user
    environment with mmpretrain but without mmdet/mmseg."""
    site = sysconfig.get_paths()['purelib']
    view = tmp_path / 'user-site'
    view.mkdir()
    for name in os.listdir(site):
        top = name.split('-')[0].split('.')[0].lower()
        if top in hidden or name.startswith(('__editable__', 'mmconvarch', '_mmconvarch')):
            continue
        if name.endswith('.pth'):
            continue
        os.symlink(osp.join(site, name), view / name)
    return str(view)


def _installed(python: str) -> set:
    listing = subprocess.run([python, '-m', 'pip', 'list', '--format=json'],
                             capture_output=True, text=True, check=True).stdout
    return {(p['name'].lower(), p['version']) for p in json.loads(listing)}


def test_editable_no_deps_install_without_mmdet(tmp_path):
    env_dir = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True)
    python = str(env_dir / 'bin' / 'python')
    target_site = subprocess.run(
        [python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    with open(osp.join(target_site, 'user_site.pth'), 'w') as f:
        f.write(_site_without(tmp_path) + '\n')
    before = _installed(python)
    install = subprocess.run(
        [sys.executable, '-m', 'pip', '--python', python, 'install', '-q', '--no-deps',
         '--no-build-isolation', '-e', REPO], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    after = _installed(python)
    assert after - before == {('mmconvarch', '0.1.0')} and before <= after, (before ^ after)

    probe = subprocess.run([python, '-W', 'ignore', '-c', '''
import importlib.util
assert importlib.util.find_spec("mmdet") is None and importlib.util.find_spec("mmseg") is None
import mmconvarch
from mmconvarch.registry import MODELS
print(sorted(k for k in MODELS.module_dict))
'''], capture_output=True, text=True, cwd=str(tmp_path))
    assert probe.returncode == 0, probe.stderr[-3000:]
    registered = probe.stdout
    for name in ('RevCol', 'ConvNeXtV2', 'SLaK', 'VanillaNet'):
        assert f"'{name}'" in registered, registered


def test_metadata_ranges_and_extras():
    requires = metadata.requires('mmconvarch')
    assert requires, 'mmconvarch is not installed (run tools/setup_env.sh)'
    assert not any('==' in r.split(';')[0] for r in requires), requires
    plain = [r for r in requires if 'extra ==' not in r]
    assert any(r.startswith('mmengine') and '<' in r for r in plain), plain
    assert not any(r.startswith(('mmdet', 'mmseg', 'mmpretrain', 'setuptools')) for r in plain)
    extras = metadata.metadata('mmconvarch').get_all('Provides-Extra')
    assert {'det', 'seg', 'cls', 'all', 'tests'} <= set(extras), extras
    for extra, package in (('det', 'mmdet'), ('seg', 'mmsegmentation'), ('cls', 'mmpretrain')):
        assert any(r.startswith(package) and f'extra == "{extra}"' in r and '<' in r
                   for r in requires), (extra, requires)
