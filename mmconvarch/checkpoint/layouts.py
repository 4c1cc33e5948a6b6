"""The registry of official checkpoint layouts, below models and converters.

Each family's converter (:mod:`mmconvarch.checkpoint.converters`) registers a
pure function ``convert(state_dict, **opts) -> (state_dict, backbone_cfg)``
here with :func:`register_converter`; ``import mmconvarch`` imports the
converters, so every family is registered before a backbone loads a
checkpoint. The backbones reach the converters only through this module
(:func:`convert_official_in_place`, :func:`guess_family`), so ``models``
never imports ``converters``. :func:`find_weights` is the one place that knows
where a checkpoint file keeps its weights.
"""
import re
import warnings
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch

StateDict = Dict[str, torch.Tensor]
CONVERTERS: Dict[str, Callable[..., Tuple[StateDict, dict]]] = {}
# family -> regex matching a key only the official layout has
OFFICIAL_MARKERS: Dict[str, 're.Pattern'] = {}
# family -> (display name, regex matching keys of the family in any layout)
SIGNATURES: Dict[str, Tuple[str, 're.Pattern']] = {}
# where official and mmengine checkpoints keep their weights, in the order
# searched: plain weights first, then the EMA ones (EMA-only official files)
WEIGHT_ENTRIES = ('model', 'state_dict', 'state_dict_ema', 'model_ema')
EMA_ENTRIES = ('state_dict_ema', 'model_ema')


class AmbiguousArchWarning(UserWarning):
    """A converter found several archs that fit a checkpoint's shapes (they differ only in
    weight-free parts, e.g. VanillaNet-13-1.5x and its adaptive-pool twin) and chose one for the
    metadata it returns. Loading in place uses only the keys, so it ignores this warning."""


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


def strip_module_prefix(state_dict: dict) -> dict:
    """The dict with the ``module.`` prefix of (D)DP-wrapped keys removed."""
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state_dict.items()}


def diff_keys(expected: dict, given: dict) -> Tuple[list, list, list]:
    """``(missing, unexpected, misshapen)`` keys of ``given`` against the
    ``expected`` state dict, in their dicts' order (a non-tensor value
    counts as misshapen)."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshapen = [k for k in expected if k in given and (
        not torch.is_tensor(given[k]) or given[k].shape != expected[k].shape)]
    return missing, unexpected, misshapen


def show_keys(keys: list, limit: int = 6) -> str:
    """``'<count> [first keys] ...'`` for messages."""
    return f'{len(keys)} {list(keys[:limit])}{" ..." if len(keys) > limit else ""}'


def find_weights(checkpoint: dict, ema: bool = False) -> dict:
    """The weights of a checkpoint file's contents, ``module.`` stripped.

    The first dict among the checkpoint's ``model``, ``state_dict``,
    ``state_dict_ema`` and ``model_ema`` entries (:data:`WEIGHT_ENTRIES`; an
    EMA-only official file keeps its weights in the last two), else the
    checkpoint itself (a bare state dict). With ``ema=True`` only the EMA
    entries count, and a checkpoint without one raises KeyError.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f'A checkpoint must be a dict, got {type(checkpoint).__name__}.')
    for key in EMA_ENTRIES if ema else WEIGHT_ENTRIES:
        if isinstance(checkpoint.get(key), dict):
            return strip_module_prefix(checkpoint[key])
    if ema:
        raise KeyError(f'ema=True but the checkpoint has none of {list(EMA_ENTRIES)}; '
                       f'its entries are {list(checkpoint)[:10]}.')
    return strip_module_prefix(checkpoint)


def _convert_keys(family: str, state_dict: dict) -> Tuple[StateDict, dict]:
    """The family's converter on the tensors of ``state_dict``, for a load in place: only the
    keys are used, so which of several fitting archs the metadata names does not matter."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AmbiguousArchWarning)
        return CONVERTERS[family]({k: v for k, v in state_dict.items() if torch.is_tensor(v)})


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
    inner = find_weights(state_dict)
    marker = OFFICIAL_MARKERS.get(family)
    if marker is not None and any(marker.match(k) for k in inner):
        try:
            new, _ = _convert_keys(family, inner)
        except (KeyError, ValueError):  # not this family's: left for the key check
            pass
        else:
            inner = {k[len('backbone.'):]: v for k, v in new.items()
                     if k.startswith('backbone.')}
    if list(inner) == list(state_dict) and all(inner[k] is state_dict[k] for k in inner):
        return False
    state_dict.clear()
    state_dict.update(inner)
    return True


def convert_official_model_in_place(state_dict: dict, prefix: str, family: str,
                                    backbone: str = 'backbone') -> bool:
    """Turn an official ``family`` checkpoint loaded into a whole model (a
    classifier whose ``backbone`` is the family's: ``get_model(name,
    pretrained=<official file or URL>)``, ``load_from``, ``tools/test.py``)
    into the model's keys (``backbone.*``, ``head.*``), in place.

    ``state_dict`` is what the model at ``prefix`` loads. If it already holds
    ``<prefix>backbone.*`` keys nothing changes. An official checkpoint of
    another family raises one ValueError naming both (rather than a load
    that leaves the backbone random). Returns True if anything changed.
    """
    if any(k.startswith(prefix + backbone + '.') for k in state_dict):
        return False
    inner = find_weights({k[len(prefix):]: v for k, v in state_dict.items()
                              if k.startswith(prefix)})
    marker = OFFICIAL_MARKERS.get(family)
    name = SIGNATURES.get(family, (family, None))[0]
    if marker is None or not any(marker.match(k) for k in inner):
        found = guess_family(inner)
        if found is not None and not found.startswith(name):
            raise ValueError(
                f'The checkpoint looks like a {found} checkpoint, but the '
                f'model\'s {backbone} is {name}: load a {name} checkpoint '
                f'(known families: {known_families()}).')
        return False
    try:
        new, _ = _convert_keys(family, inner)
    except (KeyError, ValueError) as err:
        raise ValueError(f'The checkpoint has official {name} keys but does '
                         f'not convert to this model: {err}') from err
    state_dict.clear()
    state_dict.update({prefix + k: v for k, v in new.items()})
    return True


def guess_family(keys: Iterable[str]) -> Optional[str]:
    """The family whose keys ``keys`` look like, e.g. ``'SLaK (official
    layout)'``, or None if none of them."""
    keys = list(keys)
    counts = {family: sum(bool(sig.search(k)) for k in keys)
              for family, (_, sig) in SIGNATURES.items()}
    family = max(counts, key=counts.get, default=None)
    if family is None or not counts[family]:
        return None
    marker = OFFICIAL_MARKERS.get(family)
    layout = ' (official layout)' if marker and any(
        marker.match(k) for k in keys) else ''
    return SIGNATURES[family][0] + layout


def known_families() -> str:
    """The display names of the registered families, comma-separated."""
    return ', '.join(sorted(name for name, _ in SIGNATURES.values()))
