"""Train form vs deploy form of VanillaNet classifiers, measured in one run:
forward latency at batch 1 and batch 32 of the train form, the deploy form
(``memory_format='auto'``, the default) and the deploy form in NCHW (timed interleaved
so a shared machine's load hits all three), the deploy form's GFLOP/s
against the machine's fp32 matmul peak,
parameters and FLOPs (``mmengine.analysis``; FLOPs count multiply-adds, as
the official table does).

    python tools/analysis/benchmark_vanillanet.py [--archs 5 13] [--size 224]
        [--batch-sizes 1 32] [--device cpu] [--threads N]

The deploy model is the train model after ``switch_to_deploy()`` (λ = 1,
BN statistics randomised so fusion is not trivial); the largest logit
difference between the two is printed as a check.
"""
import argparse
import copy
import os.path as osp
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


class Classifier(nn.Module):
    """backbone -> global average pool -> head: the classifier's tensor
    path without mmpretrain's data handling."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((self.backbone(x)[-1].mean((2, 3)), ))


def build(arch: str, num_classes: int = 1000) -> Classifier:
    from mmconvarch.models.backbones.vanillanet import VanillaNet
    from mmconvarch.models.heads import VanillaNetClsHead
    backbone = VanillaNet(arch)
    model = Classifier(backbone, VanillaNetClsHead(num_classes,
                                                   backbone.channels[-1]))
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model.eval()


def interleaved_latency(models: dict, x: torch.Tensor, warmup: int,
                        repeats: int) -> dict:
    """Fastest seconds per forward of each model, timed interleaved (the
    order rotates each round) so that a shared machine's load hits all."""
    def timed(model):
        if x.device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if x.device.type == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - start

    names = list(models)
    times = {name: [] for name in names}
    with torch.no_grad():
        for _ in range(warmup):
            for name in names:
                timed(models[name])
        for i in range(repeats):
            for name in names[i % len(names):] + names[:i % len(names)]:
                times[name].append(timed(models[name]))
    return {name: min(t) for name, t in times.items()}


def matmul_peak_flops(device: str, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an fp32 n x n matmul: the machine's practical peak."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float('inf')
    for _ in range(repeats + 1):
        if a.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if a.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def complexity(model: nn.Module, size: int, device: str):
    from mmengine.analysis import get_model_complexity_info
    x = torch.randn(1, 3, size, size, device=device)
    with torch.no_grad():
        info = get_model_complexity_info(model, inputs=(x, ),
                                         show_table=False, show_arch=False)
    return info['flops'], info['params']


def run(archs, size, batch_sizes, device, repeats_bs1, repeats_big):
    from mmconvarch.deploy import switch_to_deploy
    from mmconvarch.models.memory_format import MemoryFormatPolicy
    rows = []
    for arch in archs:
        train = build(arch).to(device)
        start = time.perf_counter()
        deploy = copy.deepcopy(train)
        switch_to_deploy(deploy)
        fuse_s = time.perf_counter() - start
        deploy_nchw = copy.deepcopy(deploy)  # the same weights, NCHW maps
        deploy_nchw.backbone.memory_format = MemoryFormatPolicy('contiguous', 'VanillaNet')
        x1 = torch.randn(1, 3, size, size, device=device)
        with torch.no_grad():
            diff = (train(x1) - deploy(x1)).abs().max().item()
        row = dict(arch=arch, fuse_s=fuse_s, max_diff=diff)
        for form, model in (('train', train), ('deploy', deploy)):
            row[f'{form}_flops'], row[f'{form}_params'] = complexity(
                model, size, device)
        for bs in batch_sizes:
            x = torch.randn(bs, 3, size, size, device=device)
            small = bs == 1
            fastest = interleaved_latency(
                dict(train=train, deploy=deploy, deploy_nchw=deploy_nchw), x,
                warmup=2 if small else 1,
                repeats=repeats_bs1 if small else repeats_big)
            for form, seconds in fastest.items():
                row[f'{form}_bs{bs}'] = seconds
        rows.append(row)
        del train, deploy
    return rows


def report(rows, size, batch_sizes, device, peak_flops=None) -> str:
    lines = [f'VanillaNet train form vs deploy form (channels_last, the default) vs '
             f'deploy in NCHW, {size}x{size}, {device} ({torch.get_num_threads()} '
             'threads); fastest of the interleaved forwards']
    if peak_flops:
        lines.append(f'fp32 2048^3 matmul peak: {peak_flops / 1e9:.1f} GFLOP/s')
    for r in rows:
        lines.append(
            f'vanillanet_{r["arch"]}: params {r["train_params"] / 1e6:.2f}M '
            f'-> {r["deploy_params"] / 1e6:.2f}M, FLOPs '
            f'{r["train_flops"] / 1e9:.2f}G -> '
            f'{r["deploy_flops"] / 1e9:.2f}G, fused in {r["fuse_s"]:.1f}s, '
            f'max |logit diff| {r["max_diff"]:.1e}')
        for bs in batch_sizes:
            t, d = r[f'train_bs{bs}'], r[f'deploy_bs{bs}']
            n = r[f'deploy_nchw_bs{bs}']
            achieved = 2 * r['deploy_flops'] * bs / d  # FLOPs = 2 x MACs
            line = (f'  batch {bs:>3}: train {t * 1e3:9.1f} ms, deploy '
                    f'{d * 1e3:9.1f} ms ({t / d:.2f}x faster; '
                    f'{d * 1e3 / bs:.1f} ms/img), deploy NCHW {n * 1e3:9.1f} ms '
                    f'(channels_last {n / d:.2f}x faster); deploy '
                    f'{achieved / 1e9:.1f} GFLOP/s')
            if peak_flops:
                line += f' = {achieved / peak_flops:.0%} of the matmul peak'
            lines.append(line)
    return '\n'.join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--archs', nargs='+', default=['5', '13'])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch-sizes', type=int, nargs='+',
                        default=[1, 32])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed forwards per form at batch 1')
    parser.add_argument('--repeats-big', type=int, default=2,
                        help='timed forwards per form at larger batches')
    args = parser.parse_args(argv)
    import mmconvarch  # noqa: F401
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args.archs, args.size, args.batch_sizes, args.device,
               args.repeats, args.repeats_big)
    print(report(rows, args.size, args.batch_sizes, args.device,
                 matmul_peak_flops(args.device)))


if __name__ == '__main__':
    main()
