"""ONNX export (tools/deploy/export_onnx.py) of every family at 64 px, checked
with onnxruntime, and RevCol's clean traced graph (issue 15)."""
import os.path as osp
import re
import subprocess
import sys

import onnx
import onnxruntime  # noqa: F401  (a tests requirement: fail, do not skip)
import pytest
import torch
import torch.nn as nn

from conftest import REPO, load_tool
from mmconvarch.models.backbones.revcol import RevCol

export_onnx = load_tool('tools/deploy/export_onnx.py', 'export_onnx')
LAST_LINE = re.compile(r'^max \|onnx - torch\| diff (\S+) \(rel (\S+)\)$')
SMALL = dict(channels=[16, 32, 64, 128], layers=[1, 1, 2, 1], num_columns=4)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def export(tmp_path, capsys, config, *extra):
    out = str(tmp_path / (osp.basename(config)[:-3] + '.onnx'))
    rc = export_onnx.main([osp.join(REPO, config), '--out', out, '--shape', '64',
                           '64', '--verify', *extra])
    lines = capsys.readouterr().out.strip().splitlines()
    match = LAST_LINE.match(lines[-1])
    assert match, lines[-5:]
    assert rc == 0 and float(match.group(2)) <= 1e-4, lines[-5:]
    model = onnx.load(out)
    onnx.checker.check_model(model)
    return model, lines


def io_names(model):
    return ([i.name for i in model.graph.input], [o.name for o in model.graph.output])


@pytest.mark.parametrize('config', [
    'configs/vanillanet/vanillanet_5_in1k.py',
    'configs/convnextv2/convnextv2_t_in1k.py',
    'configs/revcol/revcol_t_in1k.py',
    'configs/slak/slak_t_in1k.py',  # full width, real 51/49/47/13/5 kernels
])
@pytest.mark.slow  # every family's whole classifier config
def test_classifier_export_matches_pytorch(tmp_path, capsys, config):
    model, _ = export(tmp_path, capsys, config)
    assert io_names(model) == (['input'], ['logits'])
    assert model.opset_import[0].version == export_onnx.DEFAULT_OPSET
    dims = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 1000]


def test_dense_backbone_export_has_named_levels(tmp_path, capsys):
    model, lines = export(tmp_path, capsys, 'configs/revcol/upernet_revcol_t_ade20k.py')
    assert io_names(model) == (['input'], ['feat0', 'feat1', 'feat2', 'feat3'])
    assert '(1, 512, 2, 2)' in lines[-2]  # feat3: stride 32


def test_cascade_config_exports_backbone_and_fpn(tmp_path, capsys):
    # what replaces the full detector (mmdeploy cannot export it: tools/deploy/mmdeploy_export.py)
    model, lines = export(tmp_path, capsys, 'configs/convnextv2/cascade_convnextv2_t_coco.py')
    assert io_names(model) == (['input'], [f'neck{i}' for i in range(5)])
    assert '(1, 256, 16, 16)' in lines[-6] and '(1, 256, 1, 1)' in lines[-2]  # strides 4..64


def test_vanillanet_deploy_dynamic_batch(tmp_path, capsys):
    model, lines = export(tmp_path, capsys, 'configs/vanillanet/vanillanet_5_in1k.py',
                          '--deploy', '--dynamic-batch')
    assert any("converted ['backbone', 'head']" in line for line in lines)
    assert not any(n.op_type == 'BatchNormalization' for n in model.graph.node)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # symbolic
    assert '(3, 1000)' in lines[-2]  # verified at another batch than traced


def test_fcmae_config_is_refused_clearly(tmp_path):
    with pytest.raises(SystemExit, match='self-supervised.*--part backbone'):
        export_onnx.main([osp.join(REPO, 'configs/convnextv2/fcmae_convnextv2_atto_in1k.py'),
                          '--out', str(tmp_path / 'x.onnx'), '--shape', '64', '64'])


