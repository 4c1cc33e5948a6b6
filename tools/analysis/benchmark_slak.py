"""SLaK speed on this machine (ratios measured in one run; CPU by default).

    python tools/analysis/benchmark_slak.py [--channels 124] [--size 56]
        [--batch 2] [--repeat 3] [--device cpu] [--threads N] [--skip-hook]

1. Forward+backward throughput of one decomposed large-kernel layer
   (51x5 + 5x51 + 5x5 depthwise branches with BN, SLaK-T stage 0 at 224px
   by default) vs a dense 51x51 depthwise conv (the merged deploy form) and,
   for scale, a 7x7 ConvNeXt depthwise conv.
2. SLaK-T (51/49/47/13, width 1.3) + 1000-way head forward+backward in
   channels_last (the default ``memory_format``) vs NCHW, interleaved
   (``--model-size``, default 128 px, batch ``--batch``).
3. SparseRegrowHook overhead per optimizer step on full SLaK-T (+1000-way
   head, AdamW): mask re-application after every step and the prune/regrow
   event amortised over the official update frequencies, vs the optimizer
   step and a forward+backward at a small input.
"""
import argparse
import os.path as osp
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def timed(fn, repeat: int, warmup: int = 1) -> float:
    """Best-of-``repeat`` seconds of ``fn()`` (the least disturbed by other
    processes on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
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
    cl, nchw = best['channels_last'], best['contiguous']
    print(f'\n# 2. SLaK-T + head forward+backward, {args.batch}x3x{args.model_size}^2, '
          f'{args.device}')
    print(f'channels_last (default) {cl:8.3f} s')
    print(f'NCHW                    {nchw:8.3f} s  -> channels_last {nchw / cl:.2f}x faster')


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
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bench_kernels(args)
    if not args.skip_model:
        bench_memory_format(args)
    if not args.skip_hook:
        bench_hook(args)


if __name__ == '__main__':
    main()
