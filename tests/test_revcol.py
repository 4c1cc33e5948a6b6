import copy

import pytest
import torch
import torch.nn as nn

from conftest import load_tool, num_params, on_meta
from mmconvarch.models.backbones import RevCol

SMALL = dict(channels=[16, 32, 64, 128], layers=[1, 1, 2, 1], num_columns=4)


# alphas and layer scales at trained-like magnitudes (test_distributed.py takes it from here)
trained_like = load_tool('tools/analysis/benchmark_revcol_memory.py').trained_like


def run(model, x, seed=1, amp_dtype=None):
    x = x.clone().requires_grad_(True)
    torch.manual_seed(seed)
    with torch.autocast('cpu', dtype=amp_dtype or torch.bfloat16,
                        enabled=amp_dtype is not None):
        outs = model(x)
    g = torch.Generator().manual_seed(2)
    loss = sum((o.float() * torch.randn(o.shape, generator=g)).sum() for o in outs)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    return [o.detach() for o in outs], x.grad, grads


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def compare(plain, rev, x, tol, amp_dtype=None):
    outs_p, gx_p, gp = run(plain, x, amp_dtype=amp_dtype)
    outs_r, gx_r, gr = run(rev, x, amp_dtype=amp_dtype)
    for a, b in zip(outs_r, outs_p):
        assert rel(a, b) <= tol
    assert rel(gx_r, gx_p) <= tol
    assert gp.keys() == gr.keys()
    worst = 0.
    for name in gp:
        assert (gp[name] is None) == (gr[name] is None), name
        if gp[name] is not None:
            worst = max(worst, rel(gr[name], gp[name]))
            assert rel(gr[name], gp[name]) <= tol, name
    return worst


def pair(**kwargs):
    torch.manual_seed(0)
    plain = trained_like(RevCol(**kwargs))
    rev = copy.deepcopy(plain)
    rev.save_memory = True
    return plain, rev


@pytest.mark.parametrize('num_columns', [4, 8])
def test_reversible_grads_equal_plain_multilevel(num_columns):
    plain, rev = pair(arch=dict(SMALL, num_columns=num_columns), drop_path_rate=0.3)
    compare(plain, rev, torch.randn(2, 3, 64, 64), tol=1e-5)


def test_reversible_grads_equal_plain_classification():
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3, out_indices=3, out_norm=True,
                      gap_before_final_norm=True)
    compare(plain, rev, torch.randn(2, 3, 64, 64), tol=1e-5)


def test_reversible_huge_layout_odd_size():
    # RevCol-H: level 0 also reads the previous column's top level
    plain, rev = pair(arch=dict(SMALL, top_to_level0=True), drop_path_rate=0.2)
    assert 'subnet1.level0.fusion.up2.channel_reschedule.0.weight' in \
        dict(plain.named_parameters())
    compare(plain, rev, torch.randn(1, 3, 67, 45), tol=1e-5)


def test_reversible_16_columns_stays_exact():
    # float64 column state: the inversion does not drift with many columns
    plain, rev = pair(arch=dict(SMALL, num_columns=16), drop_path_rate=0.1)
    compare(plain, rev, torch.randn(1, 3, 32, 32), tol=1e-5)


def test_reversible_bf16_autocast_within_tolerance():
    """bf16 (8-bit mantissa) gradients of a small net differ from fp32 by a
    few % per tensor whichever path computes them. Documented tolerance: the
    reversible bf16 gradients are no further from the fp32 ones than plain
    bf16 gradients are (x1.5), and outputs agree to bf16 precision."""
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3)
    x = torch.randn(2, 3, 64, 64)
    _, _, ref = run(plain, x)
    plain.zero_grad()
    outs_p, _, g_plain = run(plain, x, amp_dtype=torch.bfloat16)
    outs_r, _, g_rev = run(rev, x, amp_dtype=torch.bfloat16)
    for a, b in zip(outs_r, outs_p):
        assert rel(a, b) <= 1e-2
    names = [n for n in ref if ref[n] is not None]
    err_plain = max(rel(g_plain[n], ref[n]) for n in names)
    err_rev = max(rel(g_rev[n], ref[n]) for n in names)
    assert err_rev <= 1.5 * err_plain, (err_rev, err_plain)
    assert err_rev < 0.1


