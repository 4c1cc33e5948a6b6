"""VanillaNet backbone and classifier head: structure, deploy fusion,
parameter counts vs the official table, layer decay ids, argument checks."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import load_tool, num_params
from mmconvarch.deploy import switch_to_deploy
from mmconvarch.models.backbones.vanillanet import (VanillaNet, get_act_learn, leaky_relu,
                                                     set_act_learn)
from mmconvarch.models.heads import VanillaNetClsHead

ARCHS = list(VanillaNet.arch_zoo)
# official README (params in M, deploy form incl. the 1000-way classifier)
OFFICIAL_PARAMS_M = {'5': 15.5, '6': 32.5, '7': 32.8, '8': 37.1, '9': 41.4,
                     '10': 45.7, '11': 50.0, '12': 54.3, '13': 58.6,
                     '13_x1_5': 127.8, '13_x1_5_ada_pool': 127.8}
# fused (deploy) vs train-form outputs, fp32. Measured max |diff| at these
# tests' shapes (outputs |x| <= 2, BN randomised): 8.3e-7 over every variant's
# stages (widths / 32, 64 px), 5.4e-7 on VanillaNet-5 + head logits (32 px),
# i.e. a few fp32 ulps; 2e-6 leaves ~2.4x headroom. (The README's <= 7e-8 is
# the benchmark's logits at 224 px, |logit| ~ 0.3, gentler BN.)
FUSED_ATOL = 2e-6
# tiny convs: one thread avoids OpenMP contention on a shared CPU (2 threads
# were ~100x slower here under load)
pytestmark = pytest.mark.usefixtures('single_thread')


def scaled(arch: str, div: int = 32) -> dict:
    """The arch's strides/ada_pool/stem with widths / div (fast on CPU)."""
    cfg = dict(VanillaNet.arch_zoo[arch])
    cfg['dims'] = [d // div for d in cfg['dims']]
    return cfg


def randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics, so fusing them is tested for real."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(1 + torch.randn(n, generator=g) * 0.3)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.3)


def official_train_params(dims, act_num=3, num_classes=1000) -> int:
    """Train-form parameter count of the official modules (§4.2), BN
    weight+bias included, written from the structure, not from our code."""
    k2 = (2 * act_num + 1)**2
    c0 = dims[0]
    total = 3 * 16 * c0 + c0 + 2 * c0  # stem1 conv + BN
    total += c0 * c0 + c0 + 2 * c0 + c0 * k2 + 2 * c0  # stem2 conv, BN, act
    for d, o in zip(dims[:-1], dims[1:]):
        total += d * d + d + 2 * d  # conv1 + BN
        total += o * d + o + 2 * o  # conv2 + BN
        total += o * k2 + 2 * o  # activation + its BN
    c = dims[-1]
    total += num_classes * c + num_classes + 2 * num_classes  # cls1
    total += num_classes * num_classes + num_classes  # cls2
    return total


@pytest.mark.parametrize('arch', ARCHS)
def test_param_counts_equal_official(arch):
    # built on the meta device: real widths, no memory, no time
    with torch.device('meta'):
        train = VanillaNet(arch)
        deploy = VanillaNet(arch, deploy=True)
        head_t = VanillaNetClsHead(1000, train.channels[-1])
        head_d = VanillaNetClsHead(1000, train.channels[-1], deploy=True)
    deploy_total = num_params(deploy) + num_params(head_d)
    assert round(deploy_total / 1e6, 1) == OFFICIAL_PARAMS_M[arch]
    assert num_params(train) + num_params(head_t) == official_train_params(train.dims)
    if arch == '5':  # the reference's hand count: 15.52M
        assert deploy_total == 15_523_304
        assert num_params(train) + num_params(head_t) == 22_328_800


@pytest.mark.parametrize('arch', ARCHS)
def test_fused_equals_train_form_every_variant(arch):
    """Every variant's strides / act_num / stem / ada_pool, widths / 32:
    fused output == λ=1 train-form output (eval), and the fused model has
    exactly the keys of a deploy=True build, which reproduces it."""
    torch.manual_seed(0)
    cfg = scaled(arch)
    n = len(cfg['strides'])
    model = VanillaNet(cfg, out_indices=tuple(range(n))).eval()
    randomize_bn(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        names = switch_to_deploy(model)
        fused = model(x)
    assert names == ['']
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for m in model.modules())
    for a, b in zip(ref, fused):
        torch.testing.assert_close(b, a, atol=FUSED_ATOL, rtol=0)
    built = VanillaNet(cfg, out_indices=tuple(range(n)), deploy=True).eval()
    assert built.state_dict().keys() == model.state_dict().keys()
    built.load_state_dict(model.state_dict())
    with torch.no_grad():
        for a, b in zip(fused, built(x)):
            torch.testing.assert_close(b, a, atol=0, rtol=0)


def test_fused_equals_train_form_real_width_with_head():
    """VanillaNet-5 at its real widths plus the classifier head, 32px."""
    torch.manual_seed(0)
    backbone = VanillaNet('5').eval()
    head = VanillaNetClsHead(1000, 4096).eval()
    randomize_bn(backbone), randomize_bn(head)
    x = torch.randn(2, 3, 32, 32)

    def logits():
        (feat, ) = backbone(x)
        return head((feat.mean((2, 3)), ))

    with torch.no_grad():
        ref = logits()
        backbone.switch_to_deploy()
        head.switch_to_deploy()
        fused = logits()
    assert set(head.state_dict()) == {'fc.weight', 'fc.bias'}
    torch.testing.assert_close(fused, ref, atol=FUSED_ATOL, rtol=0)


def test_deploy_structure_is_conv_pool_act():
    model = VanillaNet(scaled('8'), deploy=True)
    assert [type(m).__name__ for m in model.stem] == ['Conv2d',
                                                      'SeriesActivation']
    for block, stride in zip(model.stages, model.strides):
        assert set(dict(block.named_children())) == {'conv', 'pool', 'act'}
        assert isinstance(block.pool,
                          nn.Identity if stride == 1 else nn.MaxPool2d)
        assert block.act.bias is not None and not hasattr(block.act, 'bn')
    assert 'act_learn' not in model.state_dict()


def test_official_key_template():
    """Train/deploy keys are the documented official ones (+ act_learn)."""
    train = VanillaNet(scaled('5')).state_dict()
    bn = ['weight', 'bias', 'running_mean', 'running_var',
          'num_batches_tracked']
    expected = {'act_learn'}
    expected |= {f'stem1.0.{p}' for p in ('weight', 'bias')}
    expected |= {f'stem1.1.{p}' for p in bn}
    expected |= {f'stem2.0.{p}' for p in ('weight', 'bias')}
    expected |= {f'stem2.1.{p}' for p in bn} | {'stem2.2.weight'}
    expected |= {f'stem2.2.bn.{p}' for p in bn}
    for i in range(3):
        for conv in ('conv1', 'conv2'):
            expected |= {f'stages.{i}.{conv}.0.{p}' for p in ('weight',
                                                              'bias')}
            expected |= {f'stages.{i}.{conv}.1.{p}' for p in bn}
        expected |= {f'stages.{i}.act.weight'}
        expected |= {f'stages.{i}.act.bn.{p}' for p in bn}
    assert set(train) == expected
    deploy = VanillaNet(scaled('5'), deploy=True).state_dict()
    expected = {'stem.0.weight', 'stem.0.bias', 'stem.1.weight', 'stem.1.bias'}
    for i in range(3):
        expected |= {f'stages.{i}.{m}.{p}' for m in ('conv', 'act')
                     for p in ('weight', 'bias')}
    assert set(deploy) == expected


def test_variant_details_follow_official():
    assert VanillaNet.arch_zoo['13']['strides'] == [1, 2, 2, 1, 1, 1, 1, 1,
                                                    1, 2, 1]
    assert VanillaNet.arch_zoo['13_x1_5']['dims'][-1] == 6144
    # act_num 4 (official detection): 9x9 series kernels everywhere
    model = VanillaNet(scaled('6'), act_num=4)
    assert model.stem2[2].weight.shape[-2:] == (9, 9)
    assert all(b.act.weight.shape[-2:] == (9, 9) for b in model.stages)
    assert model.stem1[0].stride == (4, 4) and model.stem1[0].padding == (0,
                                                                          0)
    # adaptive-pool variant: stem k4 s3 p1, AdaptiveMaxPool 38/19/10
    ada = VanillaNet(scaled('13_x1_5_ada_pool', 64),
                     out_indices=tuple(range(11))).eval()
    assert ada.stem1[0].stride == (3, 3) and ada.stem1[0].padding == (1, 1)
    with torch.no_grad():
        sizes = [o.shape[-1] for o in ada(torch.randn(1, 3, 224, 224))]
    assert sizes == [75, 38, 19] + [19] * 6 + [10, 10]
    assert VanillaNet('vanillanet_13', deploy=True).dims == \
        VanillaNet(13, deploy=True).dims


def test_dense_outputs_official_detection_indices():
    model = VanillaNet(scaled('13'), act_num=4, out_indices=(0, 1, 8, 10))
    outs = model(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (2, 16, 16, 24), (2, 32, 8, 12), (2, 64, 4, 6), (2, 128, 2, 3)]


def test_leaky_relu_with_tensor_slope():
    x = torch.randn(1000)
    for slope in (0., 0.3, 1.):
        torch.testing.assert_close(leaky_relu(x, torch.tensor(slope)),
                                   F.leaky_relu(x, slope), atol=0, rtol=0)


def test_act_learn_is_used_everywhere():
    """λ=0 turns stem, blocks and classifier into ReLU nets; λ lives in
    buffers of backbone and head (so checkpoints carry it)."""
    torch.manual_seed(0)
    backbone = VanillaNet(scaled('6')).eval()
    head = VanillaNetClsHead(10, backbone.channels[-1]).eval()
    model = nn.ModuleDict(dict(backbone=backbone, head=head))
    assert get_act_learn(model) == {'backbone': 1., 'head': 1.}
    x = torch.randn(2, 3, 64, 64)

    def run():
        return head((backbone(x)[0].mean((2, 3)), ))

    with torch.no_grad():
        at_one = run()
        assert set_act_learn(model, 0.) == 2
        at_zero = run()
    assert not torch.allclose(at_one, at_zero)
    assert model.state_dict()['backbone.act_learn'] == 0.
    assert model.state_dict()['head.act_learn'] == 0.


def test_switch_to_deploy_refuses_before_annealing_ends():
    torch.manual_seed(0)
    model = VanillaNet(scaled('5')).eval()
    randomize_bn(model)
    set_act_learn(model, 0.5)
    with pytest.raises(RuntimeError, match=r'act_learn \(λ\) is 0\.5.*'
                       'force=True'):
        switch_to_deploy(model)
    assert not model.deploy  # untouched
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[0]
        switch_to_deploy(model, force=True)
        assert model.deploy
        assert not torch.allclose(model(x)[0], ref, atol=1e-3)
    head = VanillaNetClsHead(10, 32)
    set_act_learn(head, 0.9)
    with pytest.raises(RuntimeError, match='VanillaNetClsHead'):
        head.switch_to_deploy()


def test_frozen_stages_and_norm_eval():
    model = VanillaNet(scaled('7'), frozen_stages=2, norm_eval=True)
    model.train()
    frozen = [model.stem1, model.stem2, model.stages[0], model.stages[1]]
    for m in frozen:
        assert not any(p.requires_grad for p in m.parameters())
        assert not m.training
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert all(not m.training for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm))
    assert model.stages[2].training  # only BNs are in eval
    before = model.stages[0].conv1[1].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(model.stages[0].conv1[1].running_mean, before)


