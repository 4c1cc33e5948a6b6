"""SLaK speed on this machine (ratios measured in one run; CPU by default).

    python tools/analysis/benchmark_slak.py [--channels 124] [--size 56]
        [--batch 2] [--repeat 3] [--device cpu] [--threads N] [--skip-hook]
        [--triton | --triton-only] [--triton-batch 64] [--skip-sweep]

1. Forward+backward throughput of one decomposed large-kernel layer
   (51x5 + 5x51 + 5x5 depthwise branches with BN, SLaK-T stage 0 at 224px
   by default) vs a dense 51x51 depthwise conv (the merged deploy form) and,
   for scale, a 7x7 ConvNeXt depthwise conv.
2. SLaK-T (51/49/47/13, width 1.3) + 1000-way head forward+backward in
   channels_last vs NCHW, interleaved, and which one the default
   ``memory_format='auto'`` picks on this device (``--model-size``, default
   128 px, batch ``--batch``).
3. SparseRegrowHook overhead per optimizer step on full SLaK-T (+1000-way
   head, AdamW): mask re-application after every step and the prune/regrow
   event amortised over the official update frequencies, vs the optimizer
   step and a forward+backward at a small input.

With ``--triton`` (``--triton-only``: only these) on a CUDA machine (elsewhere
a line says they need CUDA); ``--triton-batch``, default 64, at 224 px:

4. cuDNN vs the Triton kernels (vs the official iGEMM extension where it is
   installed) per large-kernel layer shape of SLaK-T (channels 124/249/499/998
   on 56/28/14/7 maps, kernels 51/49/47/13 with N = 5, cropped to the map as
   ``DepthwiseConv2d`` does): forward and forward+backward of each branch
   (M x 5, 5 x M, 5 x 5), the whole decomposed layer (+BN), and inference of
   the merged deploy kernel, in fp32 and AMP fp16/bf16; medians of
   ``torch.cuda.Event`` times, implementations interleaved. Prints the
   ``MEASURED_TRITON_WINS`` entries the measurements support.
5. Whole SLaK-T + 1000-way head: training forward+backward and deploy
   inference, img/s, the same three dtypes (NCHW for both paths).
6. Tuning sweep of the Triton kernels' block sizes and warps per shape
   (forward: direct and ``tl.dot`` kernels; weight gradient), vs the
   defaults and cuDNN.

"triton" is the direct kernel, "triton-dot" the ``tl.dot`` forward/input
gradient (``dwconv_triton.DEFAULT_METHOD``); both share the weight gradient.
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fn, repeat: int, warmup: int = 1) -> float:
    """Best-of-``repeat`` seconds of ``fn()`` (the least disturbed by other
    processes on a shared machine); on a GPU each call is timed to the end of
    its kernels."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        _sync()
        t = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_kernels(args) -> None:
    from mmconvarch.models.backbones.slak import (DecomposedLargeKernelConv,
                                                  DepthwiseConv2d)
    c, k, n = args.channels, 51, 5
    x = torch.randn(args.batch, c, args.size, args.size, device=args.device,
                    requires_grad=True)
    layers = {
        f'decomposed {k}x{n}+{n}x{k}+{n}x{n} (+BN)':
            DecomposedLargeKernelConv(c, k, n),
        f'dense {k}x{k} depthwise': DepthwiseConv2d(c, (k, k)),
        '7x7 depthwise (ConvNeXt)': DepthwiseConv2d(c, (7, 7)),
    }
    print(f'# 1. one depthwise layer, forward+backward, input '
          f'{tuple(x.shape)}, {args.device}, {torch.get_num_threads()} '
          'threads')
    results = {}
    for name, layer in layers.items():
        layer.to(args.device).train()

        def step():
            layer.zero_grad(set_to_none=True)
            layer(x).sum().backward()

        sec = timed(step, args.repeat)
        results[name] = sec
        print(f'{name:40s} {sec * 1e3:9.1f} ms  '
              f'{args.batch / sec:8.2f} img/s')
    names = list(results)
    print(f'dense {k}x{k} / decomposed time ratio: '
          f'{results[names[1]] / results[names[0]]:.2f}x')
    taps = 2 * k * n + n * n
    print(f'(weight taps per channel: decomposed {taps} vs dense {k * k}, '
          f'{k * k / taps:.1f}x)')