def test_reversible_with_frozen_stages():
    plain, rev = pair(arch=SMALL, drop_path_rate=0.2, frozen_stages=2)
    compare(plain, rev, torch.randn(2, 3, 64, 64), tol=1e-5)
    grads = {n: p.grad for n, p in rev.named_parameters()}
    assert grads['stem.0.weight'] is None
    assert grads['subnet2.level1.blocks.0.gamma'] is None
    assert grads['subnet2.alpha1'] is None
    assert grads['subnet2.level2.blocks.0.gamma'] is not None


def test_reversible_accumulates_like_plain():
    plain, rev = pair(arch=SMALL)
    x = torch.randn(1, 3, 32, 32)
    for model in (plain, rev):
        for _ in range(2):  # gradient accumulation over two backward passes
            sum(o.sum() for o in model(x)).backward()
    for (n, p), r in zip(plain.named_parameters(), rev.parameters()):
        if p.grad is not None:
            assert rel(r.grad, p.grad) <= 1e-5, n


def test_eval_and_no_grad_use_plain_path():
    plain, rev = pair(arch=SMALL)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(plain.eval()(x), rev.eval()(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_param_counts_match_official():
    # hand counts of the official models (reference §1.1): T 29.94M, B 138.03M
    for arch, millions in (('tiny', 29.94), ('base', 138.04), ('small', 60.05)):
        with on_meta():  # real widths, no memory, no init time
            model = RevCol(arch)
        assert num_params(model) / 1e6 == pytest.approx(millions, abs=0.01), arch


def test_first_column_alphas_are_not_trained():
    model = RevCol(SMALL)
    assert not model.subnet0.alpha0.requires_grad
    assert model.subnet1.alpha0.requires_grad


def test_alpha_clamp_keeps_sign_and_minimum():
    model = RevCol(SMALL, alpha_min=1e-2)
    with torch.no_grad():
        model.subnet1.alpha0.fill_(0.)
        model.subnet1.alpha1.fill_(-1e-5)
    model(torch.randn(1, 3, 32, 32))
    assert torch.all(model.subnet1.alpha0 == 1e-2)
    assert torch.all(model.subnet1.alpha1 == -1e-2)


def test_layer_depth_follows_official_rule():
    model = RevCol('tiny')  # layers [2,2,4,2] (D=10), 4 columns
    depth = model.get_layer_depth
    assert depth('backbone.stem.0.weight', 'backbone.') == (0, 15)
    assert depth('backbone.subnet2.alpha3', 'backbone.') == (3, 15)
    # fusion: sum(layers[:l]) + col + 1; blocks: + min(b, layers[l]-1)
    assert depth('backbone.subnet1.level2.fusion.down.0.weight', 'backbone.') == (6, 15)
    assert depth('backbone.subnet3.level2.blocks.3.gamma', 'backbone.') == (11, 15)
    assert depth('neck.lateral_convs.0.conv.weight', 'backbone.') == (14, 15)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"Unknown RevCol arch 'tinyy'.*'base'"):
        RevCol('tinyy')
    with pytest.raises(ValueError, match=r'valid indices are 0\.\.3'):
        RevCol(SMALL, out_indices=(0, 4))
    with pytest.raises(ValueError, match='alpha_min must be > 0'):
        RevCol(SMALL, alpha_min=0.)
    with pytest.raises(ValueError, match='at least 32x32'):
        RevCol(SMALL)(torch.randn(1, 3, 16, 64))


def test_save_memory_refuses_modules_it_cannot_invert():
    model = RevCol(SMALL, save_memory=True).train()
    model.subnet1.level1.fusion.down[1] = nn.BatchNorm2d(32)
    with pytest.raises(RuntimeError, match='cannot invert subnet1.level1.fusion.down.1'):
        model(torch.randn(1, 3, 32, 32))
    model.eval()  # BN in eval mode is a fixed affine map: fine
    model(torch.randn(1, 3, 32, 32))


def test_reversible_fp16_with_loss_scaling():
    """fp16 autocast + GradScaler (as AmpOptimWrapper does): outputs keep the
    plain path's dtypes and unscaled gradients match plain fp16 ones."""
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3)
    x = torch.randn(2, 3, 64, 64)
    grads, dtypes = {}, {}
    for name, model in (('plain', plain), ('rev', rev)):
        scaler = torch.amp.GradScaler('cpu', init_scale=1024.)
        torch.manual_seed(1)
        with torch.autocast('cpu', dtype=torch.float16):
            outs = model(x)
        dtypes[name] = [o.dtype for o in outs]
        scaler.scale(sum(o.float().square().mean() for o in outs)).backward()
        grads[name] = {n: p.grad / 1024. for n, p in model.named_parameters()
                       if p.grad is not None}
    assert dtypes['rev'] == dtypes['plain']
    assert grads['rev'].keys() == grads['plain'].keys()
    assert max(rel(grads['rev'][n], grads['plain'][n]) for n in grads['plain']) < 1e-2


