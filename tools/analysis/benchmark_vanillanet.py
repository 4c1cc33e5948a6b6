"""Train form vs deploy form of VanillaNet classifiers, measured in one run:
forward latency at batch 1 and batch 32 (printed as train/deploy ratios;
the two forms are timed interleaved so a shared machine's load hits both),
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
import statistics
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
    from mmconvarch.models.backbones.vanillanet import (VanillaNet,
                                                         VanillaNetClsHead)
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


def paired_latency(train: nn.Module, deploy: nn.Module, x: torch.Tensor,
                   warmup: int, repeats: int):
    """Interleaved timing (train, deploy, deploy, train, ...) so both forms
    see the same background load on a shared machine. Returns the fastest
    seconds per forward of each form and the median per-pair ratio."""
    def timed(model):
        if x.device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if x.device.type == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times = dict(train=[], deploy=[])
    with torch.no_grad():
        for _ in range(warmup):
            timed(train), timed(deploy)
        for i in range(repeats):
            order = ('train', 'deploy') if i % 2 == 0 else ('deploy',
                                                            'train')
            for form in order:
                times[form].append(timed(train if form == 'train' else
                                         deploy))
    ratios = [t / d for t, d in zip(times['train'], times['deploy'])]
    return min(times['train']), min(times['deploy']), \
        statistics.median(ratios)


def complexity(model: nn.Module, size: int, device: str):
    from mmengine.analysis import get_model_complexity_info
    x = torch.randn(1, 3, size, size, device=device)
    with torch.no_grad():
        info = get_model_complexity_info(model, inputs=(x, ),
                                         show_table=False, show_arch=False)
    return info['flops'], info['params']


def run(archs, size, batch_sizes, device, repeats_bs1, repeats_big):
    from mmconvarch.deploy import switch_to_deploy
    rows = []
    for arch in archs:
        train = build(arch).to(device)
        start = time.perf_counter()
        deploy = copy.deepcopy(train)
        switch_to_deploy(deploy)
        fuse_s = time.perf_counter() - start
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
            row[f'train_bs{bs}'], row[f'deploy_bs{bs}'], \
                row[f'ratio_bs{bs}'] = paired_latency(
                    train, deploy, x, warmup=2 if small else 0,
                    repeats=repeats_bs1 if small else repeats_big)
        rows.append(row)
        del train, deploy
    return rows


def report(rows, size, batch_sizes, device) -> str:
    lines = [f'VanillaNet train form vs deploy form, {size}x{size}, '
             f'{device} ({torch.get_num_threads()} threads); fastest of the '
             'interleaved forwards, and the median ratio of the pairs']
    for r in rows:
        lines.append(
            f'vanillanet_{r["arch"]}: params {r["train_params"] / 1e6:.2f}M '
            f'-> {r["deploy_params"] / 1e6:.2f}M, FLOPs '
            f'{r["train_flops"] / 1e9:.2f}G -> '
            f'{r["deploy_flops"] / 1e9:.2f}G, fused in {r["fuse_s"]:.1f}s, '
            f'max |logit diff| {r["max_diff"]:.1e}')
        for bs in batch_sizes:
            t, d = r[f'train_bs{bs}'], r[f'deploy_bs{bs}']
            lines.append(f'  batch {bs:>3}: train {t * 1e3:9.1f} ms, deploy '
                         f'{d * 1e3:9.1f} ms -> deploy {t / d:.2f}x faster '
                         f'(pairs: {r[f"ratio_bs{bs}"]:.2f}x; '
                         f'{d * 1e3 / bs:.1f} ms/img)')
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
    print(report(rows, args.size, args.batch_sizes, args.device))


if __name__ == '__main__':
    main()
