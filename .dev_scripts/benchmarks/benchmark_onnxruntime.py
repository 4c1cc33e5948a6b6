"""PyTorch vs onnxruntime (CPU) latency of each family's classifier, in one run.

    python .dev_scripts/benchmarks/benchmark_onnxruntime.py [--configs CFG ...] [--size 224]
        [--batch-sizes 1 8] [--warmup 2] [--repeats 10] [--threads N] [--fp16]

Each config is exported with tools/deploy/export_onnx.py's code (logits,
dynamic batch, opset 18), in its deploy form where the family has one
(VanillaNet: fused convs, λ = 1; SLaK: merged kernels; the same model is timed
in PyTorch). PyTorch runs eval + no_grad, NCHW; onnxruntime runs the
CPUExecutionProvider with ``intra_op_num_threads`` = torch's threads. The two
are timed interleaved (alternating order) so a shared machine's load hits
both; the table gives the median ms per forward, the median per-pair ratio
torch/ort and the largest |ort - torch| relative to max |torch|.

``--fp16`` also converts each exported model to fp16 with onnxruntime's
converter (``onnxruntime.transformers.float16``, fp32 inputs/outputs kept) and
reports its error vs fp32 PyTorch and its batch-1 latency, then probes GRN and
LayerNorm alone in fp16 onnxruntime at stage-1 sizes over a range of
activation scales (see :func:`fp16_probe`).
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Sequence

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', 'tools', 'deploy'))
import export_onnx  # noqa: E402

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
CONFIGS = ['configs/vanillanet/vanillanet_5_in1k.py',
           'configs/convnextv2/convnextv2_t_in1k.py',
           'configs/revcol/revcol_t_in1k.py',
           'configs/slak/slak_t_in1k.py']


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=CONFIGS)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch and onnxruntime intra-op threads '
                        '(default: torch\'s current)')
    parser.add_argument('--fp16', action='store_true',
                        help='also onnxruntime fp16: model error and GRN/LN probe')
    args = parser.parse_args(argv)
    for name in ('size', 'warmup', 'repeats', 'threads'):
        value = getattr(args, name)
        if value is not None and value < (0 if name == 'warmup' else 1):
            parser.error(f'--{name} must be >= {0 if name == "warmup" else 1}, got {value}')
    if min(args.batch_sizes) < 1:
        parser.error(f'--batch-sizes must be >= 1, got {args.batch_sizes}')
    return args


def has_deploy_form(model: nn.Module) -> bool:
    return any(callable(getattr(m, 'switch_to_deploy', None)) for m in model.modules())


def prepare(config: str, work_dir: str, size: int):
    """(name, form, torch module, onnx path) of one config, exported."""
    path = config if osp.isabs(config) else osp.join(REPO, config)
    if not osp.isfile(path):
        raise SystemExit(f'no such config: {config}')
    args = argparse.Namespace(config=path, cfg_options=None, checkpoint=None)
    _, model = export_onnx.build_model(args)
    form = 'train'
    if has_deploy_form(model):
        export_onnx.to_deploy(model, has_checkpoint=False, force=False)
        form = 'deploy'
    module, kind = export_onnx.select_part(model, 'auto', config)
    if kind != 'logits':
        raise SystemExit(f'{config}: this benchmark times classifiers; '
                         f'it exports {kind}')
    module.eval()
    name = osp.basename(config)[:-3]
    out = osp.join(work_dir, f'{name}.onnx')
    torch.manual_seed(0)
    export_onnx.export(module, torch.randn(2, 3, size, size), out, ['logits'],
                       export_onnx.DEFAULT_OPSET, dynamic_batch=True)
    return name, form, module, out


def interleaved(torch_fn, ort_fn, warmup: int, repeats: int) -> Dict[str, float]:
    """Median seconds of each and the median per-pair ratio torch/ort."""
    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    for _ in range(warmup):
        timed(torch_fn), timed(ort_fn)
    times = dict(torch=[], ort=[])
    for i in range(repeats):
        for engine in (('torch', 'ort') if i % 2 == 0 else ('ort', 'torch')):
            times[engine].append(timed(torch_fn if engine == 'torch' else ort_fn))
    return dict(torch=statistics.median(times['torch']),
                ort=statistics.median(times['ort']),
                ratio=statistics.median(t / o for t, o in zip(times['torch'], times['ort'])))


def rel_diff(ref: torch.Tensor, got) -> float:
    got = torch.as_tensor(got).double()
    return ((got - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-12)).item()


def bench_one(module: nn.Module, onnx_path: str, size: int, batch_sizes: Sequence[int],
              warmup: int, repeats: int) -> List[Dict]:
    session = export_onnx.ort_session(onnx_path)
    rows = []
    for batch in batch_sizes:
        torch.manual_seed(batch)
        x = torch.randn(batch, 3, size, size)
        feed = {'input': x.numpy()}
        outs = {}

        def run_torch():
            with torch.no_grad():
                outs['torch'] = module(x)

        def run_ort():
            outs['ort'] = session.run(None, feed)[0]

        timing = interleaved(run_torch, run_ort, warmup, repeats)
        rows.append(dict(batch=batch, **timing, diff=rel_diff(outs['torch'], outs['ort'])))
    return rows


def to_fp16(onnx_path: str) -> str:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    out = onnx_path[:-5] + '_fp16.onnx'
    onnx.save(convert_float_to_float16(onnx.load(onnx_path), keep_io_types=True), out)
    return out


class GRNBlockTail(nn.Module):
    """What ConvNeXt V2's block computes around GRN (channel-last, after pwconv1 + GELU)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        from mmconvarch.models.backbones.convnextv2 import FP32GRN
        self.grn = FP32GRN(channels)
        with torch.no_grad():  # trained-like affine: GRN's gamma/beta are not zero
            self.grn.gamma.normal_(0, 0.5)
            self.grn.beta.normal_(0, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.grn(x, data_format='channel_last')


class ChannelLayerNorm(nn.Module):
    """ConvNeXt's channel-last LayerNorm (the block's first norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def fp16_probe(work_dir: str, shapes=((56, 56), (200, 336)), scales=(1., 64., 1024., 1e5)
               ) -> List[Dict]:
    """GRN and LayerNorm alone, fp32 ONNX -> fp16 (onnxruntime's converter), run on the
    CPU, vs PyTorch fp32, on (1, H, W, C) activations of RMS ``scale``. Stage-1 sizes:
    56x56 (224 px), 200x336 (800x1344 px); GRN at C=384 (ConvNeXt V2-T's 4*96
    hidden width), LayerNorm at C=96 with a per-channel mean offset of ``scale``
    (what makes a fp16 sum of squares overflow).

    What this measures on the CPU: onnxruntime's CPU provider has no fp16
    kernels for GRN's ops (Mul, ReduceSum, Sqrt, Div), so it runs them in fp32
    between Casts it inserts and drops the Cast pairs that cancel: GRN keeps
    only the fp16 rounding of gamma/beta and cannot overflow. LayerNormalization
    has an fp16 CPU kernel: its input is cast to fp16 (overflows beyond 65504).
    GPU backends that compute in fp16 do not behave like this (see the README)."""
    rows = []
    for op, channels, module in (('GRN', 384, GRNBlockTail(384)),
                                 ('LayerNorm', 96, ChannelLayerNorm(96))):
        module.eval()
        path = osp.join(work_dir, f'probe_{op}.onnx')
        dims = {'x': {1: torch.export.Dim('h', min=2), 2: torch.export.Dim('w', min=2)}}
        with torch.no_grad():
            torch.onnx.export(module, (torch.randn(1, 8, 8, channels), ), dynamo=True,
                              input_names=['input'], output_names=['out'],
                              opset_version=export_onnx.DEFAULT_OPSET,
                              dynamic_shapes=dims).save(path)
        session = export_onnx.ort_session(to_fp16(path))
        for h, w in shapes:
            for scale in scales:
                g = torch.Generator().manual_seed(0)
                x = torch.randn(1, h, w, channels, generator=g) * scale
                if op == 'LayerNorm':
                    x = x / 4 + scale * torch.rand(channels, generator=g)
                with torch.no_grad():
                    ref = module(x)
                got = torch.from_numpy(session.run(None, {'input': x.numpy()})[0])
                rows.append(dict(op=op, hw=f'{h}x{w}', scale=scale,
                                 finite=bool(torch.isfinite(got).all()),
                                 diff=rel_diff(ref, got.nan_to_num(posinf=1e30, neginf=-1e30))))
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    table = [f'PyTorch {torch.__version__} vs onnxruntime '
             f'{__import__("onnxruntime").__version__} (CPUExecutionProvider), '
             f'{args.size} px, {threads} thread(s), median of {args.repeats} after '
             f'{args.warmup} warm-up, interleaved', '',
             '| config | form | batch | PyTorch ms | onnxruntime ms | torch/ort | max rel diff |',
             '|---|---|---:|---:|---:|---:|---:|']
    fp16_rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for config in args.configs:
            name, form, module, path = prepare(config, work_dir, args.size)
            for row in bench_one(module, path, args.size, args.batch_sizes,
                                 args.warmup, args.repeats):
                line = (f'| {name} | {form} | {row["batch"]} | {row["torch"] * 1e3:.1f} | '
                        f'{row["ort"] * 1e3:.1f} | {row["ratio"]:.2f} | {row["diff"]:.1e} |')
                table.append(line)
                print(line, flush=True)
            if args.fp16:
                fp16 = bench_one(module, to_fp16(path), args.size, [1], min(args.warmup, 1),
                                 max(1, args.repeats // 4))[0]
                fp16_rows.append(f'| {name} | {form} | {fp16["ort"] * 1e3:.1f} | '
                                 f'{fp16["diff"]:.1e} |')
        if args.fp16:
            probe = fp16_probe(work_dir)
    print('\n'.join(['', *table]))
    if args.fp16:
        print('\n'.join([
            '', 'onnxruntime fp16 (converted, fp32 I/O) vs PyTorch fp32, batch 1:', '',
            '| config | form | fp16 ort ms | max rel diff |', '|---|---|---:|---:|',
            *fp16_rows, '',
            'GRN / LayerNorm alone in fp16 onnxruntime (input RMS = scale):', '',
            '| op | H x W | scale | finite | max rel diff |', '|---|---|---:|---|---:|',
            *(f'| {r["op"]} | {r["hw"]} | {r["scale"]:g} | {r["finite"]} | {r["diff"]:.1e} |'
              for r in probe)]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