@pytest.mark.slow  # a whole export in a subprocess
def test_cli_prints_diff_last_and_exits_zero(tmp_path):
    out = tmp_path / 'v.onnx'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/deploy/export_onnx.py'),
         osp.join(REPO, 'configs/vanillanet/vanillanet_5_in1k.py'), '--out', str(out),
         '--shape', '64', '64', '--verify', '--cfg-options', 'model.head.num_classes=10'],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env=dict(__import__('os').environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert LAST_LINE.match(proc.stdout.strip().splitlines()[-1]), proc.stdout[-500:]
    assert out.exists()


# --- RevCol: no in-place parameter writes -----------------------------------
def parameter_writes(program) -> list:
    """Nodes of an ExportedProgram (and its sub-graphs) that write in place:
    mutable aten ops, grad-mode regions (where ``torch.no_grad()`` writes end
    up) and the signature's mutations."""
    sig = program.graph_signature
    found = [f'mutates {name}' for name in (*sig.parameters_to_mutate, *sig.buffers_to_mutate,
                                            *sig.user_inputs_to_mutate)]
    for name, gm in program.graph_module.named_modules():
        for node in gm.graph.nodes:
            if node.op != 'call_function':
                continue
            schema = getattr(node.target, '_schema', None)
            if (schema is not None and schema.is_mutable) or \
                    'set_grad_enabled' in str(node.target):
                found.append(f'{name}:{node.target}')
    return found


def revcol_with_tiny_alphas():
    torch.manual_seed(0)
    model = RevCol(SMALL, alpha_min=1e-2, save_memory=True)
    with torch.no_grad():
        model.subnet1.alpha0.fill_(0.)
        model.subnet1.alpha1.fill_(-1e-5)
        model.subnet2.alpha2.uniform_(-1e-3, 1e-3)
    return model.eval()


def test_detector_catches_a_forward_parameter_write():
    class Writes(nn.Module):  # what RevCol's forward did before issue 15
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            with torch.no_grad():
                self.w.copy_(self.w.clamp(min=1e-2))
            return x * self.w

    assert parameter_writes(torch.export.export(Writes(), (torch.randn(3), )))


def test_revcol_traced_graph_has_no_inplace_writes():
    model = revcol_with_tiny_alphas()
    x = torch.randn(1, 3, 32, 32)
    before = {n: (p._version, p.detach().clone()) for n, p in model.named_parameters()}
    with torch.no_grad():
        program = torch.export.export(model, (x, ))
    assert parameter_writes(program) == []
    for name, p in model.named_parameters():
        assert p._version == before[name][0], name
        assert torch.equal(p, before[name][1]), name
    with torch.no_grad():
        for a, b in zip(program.module()(x), model(x)):
            torch.testing.assert_close(a, b)


def test_revcol_eval_forward_leaves_parameters_and_clamps_functionally():
    model = revcol_with_tiny_alphas()
    x = torch.randn(2, 3, 32, 32)
    before = {n: (p._version, p.detach().clone()) for n, p in model.named_parameters()}
    with torch.no_grad():
        out = model(x)
    for grad_enabled in (False, True):  # eval with grads: still no write
        with torch.set_grad_enabled(grad_enabled):
            model.save_memory = False
            model(x)
            model.save_memory = True
    for name, p in model.named_parameters():
        assert p._version == before[name][0], name
        assert torch.equal(p, before[name][1]), name
    # the same outputs as with the parameters projected (|alpha| >= 1e-2, sign kept)
    for column in model.columns:
        column.clamp_alphas(model.alpha_min)
    assert torch.all(model.subnet1.alpha0 == 1e-2)
    assert torch.all(model.subnet1.alpha1 == -1e-2)
    assert torch.all(model.subnet2.alpha2.abs() == 1e-2)
    with torch.no_grad():
        for a, b in zip(out, model(x)):
            assert torch.equal(a, b)


# --- mmdeploy end-to-end segmentor export (optional dependency) -------------
mmdeploy_export = load_tool('tools/deploy/mmdeploy_export.py', 'mmdeploy_export')
ATTO_UPERNET = ['model.backbone.arch=atto', 'model.decode_head.in_channels=[40,80,160,320]',
                'model.decode_head.channels=32', 'model.auxiliary_head.in_channels=160',
                'model.auxiliary_head.channels=32']


@pytest.mark.slow  # mmdeploy export + 2 checks
def test_mmdeploy_upernet_end_to_end_matches_pytorch(tmp_path, capsys):
    pytest.importorskip('mmdeploy', reason='optional: pip install -r requirements/deploy.txt')
    rc = mmdeploy_export.main([
        osp.join(REPO, 'configs/convnextv2/upernet_convnextv2_t_ade20k.py'),
        '--work-dir', str(tmp_path), '--shape', '192', '192', '--verify',
        '--cfg-options', *ATTO_UPERNET])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0, lines[-4:]
    assert lines[-2] == 'vs PyTorch (mmseg, no rewrites):'  # the model itself, last
    assert lines[-1].endswith('(labels agree 100.0000%)'), lines[-1]
    model = onnx.load(str(tmp_path / 'end2end.onnx'))
    assert model.opset_import[0].version == mmdeploy_export.OPSET
    assert io_names(model) == (['input'], ['output'])
    dims = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 1, 192, 192]  # the label map


