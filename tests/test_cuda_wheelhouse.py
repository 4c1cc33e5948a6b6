""".dev_scripts/gpu/{make_wheelhouse,run}.sh: the route that runs the cuda tests on a GPU machine
with torch but no OpenMMLab package and no network.

The wheelhouse test downloads wheels and builds mmcv-lite, so it runs only with
MMCONVARCH_TEST_WHEELHOUSE=1: it then installs the wheelhouse into an interpreter that has this
venv's packages minus every OpenMMLab one (the GPU image's situation) and runs
``run.sh --only tests`` there: every test module must import, every cuda test is collected (and
skipped here, without a GPU)."""
import os
import os.path as osp
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO

GPU = osp.join(REPO, '.dev_scripts', 'gpu')
# what the GPU image lacks (and this venv has): the OpenMMLab packages, their small requirements
# that the wheelhouse brings, and mmconvarch itself (run.sh puts the checkout on PYTHONPATH)
NOT_ON_GPU_IMAGE = ('mmcv', 'mmdet', 'mmseg', 'mmengine', 'mmpretrain', 'mmconvarch', 'addict',
                    'yapf', 'termcolor', 'mat4py', 'modelindex', 'model_index', 'ordered_set',
                    'lazy_importer', '__editable__', '__pycache__')


def run_sh(*args, **env):
    return subprocess.run(['bash', osp.join(GPU, 'run.sh'), *args], cwd=REPO, text=True,
                          capture_output=True, env=dict(os.environ, **env), timeout=900)


@pytest.mark.parametrize('args, message', [
    (['--timeout', '5m'], '--timeout must be whole seconds, got 5m'),
    (['--only', 'bench'], '--only must be tests, benchmarks or side-by-side, got bench'),
    (['--wheelhouse', '/nonexistent/wheels'], '--wheelhouse /nonexistent/wheels is not a folder'),
    (['--sections', 'amp'], 'unknown argument --sections'),
    (['--only', 'side-by-side'], 'needs the official model files in /nonexistent/official'),
])
def test_run_sh_bad_arguments(args, message):
    proc = run_sh(*args, OFFICIAL='/nonexistent/official')
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


@pytest.mark.skipif(os.environ.get('MMCONVARCH_TEST_WHEELHOUSE') != '1',
                    reason='downloads wheels and builds mmcv without ops; '
                    'set MMCONVARCH_TEST_WHEELHOUSE=1')
def test_wheelhouse_runs_the_cuda_tests_without_openmmlab(tmp_path):
    wheelhouse = tmp_path / 'wheelhouse'
    proc = subprocess.run(['bash', osp.join(GPU, 'make_wheelhouse.sh'), str(wheelhouse)],
                          cwd=REPO, text=True, capture_output=True, timeout=900,
                          env=dict(os.environ, PYTHON=sys.executable,
                                   MMCONVARCH_CACHE=str(tmp_path / 'cache')))
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 and any(s in log for s in (
            'No matching distribution', 'Could not find a version', 'NewConnectionError',
            'Network is unreachable', 'Temporary failure in name resolution')):
        pytest.skip('pip cannot reach a package index: ' + log[-300:])
    assert proc.returncode == 0, log[-4000:]
    names = sorted(os.listdir(wheelhouse))
    for prefix in ('mmengine-0.10.7-', 'mmpretrain-1.2.0-', 'mmcv_lite-2.1.0-py2.py3-none-any'):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    assert not any(n.startswith(('torch', 'numpy', 'opencv')) for n in names), names
    assert 'every requirement is in the wheelhouse or on the GPU image' in log

    # an interpreter like the GPU image's: a venv with this one's packages but no OpenMMLab
    image = tmp_path / 'image'
    subprocess.run([sys._base_executable, '-m', 'venv', '--without-pip', str(image)], check=True)
    here = sysconfig.get_paths()['purelib']
    there = subprocess.run([str(image / 'bin' / 'python'), '-c',
                            'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                           check=True, capture_output=True, text=True).stdout.strip()
    for entry in os.listdir(here):
        if not entry.startswith(NOT_ON_GPU_IMAGE):
            os.symlink(osp.join(here, entry), osp.join(there, entry))
    python = str(image / 'bin' / 'python')
    assert subprocess.run([python, '-c', 'import mmengine'], capture_output=True).returncode
    out = tmp_path / 'out'
    proc = run_sh('--wheelhouse', str(wheelhouse), '--only', 'tests', PYTHON=python,
                  OUT=str(out), GPU_SITE=str(tmp_path / 'site'), PYTHONPATH='')
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert 'cuda tests: passed' in proc.stdout
    suite = ET.parse(out / 'pytest.xml').getroot().find('testsuite')
    tests, skipped = int(suite.get('tests')), int(suite.get('skipped'))
    assert int(suite.get('errors')) == int(suite.get('failures')) == 0
    assert tests > 0
    import torch
    if not torch.cuda.is_available():
        assert skipped == tests  # every cuda test collected, and skipped with the reason
    assert sorted(os.listdir(out)) == ['pytest.log', 'pytest.xml', 'summary.txt']
