"""Official checkpoint -> mmconvarch key maps, one module per family.

Each family registers a pure function ``convert(state_dict, **opts)``
returning ``(new_state_dict, backbone_cfg)`` (keys laid out as an mmpretrain
classifier: ``backbone.*``, ``head.fc.*``; the backbone config they fit) in
:mod:`mmconvarch.checkpoint.layouts`, through which the backbones load
official checkpoints directly. :func:`convert_checkpoint` checks the result
against that backbone, so a checkpoint of the wrong family is refused with
its missing/unexpected keys.
"""
from typing import Optional, Tuple

import torch

from ..layouts import (CONVERTERS, OFFICIAL_MARKERS, SIGNATURES,  # noqa: F401
                       AmbiguousArchWarning, StateDict, diff_keys, find_weights,
                       guess_family, register_converter, show_keys)


# official ConvNeXt block names -> mmpretrain ConvNeXtBlock's (RevCol, ConvNeXt V2)
BLOCK_RENAMES = {'dwconv': 'depthwise_conv', 'pwconv1': 'pointwise_conv1',
                 'pwconv2': 'pointwise_conv2'}


def official_head_key(key: str) -> str:
    """Our key of an official ConvNeXt-style classifier key: the pooled
    ``norm.*`` -> ``backbone.norm3.*``, ``head.*`` -> ``head.fc.*``; any
    other key is returned as is (left for the family check to report)."""
    name, _, tail = key.partition('.')
    if name == 'norm' and tail:
        return f'backbone.norm3.{tail}'
    if name == 'head' and tail:
        return f'head.fc.{tail}'
    return key


def extract_state_dict(checkpoint: dict, ema: bool = False) -> StateDict:
    """The tensors of an official or mmengine checkpoint's weights, found by
    :func:`~mmconvarch.checkpoint.layouts.find_weights` (``ema=True``: only
    its ``state_dict_ema``/``model_ema`` entry)."""
    return {k: v for k, v in find_weights(checkpoint, ema=ema).items()
            if torch.is_tensor(v)}


def check_against_backbone(state_dict: StateDict, backbone_cfg: dict,
                           family: str) -> None:
    """Raise ValueError listing missing/unexpected/misshapen backbone keys."""
    from mmconvarch.registry import MODELS
    reference = MODELS.build(dict(backbone_cfg)).state_dict()
    ours = {k[len('backbone.'):]: v for k, v in state_dict.items()
            if k.startswith('backbone.')}
    missing, unexpected, misshapen = map(sorted, diff_keys(reference, ours))
    if missing or unexpected or misshapen:
        raise ValueError(
            f'This does not look like an official {family} checkpoint for '
            f'{backbone_cfg}: missing keys {show_keys(missing, 8)}, unexpected keys '
            f'{show_keys(unexpected, 8)}, wrong shapes {show_keys(misshapen, 8)}.')


def check_family(state_dict: StateDict, family: str) -> None:
    """One ValueError if the keys look like another family's
    (:func:`~mmconvarch.checkpoint.layouts.guess_family`), naming it and
    the converter to use, before ``family``'s converter misreads them."""
    name = SIGNATURES.get(family, (family, None))[0]
    found = guess_family(state_dict)
    if found is None or found.startswith(name):
        return
    other = next((f for f, (n, _) in SIGNATURES.items() if found.startswith(n)), None)
    raise ValueError(
        f'Not an official {name} checkpoint (family {family!r}): its keys '
        f'look like a {found} checkpoint; convert it with family {other!r}, '
        f'or pass a {name} checkpoint.')


def convert_checkpoint(checkpoint: dict, family: str, ema: bool = False,
                       **opts) -> Tuple[StateDict, dict]:
    """Convert an official ``family`` checkpoint and check the result."""
    if family not in CONVERTERS:
        raise ValueError(f'No converter for {family!r}; available: '
                         f'{sorted(CONVERTERS)}.')
    state_dict = extract_state_dict(checkpoint, ema=ema)
    check_family(state_dict, family)
    new_state_dict, backbone_cfg = CONVERTERS[family](state_dict, **opts)
    check_against_backbone(new_state_dict, backbone_cfg, family)
    return new_state_dict, backbone_cfg


def save_converted(state_dict: StateDict, backbone_cfg: dict, path: str,
                   source: Optional[str] = None) -> None:
    """Save as mmpretrain does: pure tensors under ``state_dict``, so it
    loads with ``init_cfg=dict(type='Pretrained', prefix='backbone.')``."""
    torch.save(dict(state_dict=state_dict,
                    meta=dict(backbone=backbone_cfg, source=source)), path)


# every family registers itself in layouts.CONVERTERS (below the helpers they use)
from . import convnextv2, revcol, slak, vanillanet  # noqa: E402,F401
