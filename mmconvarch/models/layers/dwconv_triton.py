"""Triton kernels for SLaK's stride-1, "same"-padded depthwise convolution.

One kernel family covers every odd ``(kh, kw)`` SLaK uses: the decomposed
``M x 5`` / ``5 x M`` / ``5 x 5`` branches and the merged ``M x M`` deploy
kernel. Padding is ``(kh // 2, kw // 2)`` per axis (the official iGEMM
extension's convention, see :class:`~mmconvarch.models.backbones.slak.DepthwiseConv2d`).

* forward: each program computes one ``BLOCK_H x BLOCK_W`` output tile of one
  ``(n, c)`` plane, looping over the taps that can meet the tile (rows and
  columns of the kernel that only ever see padding are skipped per tile);
  fp32 accumulation, output in the input's dtype.
* forward, ``method='dot'``: the same conv as banded (Toeplitz) matrix
  products with ``tl.dot`` along the kernel's long edge (tensor cores for
  fp16/bf16, exact fp32 products for fp32; the weight is rounded to the
  input's dtype, as cuDNN does under autocast). Which method wins where is
  for the GPU sweep to say; ``'direct'`` is the default.
* input gradient: the same kernel with the kernel flipped (for odd kernels
  the "same" padding of the flipped kernel is the same).
* weight gradient: each program reduces a block of taps of one channel over
  a share (``split``) of the ``N x H x W`` pixels in fp32; the shares are
  summed in fp32 on the host (deterministic, no atomics).

fp32, fp16 and bf16 inputs; the weight and bias may be fp32 (AMP master
weights) and are read in fp32. Inputs are made NCHW-contiguous (the kernels
take strides, NCHW is the layout the tiling is written for).

The jitted kernels are built on first use, per mode: compiled (``triton.jit``)
for CUDA tensors, Triton's interpreter for CPU tensors when
``TRITON_INTERPRET=1`` is set (how the CPU tests run the real kernels; Triton
itself only reads that variable when a kernel is decorated, so decorating
lazily lets one process use both). This module imports Triton (when installed);
``slak.py`` imports it only when a CUDA input may take the Triton path.

Nothing here has been timed on a GPU yet: :data:`MEASURED_TRITON_WINS` (the
table the automatic choice in ``DepthwiseConv2d`` reads) is empty, so the
automatic choice is cuDNN everywhere until ``tools/analysis/benchmark_slak.py``
measures a shape where Triton wins.
"""
import contextlib
import functools
import importlib.util
import inspect
import os
from typing import Dict, Optional, Tuple

import torch

__all__ = ['triton_depthwise_conv2d', 'TritonDepthwiseConv2dFunction',
           'triton_available', 'triton_preferred', 'check_use_triton',
           'MEASURED_TRITON_WINS', 'dwconv_forward', 'dwconv_weight_grad']

try:
    import triton.language as tl
except ImportError:  # pragma: no cover - torch without triton (CPU builds)
    class tl:  # noqa: N801  (lets the kernel bodies below be defined)
        constexpr = None

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# (device name, dtype, kh, kw, channels, H, W, training) -> True where the
# Triton path measured faster than cuDNN on that device (forward for
# training=False; forward+backward for training=True). Filled only from
# measurements printed by tools/analysis/benchmark_slak.py on that device;
# empty: nothing has been measured on a GPU yet.
MEASURED_TRITON_WINS: Dict[Tuple[str, str, int, int, int, int, int, bool], bool] = {}

# the forward/input-gradient method of triton_depthwise_conv2d (and so of
# DepthwiseConv2d's Triton path): 'direct' or 'dot'; 'direct' until a GPU
# measurement says otherwise (benchmark_slak.py --triton times both)
DEFAULT_METHOD = 'direct'


# --------------------------------------------------------------------------
# kernel bodies (plain functions; jitted lazily by _kernels)
# --------------------------------------------------------------------------

