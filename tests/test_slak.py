"""SLaK backbone: shapes, official sizes, per-axis padding, deploy merge."""
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_frozen_stages, load_tool, num_params, on_meta
from mmconvarch.deploy import switch_to_deploy
from mmconvarch.models.backbones import SLaK
from mmconvarch.models.backbones.slak import (DecomposedLargeKernelConv,
                                              DepthwiseConv2d)

TINY = dict(depths=[1, 1, 2, 1], channels=[8, 16, 24, 32])
SMALL_K = (13, 11, 9, 7, 3)  # the properties below do not depend on size
pytestmark = pytest.mark.usefixtures('single_thread')


def tiny(**kwargs):
    kwargs.setdefault('kernel_size', SMALL_K)
    return SLaK(TINY, width_factor=1.0, **kwargs)


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics and affine params, so fusion is tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.2)
    for name, p in model.named_parameters():
        if name.endswith('gamma'):  # make the blocks matter
            p.data.fill_(0.5)


def test_official_widths_and_parameter_count():
    with on_meta():  # real widths, no memory, no init time
        model = SLaK('tiny')
    assert model.channels == [124, 249, 499, 998]
    assert model.kernel_size == (51, 49, 47, 13, 5)
    total = num_params(model) + 998 * 1000 + 1000
    # dense SLaK-T classifier: 50.7M; x 0.6 density = the README's 30M
    assert total == 50703838
    assert round(total * 0.6 / 1e6) == 30
    base = SLaK.arch_zoo['base']['channels']
    assert [int(c * 1.3) for c in base] == [166, 332, 665, 1331]
    lk = model.stages[0][0].large_kernel
    assert lk.LoRA1.conv.weight.shape == (124, 1, 51, 5)
    assert lk.LoRA2.conv.weight.shape == (124, 1, 5, 51)
    assert lk.small_conv.conv.weight.shape == (124, 1, 5, 5)
    assert model.stages[3][0].large_kernel.LoRA1.conv.weight.shape == (
        998, 1, 13, 5)


def test_31_kernel_variant():
    model = SLaK(TINY, width_factor=1.0, kernel_size=[31, 29, 27, 13, 5])
    shapes = [s[0].large_kernel.LoRA2.conv.weight.shape[2:]
              for s in model.stages]
    assert shapes == [(5, 31), (5, 29), (5, 27), (5, 13)]


def test_dense_outputs_and_classification():
    model = tiny(out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
    outs = model(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (2, 8, 16, 24), (2, 16, 8, 12), (2, 24, 4, 6), (2, 32, 2, 3)]
    assert [n for n, _ in model.named_children() if n.startswith('norm')] \
        == ['norm0', 'norm1', 'norm2', 'norm3']
    (out, ) = tiny().eval()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 32)


def test_branch_padding_is_per_axis():
    """A (K, N) kernel pads (K//2, N//2), not K//2 on both axes."""
    conv = DepthwiseConv2d(3, (13, 5))
    assert conv.padding == (6, 2)
    x = torch.randn(1, 3, 20, 17)
    ref = F.conv2d(F.pad(x, [2, 2, 6, 6]), conv.weight, groups=3)
    torch.testing.assert_close(conv(x), ref)
    assert conv(x).shape == x.shape


@pytest.mark.parametrize('kernel,size,cropped', [
    ((47, 5), (8, 8), (15, 5)), ((5, 51), (7, 32), (5, 51)), ((5, 51), (7, 20), (5, 39)),
    ((13, 13), (4, 4), (7, 7)), ((13, 5), (20, 17), (13, 5))])
def test_kernel_larger_than_input_is_cropped_exactly(kernel, size, cropped):
    """A kernel taller or wider than its input runs as the part that meets
    the input (15x5 for 47x5 on 8x8): output and both gradients equal the
    whole-kernel conv; the weight keeps its shape and its unused rows get
    zero gradient. A trace (ONNX export) keeps the whole kernel."""
    from mmconvarch.models.backbones.slak import crop_kernel_to_input
    torch.manual_seed(0)
    conv = DepthwiseConv2d(3, kernel)
    assert crop_kernel_to_input(conv.weight, conv.padding, size)[0].shape[2:] == cropped
    x = torch.randn(2, 3, *size, requires_grad=True)
    w = conv.weight.detach().clone().requires_grad_()
    ref = F.conv2d(x, w, padding=conv.padding, groups=3)
    out = conv(x)
    assert out.shape == ref.shape == x.shape
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(out, (x, conv.weight), g),
                    torch.autograd.grad(ref, (x, w), g)):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        traced = torch.jit.trace(conv, x.detach())
        big = torch.randn(1, 3, size[0] + 60, size[1] + 60)
        torch.testing.assert_close(traced(big), F.conv2d(big, w, padding=conv.padding,
                                                         groups=3))


