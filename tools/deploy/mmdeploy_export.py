"""End-to-end ONNX export of a segmentor (UperNet) with mmdeploy 1.3.1.

    python tools/deploy/mmdeploy_export.py CONFIG --work-dir DIR [--checkpoint CKPT]
        [--shape H W] [--logits] [--verify] [--cfg-options KEY=VALUE ...]

Writes ``DIR/end2end.onnx``: ``input`` (1, 3, H, W), normalised -> ``output``,
the label map (1, 1, H, W) (``--logits``: the resized logits (1, C, H, W)),
i.e. mmdeploy's ``segmentation_onnxruntime_static-HxW`` deploy config, inlined
below (the configs ship in mmdeploy's repository, not its wheel). mmdeploy is
optional: ``pip install -r requirements/deploy.txt`` (see that file for why
``--no-deps``).

Exporter: mmdeploy's rewriters are TorchScript symbolics, so the export runs
``torch.onnx.export(..., dynamo=False)`` (torch 2.14 defaults to the dynamo
exporter, which mmdeploy 1.3.1 does not ask for), opset 11.

``--verify`` runs onnxruntime on the exported input and compares it with
PyTorch twice: under mmdeploy's rewrites (what was traced), then plain mmseg
(``encode_decode``, what the model computes); each prints
``max |onnx - torch| diff A (labels agree P%)`` (``--logits``: ``(rel R)``),
the plain one last; exit 1 unless both agree on >= 99.99% of the labels
(relative diff <= 1e-4).

``--shape`` is static and, for UperNet, a multiple of 192 (``check_shape``).

Cascade Mask R-CNN (mmdet) configs are refused: see DETECTION_BLOCKERS.
"""
import argparse
import contextlib
import copy
import functools
import math
import os
import os.path as osp
import sys
from typing import Iterator

import numpy as np
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

REL_TOL = 1e-4  # the verification tolerance of tools/deploy/export_onnx.py
OPSET = 11  # mmdeploy's onnx_config default
LABEL_AGREE_PCT = 99.99  # random weights: near-tied logits may flip a pixel's argmax
DETECTION_BLOCKERS = (
    'mmdeploy 1.3.1 cannot export our Cascade Mask R-CNN configs on this stack: '
    '(1) torch.onnx.export defaults to the dynamo exporter in torch 2.14 and '
    'mmdeploy passes TorchScript-style dynamic_axes: "Detected mismatch between '
    'the structure of `inputs` and `dynamic_shapes`"; '
    '(2) with dynamo=False, mmdeploy\'s cascade_roi_head rewriter asserts '
    'bbox_head.reg_class_agnostic, and these configs (mmdet\'s ConvNeXt '
    '4conv1fc-giou 3x recipe) regress per class; '
    '(3) with class-agnostic heads, mmdeploy\'s RoIAlign symbolic imports '
    '_cast_Long from torch.onnx.symbolic_opset9, which torch 2.14 no longer has. '
    'Export the backbone + FPN instead: tools/deploy/export_onnx.py CONFIG '
    '--part neck.')


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='mmdeploy end-to-end ONNX export of a segmentor')
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True, help='writes end2end.onnx here')
    parser.add_argument('--checkpoint', help='weights (default: random init)')
    parser.add_argument('--shape', type=int, nargs=2, default=(576, 576),
                        metavar=('H', 'W'), help='static input size (default 576: '
                        'see check_shape)')
    parser.add_argument('--force', action='store_true',
                        help='export a --shape that check_shape refuses')
    parser.add_argument('--logits', action='store_true',
                        help='output the logits, not the argmax label map')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    return parser.parse_args(argv)


def segmentation_deploy_cfg(height: int, width: int, with_argmax: bool):
    """mmdeploy's ``segmentation_onnxruntime_static-HxW.py`` as a Config."""
    from mmengine.config import Config
    return Config(dict(
        onnx_config=dict(type='onnx', export_params=True,
                         keep_initializers_as_inputs=False, opset_version=OPSET,
                         save_file='end2end.onnx', input_names=['input'],
                         output_names=['output'], input_shape=[width, height],
                         optimize=False),
        codebase_config=dict(type='mmseg', task='Segmentation',
                             with_argmax=with_argmax),
        backend_config=dict(type='onnxruntime')))


@contextlib.contextmanager
def torchscript_exporter() -> Iterator[None]:
    """``torch.onnx.export`` with ``dynamo=False`` unless the caller says."""
    original = torch.onnx.export

    @functools.wraps(original)
    def export(*args, **kwargs):
        kwargs.setdefault('dynamo', False)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original


def check_config(cfg, config: str) -> None:
    if 'roi_head' in cfg.model:  # two-stage / cascade detectors
        raise SystemExit(f'{config}: {DETECTION_BLOCKERS}')
    if 'decode_head' not in cfg.model:
        raise SystemExit(
            f'{config} is not a segmentor (no decode_head): this tool exports '
            'mmseg configs (configs/*/upernet_*_ade20k.py); classifiers and '
            'backbones export with tools/deploy/export_onnx.py.')
    if cfg.model.decode_head.get('type') == 'Mask2FormerHead':
        raise SystemExit(f'{config}: Mask2Former is not exported end to end; use '
                         'tools/deploy/export_onnx.py CONFIG (backbone).')


