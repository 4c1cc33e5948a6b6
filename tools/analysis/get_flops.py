"""FLOPs and parameters of a config's model (or its backbone) via
``mmengine.analysis``, on a dummy input of the given shape.

    python tools/analysis/get_flops.py CONFIG [--shape H W] [--backbone-only]
        [--inference-only] [--deploy] [--checkpoint CKPT] [--nonzero]
        [--density D [--sparse-init ERK|uniform]] [--params-only]

What is counted (one FLOP = one multiply-add, mmengine's convention):

- default: every parameter of the built model (training-only heads
  included, as mmdet/mmseg count), the FLOPs of its tensor forward;
- ``--inference-only``: only the parameters the output depends on (found
  by autograd), so training-only parts drop out: RevCol's intermediate-
  supervision heads and decoders, mmseg's auxiliary heads;
- ``--deploy``: after ``switch_to_deploy()`` (VanillaNet's fused convs,
  SLaK's merged kernels). The paper counts VanillaNet in this form; SLaK in
  its decomposed training form (the merged KxK kernel costs more);
- ``--nonzero``: 2-D/4-D weights count their non-zeros, and each layer's
  FLOPs scale by its weight density (unstructured sparse MACs = non-zeros x
  output positions); 1-D parameters (norms, biases) count in full. Use it
  with a sparse ``--checkpoint`` (a trained SLaK, or a file of
  ``tools/deploy/sparse_export.py``);
- ``--density D``: on a randomly initialised model, first draw masks at
  density D as the config's ``SparseRegrowHook`` would (its module and
  include/exclude settings; the backbone when the config has none), with
  ``--sparse-init`` layer densities, then count as ``--nonzero``.
  ``uniform`` (default: every layer at D) gives the papers' "dense x D"
  figures; ``ERK`` keeps the small layers denser, and they carry many FLOPs
  (SLaK-T: 5.26 G uniform, 7.18 G ERK; the same 30.5 M parameters). SNIP,
  the config's own, needs training data: count a trained checkpoint instead;
- ``--params-only``: parameters only, no forward (so no FLOPs; any model,
  e.g. a whole detector); built on the meta device (no memory, instant)
  unless ``--deploy``/``--checkpoint``/``--nonzero``/``--density`` need
  values.
"""
import argparse
import os.path as osp
import sys
from contextlib import contextmanager
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple
from unittest import mock

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

