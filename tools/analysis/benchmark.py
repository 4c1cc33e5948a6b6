"""Inference speed (fps and latency) of any mmconvarch config, as mmdet's and
mmseg's tools/analysis_tools/benchmark.py: the model's whole test step
(data preprocessor, forward, post-processing) after warm-up iterations.

    python tools/analysis/benchmark.py CONFIG [CHECKPOINT] [--deploy [--force]]
        [--sample-data [ROOT]] [--shape H W] [--batch-size 1]
        [--num-iters 50] [--num-warmup 5] [--device cpu] [--out result.json]

Batches come from the config's test dataloader (the real data, or the
generated sample set with --sample-data), or with --shape from random images
of H x W fed to the test step directly (no data needed; the network sees
exactly H x W). Without CHECKPOINT the weights are random, which times the
same network. --deploy times the re-parameterised form (mmconvarch.deploy).

--latency (with --shape) times the network's tensor forward alone (backbone,
neck, head; no data handling) eagerly and through
``mmconvarch.deploy.latency_model`` (one CUDA graph replay on a GPU),
interleaved call by call, in --dtype, and checks that both give the same
outputs:

    python tools/analysis/benchmark.py configs/vanillanet/vanillanet_5_in1k.py \
        --deploy --latency --shape 224 --dtype float16 --num-iters 200
"""
import argparse
import itertools
import json
import os.path as osp
import statistics
import sys
import time
from typing import Iterator, Optional

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

# the data sample class each scope's test step reads image metas from
_DATA_SAMPLES = {'mmdet': ('mmdet.structures', 'DetDataSample'),
                 'mmseg': ('mmseg.structures', 'SegDataSample'),
                 'mmpretrain': ('mmpretrain.structures', 'DataSample')}
_DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Benchmark inference speed')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint to load (default: random weights)')
    parser.add_argument('--deploy', action='store_true',
                        help='time the deploy (re-parameterised) form')
    parser.add_argument('--force', action='store_true',
                        help='with --deploy: convert even where fusion '
                        'changes outputs (e.g. VanillaNet before annealing)')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        metavar='H W', help='random H x W images instead of '
                        'the test dataloader (one value: square)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-iters', type=int, default=50,
                        help='timed iterations')
    parser.add_argument('--num-warmup', type=int, default=5,
                        help='untimed iterations first')
    parser.add_argument('--device', default=None,
                        help='cuda when available, else cpu')
    parser.add_argument('--out', help='also write the results to this .json')
    parser.add_argument('--latency', action='store_true',
                        help='time the tensor forward eager vs latency_model (a CUDA '
                        'graph on a GPU), interleaved; needs --shape')
    parser.add_argument('--dtype', default='float32', choices=sorted(_DTYPES),
                        help='with --latency: the model and input dtype')
    parser.add_argument(
        '--sample-data', nargs='?', const='data/sample', default=None,
        metavar='ROOT', help='batches from the generated sample set')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H W or one size, got {args.shape}')
    for name in ('batch_size', 'num_iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.num_warmup < 0:
        parser.error('--num-warmup must be >= 0')
    if args.force and not args.deploy:
        parser.error('--force only applies with --deploy')
    if args.latency and args.shape is None:
        parser.error('--latency times a fixed input: give --shape H W')
    if args.dtype != 'float32' and not args.latency:
        parser.error('--dtype only applies with --latency')
    return args


def build_model(cfg, checkpoint: Optional[str], deploy: bool, force: bool,
                device: str) -> torch.nn.Module:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint
    init_default_scope(cfg.default_scope)
    if cfg.get('data_preprocessor'):  # as the Runner does (mmpretrain)
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    backbone = cfg.model.get('backbone')
    if backbone is not None:
        backbone['init_cfg'] = None  # timing needs no pretrained download
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if checkpoint is not None:
        from mmconvarch.checkpoint import safe_checkpoint_loading
        with safe_checkpoint_loading():  # runner checkpoints on torch>=2.6, allow-list only
            load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    if deploy:
        from mmconvarch.deploy import switch_to_deploy
        try:
            names = switch_to_deploy(model, force=force)
        except (ValueError, RuntimeError) as e:
            raise SystemExit(f'--deploy: {e}')
        print(f'deploy form: switched {names}')
    return model.to(device)


def random_batches(scope: str, shape, batch_size: int) -> Iterator[dict]:
    """The test dataloader's batch format with random uint8 images of
    ``shape`` and the metas the test steps read."""
    import importlib
    module, name = _DATA_SAMPLES[scope]
    sample_cls = getattr(importlib.import_module(module), name)
    h, w = shape
    generator = torch.Generator().manual_seed(0)

    def batch() -> dict:
        inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8,
                                generator=generator) for _ in range(batch_size)]
        metas = [sample_cls(metainfo=dict(
            img_id=i, img_path=None, ori_shape=(h, w), img_shape=(h, w),
            scale_factor=(1.0, 1.0), flip=False, flip_direction=None))
            for i in range(batch_size)]
        return dict(inputs=inputs, data_samples=metas)

    while True:
        yield batch()