@pytest.mark.parametrize('variant', [
    dict(), dict(decompose=False), dict(norm_cfg=None),
    dict(decompose=False, kernel_size=(7, 7, 7, 7, 9))])  # ConvNeXt mode
def test_deploy_merge_equals_branches(variant):
    torch.manual_seed(0)
    model = tiny(out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                 **variant)
    randomize_bn(model)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        switch_to_deploy(model)
        after = model(x)
    for a, b in zip(before, after):
        assert (a - b).abs().max() <= 1e-4
    assert not any('LoRA' in k or 'small_conv' in k or 'lkb_origin' in k
                   for k in model.state_dict())
    # deploy=True builds exactly this layout: the merged checkpoint loads
    direct = tiny(out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                  deploy=True, **variant).eval()
    direct.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        for a, b in zip(after, direct(x)):
            torch.testing.assert_close(a, b)


def test_real_51_kernel_on_tiny_input():
    torch.manual_seed(0)
    model = SLaK(dict(depths=[1, 1, 1, 1], channels=[4, 8, 8, 8]),
                 width_factor=1.0, out_indices=(0, 3),
                 gap_before_final_norm=False)
    lk = model.stages[0][0].large_kernel
    assert lk.LoRA1.conv.weight.shape[2:] == (51, 5)
    randomize_bn(model)
    model.eval()
    x = torch.randn(1, 3, 64, 64)  # stage 0 is 16x16: most of 51x51 pads
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        after = model(x)
    assert lk.lkb_reparam.weight.shape == (4, 1, 51, 51)
    for a, b in zip(before, after):
        assert (a - b).abs().max() <= 1e-4


def test_large_kernel_module_merge_directly():
    torch.manual_seed(0)
    m = DecomposedLargeKernelConv(6, 15, 5)
    randomize_bn(m)
    m.eval()
    x = torch.randn(2, 6, 21, 18)
    with torch.no_grad():
        ref = m(x)
        m.switch_to_deploy()
        assert (m(x) - ref).abs().max() <= 1e-4