def test_with_cp_same_gradients():
    torch.manual_seed(0)
    a = VanillaNet(scaled('6'))
    b = VanillaNet(scaled('6'), with_cp=True)
    b.load_state_dict(a.state_dict())
    set_act_learn(a, 0.3), set_act_learn(b, 0.3)
    x = torch.randn(2, 3, 64, 64)
    a(x)[0].square().sum().backward()
    b(x)[0].square().sum().backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_layer_depth_official_rules():
    # classification (optim_factory): stem 0, stages.i -> i+1, cls -> L+1;
    # lr scale 0.8 ** (L + 1 - id) with L = number of blocks (-6: 4)
    model = VanillaNet(scaled('6'))
    for name, layer_id in [('stem1.0.weight', 0), ('stem2.2.weight', 0),
                           ('stages.0.conv1.0.weight', 1),
                           ('stages.3.act.bn.bias', 4)]:
        got, num = model.get_layer_depth('backbone.' + name, 'backbone.')
        assert (got, num) == (layer_id, 6)
        assert 0.8**(num - got - 1) == pytest.approx(0.8**(4 + 1 - layer_id))
    assert model.get_layer_depth('head.fc2.weight', 'backbone.') == (5, 6)
    # detection (get_layer_id_for_vanillanet, num_layers 6): stem 0.6**7,
    # stages 0-1 0.6**6, stages 8-9 0.6**2, stage 10 0.6, neck/heads 1
    det = VanillaNet(scaled('13'), layer_decay_type='pair')
    expected = {'stem1.0.weight': 7, 'stages.0.conv1.0.weight': 6,
                'stages.1.act.weight': 6, 'stages.8.conv2.0.bias': 2,
                'stages.9.conv1.1.weight': 2, 'stages.10.act.weight': 1}
    for name, power in expected.items():
        layer_id, num = det.get_layer_depth('backbone.' + name, 'backbone.')
        assert 0.6**(num - layer_id - 1) == pytest.approx(0.6**power), name
    layer_id, num = det.get_layer_depth('neck.lateral_convs.0.conv.weight',
                                        'backbone.')
    assert num - layer_id - 1 == 0


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match=r"Unknown VanillaNet arch '14'.*"
                       r"'13_x1_5'"):
        VanillaNet('14')
    with pytest.raises(ValueError, match=r'len\(dims\) == len\(strides\)'):
        VanillaNet(dict(dims=[8, 16], strides=[2, 2]))
    with pytest.raises(ValueError, match='ada_pool needs one entry'):
        VanillaNet(dict(dims=[8, 16], strides=[2], ada_pool=[0, 1]))
    with pytest.raises(ValueError, match=r'valid indices are 0\.\.2'):
        VanillaNet(scaled('5'), out_indices=3)
    with pytest.raises(ValueError, match=r'valid values are -1\.\.3'):
        VanillaNet(scaled('5'), frozen_stages=4)
    with pytest.raises(TypeError, match='needs batch norm'):
        VanillaNet(scaled('5'), norm_cfg=dict(type='GN', num_groups=4))
    with pytest.raises(ValueError, match='layer_decay_type'):
        VanillaNet(scaled('5'), layer_decay_type='stage')
    with pytest.raises(ValueError, match='at least 32x32'):
        VanillaNet(scaled('5'))(torch.randn(1, 3, 31, 64))