def check_shape(cfg, shape, force: bool) -> None:
    """mmdeploy replaces ``adaptive_avg_pool2d`` by ``avg_pool2d`` with
    kernel = stride = floor(size / scale): the same as mmseg's pooling only
    where the stride-32 feature map is a multiple of every PPM pool scale."""
    scales = cfg.model.decode_head.get('pool_scales')
    if not scales or force:
        return
    multiple = 32 * math.lcm(*scales)
    if any(size % multiple for size in shape):
        raise SystemExit(
            f'--shape {shape[0]} {shape[1]}: UperNet pool scales {tuple(scales)} need H and '
            f'W multiples of {multiple} (32 x their lcm), else mmdeploy\'s avg_pool2d '
            'rewrite of adaptive_avg_pool2d pools other windows than mmseg (at 512x512: '
            'logits rel. diff 0.15, 97.6% of labels agree, random weights). Use e.g. '
            f'--shape {multiple * 3} {multiple * 3}, or --force.')


def main(argv=None) -> int:
    from mmengine.config import Config
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    check_config(cfg, args.config)
    check_shape(cfg, args.shape, args.force)
    try:
        from mmdeploy.apis import build_task_processor
        from mmdeploy.apis.onnx import export
        from mmdeploy.core import RewriterContext, patch_model
        from mmdeploy.utils import IR
    except ImportError as err:
        raise SystemExit(f'mmdeploy is not installed ({err}): pip install -r '
                         'requirements/deploy.txt (see that file)') from err
    from mmconvarch.launch import build_model_from_config
    # cfg-options applied, no downloads without a checkpoint
    cfg, model = build_model_from_config(args.config, args.checkpoint, args.cfg_options)
    h, w = args.shape
    deploy_cfg = segmentation_deploy_cfg(h, w, with_argmax=not args.logits)
    processor = build_task_processor(cfg, deploy_cfg, 'cpu')
    image = (np.random.RandomState(0).rand(h, w, 3) * 255).astype(np.uint8)
    data, inputs = processor.create_input(image, [w, h],
                                          data_preprocessor=model.data_preprocessor)
    inputs = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    metas = {'data_samples': data['data_samples'], 'mode': 'predict'}
    rewritten = plain = None
    if args.verify:  # before export: mmdeploy's export rebinds model.forward
        patched = patch_model(copy.deepcopy(model), cfg=deploy_cfg,
                              backend='onnxruntime', ir=IR.ONNX)
        with RewriterContext(cfg=deploy_cfg, backend='onnxruntime', ir=IR.ONNX,
                             opset=OPSET), torch.no_grad():
            rewritten = patched(inputs, **metas)
        with torch.no_grad():  # what mmseg itself computes (no rewrites)
            plain = model.encode_decode(inputs, [d.metainfo for d in metas['data_samples']])
        if not args.logits:
            plain = plain.argmax(dim=1, keepdim=True)
    os.makedirs(args.work_dir, exist_ok=True)
    out = osp.join(args.work_dir, 'end2end.onnx')
    with torchscript_exporter():
        export(model, inputs, input_metas=metas,
               output_path_prefix=out[:-len('.onnx')], backend='onnxruntime',
               input_names=['input'], output_names=['output'],
               context_info=dict(deploy_cfg=deploy_cfg), opset_version=OPSET,
               dynamic_axes=None, keep_initializers_as_inputs=False)
    print(f'exported {args.config} end to end ({"logits" if args.logits else "labels"},'
          f' {h}x{w}) to {out}: mmdeploy, TorchScript exporter, opset {OPSET}')
    if plain is None:
        return 0
    import onnxruntime as ort
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    got = torch.from_numpy(session.run(None, {'input': inputs.numpy()})[0])
    within = [check(got, reference.detach(), args.logits, what)
              for what, reference in (("PyTorch under mmdeploy's rewrites", rewritten),
                                      ('PyTorch (mmseg, no rewrites)', plain))]
    return 0 if all(within) else 1


def check(got: torch.Tensor, reference: torch.Tensor, logits: bool, what: str) -> bool:
    """Print the diff line (vs ``what``) and whether it is within tolerance."""
    if got.shape != reference.shape:
        raise SystemExit(f'onnx output {tuple(got.shape)} != {what} {tuple(reference.shape)}')
    diff = (got.double() - reference.double()).abs().max().item()
    print(f'vs {what}:')
    if logits:
        rel = diff / max(reference.abs().max().item(), 1e-12)
        print(f'max |onnx - torch| diff {diff:.3e} (rel {rel:.3e})')
        return rel <= REL_TOL
    agree = (got == reference).double().mean().item() * 100
    print(f'max |onnx - torch| diff {diff:.3e} (labels agree {agree:.4f}%)')
    return agree >= LABEL_AGREE_PCT


if __name__ == '__main__':
    sys.exit(main())
