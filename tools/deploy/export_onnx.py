"""Export a config's model to ONNX and check it against PyTorch.

    python tools/deploy/export_onnx.py CONFIG [--checkpoint CKPT] --out OUT.onnx
        [--shape H W] [--dynamic-batch] [--deploy] [--verify] [--opset N]
        [--part auto|model|backbone|neck] [--cfg-options KEY=VALUE ...]

What is exported (``--part auto``):

- classification configs (mmpretrain ``ImageClassifier``, incl.
  ``RevColClassifier``): ``input`` (N, 3, H, W), already normalised (the data
  preprocessor's mean/std are not in the graph) -> ``logits`` (N, classes),
  i.e. ``model(inputs, mode='tensor')`` = backbone -> neck -> head
  (``pre_logits`` + ``fc``), no softmax.
- dense configs (mmdet / mmseg: Cascade Mask R-CNN, UperNet, Mask2Former):
  backbone (+ neck where the config has one, e.g. FPN) with named multi-level
  outputs ``feat{i}`` (``i`` = the backbone's ``out_indices``) or ``neck{k}``.
  The heads / post-processing are not exported (see the README).
- self-supervised FCMAE configs have no classifier: refused unless
  ``--part backbone`` (the dense encoder, no mask).

``--deploy`` converts in place with :func:`mmconvarch.deploy.switch_to_deploy`
first (SLaK: merged large kernels; VanillaNet: fused convs/BN, one conv per
block). Without ``--checkpoint`` VanillaNet's λ is set to 1 (end of annealing)
so the fusion is exact; with one, a checkpoint before the end of annealing is
refused unless ``--force``.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch 2.14's default, the
``torch.export`` based exporter; the TorchScript exporter is deprecated),
opset 18 by default (``--opset``). Export runs under ``torch.no_grad()`` in
eval mode, so RevCol takes its plain (non-reversible) path and clamps its
alphas functionally: the graph writes no parameter.

``--verify`` runs onnxruntime (CPU) on a seeded random input and prints
``max |onnx - torch| diff <abs> (rel <rel>)`` as its last line (rel = abs /
max |torch|, worst output); the exit status is 1 beyond 1e-4 relative.
"""
import argparse
import copy
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

DEFAULT_OPSET = 18
REL_TOL = 1e-4


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Export a config to ONNX (and verify with onnxruntime)')
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights (default: random init)')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--shape', type=int, nargs=2, default=(224, 224),
                        metavar=('H', 'W'), help='input size (default 224)')
    parser.add_argument('--batch', type=int, default=None,
                        help='example batch (default 1; 2 with --dynamic-batch)')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='symbolic batch dimension')
    parser.add_argument('--deploy', action='store_true',
                        help='export the re-parameterised (deploy) form')
    parser.add_argument('--force', action='store_true',
                        help='--deploy even where fusion changes outputs')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET)
    parser.add_argument('--part', default='auto',
                        choices=['auto', 'model', 'backbone', 'neck'],
                        help='auto: logits for classifiers, backbone(+neck) '
                        'for dense models; neck: backbone + neck')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. '
                        'model.backbone.arch.dims=[32,64,128,256]')
    return parser.parse_args(argv)