def test_benchmark_script_counts_official_flops():
    """tools/analysis/benchmark_vanillanet.py end to end (one timed forward,
    no timing asserted): deploy VanillaNet-5 at 224 has the official 15.5M
    params / 5.2 GFLOPs (MACs) and the fused logits equal the train form."""
    tool = load_tool('tools/analysis/benchmark_vanillanet.py')
    torch.manual_seed(0)  # the tool's random input (its BN statistics are seeded)
    (row, ) = tool.run(['5'], 224, [1], 'cpu', repeats_bs1=1, repeats_big=1)
    assert round(row['deploy_params'] / 1e6, 1) == 15.5
    assert round(row['deploy_flops'] / 1e9, 1) == 5.2
    assert row['train_flops'] > row['deploy_flops']
    # measured 1.2e-7 .. 1.6e-7 (8 input seeds, |logit| ~ 0.25: 4-5 fp32 ulps)
    assert row['max_diff'] < 5e-7
    assert {'train_bs1', 'deploy_bs1', 'deploy_nchw_bs1'} <= set(row)
    text = tool.report([row], 224, [1], 'cpu', peak_flops=1e11)
    assert 'deploy NCHW' in text and 'of the matmul peak' in text


@pytest.mark.parametrize('deploy', [False, True])
def test_memory_format_changes_layout_not_values(deploy):
    """channels_last (the default) and NCHW give the same outputs (train form
    with gradients, and the fused form); outputs are NCHW-contiguous either way."""
    torch.manual_seed(0)
    model = VanillaNet(scaled('5'), out_indices=(0, 2))
    if deploy:
        model.eval()
        switch_to_deploy(model)
    nchw = VanillaNet(scaled('5'), out_indices=(0, 2), deploy=deploy,
                      memory_format='contiguous')
    nchw.load_state_dict(model.state_dict())
    nchw.train(model.training)
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    assert model.memory_format(x.device) is torch.channels_last  # 'auto' on a CPU
    outs, ref = model(x), nchw(x)
    for out, r in zip(outs, ref):
        assert out.is_contiguous()
        torch.testing.assert_close(out, r, rtol=1e-5, atol=1e-5)  # BN outputs ~1: fp32 ulps
    if not deploy:
        grad = torch.autograd.grad(sum(o.sum() for o in outs), x)[0]
        grad_ref = torch.autograd.grad(sum(r.sum() for r in ref), x)[0]
        torch.testing.assert_close(grad, grad_ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"memory_format must be one of \['auto', "
                       r"'channels_last', 'contiguous'\], got 'nhwc'"):
        VanillaNet(scaled('5'), memory_format='nhwc')


def test_deploy_batch_chunks_and_in_place_relu(monkeypatch):
    """The deploy form's 1x1 conv + pool runs a few samples at a time when
    its output would be large (values as in one piece), and its in-place
    ReLUs never touch the caller's input."""
    import mmconvarch.models.backbones.vanillanet as vanillanet
    torch.manual_seed(0)
    model = VanillaNet(scaled('5'), out_indices=(0, 1, 2)).eval()
    randomize_bn(model)
    switch_to_deploy(model)
    x = torch.randn(3, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    x_before = x.clone()
    with torch.no_grad():
        whole = model(x)
        calls = []
        real_matmul = vanillanet._pixel_matmul
        monkeypatch.setattr(vanillanet, '_pixel_matmul',
                            lambda w, t: calls.append(len(t)) or real_matmul(w, t))
        monkeypatch.setattr(vanillanet, '_CHUNK_BYTES', 1)  # one sample per chunk
        chunked = model(x)
    assert calls == [1, 1, 1] * 3  # 3 pooled blocks, 3 samples each
    torch.testing.assert_close(x, x_before, rtol=0, atol=0)
    for a, b in zip(chunked, whole):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