SPARSE_INITS = ('uniform', 'ERK')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Count FLOPs and params',
        epilog='Paper counts: RevCol --inference-only; VanillaNet --deploy; '
        'SLaK --density 0.6 (or --nonzero --checkpoint SPARSE.pth).')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[224, 224],
                        help='input H W (one value means square)')
    parser.add_argument('--backbone-only', action='store_true',
                        help='count the backbone alone')
    parser.add_argument('--inference-only', action='store_true',
                        help='count only parameters the output depends on '
                        '(no training-only heads)')
    parser.add_argument('--deploy', action='store_true',
                        help='count the deploy (re-parameterised) form')
    parser.add_argument('--checkpoint', default=None,
                        help='load these weights first (our layout, or a '
                        'sparse_export.py file)')
    parser.add_argument('--nonzero', action='store_true',
                        help='count non-zero weights and scale FLOPs by '
                        'layer density')
    parser.add_argument('--density', type=float, default=None,
                        help='mask a random-init model at this density '
                        'first (implies --nonzero)')
    parser.add_argument('--sparse-init', default='uniform',
                        choices=SPARSE_INITS,
                        help='layer densities for --density: uniform (every '
                        'layer at D, the papers\' "x density" count) or ERK '
                        '(where sparse training starts)')
    parser.add_argument('--params-only', action='store_true',
                        help='parameters only (no forward; meta device when '
                        'no values are needed)')
    parser.add_argument('--cfg-options', nargs='+', default=None,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    try:
        check_options(shape=args.shape, density=args.density,
                      params_only=args.params_only,
                      checkpoint=args.checkpoint, nonzero=args.nonzero,
                      inference_only=args.inference_only)
    except ValueError as err:
        parser.error(str(err))
    return args


def check_options(shape: Sequence[int], density: Optional[float],
                  params_only: bool, checkpoint: Optional[str],
                  nonzero: bool, inference_only: bool) -> None:
    """One ``ValueError`` naming the bad option and what is valid."""
    if len(shape) not in (1, 2) or any(s < 1 for s in shape):
        raise ValueError(f'--shape takes H W or one size, positive; got '
                         f'{list(shape)}.')
    if density is not None and not 0 < density <= 1:
        raise ValueError(f'--density must be in (0, 1] (1 - sparsity; SLaK: '
                         f'0.6), got {density}.')
    if density is not None and checkpoint is not None:
        raise ValueError('--density draws masks on random weights; with '
                         '--checkpoint use --nonzero to count its zeros.')
    if params_only and inference_only:
        raise ValueError('--params-only runs no forward, and '
                         '--inference-only needs one (to see which '
                         'parameters the output uses): use one of them.')


@contextmanager
def _on_meta():
    """Build on the meta device; ``torch.linspace`` stays on the CPU (RevCol
    and SLaK read their drop-path schedule back with ``.tolist()``)."""
    with torch.device('meta'), mock.patch.object(
            torch, 'linspace', partial(torch.linspace, device='cpu')):
        yield


def _build(cfg, meta: bool) -> nn.Module:
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS
    if meta:
        with _on_meta():
            return MODELS.build(cfg.model)
    return revert_sync_batchnorm(MODELS.build(cfg.model))


def _load(model: nn.Module, checkpoint: str) -> None:
    """Load our layout (``state_dict`` or a bare dict, ``module.`` prefixes
    dropped) or a ``sparse_export.py`` file, strictly."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmconvarch.checkpoint import enable_safe_checkpoint_loading, find_weights
    from mmconvarch.sparsity.export import FORMAT, decompress_state_dict
    enable_safe_checkpoint_loading()  # runner checkpoints on torch>=2.6, safely
    raw = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    if isinstance(raw, dict) and raw.get('format') == FORMAT:
        state = decompress_state_dict(raw)
    else:
        state = find_weights(raw)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [k for k in own if k in state and
                 tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshapen:
        def some(keys):
            return f'{len(keys)} (e.g. {", ".join(keys[:3])})'
        problems = [f'{what} keys: {some(keys)}' for what, keys in (
            ('missing', missing), ('unexpected', unexpected),
            ('misshapen', misshapen)) if keys]
        raise ValueError(
            f'{checkpoint} does not fit the model of this config: '
            f'{"; ".join(problems)}. It must hold the whole model in our '
            'layout; convert official checkpoints first with '
            'tools/model_converters/convert.py FAMILY SRC DST.')
    model.load_state_dict(state, strict=True)


def _mask_like_hook(cfg, model: nn.Module, density: float,
                    sparse_init: str) -> Tuple[str, Dict[str, int]]:
    """Zero weights as the config's SparseRegrowHook would at density
    ``density``. Returns the name of the masked module ('' = all) and the
    kept count of every masked parameter (by full name): the masks, not the
    zeros, since random init draws a few exact zeros of its own."""
    from mmconvarch.sparsity import SparseMasking
    hook = next((h for h in cfg.get('custom_hooks', [])
                 if str(h.get('type', '')).endswith('SparseRegrowHook')),
                None)
    keys = ('only_large_kernel', 'include', 'exclude', 'dense_threshold',
            'erk_power_scale', 'seed')
    kwargs = {k: hook[k] for k in keys if hook and k in hook}
    module = hook.get('module') if hook else 'backbone'
    if module and not hasattr(model, module):
        module = None  # --backbone-only: the target is the backbone
    target = model.get_submodule(module) if module else model
    engine = SparseMasking(target, density=density, sparse_init=sparse_init,
                           update_frequency=None, **kwargs)
    engine.init_masks()
    prefix = f'{module}.' if module else ''
    return module or '', {prefix + name: int(mask.sum())
                          for name, mask in engine.masks.items()}


def _outputs(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _outputs(o)]
    return []


def inference_parameters(model: nn.Module, inputs: torch.Tensor) -> set:
    """Names of the parameters the output of ``model(inputs)`` depends on
    (one forward and backward; frozen parameters included)."""
    named = list(model.named_parameters())
    flags = [p.requires_grad for _, p in named]
    for _, p in named:
        p.requires_grad_(True)
    try:
        with torch.enable_grad():
            outs = _outputs(model(inputs))
            if not outs:
                raise ValueError(f'{type(model).__name__} returned no '
                                 'floating-point tensor to trace.')
            total = sum(o.float().sum() for o in outs)
            grads = torch.autograd.grad(total, [p for _, p in named],
                                        allow_unused=True)
    finally:
        for (_, p), flag in zip(named, flags):
            p.requires_grad_(flag)
    return {n for (n, _), g in zip(named, grads) if g is not None}


def _excluded_modules(model: nn.Module, used: set) -> Dict[str, int]:
    """The outermost modules none of whose parameters are used, with their
    parameter counts."""
    total: Dict[str, int] = {}
    unused: Dict[str, int] = {}
    for name, p in model.named_parameters():
        parts = name.split('.')
        for k in range(len(parts)):
            prefix = '.'.join(parts[:k])
            total[prefix] = total.get(prefix, 0) + p.numel()
            if name not in used:
                unused[prefix] = unused.get(prefix, 0) + p.numel()
    fully = {m for m, n in unused.items() if n == total[m]}
    out = {}
    for m in sorted(fully, key=len):
        parent = m.rsplit('.', 1)[0] if '.' in m else ''
        if m and parent not in fully:
            out[m] = unused[m]
    loose = [n for n, _ in model.named_parameters()
             if n not in used and not any(n.startswith(m + '.') for m in out)]
    for n in loose:  # single unused parameters of used modules
        out[n] = model.get_parameter(n).numel()
    return out


def _kept(name: str, p: torch.Tensor, nonzero: bool,
          kept: Optional[Dict[str, int]]) -> int:
    """Entries counted of parameter ``name``: its mask's count under
    ``--density``, its non-zeros under ``--nonzero`` (2-D/4-D only), else
    all."""
    if kept is not None:
        return kept.get(name, p.numel())
    if nonzero and p.ndim in (2, 4):
        return int(torch.count_nonzero(p))
    return p.numel()


def _sparse_flops(flops, target: nn.Module, total: int,
                  kept: Optional[Dict[str, int]]) -> int:
    """Scale each leaf layer's FLOPs by the density of its 2-D/4-D weight."""
    by_module = flops.by_module()
    for name, module in target.named_modules():
        weight = module._parameters.get('weight')
        if weight is None or weight.ndim not in (2, 4) or \
                next(module.children(), None) is not None:
            continue
        pname = f'{name}.weight' if name else 'weight'
        density = _kept(pname, weight, True, kept) / weight.numel()
        total -= round(by_module.get(name, 0) * (1 - density))
    return total


def count(config: str, shape, backbone_only: bool = False,
          cfg_options=None, inference_only: bool = False,
          deploy: bool = False, checkpoint: Optional[str] = None,
          nonzero: bool = False, density: Optional[float] = None,
          sparse_init: str = 'uniform', params_only: bool = False,
          show_table: bool = False) -> dict:
    """Return ``dict(flops=, params=, table=, shape=, excluded=,
    masked=, deployed=)`` for the config's model (see the module doc).

    ``flops`` is None with ``params_only``; ``excluded`` maps the modules
    left out by ``inference_only`` to their parameter counts; ``table``
    (mmengine's per-module table, dense counts) is filled with
    ``show_table``.
    """
    import mmconvarch  # noqa: F401
    from mmengine.analysis import FlopAnalyzer
    from mmengine.analysis.print_helper import complexity_stats_table
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope

    from mmconvarch.deploy import switch_to_deploy

    check_options(shape=shape, density=density, params_only=params_only,
                  checkpoint=checkpoint, nonzero=nonzero,
                  inference_only=inference_only)
    if sparse_init not in SPARSE_INITS:
        raise ValueError(f'sparse_init must be one of {SPARSE_INITS}, got '
                         f'{sparse_init!r} (SNIP needs training data).')
    cfg = Config.fromfile(config)
    if cfg_options:
        action = DictAction(option_strings=[], dest='cfg_options')
        ns = argparse.Namespace()
        action(None, ns, cfg_options)
        cfg.merge_from_dict(ns.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    if 'backbone' in cfg.model:
        cfg.model.backbone.init_cfg = None
    needs_values = deploy or checkpoint or nonzero or density is not None
    model = _build(cfg, meta=params_only and not needs_values).eval()
    if checkpoint:
        _load(model, checkpoint)
    deployed = []
    if deploy:
        try:  # counting needs the structure only, not exact outputs
            deployed = switch_to_deploy(model, force=True)
        except ValueError as err:
            raise ValueError(f'--deploy: {err} Only SLaK and VanillaNet '
                             'have a deploy form.') from None
    target = model.backbone if backbone_only else _TensorForward(model)
    masked, kept = None, None
    if density is not None:
        masked, kept = _mask_like_hook(
            cfg, target if backbone_only else model, density, sparse_init)
        if not backbone_only:  # names as seen from the counted target
            kept = {f'model.{n}': k for n, k in kept.items()}
        nonzero = True
    if len(shape) == 1:
        shape = [shape[0], shape[0]]
    result = dict(shape=tuple(shape), excluded={}, masked=masked,
                  deployed=deployed, flops=None, table='')
    params = dict(target.named_parameters())
    if params_only:
        result['params'] = sum(_kept(n, p, nonzero, kept)
                               for n, p in params.items())
        return result
    inputs = torch.randn(1, 3, *shape)
    used = set(params)
    try:
        if inference_only:
            used = inference_parameters(target, inputs)
            result['excluded'] = _excluded_modules(target, used)
        with torch.no_grad():
            flops = FlopAnalyzer(target, (inputs, ))
            flops.unsupported_ops_warnings(False)
            flops.uncalled_modules_warnings(False)
            total = flops.total()
    except TypeError as err:  # e.g. mmdet detectors, Mask2Former
        raise ValueError(
            f'the tensor forward of {type(model).__name__} needs data samples '
            f'({err}): count its backbone with --backbone-only and the whole '
            'model\'s parameters with --params-only.') from err
    result['params'] = sum(_kept(n, params[n], nonzero, kept) for n in used)
    with torch.no_grad():
        if show_table:  # per-module (dense) counts; seconds for big models
            result['table'] = complexity_stats_table(flops,
                                                     show_param_shapes=True)
    result['flops'] = _sparse_flops(flops, target, total, kept) \
        if nonzero else total
    return result


class _TensorForward(nn.Module):

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        result = count(args.config, args.shape, args.backbone_only,
                       args.cfg_options, inference_only=args.inference_only,
                       deploy=args.deploy, checkpoint=args.checkpoint,
                       nonzero=args.nonzero, density=args.density,
                       sparse_init=args.sparse_init,
                       params_only=args.params_only, show_table=True)
    except ValueError as err:
        raise SystemExit(f'get_flops.py: error: {err}') from None
    if result['table']:
        print(result['table'])
    what = 'Backbone' if args.backbone_only else 'Model'
    notes = []
    if result['deployed']:
        notes.append('deploy form')
    if result['masked'] is not None:
        notes.append(f'masked at density {args.density} '
                     f'({args.sparse_init}) in '
                     f'{result["masked"] or "the whole model"}')
    if args.nonzero or result['masked'] is not None:
        notes.append('non-zero weights, FLOPs scaled by layer density')
    if args.inference_only:
        notes.append('inference graph only')
    print(f'{what} of {args.config}' +
          (f' ({"; ".join(notes)})' if notes else ''))
    for name, num in result['excluded'].items():
        print(f'  not in the inference graph: {name} ({num / 1e6:.3f} M)')
    if result['flops'] is not None:
        print(f'Input shape: {result["shape"]}\n'
              f'FLOPs: {result["flops"] / 1e9:.3f} G')
    print(f'Params: {result["params"] / 1e6:.3f} M')


if __name__ == '__main__':
    main()