def test_convert_to_deploy_tool(tmp_path):
    """The shared tool converts a trained SLaK classifier; the saved
    checkpoint loads into deploy=True and gives the same predictions."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    torch.manual_seed(0)
    cfg_file = tmp_path / 'slak_tiny_cls.py'
    cfg_file.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_imports = dict(imports=['mmconvarch'],\n"
        "                      allow_failed_imports=False)\n"
        "model = dict(type='ImageClassifier',\n"
        "    backbone=dict(type='mmconvarch.SLaK', width_factor=1.0,\n"
        f"        arch=dict(depths={TINY['depths']},\n"
        f"                  channels={TINY['channels']}),\n"
        f"        kernel_size={list(SMALL_K)},\n"
        "        norm_cfg=dict(type='SyncBN', requires_grad=True)),\n"
        "    head=dict(type='LinearClsHead', num_classes=5, in_channels=32))\n")
    cfg = Config.fromfile(str(cfg_file))
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model)
    randomize_bn(model.backbone)
    ckpt = tmp_path / 'trained.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'deploy.pth'
    load_tool('tools/deploy/convert_to_deploy.py').main(
        [str(cfg_file), str(ckpt), str(out)])

    cfg.model.backbone.deploy = True
    deployed = MODELS.build(cfg.model)
    deployed.load_state_dict(torch.load(out)['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 64)
    model.eval(), deployed.eval()
    with torch.no_grad():
        a = model(x, mode='tensor')
        b = deployed(x, mode='tensor')
    # merged kernels: measured max |diff| 2.7e-7 .. 3.6e-7 (|out| ~ 1.5)
    torch.testing.assert_close(b, a, atol=2e-6, rtol=0)


def test_frozen_stages_and_norm_eval():
    model = tiny(frozen_stages=2, norm_eval=True, out_indices=(0, 1, 2, 3),
                 gap_before_final_norm=False)
    assert_frozen_stages(model, 2)
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.stages[3][0].pwconv1.training


def test_layer_depth_group_and_stage_rules():
    with on_meta():  # only the depths matter
        t = SLaK('tiny')
    # ConvNeXt layer_wise rule (official detection, num_layers 6)
    cases = {'downsample_layers.0.0.weight': 0, 'stages.0.2.gamma': 1,
             'downsample_layers.1.1.weight': 2, 'stages.1.0.norm.bias': 2,
             'downsample_layers.2.1.weight': 3,
             'stages.2.4.large_kernel.LoRA1.conv.weight': 4,
             'stages.2.8.pwconv1.weight': 5,
             'downsample_layers.3.1.weight': 6, 'stages.3.0.gamma': 6,
             'norm3.weight': 7}
    for name, layer_id in cases.items():
        assert t.get_layer_depth('backbone.' + name, 'backbone.') == (
            layer_id, 8), name
    assert t.get_layer_depth('head.fc.weight', 'backbone.') == (7, 8)
    s = SLaK(TINY | dict(depths=[1, 1, 12, 1]), width_factor=1.0,
             kernel_size=SMALL_K, layer_decay_type='stage')
    # official segmentation stage_wise rule (num_layers 12 for S/B)
    assert s.get_layer_depth('downsample_layers.3.1.weight') == (0, 14)
    assert s.get_layer_depth('stages.2.11.pwconv2.weight') == (3, 14)
    assert s.get_layer_depth('norm0.weight') == (13, 14)


def test_with_cp_same_output_and_grads():
    torch.manual_seed(0)
    a = tiny(drop_path_rate=0.)
    b = tiny(drop_path_rate=0., with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    a(x)[0].sum().backward()
    b(x)[0].sum().backward()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=n)


@pytest.mark.parametrize('bad,match', [
    (dict(kernel_size=(51, 49, 47, 13)), '5 odd positive ints'),
    (dict(kernel_size=(50, 49, 47, 13, 5)), 'Odd sizes'),
    (dict(layer_decay_type='layer_wise'), '"group" or "stage"'),
    (dict(kernel_size=(7, 7, 7, 7, 9)), 'use decompose=False'),
    (dict(out_indices=4), r'valid indices are 0\.\.3'),
    (dict(frozen_stages=5), r'valid values are -1\.\.4'),
])
def test_bad_arguments(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny(**bad)


def test_bad_arch_and_small_input():
    with pytest.raises(ValueError, match=r"Unknown SLaK arch 'huge'.*'tiny'"):
        SLaK('huge')
    with pytest.raises(ValueError, match='needs 4 depths'):
        SLaK(dict(depths=[1, 1, 1], channels=[8, 8, 8]))
    with pytest.raises(ValueError, match='at least 32x32'):
        tiny()(torch.randn(1, 3, 16, 64))


def test_igemm_is_optional():
    from mmconvarch.models.backbones import slak
    if slak._igemm is None:
        with pytest.raises(ImportError, match='use_igemm=True needs'):
            tiny(use_igemm=True)
    model = tiny(use_igemm=False).eval()  # pure PyTorch path works
    assert model(torch.randn(1, 3, 32, 32))[0].shape == (1, 32)


def test_registered():
    from mmconvarch.registry import MODELS
    model = MODELS.build(dict(type='SLaK', arch=TINY, width_factor=1.0,
                              kernel_size=SMALL_K))
    assert isinstance(model, SLaK)


def test_layer_decay_constructor_uses_slak_rules():
    """The shared constructor on a detector-like model (backbone + neck):
    lr = base * rate ** (num_layers - 1 - layer_id), neck at 1x."""
    from mmconvarch.engine.optimizers import LayerDecayOptimWrapperConstructor

    class ToyDetector(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = tiny(out_indices=(0, 1, 2, 3),
                                 gap_before_final_norm=False)
            self.neck = torch.nn.Conv2d(32, 8, 1)

    wrapper = LayerDecayOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.7))(ToyDetector())
    lrs = {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            lrs[name] = (group['lr'], group['weight_decay'])
    assert lrs['backbone.downsample_layers.0.0.weight'][0] == \
        pytest.approx(0.7**7)
    assert lrs['backbone.stages.2.1.large_kernel.LoRA1.conv.weight'][0] == \
        pytest.approx(0.7**4)
    assert lrs['neck.weight'] == (pytest.approx(1.0), 0.05)
    assert lrs['backbone.stages.0.0.gamma'][1] == 0  # no decay on 1-D


def test_memory_format_changes_layout_not_values():
    """SLaK in channels_last (default) and NCHW: same outputs and gradients."""
    torch.manual_seed(0)
    model = tiny(out_indices=(0, 3), kernel_size=(13, 11, 9, 7, 3))
    nchw = tiny(out_indices=(0, 3), kernel_size=(13, 11, 9, 7, 3), memory_format='contiguous')
    nchw.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    outs, ref = model(x), nchw(x)
    for out, r in zip(outs, ref):
        torch.testing.assert_close(out, r, rtol=1e-5, atol=1e-5)
    sum(o.square().sum() for o in outs).backward()
    sum(r.square().sum() for r in ref).backward()
    for (name, p), q in zip(model.named_parameters(), nchw.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match='memory_format must be one of'):
        tiny(memory_format='NHWC')


def test_benchmark_script_compares_memory_formats(capsys):
    """tools/analysis/benchmark_slak.py runs end to end (no timing asserted)."""
    tool = load_tool('tools/analysis/benchmark_slak.py')
    tool.main(['--channels', '8', '--size', '16', '--batch', '2', '--model-size', '32',
               '--repeat', '1', '--skip-hook'])
    out = capsys.readouterr().out
    assert "memory_format='auto' picks channels_last here" in out and 'NCHW' in out