def loader_batches(cfg, batch_size: int) -> Iterator[dict]:
    from mmengine.runner import Runner
    loader_cfg = cfg.get('test_dataloader')
    if not loader_cfg:
        raise SystemExit('The config has no test_dataloader: use --shape H W '
                         '(random images) instead.')
    loader_cfg = dict(loader_cfg, batch_size=batch_size, num_workers=0,
                      persistent_workers=False)
    loader_cfg.pop('prefetch_factor', None)
    loader = Runner.build_dataloader(loader_cfg)
    return itertools.chain.from_iterable(itertools.repeat(loader))


def benchmark(model: torch.nn.Module, batches: Iterator[dict], num_iters: int,
              num_warmup: int, batch_size: int, device: str) -> dict:
    """Time ``model.test_step`` per batch; latency is per batch."""
    def sync() -> None:
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    times = []
    with torch.no_grad():
        for i in range(num_warmup + num_iters):
            batch = next(batches)
            sync()
            start = time.perf_counter()
            model.test_step(batch)
            sync()
            if i >= num_warmup:
                times.append(time.perf_counter() - start)
    mean = statistics.mean(times)
    return dict(fps=batch_size / mean, latency_ms=1000 * mean,
                latency_median_ms=1000 * statistics.median(times),
                latency_min_ms=1000 * min(times), batch_size=batch_size,
                num_iters=num_iters, num_warmup=num_warmup, device=device)


class TensorForward(torch.nn.Module):
    """``model(x, mode='tensor')``: the network without data handling."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x, mode='tensor')


def latency(model: torch.nn.Module, shape, batch_size: int, dtype: torch.dtype,
            num_iters: int, num_warmup: int, device: str) -> dict:
    """Per-call latency of the tensor forward, eager against
    ``latency_model`` (interleaved call by call, synchronised after each),
    and the largest output difference between the two."""
    from mmconvarch.deploy import latency_model
    net = TensorForward(model.to(dtype=dtype)).eval()
    x = torch.randn(batch_size, 3, *shape, device=device, dtype=dtype)
    fast = latency_model(net, x)

    def sync() -> None:
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    def leaves(out):
        return [out] if isinstance(out, torch.Tensor) else [
            t for o in out for t in leaves(o)]

    with torch.no_grad():
        diff = max((a.float() - b.float()).abs().max().item()
                   for a, b in zip(leaves(net(x)), leaves(fast(x))))
        times = {'eager': [], 'latency_model': []}
        for i in range(num_warmup + num_iters):
            for name, fn in (('eager', net), ('latency_model', fast)):
                sync()
                start = time.perf_counter()
                fn(x)
                sync()
                if i >= num_warmup:
                    times[name].append(time.perf_counter() - start)
    eager, graph = (1000 * statistics.median(times[k]) for k in times)
    return dict(eager_median_ms=eager, latency_model_median_ms=graph,
                speedup=eager / graph, max_abs_diff=diff, graphed=fast.graphed,
                batch_size=batch_size, dtype=str(dtype).replace('torch.', ''),
                num_iters=num_iters, num_warmup=num_warmup, device=device)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmconvarch.launch import load_config
    # scope check, --sample-data, --cfg-options
    cfg = load_config(args.config, args.cfg_options, sample_data=args.sample_data)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = build_model(cfg, args.checkpoint, args.deploy, args.force, device)
    if not callable(getattr(model, 'predict', None)):
        raise SystemExit(f'{type(model).__name__} has no predict step (a '
                         'self-supervised pre-training model): benchmark its '
                         'fine-tuning or downstream config instead.')
    if args.latency:
        shape = args.shape * 2 if len(args.shape) == 1 else args.shape
        result = latency(model, shape, args.batch_size, _DTYPES[args.dtype], args.num_iters,
                         args.num_warmup, device)
        result.update(config=args.config, checkpoint=args.checkpoint, deploy=args.deploy,
                      input=f'random {shape[0]}x{shape[1]}')
        print(f'{args.config} (tensor forward, batch {args.batch_size}, {result["dtype"]}, '
              f'{device}{", deploy" if args.deploy else ""}): eager '
              f'{result["eager_median_ms"]:.3f} ms, latency_model '
              f'{"(CUDA graph) " if result["graphed"] else "(eager fallback) "}'
              f'{result["latency_model_median_ms"]:.3f} ms (medians, interleaved), '
              f'{result["speedup"]:.2f}x; max |diff| {result["max_abs_diff"]:.3g}')
    else:
        result = run_test_step(cfg, model, args, device)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


def run_test_step(cfg, model: torch.nn.Module, args, device: str) -> dict:
    if args.shape is not None:
        shape = args.shape * 2 if len(args.shape) == 1 else args.shape
        batches = random_batches(cfg.default_scope, shape, args.batch_size)
        source = f'random {shape[0]}x{shape[1]} images'
    else:
        batches = loader_batches(cfg, args.batch_size)
        source = 'test dataloader'
    result = benchmark(model, batches, args.num_iters, args.num_warmup,
                       args.batch_size, device)
    result.update(config=args.config, checkpoint=args.checkpoint,
                  deploy=args.deploy, input=source)
    print(f'{args.config} ({source}, batch {args.batch_size}, {device}'
          f'{", deploy" if args.deploy else ""}): {result["fps"]:.2f} img/s, '
          f'latency {result["latency_ms"]:.2f} ms/batch (median '
          f'{result["latency_median_ms"]:.2f}, min {result["latency_min_ms"]:.2f}) '
          f'over {args.num_iters} iterations after {args.num_warmup} warm-up')
    return result


if __name__ == '__main__':
    main()
