"""Official checkpoint -> mmconvarch key maps, one module per family.

Each family registers a function ``convert(state_dict, **opts)`` returning
``(new_state_dict, backbone_cfg)``: keys laid out as an mmpretrain classifier
(``backbone.*``, ``head.fc.*``) and the backbone config they fit.
:func:`convert_checkpoint` checks the result against that backbone, so a
checkpoint of the wrong family is refused with its missing/unexpected keys.
"""
import re
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch

StateDict = Dict[str, torch.Tensor]
CONVERTERS: Dict[str, Callable[..., Tuple[StateDict, dict]]] = {}
# family -> regex matching a key only the official layout has
OFFICIAL_MARKERS: Dict[str, 're.Pattern'] = {}
# family -> (display name, regex matching keys of the family in any layout)
SIGNATURES: Dict[str, Tuple[str, 're.Pattern']] = {}
# where official and mmengine checkpoints keep their weights, in that order
WEIGHT_ENTRIES = ('model', 'state_dict', 'state_dict_ema', 'model_ema')


def register_converter(family: str, official_marker: Optional[str] = None,
                       signature: Optional[str] = None,
                       name: Optional[str] = None):
    """Register ``fn(state_dict) -> (state_dict, backbone_cfg)``.

    Args:
        family: The converter's name (``tools/model_converters/convert.py``).
        official_marker: A regex matching (``re.match``) a key only the
            official layout has; with it the family's backbones load official
            checkpoints directly, see :func:`convert_official_in_place`.
        signature: A regex found (``re.search``) in the keys of the family's
            checkpoints, official or ours; names the family of a checkpoint
            that does not fit a backbone (:func:`guess_family`).
        name: The family's display name. Defaults to ``family``.
    """
    def wrap(fn):
        CONVERTERS[family] = fn
        if official_marker:
            OFFICIAL_MARKERS[family] = re.compile(official_marker)
        if signature:
            SIGNATURES[family] = (name or family, re.compile(signature))
        return fn
    return wrap


def official_weights(checkpoint: dict) -> dict:
    """The weights entry of a checkpoint: its ``model``, ``state_dict``,
    ``state_dict_ema`` or ``model_ema`` dict (the first there; EMA-only
    official checkpoints keep their weights in the last two), with
    ``module.`` stripped; else the dict itself."""
    for key in WEIGHT_ENTRIES:
        if isinstance(checkpoint.get(key), dict):
            return {k[len('module.'):] if k.startswith('module.') else k: v
                    for k, v in checkpoint[key].items()}
    return checkpoint


def convert_official_in_place(state_dict: dict, family: str) -> bool:
    """Turn an official ``family`` checkpoint (or its ``model`` /
    ``state_dict_ema`` / ``model_ema`` entry) into our backbone keys, in
    place.

    Backbones call this from ``_load_from_state_dict`` at the root, so
    ``init_cfg=dict(type='Pretrained', checkpoint=<official .pth or URL>)``
    works without a conversion step. A weights entry is unwrapped whatever
    its layout (so a mismatch is reported on the weights, not on
    ``'model'``); keys are converted if the family's official marker is
    found and its converter accepts them. Returns True if anything changed.
    """
    _load_families()
    inner = official_weights(state_dict)
    marker = OFFICIAL_MARKERS.get(family)
    if marker is not None and any(marker.match(k) for k in inner):
        try:
            new, _ = CONVERTERS[family](
                {k: v for k, v in inner.items() if torch.is_tensor(v)})
        except (KeyError, ValueError):  # not this family's: left for the key check
            pass
        else:
            inner = {k[len('backbone.'):]: v for k, v in new.items()
                     if k.startswith('backbone.')}
    if inner is state_dict:
        return False
    state_dict.clear()
    state_dict.update(inner)
    return True


def guess_family(keys: Iterable[str]) -> Optional[str]:
    """The family whose keys ``keys`` look like, e.g. ``'SLaK (official
    layout)'``, or None if none of them."""
    _load_families()
    keys = list(keys)
    counts = {family: sum(bool(sig.search(k)) for k in keys)
              for family, (_, sig) in SIGNATURES.items()}
    family = max(counts, key=counts.get)
    if not counts[family]:
        return None
    marker = OFFICIAL_MARKERS.get(family)
    layout = ' (official layout)' if marker and any(
        marker.match(k) for k in keys) else ''
    return SIGNATURES[family][0] + layout


def extract_state_dict(checkpoint: dict, ema: bool = False) -> StateDict:
    """The weights of an official or mmengine checkpoint.

    Looks in ``state_dict_ema``/``model_ema`` (with ``ema=True``), then
    ``model``, ``state_dict``, else takes the dict itself; strips
    ``module.``.
    """
    keys = (('state_dict_ema', 'model_ema') if ema else ()) + ('model',
                                                               'state_dict')
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    else:
        if ema:
            raise KeyError('ema=True but the checkpoint has neither '
                           f'state_dict_ema nor model_ema: {list(checkpoint)}')
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in checkpoint.items() if torch.is_tensor(v)}


def check_against_backbone(state_dict: StateDict, backbone_cfg: dict,
                           family: str) -> None:
    """Raise ValueError listing missing/unexpected/misshapen backbone keys."""
    from mmconvarch.registry import MODELS
    reference = MODELS.build(dict(backbone_cfg)).state_dict()
    ours = {k[len('backbone.'):]: v for k, v in state_dict.items()
            if k.startswith('backbone.')}
    missing = sorted(set(reference) - set(ours))
    unexpected = sorted(set(ours) - set(reference))
    misshapen = sorted(k for k in set(ours) & set(reference)
                       if ours[k].shape != reference[k].shape)
    if missing or unexpected or misshapen:
        def show(keys):
            return f'{len(keys)} {keys[:8]}{" ..." if len(keys) > 8 else ""}'
        raise ValueError(
            f'This does not look like an official {family} checkpoint for '
            f'{backbone_cfg}: missing keys {show(missing)}, unexpected keys '
            f'{show(unexpected)}, wrong shapes {show(misshapen)}.')


def convert_checkpoint(checkpoint: dict, family: str, ema: bool = False,
                       **opts) -> Tuple[StateDict, dict]:
    """Convert an official ``family`` checkpoint and check the result."""
    _load_families()
    if family not in CONVERTERS:
        raise ValueError(f'No converter for {family!r}; available: '
                         f'{sorted(CONVERTERS)}.')
    state_dict = extract_state_dict(checkpoint, ema=ema)
    new_state_dict, backbone_cfg = CONVERTERS[family](state_dict, **opts)
    check_against_backbone(new_state_dict, backbone_cfg, family)
    return new_state_dict, backbone_cfg


def save_converted(state_dict: StateDict, backbone_cfg: dict, path: str,
                   source: Optional[str] = None) -> None:
    """Save as mmpretrain does: pure tensors under ``state_dict``, so it
    loads with ``init_cfg=dict(type='Pretrained', prefix='backbone.')``."""
    torch.save(dict(state_dict=state_dict,
                    meta=dict(backbone=backbone_cfg, source=source)), path)


def _load_families() -> None:
    from . import convnextv2, revcol, slak, vanillanet  # noqa: F401