def test_mmdeploy_export_refuses_a_shape_its_pool_rewrite_gets_wrong(tmp_path):
    with pytest.raises(SystemExit, match='multiples of 192'):
        mmdeploy_export.main([osp.join(REPO, 'configs/convnextv2/upernet_convnextv2_t_ade20k.py'),
                              '--work-dir', str(tmp_path), '--shape', '512', '512'])


def test_mmdeploy_export_refuses_cascade_with_the_reason(tmp_path):
    with pytest.raises(SystemExit, match='reg_class_agnostic.*_cast_Long.*--part neck'):
        mmdeploy_export.main([osp.join(REPO, 'configs/revcol/cascade_revcol_t_coco.py'),
                              '--work-dir', str(tmp_path)])


# --- .dev_scripts/benchmarks/benchmark_onnxruntime.py ---------------------
benchmark_ort = load_tool('.dev_scripts/benchmarks/benchmark_onnxruntime.py',
                          'benchmark_onnxruntime')
ROW = re.compile(r'^\| (\S+) \| (\w+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (\S+) \|$')


def test_benchmark_table_times_the_deploy_form_at_each_batch(capsys):
    assert benchmark_ort.main(['--configs', 'configs/vanillanet/vanillanet_5_in1k.py',
                               '--size', '32', '--batch-sizes', '1', '2', '--warmup', '0',
                               '--repeats', '1', '--threads', '1']) == 0
    rows = [ROW.match(line) for line in capsys.readouterr().out.splitlines()]
    rows = [m.groups() for m in rows if m]
    assert len(rows) == 4  # printed as measured, then in the table
    for name, form, batch, torch_ms, ort_ms, ratio, diff in rows[2:]:
        assert (name, form) == ('vanillanet_5_in1k', 'deploy')
        assert float(torch_ms) > 0 and float(ort_ms) > 0 and float(ratio) > 0
        assert float(diff) <= 1e-4
    assert [r[2] for r in rows[2:]] == ['1', '2']


def test_benchmark_rejects_bad_repeats():
    with pytest.raises(SystemExit):
        benchmark_ort.parse_args(['--repeats', '0'])


def test_fp16_probe_grn_runs_in_fp32_on_cpu_and_overflow_is_flagged(tmp_path):
    rows = benchmark_ort.fp16_probe(str(tmp_path), shapes=((8, 8), ), scales=(1., 1e4, 1e5))
    grn = {r['scale']: r for r in rows if r['op'] == 'GRN'}
    norm = {r['scale']: r for r in rows if r['op'] == 'LayerNorm'}
    assert grn[1.]['finite'] and grn[1.]['diff'] < 1e-2
    # GRN's L2 norm 1e4 * sqrt(8 * 8) = 8e4 and inputs ~1e5 are beyond fp16 (65504), yet
    # GRN stays finite and as close: onnxruntime-CPU runs its ops in fp32
    assert grn[1e4]['finite'] and grn[1e5]['finite'] and grn[1e5]['diff'] < 1e-2
    # LayerNormalization has an fp16 CPU kernel: its fp16 input overflows
    assert norm[1.]['finite'] and not norm[1e5]['finite']