def test_cpu_peak_sees_allocations_of_a_nested_backward():
    """The RevCol memory benchmark's CPU peak counts what a custom Function's
    backward allocates through a nested autograd call (the official
    ReverseFunction's pattern), which torch.profiler's live bytes miss."""
    bench = load_tool('tools/analysis/benchmark_revcol_memory.py')
    size = 32 * 2**20  # bytes of one float32 tensor made inside the backward

    class Nested(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.clone()

        @staticmethod
        def backward(ctx, grad):
            with torch.enable_grad():
                w = torch.ones(size // 4, requires_grad=True)
                torch.autograd.backward((w * 2).sum())
            return grad

    t = torch.zeros(1, requires_grad=True)
    peak = bench.malloc_peak_bytes(lambda: Nested.apply(t).sum().backward())
    assert size <= peak < 4 * size


@pytest.mark.parametrize('save_memory', [False, True])
def test_memory_format_changes_layout_not_values(save_memory):
    """channels_last (default) and NCHW: the blocks see that layout, outputs
    are NCHW-contiguous, and outputs and gradients agree (plain and
    reversible)."""
    torch.manual_seed(0)
    cl = trained_like(RevCol(SMALL, save_memory=save_memory)).train()
    nchw = RevCol(SMALL, save_memory=save_memory, memory_format='contiguous').train()
    nchw.load_state_dict(cl.state_dict())
    seen = {}
    for name, model in (('cl', cl), ('nchw', nchw)):
        model.subnet2.level1.blocks[0].register_forward_pre_hook(
            lambda m, args, name=name: seen.setdefault(name, args[0]))
    x = torch.randn(2, 3, 64, 64)
    outs, ref = run(cl, x), run(nchw, x)
    assert seen['cl'].is_contiguous(memory_format=torch.channels_last)
    assert not seen['cl'].is_contiguous()
    assert seen['nchw'].is_contiguous()
    for out, r in zip(outs[0], ref[0]):
        assert out.is_contiguous()
        torch.testing.assert_close(out, r, rtol=1e-5, atol=1e-5)
    assert rel(outs[1], ref[1]) < 1e-5  # input grad
    for name, grad in outs[2].items():
        if grad is None:  # the first column's alphas
            assert ref[2][name] is None, name
        else:
            assert rel(grad, ref[2][name]) < 1e-4, name
    with pytest.raises(ValueError, match='RevCol memory_format must be one of'):
        RevCol(SMALL, memory_format='NHWC')


@pytest.mark.parametrize('training', [True, False])
def test_block_tail_equals_mmpretrain_block(training):
    """RevColBlock's one-pass tail gives mmpretrain ConvNeXtBlock's outputs
    and gradients, drop path included (same random draws)."""
    from mmpretrain.models.backbones.convnext import ConvNeXtBlock

    from mmconvarch.models.backbones.revcol import RevColBlock
    kwargs = dict(dw_conv_cfg=dict(kernel_size=3, padding=1), drop_path_rate=0.5,
                  layer_scale_init_value=1e-6)
    ref, block = ConvNeXtBlock(16, **kwargs), RevColBlock(16, **kwargs)
    with torch.no_grad():
        ref.gamma.normal_()
    block.load_state_dict(ref.state_dict())
    ref.train(training), block.train(training)
    x = torch.randn(8, 16, 8, 8)
    outs = {}
    for name, module in (('ref', ref), ('ours', block)):
        torch.manual_seed(3)
        xi = x.clone().requires_grad_()
        out = module(xi)
        out.square().sum().backward()
        outs[name] = [out, xi.grad] + [p.grad for p in module.parameters()]
    if training:  # some samples dropped, some kept: the mask is exercised
        kept = (outs['ref'][0] - x).flatten(1).abs().amax(1) > 0
        assert 0 < kept.sum() < 8
    for a, b in zip(outs['ours'], outs['ref']):  # float rounding apart
        assert rel(a, b) < 1e-6
