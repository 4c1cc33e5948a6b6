"""The Triton depthwise-conv kernels (forward, input and weight gradients) vs
``F.conv2d``, and their wiring into SLaK's ``DepthwiseConv2d``.

CPU tier: the real kernels run in Triton's interpreter (``TRITON_INTERPRET=1``,
set per test; the kernels are decorated lazily per mode, so this works in a
process that imported the module without it) at tiny shapes. ``cuda`` tier:
the same tests compiled on a GPU, plus SLaK-T's real layer shapes and a whole
narrow SLaK forced onto Triton vs cuDNN.

Tolerances (``_bound``): the reference is computed in float64 from the same
(already rounded) inputs, so the only error is the kernel's own. It sums
``terms`` products in fp32 (fp16/bf16 inputs are widened exactly; their
products are exact in fp32, fp32 products round once), and any order of
summation of ``n`` terms is off by at most ``n * u32 * sum|term|``
(u32 = 2**-24, Higham's gamma_n), where ``sum|term|`` is the same conv of
``|x|`` and ``|w|`` (computed alongside in float64). The result is then
rounded once to the output dtype: ``u_out * |ref|`` (u = eps / 2). The
``'dot'`` forward rounds an fp32 weight to a half input's dtype first: one
more ``u_in * sum|term|``. The tests allow twice that sum. A wrong tap, a
missing row or a mis-masked edge changes the result by about one whole term
(``|x * w|``), far above ``taps * u32 * sum|term|`` (<1e-4 relative here) and
above ``u_out * |ref|`` for fp16 (2**-11) and bf16 (2**-8) alike.

The interpreter's ``tl.dot`` mis-multiplies bf16, so there the 'dot' kernel
multiplies the same bf16-rounded operands in fp32 (``UPCAST``); the compiled
bf16 dot runs in the ``cuda`` tier (and compiles in the CPU tier).
"""
import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('triton', reason='the Triton kernels need the triton package')

from mmconvarch.models.backbones.slak import (SLaK, DecomposedLargeKernelConv,  # noqa: E402
                                              DepthwiseConv2d, _check_use_triton)
from mmconvarch.models.layers import dwconv_triton as dt  # noqa: E402

pytestmark = pytest.mark.usefixtures('single_thread')

U = {torch.float32: 2.0 ** -24, torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}
U32 = U[torch.float32]

CPU = pytest.param('cpu', id='interp')
CUDA = pytest.param('cuda', id='cuda', marks=pytest.mark.cuda)


@pytest.fixture(params=[CPU, CUDA])
def device(request, monkeypatch):
    if request.param == 'cpu':
        monkeypatch.setenv('TRITON_INTERPRET', '1')
    return request.param


