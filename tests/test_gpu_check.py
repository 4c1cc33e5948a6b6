"""tools/analysis/gpu_check.sh (issue #16): the prepared GPU check, run here as its dry run
(the same five sections at tiny shapes on the CPU), so that the script cannot rot before a GPU
runs it. --make-wheelhouse needs an index and takes a while: it runs only with
MMCONVARCH_TEST_WHEELHOUSE=1."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = osp.join(REPO, 'tools', 'analysis', 'gpu_check.sh')
SECTIONS = ['amp', 'revcol', 'slak', 'vanillanet', 'ddp']
AMP_CONFIGS = ['revcol_t_in1k', 'convnextv2_t_in1k', 'slak_t_in1k', 'vanillanet_5_in1k']


def run_check(args, timeout=900, **env):
    full_env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
                    MKL_NUM_THREADS='1', **env)
    proc = subprocess.run(['bash', SCRIPT, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    return proc, proc.stdout + proc.stderr


def load(path):
    with open(path) as f:
        return json.load(f)


def positive(value):
    return isinstance(value, (int, float)) and value > 0


@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('gpu_check') / 'report.json'
    proc, log = run_check(['--dry-run', '--out', str(out)])
    return proc, log, out


def test_dry_run_passes_with_all_five_sections(dry_run):
    proc, log, out = dry_run
    assert proc.returncode == 0, log[-6000:]
    assert 'all sections passed' in proc.stdout
    report = load(out)
    assert report['dry_run'] is True and report['passed'] is True
    assert list(report['sections']) == SECTIONS
    for name, sec in report['sections'].items():
        assert sec['status'] == 'pass', (name, sec.get('error'), sec['checks'])
        assert sec['error'] is None, name
        assert sec['checks'] and all(c['ok'] for c in sec['checks']), name
        assert sec['numbers'] and positive(sec['seconds']), name
        assert sec['summary'], name
    markdown = open(osp.splitext(out)[0] + '.md').read()
    for name in SECTIONS:
        assert f'## {name}: pass' in markdown


def test_dry_run_numbers(dry_run):
    proc, log, out = dry_run
    assert proc.returncode == 0, log[-6000:]
    sections = load(out)['sections']

    amp = sections['amp']['numbers']
    for name in AMP_CONFIGS:
        for key in (name, f'{name} [fp16 emulated]'):
            row = amp[key]
            assert row['iters'] == 4 and positive(row['img_per_s']), (key, row)
        # the fp16 run goes through a real GradScaler: the forced overflow is skipped
        assert amp[f'{name} [fp16 emulated]']['skipped_steps'] >= 1
        assert 'skipped_steps' not in amp[name]  # fp32 OptimWrapper: no scaler
    for key in ('slak_t_in1k', 'slak_t_in1k [fp16 emulated]'):
        assert amp[key]['mask_violations'] == 0 and amp[key]['mask_events'] >= 1
    assert amp['vanillanet_5_in1k']['act_learn_seen'] == [0.0, 0.5]
    assert any('OptimWrapper in fp32' in note for note in sections['amp']['notes'])

    revcol = sections['revcol']['numbers']
    fp32 = {k: v for k, v in revcol['grad_rel_err'].items() if k.startswith('fp32')}
    assert len(fp32) == 2 and all(v <= 1e-5 for v in fp32.values()), fp32
    assert revcol['grad_rel_err']['bfloat16_rev_vs_fp32'] < 0.1
    rows = revcol['memory']['rows']
    assert [r['columns'] for r in rows] == [2, 4]
    assert all(r['rev_mb'] < r['plain_mb'] and positive(r['time_ratio']) for r in rows)

    slak = sections['slak']['numbers']
    assert len(slak['train']) == 6 and all(positive(r['img_per_s']) for r in slak['train'])
    assert {(r['form'], r['layout']) for r in slak['train']} == {
        (f, lay) for f in ('decomposed', 'deploy', 'dense') for lay in ('nchw', 'channels_last')}
    assert len(slak['inference']) == 4 and all(positive(r['ms']) for r in slak['inference'])
    assert slak['stage1_layer']['rows'] and slak['equivalence']['deploy_vs_decomposed'] <= 1e-3

    vanilla = sections['vanillanet']['numbers']
    assert len(vanilla['rows']) == 4
    assert all(positive(r['deploy_ms']) and positive(r['resnet50_ms']) for r in vanilla['rows'])

    ddp = sections['ddp']['numbers']
    assert ddp['backend'] == 'gloo'
    assert ddp['vanillanet_bn_layers'] > 0 and ddp['slak_bn_layers'] > 0


def test_isolated_section_and_failure_report(tmp_path):
    # a section in its own process (the default on a GPU)
    out = tmp_path / 'isolated.json'
    proc, log = run_check(['--dry-run', '--isolate', '--sections', 'ddp', '--out', str(out)])
    assert proc.returncode == 0, log[-4000:]
    report = load(out)
    assert report['isolate'] is True and list(report['sections']) == ['ddp']
    assert report['sections']['ddp']['status'] == 'pass'
    # no time left: every section fails in the report, the exit status says so
    out = tmp_path / 'spent.json'
    proc, log = run_check(['--dry-run', '--budget', '1', '--out', str(out)])
    assert proc.returncode == 1, log[-4000:]
    report = load(out)
    assert list(report['sections']) == SECTIONS and report['passed'] is False
    assert all(s['status'] == 'fail' and 'budget' in s['error']
               for s in report['sections'].values())
    assert 'SOME SECTIONS FAILED' in proc.stdout


@pytest.mark.skipif(os.environ.get('MMCONVARCH_TEST_WHEELHOUSE') != '1',
                    reason='downloads wheels and builds mmcv without ops; '
                    'set MMCONVARCH_TEST_WHEELHOUSE=1')
def test_make_wheelhouse(tmp_path):
    wheelhouse = tmp_path / 'wheelhouse'
    proc, log = run_check(['--make-wheelhouse', str(wheelhouse)],
                          MMCONVARCH_CACHE=str(tmp_path / 'cache'))
    if proc.returncode != 0 and any(s in log for s in (
            'No matching distribution', 'Could not find a version', 'NewConnectionError',
            'Network is unreachable', 'Temporary failure in name resolution')):
        pytest.skip('pip cannot reach a package index: ' + log[-300:])
    assert proc.returncode == 0, log[-4000:]
    names = sorted(os.listdir(wheelhouse))
    for prefix in ('mmengine-0.10.7-', 'mmpretrain-1.2.0-', 'mmcv_lite-2.1.0-py2.py3-none-any'):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    assert not any(n.startswith(('torch', 'numpy', 'opencv')) for n in names), names
    assert os.listdir(wheelhouse / 'optional') == ['setuptools-80.10.2-py3-none-any.whl']
    assert 'every requirement is in the wheelhouse or on the GPU image' in log