def bench_hook(args) -> None:
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.optim import OptimWrapper

    from mmconvarch.engine.hooks import SparseRegrowHook
    from mmconvarch.models.backbones import SLaK

    torch.manual_seed(0)
    backbone = SLaK('tiny')
    model = nn.Sequential()
    model.add_module('backbone', backbone)
    model.add_module('head', nn.Linear(998, 1000))
    model.to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    wrapper = OptimWrapper(optimizer)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizer.step()  # create the Adam state

    # uniform masks every 2-D/4-D tensor, as SNIP (official) nearly does
    hook = SparseRegrowHook(density=0.6, sparse_init='uniform', prune_rate=0.3,
                            update_frequency=100)
    runner = SimpleNamespace(
        model=model, optim_wrapper=wrapper, max_iters=100000,
        message_hub=MessageHub.get_current_instance(),
        logger=MMLogger.get_current_instance(), train_dataloader=None)
    hook.before_train(runner)
    engine = hook.engine
    numel = sum(p.numel() for p in model.parameters())
    print(f'\n# 3. SparseRegrowHook on SLaK-T + head ({numel / 1e6:.1f}M '
          f'params, {len(engine.masks)} masked tensors, density '
          f'{engine.total_density():.3f}), AdamW, {args.device}')

    opt_step = timed(optimizer.step, args.repeat)
    engine.update_frequency = None  # time the per-step work alone
    mask_step = timed(
        lambda: hook.after_train_iter(runner, 0), args.repeat)
    weights_only = timed(
        lambda: engine.apply_masks(optimizer_state=False), args.repeat)
    update = timed(engine.update_topology, max(1, args.repeat // 2))
    x = torch.randn(2, 3, 64, 64, device=args.device)

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        model.head(model.backbone(x)[0]).sum().backward()

    fb = timed(fwd_bwd, args.repeat)
    print(f'optimizer.step (AdamW)            {opt_step * 1e3:9.1f} ms')
    print(f'hook per step (re-apply masks to  {mask_step * 1e3:9.1f} ms  '
          f'= {mask_step / opt_step:.2f}x optimizer.step')
    print('  weights + exp_avg/exp_avg_sq)')
    print(f'  of which weights only             {weights_only * 1e3:9.1f} ms')
    print(f'prune/regrow event                {update * 1e3:9.1f} ms')
    for freq in (100, 2000):
        per = mask_step + update / freq
        print(f'hook amortised, -u {freq:<5d}         {per * 1e3:9.1f} ms  '
              f'= {per / (fb + opt_step):.1%} of a 2x64px fwd+bwd+step '
              f'({(fb + opt_step) * 1e3:.0f} ms)')


def bench_memory_format(args) -> None:
    from mmconvarch.models.backbones import SLaK
    torch.manual_seed(0)
    models = {}
    for fmt in ('channels_last', 'contiguous'):
        backbone = SLaK('tiny', memory_format=fmt).to(args.device).train()
        models[fmt] = nn.Sequential(backbone, _Last(),
                                    nn.Linear(backbone.channels[-1], 1000)).to(args.device)
    models['contiguous'].load_state_dict(models['channels_last'].state_dict())
    x = torch.randn(args.batch, 3, args.model_size, args.model_size, device=args.device)

    def fwd_bwd(model):
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()

    best = {name: float('inf') for name in models}
    for name, model in models.items():  # warm-up
        fwd_bwd(model)
    for i in range(args.repeat):
        for name in (list(models) if i % 2 == 0 else list(models)[::-1]):
            t = time.perf_counter()
            fwd_bwd(models[name])
            best[name] = min(best[name], time.perf_counter() - t)
    from mmconvarch.models.memory_format import MemoryFormatPolicy
    auto = MemoryFormatPolicy('auto', 'SLaK').layout_name(torch.device(args.device).type)
    cl, nchw = best['channels_last'], best['contiguous']
    print(f'\n# 2. SLaK-T + head forward+backward, {args.batch}x3x{args.model_size}^2, '
          f'{args.device} (memory_format=\'auto\' picks {auto} here)')
    print(f'channels_last {cl:8.3f} s')
    print(f'NCHW          {nchw:8.3f} s  -> channels_last {nchw / cl:.2f}x faster')


# --- CUDA: Triton vs cuDNN ---------------------------------------------------

# SLaK-T at 224 px: (channels, map size, large kernel) per stage; N = 5
SLAK_T_STAGES = [(124, 56, 51), (249, 28, 49), (499, 14, 47), (998, 7, 13)]
DEVICE, MODEL_ARCH, MODEL_SIZE = 'cuda', 'tiny', 224  # sections 4-6
AMP = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def cuda_medians(fns: dict, repeat: int, warmup: int = 2) -> dict:
    """Median milliseconds of each ``fns[name]()`` (``torch.cuda.Event``
    timing), the names interleaved run by run (order reversed every other
    run) so clock and thermal drift hit all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    torch.cuda.synchronize()
    times = {name: [] for name in fns}
    for i in range(repeat):
        for name in (list(fns) if i % 2 == 0 else list(fns)[::-1]):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fns[name]()
            end.record()
            end.synchronize()
            times[name].append(start.elapsed_time(end))
    return {name: statistics.median(t) for name, t in times.items()}


def _impls():
    """The depthwise paths to compare: keyword arguments of DepthwiseConv2d."""
    from mmconvarch.models.backbones.slak import _igemm
    impls = {'cudnn': dict(use_triton=False, use_igemm=False),
             'triton': dict(use_triton=True, use_igemm=False),
             'triton-dot': dict(use_triton=True, use_igemm=False)}
    if _igemm is not None:
        impls['igemm'] = dict(use_triton=False, use_igemm=True)
    return impls


def _timed(fns: dict) -> dict:
    """``fns`` with the Triton method of each name set around its call
    ('triton-dot': ``method='dot'``, the others the direct kernels)."""
    from mmconvarch.models.layers import dwconv_triton as dt

    def wrap(name, fn):
        def call():
            dt.DEFAULT_METHOD = 'dot' if name == 'triton-dot' else 'direct'
            try:
                fn()
            finally:
                dt.DEFAULT_METHOD = 'direct'
        return call
    return {name: wrap(name, fn) for name, fn in fns.items()}


def _autocast(dtype):
    return torch.autocast(DEVICE, dtype=dtype or torch.float32,
                          enabled=dtype is not None)


def _print_ratios(label: str, ms: dict, unit_per_ms=None) -> None:
    base = ms['cudnn']
    cols = '  '.join(f'{name} {t:8.3f} ms' for name, t in ms.items())
    ratios = '  '.join(f'{name} {base / t:5.2f}x' for name, t in ms.items()
                       if name != 'cudnn')
    extra = f'  ({unit_per_ms(ms)})' if unit_per_ms else ''
    print(f'{label:44s} {cols}  speed vs cudnn: {ratios}{extra}', flush=True)


def bench_triton_layers(args) -> None:
    from mmconvarch.models.backbones.slak import (DecomposedLargeKernelConv,
                                                  DepthwiseConv2d)
    dev, bs = torch.device(DEVICE), args.triton_batch
    impls = _impls()
    name = torch.cuda.get_device_name(dev)
    print(f'\n# 4. SLaK-T large-kernel layers, batch {bs} @224 px, {name}, '
          f'median of {args.triton_repeat} (ms), interleaved: '
          f'{", ".join(impls)}', flush=True)
    wins = []
    for stage, (c, size, k) in enumerate(SLAK_T_STAGES):
        torch.manual_seed(stage)
        x = torch.randn(bs, c, size, size, device=dev)
        xg = x.clone().requires_grad_()
        shapes = [((k, 5), 'train'), ((5, k), 'train'), ((5, 5), 'train'),
                  ((k, k), 'deploy')]
        for (kh, kw), kind in shapes:
            convs = {n: DepthwiseConv2d(c, (kh, kw), bias=kind == 'deploy',
                                        **kw_).to(dev)
                     for n, kw_ in impls.items()}
            first = next(iter(convs.values()))
            for conv in convs.values():
                conv.load_state_dict(first.state_dict())
            for dname, amp in AMP.items():
                use = {n: m for n, m in convs.items()
                       if n != 'igemm' or dname != 'bf16'}
                gy = torch.randn(bs, c, size, size, device=dev,
                                 dtype=amp or torch.float32)

                def fwd(conv, amp=amp):
                    with torch.no_grad(), _autocast(amp):
                        conv(x)

                def train(conv, amp=amp, gy=gy):
                    with _autocast(amp):
                        y = conv(xg)
                    y.backward(gy)

                label = f'stage {stage} C{c} {size}x{size} {kh}x{kw} {dname}'
                modes = [('infer' if kind == 'deploy' else 'fwd', fwd)]
                if kind == 'train':
                    modes.append(('fwd+bwd', train))
                for mode, fn in modes:
                    ms = cuda_medians(_timed({n: (lambda m=m, fn=fn: fn(m))
                                              for n, m in use.items()}),
                                      args.triton_repeat)
                    _print_ratios(f'{label} {mode}', ms)
                    if min(ms['triton'], ms['triton-dot']) < ms['cudnn']:
                        dtype_name = str(amp or torch.float32).replace(
                            'torch.', '')
                        wins.append((name, dtype_name, kh, kw, c, size, size,
                                     mode == 'fwd+bwd'))
            del convs
        # the whole decomposed layer (3 branches + BN), training
        layers = {n: DecomposedLargeKernelConv(
            c, k, 5, use_triton=kw_['use_triton'],
            use_igemm=kw_['use_igemm']).to(dev) for n, kw_ in impls.items()}
        first = next(iter(layers.values()))
        for layer in layers.values():
            layer.load_state_dict(first.state_dict())
        for dname, amp in AMP.items():
            use = {n: m for n, m in layers.items()
                   if n != 'igemm' or dname != 'bf16'}
            gy = torch.randn(bs, c, size, size, device=dev,
                             dtype=amp or torch.float32)

            def train_layer(layer, amp=amp, gy=gy):
                with _autocast(amp):
                    y = layer(xg)
                y.backward(gy.to(y.dtype))

            ms = cuda_medians(_timed({n: (lambda m=m: train_layer(m))
                                      for n, m in use.items()}), args.triton_repeat)
            _print_ratios(f'stage {stage} decomposed {k}x5+5x{k}+5x5+BN '
                          f'{dname} fwd+bwd', ms)
        del layers
    print('\nMEASURED_TRITON_WINS entries these measurements support '
          '(key: device, dtype, kh, kw, C, H, W, training; training=True '
          'from fwd+bwd, False from fwd/infer; a win by triton-dot also '
          'needs DEFAULT_METHOD = "dot"; check the whole-model rows '
          'before adding them):', flush=True)
    for key in wins:
        print(f'    {key!r}: True,')
    if not wins:
        print('    (none: cuDNN was faster everywhere)')


def bench_triton_model(args) -> None:
    from mmconvarch.models.backbones import SLaK
    dev, bs = torch.device(DEVICE), args.triton_batch
    impls = _impls()
    print(f'\n# 5. SLaK-T + 1000-way head, batch {bs} @{MODEL_SIZE} px (NCHW), '
          f'median of {args.model_repeat}, interleaved', flush=True)
    torch.manual_seed(0)
    models = {}
    for n, kw_ in impls.items():
        backbone = SLaK(MODEL_ARCH, memory_format='contiguous', **kw_)
        models[n] = nn.Sequential(backbone, _Last(),
                                  nn.Linear(backbone.channels[-1], 1000)).to(dev)
    first = next(iter(models.values()))
    for model in models.values():
        model.load_state_dict(first.state_dict())
    x = torch.randn(bs, 3, MODEL_SIZE, MODEL_SIZE, device=dev)

    def img_s(ms):
        return ', '.join(f'{n} {bs / t * 1e3:7.1f} img/s' for n, t in ms.items())

    for dname, amp in AMP.items():
        use = {n: m.train() for n, m in models.items()
               if n != 'igemm' or dname != 'bf16'}

        def train(model, amp=amp):
            model.zero_grad(set_to_none=True)
            with _autocast(amp):
                loss = model(x).float().sum()
            loss.backward()

        ms = cuda_medians(_timed({n: (lambda m=m: train(m)) for n, m in use.items()}),
                          args.model_repeat, warmup=2)
        _print_ratios(f'SLaK-T train fwd+bwd {dname}', ms, img_s)
    for model in models.values():
        model.zero_grad(set_to_none=True)
    deployed = {}
    for n, model in models.items():
        deployed[n] = copy.deepcopy(model).eval()
        deployed[n][0].switch_to_deploy()
    del models
    for dname, amp in AMP.items():
        use = {n: m for n, m in deployed.items()
               if n != 'igemm' or dname != 'bf16'}

        def infer(model, amp=amp):
            with torch.no_grad(), _autocast(amp):
                model(x)

        ms = cuda_medians(_timed({n: (lambda m=m: infer(m)) for n, m in use.items()}),
                          args.model_repeat, warmup=2)
        _print_ratios(f'SLaK-T deploy inference {dname}', ms, img_s)


def bench_triton_sweep(args) -> None:
    import torch.nn.functional as F

    from mmconvarch.models.layers import dwconv_triton as dt
    dev, bs = torch.device(DEVICE), args.triton_batch
    repeat = max(3, args.triton_repeat // 2)
    print(f'\n# 6. Triton block-size sweep, batch {bs}, median of {repeat} '
          '(ms); the 3 best configs, the default and cuDNN', flush=True)
    fwd_blocks = [(4, 64), (8, 64), (16, 64), (32, 64), (8, 32), (16, 32),
                  (32, 32), (8, 16), (16, 16), (8, 8)]
    wgrad_blocks = [(8, 128), (16, 128), (16, 256), (32, 256), (8, 512),
                    (32, 128)]
    dot_blocks = [(16, 16), (16, 32), (32, 32), (16, 64), (32, 64), (64, 64)]
    for stage, (c, size, k) in enumerate(SLAK_T_STAGES):
        kc = min(k, 2 * size - 1)  # cropped as DepthwiseConv2d does
        for dtype in (torch.float32, torch.float16):
            x = torch.randn(bs, c, size, size, device=dev, dtype=dtype)
            for kh, kw in ((kc, 5), (5, kc), (5, 5), (kc, kc)):
                w = torch.randn(c, 1, kh, kw, device=dev)
                fns = {'cudnn': lambda w=w: F.conv2d(
                    x, w.to(dtype), padding=(kh // 2, kw // 2), groups=c),
                    'default': lambda w=w: dt.dwconv_forward(x, w)}
                for bh, bw in dot_blocks:
                    if bw > 2 * max(16, dt._next_pow2(size)) or \
                            bh > 2 * max(16, dt._next_pow2(size)):
                        continue
                    for nw in (4, 8):
                        fns[f'dot {bh}x{bw} w{nw}'] = (
                            lambda w=w, b=(bh, bw), nw=nw: dt.dwconv_forward(
                                x, w, blocks=b, num_warps=nw, method='dot'))
                for bh, bw in fwd_blocks:
                    if bw > 2 * dt._next_pow2(size) or bh > 2 * dt._next_pow2(size):
                        continue
                    for nw in (2, 4, 8):
                        fns[f'{bh}x{bw} w{nw}'] = (
                            lambda w=w, b=(bh, bw), nw=nw: dt.dwconv_forward(
                                x, w, blocks=b, num_warps=nw))
                _print_sweep(f'stage {stage} {size}x{size} {kh}x{kw} '
                             f'{str(dtype)[6:]} forward', cuda_medians(fns, repeat))
                if (kh, kw) == (kc, kc):
                    continue
                fns = {'cudnn': lambda w=w: torch.ops.aten.convolution_backward(
                    x, x, w.to(dtype), None, (1, 1), (kh // 2, kw // 2), (1, 1),
                    False, (0, 0), c, (False, False, True)),
                    'default': lambda: dt.dwconv_weight_grad(x, x, (kh, kw))}
                for bt, bp in wgrad_blocks:
                    if bp > 2 * dt._next_pow2(size * size):
                        continue
                    for nw in (4, 8):
                        for split in (None, 64):
                            fns[f'{bt}x{bp} w{nw} s{split}'] = (
                                lambda b=(bt, bp), nw=nw, sp=split:
                                dt.dwconv_weight_grad(x, x, (kh, kw), blocks=b,
                                                      num_warps=nw, split=sp))
                _print_sweep(f'stage {stage} {size}x{size} {kh}x{kw} '
                             f'{str(dtype)[6:]} weight grad', cuda_medians(fns, repeat))


def _print_sweep(label: str, ms: dict) -> None:
    configs = sorted((t, n) for n, t in ms.items() if n not in ('cudnn', 'default'))
    best = '  '.join(f'{n}: {t:.3f}' for t, n in configs[:3])
    print(f'{label:42s} best {best}  | default {ms["default"]:.3f}  '
          f'cudnn {ms["cudnn"]:.3f}', flush=True)


class _Last(nn.Module):
    """The backbone's last output (a pooled vector)."""

    def forward(self, outs):
        return outs[-1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--channels', type=int, default=124)
    parser.add_argument('--size', type=int, default=56)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch\'s)')
    parser.add_argument('--model-size', type=int, default=128,
                        help='input size of the whole-model comparison')
    parser.add_argument('--skip-model', action='store_true')
    parser.add_argument('--skip-hook', action='store_true')
    parser.add_argument('--triton', action='store_true',
                        help='also run the CUDA sections 4-6 (Triton vs cuDNN)')
    parser.add_argument('--triton-only', action='store_true',
                        help='run only the CUDA sections 4-6')
    parser.add_argument('--skip-sweep', action='store_true')
    parser.add_argument('--triton-batch', type=int, default=64)
    parser.add_argument('--triton-repeat', type=int, default=10,
                        help='timed runs per layer measurement (median)')
    parser.add_argument('--model-repeat', type=int, default=5,
                        help='timed runs per whole-model measurement (median)')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.triton_only:
        bench_kernels(args)
        if not args.skip_model:
            bench_memory_format(args)
        if not args.skip_hook:
            bench_hook(args)
    if not torch.cuda.is_available():
        print('\n# 4-6. Triton vs cuDNN: these GPU sections need CUDA '
              '(torch.cuda.is_available() is False); skipped.')
        return
    if not (args.triton or args.triton_only):
        print('\n# 4-6. Triton vs cuDNN: pass --triton (or --triton-only).')
        return
    bench_triton_layers(args)
    bench_triton_model(args)
    if not args.skip_sweep:
        bench_triton_sweep(args)


if __name__ == '__main__':
    main()