def _ref64(x, w, b, g):
    """float64 output and gradients of the reference conv, and the same for
    |x|, |w|, |g| (the sums of absolute terms the bounds scale with)."""
    kh, kw = w.shape[-2:]
    out = []
    for xs, ws, gs in ((x, w, g), (x.abs(), w.abs(), g.abs())):
        xs = xs.detach().double().requires_grad_()
        ws = ws.detach().double().requires_grad_()
        bs = None if b is None else b.detach().double()
        y = F.conv2d(xs, ws, bs, padding=(kh // 2, kw // 2), groups=xs.shape[1])
        gx, gw = torch.autograd.grad(y, (xs, ws), gs.detach().double())
        out.append((y.detach(), gx, gw))
    return out


def _bound(ref, abs_ref, terms, out_dtype, u_in=0.):
    return 2 * ((terms + 1) * U32 * abs_ref + u_in * abs_ref
                + U[out_dtype] * ref.abs()) + 1e-30


def _check(got, ref, abs_ref, terms, name, u_in=0.):
    bound = _bound(ref, abs_ref, terms, got.dtype, u_in)
    err = (got.detach().double() - ref).abs()
    worst = (err / bound).max().item()
    assert worst <= 1, f'{name}: error {worst:.2f}x the bound (max abs err {err.max().item():.3g})'


def _run(device, n, c, h, w, kh, kw, dtype=torch.float32, wdtype=None,
         bias=True, channels_last=False, seed=0, method='direct'):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen).to(device, dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    wt = torch.randn(c, 1, kh, kw, generator=gen).to(device, wdtype or dtype)
    b = torch.randn(c, generator=gen).to(device, wdtype or dtype) if bias else None
    g = torch.randn(n, c, h, w, generator=gen).to(device, dtype)
    x.requires_grad_()
    wt.requires_grad_()
    if b is not None:
        b.requires_grad_()
    y = dt.triton_depthwise_conv2d(x, wt, b, method=method)
    assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
    grads = torch.autograd.grad(y, [x, wt] + ([b] if bias else []), g)
    (ry, rgx, rgw), (ay, agx, agw) = _ref64(x, wt, b, g)
    taps = kh * kw
    u_in = U[dtype] if method == 'dot' and wt.dtype != dtype else 0.
    _check(y, ry, ay, taps, 'forward', u_in)
    _check(grads[0], rgx, agx, taps, 'input grad', u_in)
    assert grads[1].dtype == wt.dtype
    _check(grads[1], rgw, agw, n * h * w, 'weight grad')
    if bias:
        rb = g.detach().double().sum((0, 2, 3))
        ab = g.detach().double().abs().sum((0, 2, 3))
        _check(grads[2], rb, ab, n * h * w, 'bias grad')


# (n, c, h, w, kh, kw): SLaK's M x 5 / 5 x M / 5 x 5 / merged M x M kernels in
# miniature; odd and even map sizes; maps smaller than the kernel; batch 1;
# channel counts that are no power of two
SHAPES = [
    (2, 3, 9, 11, 7, 3),    # M x N
    (1, 5, 6, 5, 3, 7),     # N x M, batch 1, map narrower than the kernel
    (2, 3, 8, 8, 5, 5),     # small N x N
    (1, 10, 5, 7, 9, 9),    # merged M x M larger than the map (both axes)
    (2, 3, 4, 13, 1, 1),    # 1x1 degenerate
]


METHODS = pytest.mark.parametrize('method', ['direct', 'dot'])


@METHODS
@pytest.mark.parametrize('shape', SHAPES, ids=lambda s: 'x'.join(map(str, s)))
def test_fp32_matches_conv2d(device, shape, method):
    _run(device, *shape, method=method)


@METHODS
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=['fp16', 'bf16'])
def test_half_precision_matches_conv2d(device, dtype, method):
    _run(device, 2, 3, 9, 10, 7, 5, dtype=dtype, method=method)
    _run(device, 1, 3, 6, 9, 3, 7, dtype=dtype, method=method)  # the wide band axis


@METHODS
def test_half_input_fp32_weight(device, method):
    """AMP: fp16 activations, fp32 master weight and bias read in fp32 (the
    'dot' product rounds the weight to fp16); the weight gradient comes
    back fp32."""
    _run(device, 1, 4, 7, 6, 5, 3, dtype=torch.float16, wdtype=torch.float32,
         method=method)


def test_channels_last_input_no_bias(device):
    _run(device, 2, 4, 6, 7, 5, 3, bias=False, channels_last=True)


def test_multi_tile_launchers(device):
    """Small blocks force several output tiles, tap blocks that straddle the
    kernel's rows, a tap count that is no multiple of BLOCK_T, pixel tiles
    that are no multiple of the map, and a split reduction."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 9, 7, generator=gen).to(device)
    g = torch.randn(1, 2, 9, 7, generator=gen).to(device)
    w = torch.randn(2, 1, 7, 5, generator=gen).to(device)
    (ry, rgx, rgw), (ay, agx, agw) = _ref64(x, w, None, g)
    y = dt.dwconv_forward(x, w, blocks=(4, 4))  # 3 x 2 tiles
    _check(y, ry, ay, 35, 'forward')
    gx = dt.dwconv_forward(g, w, flip=True, blocks=(2, 8))  # 5 x 1 tiles
    _check(gx, rgx, agx, 35, 'input grad')
    # 35 taps in blocks of 8 / 4 / 64; 63 pixels in tiles of 16 / 32 / 8
    for blocks, split in (((8, 16), 3), ((4, 32), 1), ((64, 8), 100)):
        gw = dt.dwconv_weight_grad(x, g, (7, 5), blocks=blocks, split=split)
        _check(gw, rgw, agw, 63, f'weight grad {blocks} split {split}')


def test_dot_method_multi_tile(device):
    """The 'dot' forward with several 16 x 16 tiles on both band axes (a
    tall and a wide kernel), plain and flipped."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 20, 18, generator=gen).to(device)
    for kh, kw in ((9, 3), (3, 9)):
        w = torch.randn(2, 1, kh, kw, generator=gen).to(device)
        (ry, rgx, _), (ay, agx, _) = _ref64(x, w, None, x)
        _check(dt.dwconv_forward(x, w, blocks=(16, 16), method='dot'), ry, ay,
               kh * kw, f'{kh}x{kw} forward')
        _check(dt.dwconv_forward(x, w, flip=True, blocks=(16, 16), method='dot'),
               rgx, agx, kh * kw, f'{kh}x{kw} input grad')


def test_autocast_casts_like_conv2d(device, monkeypatch):
    dtype = torch.bfloat16 if device == 'cpu' else torch.float16
    x = torch.randn(1, 3, 6, 6, device=device)
    w = torch.randn(3, 1, 5, 3, device=device)
    with torch.autocast(device, dtype=dtype):
        y = dt.triton_depthwise_conv2d(x, w)
        ref = F.conv2d(x, w, padding=(2, 1), groups=3)
    assert y.dtype == ref.dtype == dtype
    (ry, _, _), (ay, _, _) = _ref64(x.to(dtype), w, None, torch.ones_like(x))
    _check(y, ry, ay, 15, 'forward under autocast')


def test_bad_arguments(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    x = torch.randn(1, 3, 5, 5)
    with pytest.raises(ValueError, match='odd'):
        dt.triton_depthwise_conv2d(x, torch.randn(3, 1, 4, 3))
    with pytest.raises(ValueError, match=r'depthwise \(3, 1, kh, kw\)'):
        dt.triton_depthwise_conv2d(x, torch.randn(3, 3, 3, 3))
    with pytest.raises(ValueError, match="method must be 'direct' or 'dot'"):
        dt.triton_depthwise_conv2d(x, torch.randn(3, 1, 3, 3), method='fft')
    with pytest.raises(TypeError, match='fp32/fp16/bf16'):
        dt.triton_depthwise_conv2d(x.double(), torch.randn(3, 1, 3, 3).double())
    monkeypatch.delenv('TRITON_INTERPRET')
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET=1'):
        dt.triton_depthwise_conv2d(x, torch.randn(3, 1, 3, 3))


@pytest.mark.parametrize('arch', [80, 90])
def test_kernels_compile_for_gpu_without_one(arch):
    """The compiled path (not the interpreter) lowers to a cubin for sm_80 and
    sm_90 in every dtype, with the bundled ptxas: catches what the
    interpreter forgives (types in loops, constexpr use) on CPU-only CI."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    fwd, wgrad, fwd_dot = dt._kernels(False)
    for dtype in ('fp32', 'fp16', 'bf16'):
        sig = dict.fromkeys(fwd_dot.arg_names, 'i32')
        sig.update(x_ptr=f'*{dtype}', w_ptr='*fp32', b_ptr='*fp32', y_ptr=f'*{dtype}',
                   HAS_BIAS='constexpr', FLIP='constexpr', AXIS='constexpr',
                   BLOCK_H='constexpr', BLOCK_W='constexpr', BLOCK_R='constexpr',
                   UPCAST='constexpr')
        for axis in (0, 1):
            const = dict(HAS_BIAS=False, FLIP=axis == 1, AXIS=axis, BLOCK_H=16,
                         BLOCK_W=32, BLOCK_R=32, UPCAST=False)  # small: compiles fast
            kernel = triton.compile(ASTSource(fwd_dot, sig, constexprs=const),
                                    target=GPUTarget('cuda', arch, 32))
            assert kernel.asm['cubin']
        sig = dict.fromkeys(fwd.arg_names, 'i32')
        sig.update(x_ptr=f'*{dtype}', w_ptr='*fp32', b_ptr='*fp32', y_ptr=f'*{dtype}',
                   HAS_BIAS='constexpr', FLIP='constexpr', BLOCK_H='constexpr',
                   BLOCK_W='constexpr')
        const = dict(HAS_BIAS=True, FLIP=dtype == 'fp16', BLOCK_H=16, BLOCK_W=64)
        kernel = triton.compile(ASTSource(fwd, sig, constexprs=const),
                                target=GPUTarget('cuda', arch, 32))
        assert kernel.asm['cubin']
        sig = dict.fromkeys(wgrad.arg_names, 'i32')
        sig.update(x_ptr=f'*{dtype}', g_ptr=f'*{dtype}', part_ptr='*fp32',
                   BLOCK_T='constexpr', BLOCK_P='constexpr')
        kernel = triton.compile(ASTSource(wgrad, sig, constexprs=dict(BLOCK_T=16, BLOCK_P=256)),
                                target=GPUTarget('cuda', arch, 32))
        assert kernel.asm['cubin']


# --- wiring into SLaK's DepthwiseConv2d ---------------------------------------

def test_use_triton_argument_checked():
    with pytest.raises(ValueError, match="use_triton must be None.*got 'yes'"):
        DepthwiseConv2d(4, (5, 3), use_triton='yes')
    with pytest.raises(ValueError, match='use_triton must be None'):
        DecomposedLargeKernelConv(4, 7, 3, use_triton=1)
    with pytest.raises(ValueError, match='use_triton must be None'):
        SLaK(dict(depths=[1] * 4, channels=[8] * 4), use_triton='auto')
    with pytest.raises(ValueError, match='force at most one'):
        _check_use_triton(True, True)


def test_forced_triton_on_cpu_tensor_raises():
    conv = DepthwiseConv2d(4, (5, 3), use_triton=True)
    with pytest.raises(RuntimeError, match=r'use_triton=True\) runs on CUDA tensors only'):
        conv(torch.randn(1, 4, 6, 6))


def test_automatic_is_conv2d_on_cpu(monkeypatch):
    """Automatic (and forbidden) Triton leave CPU outputs exactly as before,
    including the cropping of kernels larger than the input."""
    def fail(*args, **kwargs):
        raise AssertionError('the Triton path ran on a CPU tensor')
    monkeypatch.setattr(dt, 'triton_depthwise_conv2d', fail)
    monkeypatch.setattr(dt, 'triton_preferred', fail)
    x = torch.randn(2, 4, 6, 7)
    for use_triton in (None, False):
        conv = DepthwiseConv2d(4, (9, 3), use_triton=use_triton)
        ref = F.conv2d(x, conv.weight, None, padding=(4, 1), groups=4)
        torch.testing.assert_close(conv(x), ref, rtol=0, atol=1e-6)


def test_automatic_table_is_conservative():
    """Nothing measured: the automatic choice is cuDNN for every SLaK-T
    shape (the table is the only way to Triton)."""
    assert dt.MEASURED_TRITON_WINS == {}
    x = torch.empty(1, 3, 5, 5)
    assert dt.triton_preferred(x, (5, 5), True) is False  # CPU


def test_use_triton_reaches_every_conv():
    model = SLaK(dict(depths=[1] * 4, channels=[8] * 4), kernel_size=(7, 7, 7, 7, 3),
                 use_triton=False)
    convs = [m for m in model.modules() if isinstance(m, DepthwiseConv2d)]
    assert len(convs) == 12 and all(m.use_triton is False for m in convs)
    model.eval()
    model.switch_to_deploy()
    convs = [m for m in model.modules() if isinstance(m, DepthwiseConv2d)]
    assert len(convs) == 4 and all(m.use_triton is False for m in convs)


# --- GPU: SLaK-T's shapes, compiled -------------------------------------------

# SLaK-T (width 1.3): channels 124/249/499/998, maps 56/28/14/7 at 224 px,
# kernels 51/49/47/13 with N = 5 (the 13 of stage 3 on a 7x7 map)
SLAK_T = [(124, 56, 51), (249, 28, 49), (499, 14, 47), (998, 7, 13)]


@pytest.mark.cuda
@pytest.mark.parametrize('stage', range(4))
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16],
                         ids=['fp32', 'fp16', 'bf16'])
@METHODS
def test_slak_t_layer_shapes_cuda(stage, dtype, method):
    c, s, k = SLAK_T[stage]
    for kh, kw in ((k, 5), (5, k), (5, 5), (k, k)):
        # cropped as DepthwiseConv2d does (rows beyond the map meet only padding)
        kh, kw = min(kh, 2 * s - 1), min(kw, 2 * s - 1)
        # batch 1 for the merged kernel: its float64 reference is the slow part
        _run('cuda', 1 if kh == kw > 5 else 2, c, s, s, kh, kw, dtype=dtype, seed=stage,
             method=method)


@pytest.mark.cuda
@pytest.mark.parametrize('deploy', [False, True], ids=['train', 'deploy'])
def test_slak_forced_triton_matches_cudnn(deploy):
    """A narrow SLaK-T-shaped model (real kernels, 64 px) with every
    depthwise conv forced onto Triton gives cuDNN's outputs and gradients."""
    torch.manual_seed(0)
    cfg = dict(arch=dict(depths=[1, 1, 2, 1], channels=[16, 24, 32, 40]),
               kernel_size=(51, 49, 47, 13, 5), memory_format='contiguous')
    ref = SLaK(**cfg, use_triton=False).cuda()
    tri = SLaK(**cfg, use_triton=True).cuda()
    tri.load_state_dict(ref.state_dict())
    for model in (ref, tri):
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial BN stats
                m.running_mean.uniform_(-.1, .1)
                m.running_var.uniform_(.5, 2)
        if deploy:
            model.eval()
            model.switch_to_deploy()
    x = torch.randn(2, 3, 64, 64, device='cuda')
    outs = []
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for model in (ref, tri):
            y = model(x)[0]
            if not deploy:
                y.square().sum().backward()
            outs.append([('out', y)] + [(n, p.grad) for n, p in model.named_parameters()
                                        if p.grad is not None])
    assert len(outs[0]) == len(outs[1]) >= (1 if deploy else 20)
    for (name, a), (_, b) in zip(*outs):
        scale = max(a.abs().max().item(), 1e-12)
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4 * scale, msg=name)
    assert math.isfinite(outs[1][0][1].sum().item())