class Logits(nn.Module):
    """``input -> logits`` of an mmpretrain classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x, mode='tensor')
        return out[-1] if isinstance(out, (tuple, list)) else out


class Features(nn.Module):
    """``input -> (feat_0, ..., feat_k)``: backbone (+ neck)."""

    def __init__(self, backbone: nn.Module,
                 neck: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.backbone, self.neck = backbone, neck

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats) if isinstance(feats, (tuple, list)) else (feats, )


def build_model(args: argparse.Namespace):
    from mmconvarch.launch import build_model_from_config
    return build_model_from_config(args.config, args.checkpoint, args.cfg_options)


def is_classifier(model: nn.Module) -> bool:
    try:
        from mmpretrain.models.classifiers import ImageClassifier
    except ImportError:
        return False
    return isinstance(model, ImageClassifier)


def is_self_supervised(model: nn.Module) -> bool:
    try:
        from mmpretrain.models.selfsup import BaseSelfSupervisor
    except ImportError:
        return False
    return isinstance(model, BaseSelfSupervisor)


def select_part(model: nn.Module, part: str, config: str
                ) -> Tuple[nn.Module, str]:
    """The module to export and what it is (``logits``/``features``)."""
    neck = getattr(model, 'neck', None) if getattr(
        model, 'with_neck', False) else None
    if part == 'auto':
        if is_classifier(model):
            part = 'model'
        elif is_self_supervised(model):
            raise SystemExit(
                f'{config} is a self-supervised (FCMAE) pre-training config: '
                'it has no classifier to export. Export its fine-tuning config '
                '(e.g. configs/convnextv2/convnextv2_t_in1k.py), or the encoder '
                'alone with --part backbone.')
        else:  # mmdet / mmseg: backbone (+ neck)
            part = 'neck' if neck is not None else 'backbone'
    if part == 'model':
        if not is_classifier(model):
            raise SystemExit(
                f'--part model exports classifiers only; {type(model).__name__}'
                ' (dense) exports its backbone (+ neck): use --part auto, '
                'backbone or neck.')
        return Logits(model), 'logits'
    if part == 'neck':
        if neck is None:
            raise SystemExit(f'{type(model).__name__} has no neck: use '
                             '--part backbone.')
        return Features(model.backbone, neck), 'neck'
    return Features(model.backbone), 'backbone'


def output_names(kind: str, backbone: nn.Module, num: int) -> List[str]:
    if kind == 'logits':
        return ['logits']
    if kind == 'backbone':
        indices = list(getattr(backbone, 'out_indices', []) or [])
        if len(indices) == num:
            return [f'feat{int(i)}' for i in indices]
        return [f'feat{i}' for i in range(num)]
    return [f'neck{i}' for i in range(num)]


def to_deploy(model: nn.Module, has_checkpoint: bool, force: bool
              ) -> List[str]:
    from mmconvarch.deploy import switch_to_deploy
    from mmconvarch.models.backbones.vanillanet import (get_act_learn,
                                                         set_act_learn)
    if not has_checkpoint and get_act_learn(model):
        set_act_learn(model, 1.)  # random weights: "annealing finished"
        print('random weights: VanillaNet act_learn (λ) set to 1 (end of '
              'annealing) so that --deploy is exact')
    return switch_to_deploy(model, force=force)


def export(module: nn.Module, example: torch.Tensor, out: str, names: List[str],
           opset: int, dynamic_batch: bool) -> None:
    kwargs = {}
    if dynamic_batch:
        kwargs['dynamic_shapes'] = {'x': {0: torch.export.Dim('batch', min=1)}}
    big = sum(p.numel() * p.element_size() for p in module.parameters()) > 1.8e9
    with torch.no_grad():
        program = torch.onnx.export(
            module, (example, ), dynamo=True, verbose=False, input_names=['input'],
            output_names=names, opset_version=opset, external_data=big,
            **kwargs)
    program.save(out, external_data=big)


def ort_session(path: str):
    """An onnxruntime CPU session with as many intra-op threads as torch."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(torch.get_num_threads(), 1)
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])


def run_onnx(path: str, x: torch.Tensor) -> List:
    sess = ort_session(path)
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})


def compare(ref: Sequence[torch.Tensor], got: Sequence, names: Sequence[str]
            ) -> Tuple[float, float]:
    """The worst max abs diff and the worst relative one (abs / max|ref|)
    over the outputs."""
    worst_abs = worst_rel = 0.
    for name, r, g in zip(names, ref, got):
        r = r.detach().double()
        g = torch.from_numpy(g).double()
        if r.shape != g.shape:
            raise SystemExit(f'{name}: onnx shape {tuple(g.shape)} != torch '
                             f'{tuple(r.shape)}')
        diff = (r - g).abs().max().item()
        rel = diff / max(r.abs().max().item(), 1e-12)
        print(f'  {name}: shape {tuple(r.shape)} max abs {diff:.3e} '
              f'rel {rel:.3e}')
        worst_abs, worst_rel = max(worst_abs, diff), max(worst_rel, rel)
    return worst_abs, worst_rel


def main(argv=None) -> int:
    args = parse_args(argv)
    _, model = build_model(args)
    reference = None
    if args.deploy:
        reference = copy.deepcopy(model) if args.verify else None
        names = to_deploy(model, args.checkpoint is not None, args.force)
        print(f'deploy form: converted {names}')
    module, kind = select_part(model, args.part, args.config)
    module.eval()
    batch = args.batch or (2 if args.dynamic_batch else 1)
    h, w = args.shape
    torch.manual_seed(args.seed)
    example = torch.randn(batch, 3, h, w)
    with torch.no_grad():
        ref = module(example)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    names = output_names(kind, model.backbone, len(ref))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    start = time.perf_counter()
    export(module, example, args.out, names, args.opset, args.dynamic_batch)
    took = time.perf_counter() - start
    print(f'exported {kind} ({", ".join(names)}) of {args.config} to '
          f'{args.out}: opset {args.opset}, dynamo exporter, '
          f'{"dynamic" if args.dynamic_batch else "static"} batch, '
          f'{took:.1f} s')
    if not args.verify:
        return 0
    if reference is not None:  # how far the deploy form is from training's
        train_form, _ = select_part(reference, args.part, args.config)
        with torch.no_grad():
            train_out = train_form.eval()(example)
        train_out = train_out if isinstance(train_out, tuple) else (train_out, )
        err = max((a - b).abs().max().item() for a, b in zip(train_out, ref))
        print(f'deploy vs train form (torch): max abs diff {err:.3e}')
    torch.manual_seed(args.seed + 1)  # a fresh input, not the traced one
    x = torch.randn(batch + 1 if args.dynamic_batch else batch, 3, h, w)
    with torch.no_grad():
        ref = module(x)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    got = run_onnx(args.out, x)
    worst_abs, worst_rel = compare(ref, got, names)
    print(f'max |onnx - torch| diff {worst_abs:.3e} (rel {worst_rel:.3e})')
    return 0 if worst_rel <= REL_TOL else 1


if __name__ == '__main__':
    sys.exit(main())
