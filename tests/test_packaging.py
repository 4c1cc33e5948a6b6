"""Packaging: the plugin installs into an environment that lacks mmdet and mmseg, without
touching what is there, and its metadata asks for ranges, never pins. A non-editable install
(a wheel) ships configs, tools and the model index under mmconvarch/.mim, where the model hub
and mim (search, train) find them."""
import json
import os
import os.path as osp
import subprocess
import sys
import sysconfig
from importlib import metadata

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow  # builds an sdist, a wheel and venvs; mim round trip


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


# --- a non-editable install: configs, tools and the model index under mmconvarch/.mim

def _source_copy(tmp_path) -> str:
    """The checkout's files (tracked and new, not ignored) in a fresh folder, so
    building writes nothing into the checkout."""
    import shutil
    files = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                           cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    src = tmp_path / 'src'
    for rel in files:
        if osp.isfile(osp.join(REPO, rel)):
            os.makedirs(src / osp.dirname(rel), exist_ok=True)
            shutil.copy2(osp.join(REPO, rel), src / rel)
    return str(src)


def _build_wheel(tmp_path) -> str:
    """sdist (so MANIFEST.in must carry what setup.py copies), then a wheel from it."""
    import glob
    src, dist = _source_copy(tmp_path), str(tmp_path / 'dist')
    run = dict(capture_output=True, text=True)
    sdist = subprocess.run([sys.executable, 'setup.py', '-q', 'sdist', '-d', dist], cwd=src,
                           **run)
    assert sdist.returncode == 0, sdist.stderr[-3000:]
    (tarball, ) = glob.glob(osp.join(dist, '*.tar.gz'))
    wheel = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                            '--no-build-isolation', tarball, '-w', dist], **run)
    assert wheel.returncode == 0, wheel.stderr[-3000:]
    (path, ) = glob.glob(osp.join(dist, '*.whl'))
    return path


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory):
    """A fresh venv seeing this venv's packages (not our editable install) with our
    wheel installed --no-deps: a user's ``pip install .``."""
    tmp_path = tmp_path_factory.mktemp('wheel')
    wheel = _build_wheel(tmp_path)
    env_dir = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True)
    python = str(env_dir / 'bin' / 'python')
    target_site = subprocess.run(
        [python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    with open(osp.join(target_site, 'user_site.pth'), 'w') as f:
        f.write(_site_without(tmp_path, hidden=()) + '\n')
    install = subprocess.run([sys.executable, '-m', 'pip', '--python', python, 'install', '-q',
                              '--no-deps', wheel], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    return dict(python=python, site=target_site, wheel=wheel, work=tmp_path)


def test_wheel_ships_configs_tools_and_model_index(wheel_env):
    import zipfile
    names = set(zipfile.ZipFile(wheel_env['wheel']).namelist())
    mim = 'mmconvarch/.mim/'
    assert mim + 'model-index.yml' in names
    for rel in subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard',
                               'configs', 'tools'], cwd=REPO, check=True, capture_output=True,
                              text=True).stdout.split():
        if rel.endswith(('.py', '.yml', '.sh')):
            assert mim + rel in names, rel
    assert not any('__pycache__' in n for n in names)


def test_wheel_install_lists_builds_and_finds_configs(wheel_env):
    """In the installed package (run outside the checkout): the index and configs come
    from mmconvarch/.mim, nothing is parsed at import; after register_models() mmpretrain
    lists each family and get_model builds our backbone from the installed config."""
    probe = subprocess.run([wheel_env['python'], '-W', 'ignore', '-c', '''
import os.path as osp
import mmconvarch
from mmconvarch import model_zoo
from mmpretrain.apis.model import ModelHub
assert not ModelHub._models_dict and model_zoo._load_index.cache_info().currsize == 0
root = model_zoo.index_root()
assert root == osp.join(osp.dirname(mmconvarch.__file__), ".mim"), root
assert model_zoo.register_models()
import mmpretrain
for pattern in ("*revcol*", "*slak*", "*vanillanet*", "*convnext-v2*"):
    assert mmpretrain.list_models(pattern), pattern
name = sorted(n for n in model_zoo.list_models("*vanillanet*", task="Image Classification"))[0]
config = model_zoo.get_model_info(name).config
assert config.startswith(root + "/configs/vanillanet/") and osp.isfile(config), config
model = mmpretrain.get_model(name)
print(name, type(model.backbone).__module__)
'''], capture_output=True, text=True, cwd=str(wheel_env['work']))
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert probe.stdout.split()[-1] == 'mmconvarch.models.backbones.vanillanet', probe.stdout


def test_mim_search_lists_our_models(wheel_env):
    from mmconvarch import model_zoo
    search = subprocess.run([wheel_env['python'], '-W', 'ignore', '-m', 'mim', 'search',
                             'mmconvarch', '--valid-config'], capture_output=True, text=True,
                            cwd=str(wheel_env['work']))
    assert search.returncode == 0, search.stderr[-3000:]
    listed = set(search.stdout.replace("'", ' ').replace(',', ' ').replace('[', ' ')
                 .replace(']', ' ').split())
    assert set(model_zoo.list_models()) <= listed, search.stdout[-3000:]


def test_mim_train_and_test_with_sample_data(wheel_env, sample_root):
    """``mim train mmconvarch <config name>`` finds the installed config and tools/train.py
    under .mim and passes --sample-data through (one short epoch, a checkpoint); ``mim test``
    evaluates that checkpoint with the installed tools/test.py."""
    work_dir = str(wheel_env['work'] / 'mim_train')
    options = ['--sample-data', sample_root, '--cfg-options', 'model.backbone.arch=atto',
               'model.head.in_channels=320']

    def mim(*args):
        done = subprocess.run([wheel_env['python'], '-W', 'ignore', '-m', 'mim', *args],
                              capture_output=True, text=True, cwd=str(wheel_env['work']),
                              env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
        return done.stdout + done.stderr

    trained = mim('train', 'mmconvarch', 'convnextv2_t_in1k.py', '--work-dir', work_dir,
                  *options, 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4')
    assert '.mim/configs/convnextv2/convnextv2_t_in1k.py' in trained
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(checkpoint), os.listdir(work_dir)
    tested = mim('test', 'mmconvarch', 'convnextv2_t_in1k.py', '--checkpoint', checkpoint,
                 '--work-dir', str(wheel_env['work'] / 'mim_test'), *options)
    assert 'accuracy/top1' in tested, tested[-2000:]