def _dwconv_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, C, H, W, KH, KW, PH, PW,
                       sxn, sxc, sxh, sxw, syn, syc, syh, syw, n_tiles_w,
                       HAS_BIAS: tl.constexpr, FLIP: tl.constexpr,
                       BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr):
    """y[n, c, h, w] = sum_ij x[n, c, h + i - PH, w + j - PW] * k[c, i, j]
    (+ bias[c]), k = w (FLIP=False) or w flipped in both axes (FLIP=True,
    the input gradient of the same conv)."""
    pid_nc = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    n = pid_nc // C
    c = pid_nc % C
    h0 = (tile // n_tiles_w) * BLOCK_H
    w0 = (tile % n_tiles_w) * BLOCK_W
    offs_h = h0 + tl.arange(0, BLOCK_H)
    offs_w = w0 + tl.arange(0, BLOCK_W)
    x_base = x_ptr + n * sxn + c * sxc
    w_base = w_ptr + c * KH * KW
    # only kernel rows/columns that can meet this tile: h + i - PH in [0, H)
    i_lo = tl.maximum(PH - (h0 + BLOCK_H - 1), 0)
    i_hi = tl.minimum(H - h0 + PH, KH)
    j_lo = tl.maximum(PW - (w0 + BLOCK_W - 1), 0)
    j_hi = tl.minimum(W - w0 + PW, KW)
    acc = tl.full((BLOCK_H, BLOCK_W), 0., tl.float32)
    for i in range(i_lo, i_hi):
        ih = offs_h + (i - PH)
        mh = (ih >= 0) & (ih < H)
        row_ptr = x_base + ih[:, None] * sxh
        for j in range(j_lo, j_hi):
            iw = offs_w + (j - PW)
            m = mh[:, None] & ((iw >= 0) & (iw < W))[None, :]
            if FLIP:
                wv = tl.load(w_base + (KH - 1 - i) * KW + (KW - 1 - j))
            else:
                wv = tl.load(w_base + i * KW + j)
            xv = tl.load(row_ptr + iw[None, :] * sxw, mask=m, other=0.)
            acc += xv.to(tl.float32) * wv.to(tl.float32)
    if HAS_BIAS:
        acc += tl.load(b_ptr + c).to(tl.float32)
    out_m = (offs_h < H)[:, None] & (offs_w < W)[None, :]
    y_offs = (n * syn + c * syc + offs_h[:, None] * syh
              + offs_w[None, :] * syw)
    tl.store(y_ptr + y_offs, acc.to(y_ptr.dtype.element_ty), mask=out_m)


def _dwconv_fwd_dot_kernel(x_ptr, w_ptr, b_ptr, y_ptr, C, H, W, KH, KW, PH, PW,
                           sxn, sxc, sxh, sxw, syn, syc, syh, syw, n_tiles_w,
                           HAS_BIAS: tl.constexpr, FLIP: tl.constexpr,
                           AXIS: tl.constexpr, BLOCK_H: tl.constexpr,
                           BLOCK_W: tl.constexpr, BLOCK_R: tl.constexpr,
                           UPCAST: tl.constexpr):
    """The same conv as ``_dwconv_fwd_kernel`` as small matrix products
    (``tl.dot``, tensor cores for fp16/bf16, exact fp32 products for fp32):
    AXIS=0, per kernel column j, ``y_tile += T_j @ X_j`` with ``T_j`` the
    ``BLOCK_H x BLOCK_R`` banded (Toeplitz) matrix of column j and ``X_j``
    the ``BLOCK_R`` input rows the tile needs, shifted by j; AXIS=1 the same
    along the other axis (per kernel row). The weight is rounded to the
    input's dtype for the product (as cuDNN under autocast). UPCAST: the
    product in fp32 of the same rounded operands (exact products either way;
    Triton's interpreter multiplies bf16 dots wrongly, so it gets this)."""
    pid_nc = tl.program_id(0).to(tl.int64)
    tile = tl.program_id(1)
    n = pid_nc // C
    c = pid_nc % C
    h0 = (tile // n_tiles_w) * BLOCK_H
    w0 = (tile % n_tiles_w) * BLOCK_W
    hl = tl.arange(0, BLOCK_H)
    wl = tl.arange(0, BLOCK_W)
    offs_h = h0 + hl
    offs_w = w0 + wl
    rl = tl.arange(0, BLOCK_R)
    x_base = x_ptr + n * sxn + c * sxc
    w_base = w_ptr + c * KH * KW
    acc = tl.full((BLOCK_H, BLOCK_W), 0., tl.float32)
    if AXIS == 0:
        ir = h0 - PH + rl  # the input rows the tile needs
        mr = (ir >= 0) & (ir < H)
        ki = rl[None, :] - hl[:, None]  # kernel row of T[h, r]
        mk = (ki >= 0) & (ki < KH)
        if FLIP:
            ki = KH - 1 - ki
        j_lo = tl.maximum(PW - (w0 + BLOCK_W - 1), 0)
        j_hi = tl.minimum(W - w0 + PW, KW)
        for j in range(j_lo, j_hi):
            iw = offs_w + (j - PW)
            m = mr[:, None] & ((iw >= 0) & (iw < W))[None, :]
            xt = tl.load(x_base + ir[:, None] * sxh + iw[None, :] * sxw,
                         mask=m, other=0.)
            if FLIP:
                jw = KW - 1 - j
            else:
                jw = j
            t = tl.load(w_base + ki * KW + jw, mask=mk, other=0.).to(xt.dtype)
            if UPCAST:
                t = t.to(tl.float32)
                xt = xt.to(tl.float32)
            acc = tl.dot(t, xt, acc, input_precision='ieee')
    else:
        iq = w0 - PW + rl  # the input columns the tile needs
        mq = (iq >= 0) & (iq < W)
        kj = rl[:, None] - wl[None, :]  # kernel column of T[q, w]
        mk = (kj >= 0) & (kj < KW)
        if FLIP:
            kj = KW - 1 - kj
        i_lo = tl.maximum(PH - (h0 + BLOCK_H - 1), 0)
        i_hi = tl.minimum(H - h0 + PH, KH)
        for i in range(i_lo, i_hi):
            ih = offs_h + (i - PH)
            m = ((ih >= 0) & (ih < H))[:, None] & mq[None, :]
            xt = tl.load(x_base + ih[:, None] * sxh + iq[None, :] * sxw,
                         mask=m, other=0.)
            if FLIP:
                iw_ = KH - 1 - i
            else:
                iw_ = i
            t = tl.load(w_base + iw_ * KW + kj, mask=mk, other=0.).to(xt.dtype)
            if UPCAST:
                t = t.to(tl.float32)
                xt = xt.to(tl.float32)
            acc = tl.dot(xt, t, acc, input_precision='ieee')
    if HAS_BIAS:
        acc += tl.load(b_ptr + c).to(tl.float32)
    out_m = (offs_h < H)[:, None] & (offs_w < W)[None, :]
    y_offs = (n * syn + c * syc + offs_h[:, None] * syh
              + offs_w[None, :] * syw)
    tl.store(y_ptr + y_offs, acc.to(y_ptr.dtype.element_ty), mask=out_m)


def _dwconv_wgrad_kernel(x_ptr, g_ptr, part_ptr, N, C, H, W, KH, KW, PH, PW,
                         sxn, sxc, sxh, sxw, sgn, sgc, sgh, sgw,
                         n_ptiles, split,
                         BLOCK_T: tl.constexpr, BLOCK_P: tl.constexpr):
    """part[s, c, t] = sum over the pixels of share s of
    g[n, c, h, w] * x[n, c, h + i - PH, w + j - PW], t = i * KW + j."""
    c = tl.program_id(0).to(tl.int64)
    tb = tl.program_id(1)
    s = tl.program_id(2)
    taps = tb * BLOCK_T + tl.arange(0, BLOCK_T)
    t_ok = taps < KH * KW
    di = taps // KW - PH
    dj = taps % KW - PW
    acc = tl.full((BLOCK_T, BLOCK_P), 0., tl.float32)
    for item in range(s, N * n_ptiles, split):
        n = (item // n_ptiles).to(tl.int64)
        p = (item % n_ptiles) * BLOCK_P + tl.arange(0, BLOCK_P)
        p_ok = p < H * W
        ph = p // W
        pw = p % W
        gv = tl.load(g_ptr + n * sgn + c * sgc + ph * sgh + pw * sgw,
                     mask=p_ok, other=0.).to(tl.float32)
        xh = ph[None, :] + di[:, None]
        xw = pw[None, :] + dj[:, None]
        m = (t_ok[:, None] & p_ok[None, :] & (xh >= 0) & (xh < H)
             & (xw >= 0) & (xw < W))
        xv = tl.load(x_ptr + n * sxn + c * sxc + xh * sxh + xw * sxw,
                     mask=m, other=0.).to(tl.float32)
        acc += xv * gv[None, :]
    # tl.sum/tl.zeros are @jit stdlib functions whose mode (compiled or
    # interpreted) was fixed when triton was imported; builtins (tl.full,
    # tl.reduce) work in both, and the interpreter sums _sum_combine with numpy
    res = tl.reduce(acc, 1, tl.standard._sum_combine)
    tl.store(part_ptr + (s * C + c) * KH * KW + taps, res, mask=t_ok)


# --------------------------------------------------------------------------
# lazy jit
# --------------------------------------------------------------------------

def triton_available() -> bool:
    """Whether Triton is installed (without importing it)."""
    return importlib.util.find_spec('triton') is not None


def _interpret_requested() -> bool:
    return os.environ.get('TRITON_INTERPRET', '0').lower() in ('1', 'true', 'on', 'yes')


@functools.lru_cache(maxsize=None)
def _kernels(interpret: bool):
    """``(forward, weight-gradient, forward-by-dot)`` kernels, jitted for
    the GPU or wrapped by Triton's interpreter (CPU tensors)."""
    if tl.constexpr is None:
        raise ImportError('the Triton kernels need the triton package')
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction as wrap
    else:
        from triton.runtime.jit import JITFunction as wrap
    # sizes are not specialised (Triton would compile one variant per
    # size%16 / size==1 pattern: many compiles for no gain); strides are
    # (a unit stride lets loads vectorise)
    sizes = ['N', 'C', 'H', 'W', 'KH', 'KW', 'PH', 'PW', 'n_tiles_w',
             'n_ptiles', 'split']
    return tuple(wrap(fn, do_not_specialize=[
        a for a in inspect.signature(fn).parameters if a in sizes])
        for fn in (_dwconv_fwd_kernel, _dwconv_wgrad_kernel,
                   _dwconv_fwd_dot_kernel))


def _launch_mode(x: torch.Tensor) -> bool:
    """True: the interpreter (CPU tensors); False: compiled (CUDA)."""
    if x.is_cuda:
        return False
    if x.device.type == 'cpu' and _interpret_requested():
        return True
    raise RuntimeError(
        f'triton_depthwise_conv2d runs on CUDA tensors (got a {x.device} '
        'tensor); CPU tensors run in Triton\'s interpreter only with '
        'TRITON_INTERPRET=1 set (slow, for tests). Use F.conv2d otherwise.')


def _on_device(x: torch.Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def _next_pow2(v: int) -> int:
    return 1 << max(int(v) - 1, 0).bit_length()


def default_fwd_blocks(h: int, w: int) -> Tuple[int, int]:
    """``(BLOCK_H, BLOCK_W)``: the map's width (power of two, <= 64) by as
    many rows as make ~1024 outputs (not tuned on a GPU yet)."""
    bw = min(64, _next_pow2(w))
    bh = min(_next_pow2(h), max(1, 1024 // bw))
    return bh, bw


def default_wgrad_blocks(taps: int, pixels: int) -> Tuple[int, int]:
    """``(BLOCK_T, BLOCK_P)`` of the weight gradient (not tuned on a GPU yet)."""
    return min(16, _next_pow2(taps)), min(256, _next_pow2(pixels))


# --------------------------------------------------------------------------
# launchers
# --------------------------------------------------------------------------

def default_dot_blocks(h: int, w: int) -> Tuple[int, int]:
    """``(BLOCK_H, BLOCK_W)`` of the ``tl.dot`` forward: the map rounded up
    to a power of two, 16 to 64 (tl.dot needs 16; not tuned on a GPU yet)."""
    return (max(16, min(64, _next_pow2(h))), max(16, min(64, _next_pow2(w))))


def dwconv_forward(x: torch.Tensor, weight: torch.Tensor,
                   bias: Optional[torch.Tensor] = None, flip: bool = False,
                   blocks: Optional[Tuple[int, int]] = None,
                   num_warps: int = 4, method: str = 'direct') -> torch.Tensor:
    """The forward kernel (``flip=True``: the input-gradient conv) on an
    NCHW-contiguous ``x`` and a ``(C, 1, kh, kw)`` weight; no autograd.
    ``method``: ``'direct'`` (one FMA per tap and pixel, fp32 throughout) or
    ``'dot'`` (banded matrix products, ``tl.dot``; the weight is rounded to
    the input dtype). ``blocks``: ``(BLOCK_H, BLOCK_W)`` powers of two (the
    tuning sweep's knob; at least 16 for ``'dot'``); None picks
    :func:`default_fwd_blocks` / :func:`default_dot_blocks`."""
    if method not in ('direct', 'dot'):
        raise ValueError(f"method must be 'direct' or 'dot', got {method!r}")
    interpret = _launch_mode(x)
    fwd, _, fwd_dot = _kernels(interpret)
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    weight = weight.contiguous()
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    if method == 'dot':
        bh, bw = blocks or default_dot_blocks(h, w)
    else:
        bh, bw = blocks or default_fwd_blocks(h, w)
    n_tw = -(-w // bw)
    grid = (n * c, -(-h // bh) * n_tw)
    extra = {} if interpret else dict(num_warps=num_warps)
    args = (x, weight, bias if bias is not None else weight, y, c, h, w,
            kh, kw, kh // 2, kw // 2, *x.stride(), *y.stride(), n_tw)
    with _on_device(x):
        if method == 'direct':
            fwd[grid](*args, HAS_BIAS=bias is not None, FLIP=flip, BLOCK_H=bh,
                      BLOCK_W=bw, **extra)
        else:
            axis = 0 if kh >= kw else 1  # the band along the long edge
            band = _next_pow2((bh + kh - 1) if axis == 0 else (bw + kw - 1))
            fwd_dot[grid](*args, HAS_BIAS=bias is not None, FLIP=flip, AXIS=axis,
                          BLOCK_H=bh, BLOCK_W=bw, BLOCK_R=max(16, band),
                          UPCAST=interpret and x.dtype == torch.bfloat16, **extra)
    return y


def dwconv_weight_grad(x: torch.Tensor, grad_out: torch.Tensor,
                       kernel_size: Tuple[int, int],
                       blocks: Optional[Tuple[int, int]] = None,
                       split: Optional[int] = None,
                       num_warps: int = 4) -> torch.Tensor:
    """``(C, 1, kh, kw)`` fp32 weight gradient of the conv from its input
    ``x`` and output gradient ``grad_out`` (both NCHW-contiguous); no
    autograd. ``blocks``: ``(BLOCK_T, BLOCK_P)`` (taps per program, pixels
    per step); ``split``: programs sharing one channel's reduction (None:
    enough to give ~4096 programs)."""
    interpret = _launch_mode(x)
    _, wgrad, _ = _kernels(interpret)
    n, c, h, w = x.shape
    kh, kw = kernel_size
    bt, bp = blocks or default_wgrad_blocks(kh * kw, h * w)
    n_pt = -(-(h * w) // bp)
    n_tb = -(-(kh * kw) // bt)
    items = n * n_pt
    if split is None:
        split = max(1, min(items, 4096 // max(1, c * n_tb)))
    split = max(1, min(int(split), items, 65535))  # grid axis 2 limit
    part = torch.empty(split, c, kh * kw, device=x.device, dtype=torch.float32)
    extra = {} if interpret else dict(num_warps=num_warps)
    with _on_device(x):
        wgrad[(c, n_tb, split)](x, grad_out, part, n, c, h, w, kh, kw, kh // 2,
                                kw // 2, *x.stride(), *grad_out.stride(), n_pt,
                                split, BLOCK_T=bt, BLOCK_P=bp, **extra)
    return part.sum(0).view(c, 1, kh, kw)


class TritonDepthwiseConv2dFunction(torch.autograd.Function):
    """Autograd around the Triton kernels: ``(x, weight, bias) -> y``."""

    @staticmethod
    def forward(ctx, x, weight, bias, method='direct'):
        ctx.save_for_backward(x, weight)
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.method = method
        return dwconv_forward(x, weight, bias, method=method)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = dwconv_forward(grad_out, weight, None, flip=True,
                                method=ctx.method)
        if ctx.needs_input_grad[1]:
            gw = dwconv_weight_grad(x, grad_out, weight.shape[-2:]).to(
                weight.dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            gb = grad_out.sum((0, 2, 3), dtype=torch.float32).to(ctx.bias_dtype)
        return gx, gw, gb, None


def triton_depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor,
                            bias: Optional[torch.Tensor] = None,
                            method: Optional[str] = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=(kh // 2, kw // 2), groups=C)``
    by the Triton kernels, with autograd.

    Args:
        x (Tensor): ``(N, C, H, W)`` fp32/fp16/bf16 input on CUDA (on the CPU
            only under ``TRITON_INTERPRET=1``, Triton's interpreter). Under
            autocast it is cast to the autocast dtype, as ``F.conv2d``.
        weight (Tensor): ``(C, 1, kh, kw)`` depthwise kernel, kh and kw odd;
            read in fp32 whatever its dtype; its gradient has its dtype.
        bias (Tensor, optional): ``(C,)`` bias.
        method (str, optional): How the forward and input-gradient convs are
            computed: ``'direct'`` (per-tap FMAs, fp32 throughout) or
            ``'dot'`` (banded matrix products with ``tl.dot``; the weight is
            rounded to the input's dtype). None: :data:`DEFAULT_METHOD`. The
            weight gradient is the same for both.

    Returns:
        Tensor: ``(N, C, H, W)`` in the dtype of ``x`` (NCHW-contiguous).
    """
    if x.dim() != 4:
        raise ValueError(f'x must be (N, C, H, W), got shape {tuple(x.shape)}')
    c = x.shape[1]
    if weight.dim() != 4 or weight.shape[:2] != (c, 1):
        raise ValueError(f'weight must be depthwise ({c}, 1, kh, kw) for '
                         f'{c} input channels, got {tuple(weight.shape)}')
    kh, kw = weight.shape[-2:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f'the kernel must be odd in both axes ("same" '
                         f'padding), got {kh}x{kw}')
    if bias is not None and bias.shape != (c,):
        raise ValueError(f'bias must be ({c},), got {tuple(bias.shape)}')
    if torch.is_autocast_enabled(x.device.type):
        x = x.to(torch.get_autocast_dtype(x.device.type))
    if x.dtype not in _DTYPES or weight.dtype not in _DTYPES:
        raise TypeError(f'x and weight must be fp32/fp16/bf16, got {x.dtype} '
                        f'and {weight.dtype}')
    if weight.device != x.device or (bias is not None and bias.device != x.device):
        raise ValueError('x, weight and bias must be on one device')
    method = DEFAULT_METHOD if method is None else method
    if method not in ('direct', 'dot'):
        raise ValueError(f"method must be 'direct' or 'dot', got {method!r}")
    return TritonDepthwiseConv2dFunction.apply(x.contiguous(), weight, bias, method)


# --------------------------------------------------------------------------
# the automatic choice
# --------------------------------------------------------------------------

def check_use_triton(use_triton) -> Optional[bool]:
    """Validate a ``use_triton`` switch (None / True / False)."""
    if use_triton is not None and not isinstance(use_triton, bool):
        raise ValueError(
            f'use_triton must be None (automatic: Triton only where '
            f'MEASURED_TRITON_WINS says it beats cuDNN), True (always, CUDA '
            f'tensors only) or False (never); got {use_triton!r}.')
    if use_triton and not triton_available():
        raise ImportError('use_triton=True needs the triton package (it ships '
                          'with CUDA builds of torch); pass use_triton=None '
                          'or False for cuDNN.')
    return use_triton


@functools.lru_cache(maxsize=None)
def _device_name(index: int) -> str:
    return torch.cuda.get_device_name(index)


@functools.lru_cache(maxsize=4096)
def _lookup(key: tuple) -> bool:
    return bool(MEASURED_TRITON_WINS.get(key, False)) and triton_available()


def triton_preferred(x: torch.Tensor, kernel_size: Tuple[int, int],
                     training: bool) -> bool:
    """The automatic choice for one call: True only for a CUDA tensor whose
    (device, dtype, kernel, C, H, W, training) is in
    :data:`MEASURED_TRITON_WINS` (cached per shape). Edit the table, then
    call ``_lookup.cache_clear()``."""
    if not x.is_cuda:
        return False
    dtype = x.dtype
    if torch.is_autocast_enabled('cuda'):
        dtype = torch.get_autocast_dtype('cuda')
    n, c, h, w = x.shape
    key = (_device_name(x.device.index or 0), str(dtype).replace('torch.', ''),
           int(kernel_size[0]), int(kernel_size[1]), c, h, w, bool(training))
    return _lookup(key)
