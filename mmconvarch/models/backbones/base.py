"""What every mmconvarch backbone shares, in one public module.

Each backbone (RevCol, ConvNeXt V2, SLaK, VanillaNet) is built the same way:

* :class:`OfficialCheckpointMixin` first in its bases: the strict Pretrained
  load of official checkpoints (documented there, once, for all four), and
  ``pretrained=None`` checked by :func:`reject_pretrained_argument`;
* :class:`FrozenStagesMixin`: ``frozen_stages`` (the backbone lists what a
  frozen stage is in :meth:`~FrozenStagesMixin.frozen_parts`) and, for the
  backbones with batch norms (SLaK, VanillaNet), ``norm_eval``;
* the argument checks, each with one clear error: :func:`resolve_arch`
  (arch-dict keys), :func:`check_positive_ints` (depths, channels),
  :func:`check_drop_path_rate`, :func:`normalize_out_indices`,
  :func:`check_frozen_stages`, :func:`resolve_gap_before_final_norm`;
  :func:`check_input_size` (dimensions, channels, dtype, size) and, for the
  backbones with batch norms, :func:`check_batch_norm_batch` in ``forward``;
* ``get_layer_depth`` for layer-wise lr decay: :func:`convnext_layer_depth`
  for the ConvNeXt-layout backbones.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmconvarch.checkpoint.pretrained import OfficialCheckpointMixin, reject_pretrained_argument

__all__ = [
    'FrozenStagesMixin', 'OfficialCheckpointMixin', 'check_batch_norm_batch',
    'check_drop_path_rate', 'check_frozen_stages', 'check_input_size', 'check_positive_ints',
    'convnext_layer_depth', 'freeze_modules', 'normalize_out_indices', 'resolve_arch',
    'reject_pretrained_argument', 'resolve_gap_before_final_norm'
]


def resolve_arch(arch: Union[str, dict], arch_zoo: Dict[str, dict],
                 required_keys: Sequence[str], family: str,
                 optional_keys: Sequence[str] = ()) -> dict:
    """Return the arch dict for ``arch`` (a zoo name or a dict).

    A dict must have every key of ``required_keys`` and no key outside
    ``required_keys`` and ``optional_keys`` (a typo such as ``depth`` for
    ``depths`` would otherwise be ignored): one ValueError lists the unknown
    keys and the valid ones.
    """
    if isinstance(arch, str):
        key = arch.lower()
        if key not in arch_zoo:
            raise ValueError(
                f'Unknown {family} arch {arch!r}; valid archs are '
                f'{sorted(arch_zoo)} (or pass a dict with keys '
                f'{list(required_keys)}).')
        return dict(arch_zoo[key])
    if isinstance(arch, dict):
        missing = [k for k in required_keys if k not in arch]
        unknown = [k for k in arch
                   if k not in required_keys and k not in optional_keys]
        if missing or unknown:
            problems = ([f'lacks keys {missing}'] if missing else []) + \
                ([f'has unknown keys {unknown}'] if unknown else [])
            raise ValueError(
                f'{family} arch dict {" and ".join(problems)}; valid keys are '
                f'{list(required_keys)} (required) and {list(optional_keys)} '
                f'(optional), got {list(arch)}.')
        return dict(arch)
    raise TypeError(f'{family} arch must be a str or a dict, '
                    f'got {type(arch).__name__}.')


def check_positive_ints(name: str, values: Union[int, Sequence[int]],
                        family: str, minimum: int = 1) -> List[int]:
    """``values`` (an int or a non-empty sequence of ints) as a list, or one
    ValueError naming ``name`` and the valid range (ints >= ``minimum``):
    zero or negative depths/channels would build a model without blocks or
    a raw torch error at the first forward."""
    seq = [values] if isinstance(values, int) else values
    if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence) or \
            not seq or not all(isinstance(v, int) and not isinstance(v, bool)
                               and v >= minimum for v in seq):
        what = 'a non-empty list of ints' if isinstance(values, (list, tuple)) \
            else 'an int'
        raise ValueError(f'{family} {name} must be {what} >= {minimum}, got '
                         f'{values!r}.')
    return list(seq)


def check_drop_path_rate(drop_path_rate: float, family: str) -> float:
    """``drop_path_rate`` if it is a number in [0, 1), else one ValueError
    naming it and the valid range (1.5 gives NaN features, a negative rate
    rescales the residual branches at random)."""
    if isinstance(drop_path_rate, bool) or \
            not isinstance(drop_path_rate, (int, float)) or \
            not 0 <= drop_path_rate < 1:
        raise ValueError(f'{family} drop_path_rate must be a number in '
                         f'[0, 1) (the stochastic depth of the last block), '
                         f'got {drop_path_rate!r}.')
    return float(drop_path_rate)


def normalize_out_indices(out_indices: Union[int, Sequence[int]],
                          num_stages: int, family: str) -> Tuple[int, ...]:
    """Turn ``out_indices`` into sorted non-negative stage indices.

    Negative indices count from the end, as in mmpretrain.
    """
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    if not isinstance(out_indices, Sequence) or not out_indices:
        raise TypeError(f'{family} out_indices must be an int or a non-empty '
                        f'sequence of ints, got {out_indices!r}.')
    result = []
    for index in out_indices:
        if not isinstance(index, int) or not -num_stages <= index < num_stages:
            raise ValueError(
                f'{family} out_indices {list(out_indices)} has {index!r}; '
                f'valid indices are 0..{num_stages - 1} (or '
                f'-{num_stages}..-1 counted from the end).')
        result.append(index % num_stages)
    if len(set(result)) != len(result):
        raise ValueError(f'{family} out_indices {list(out_indices)} repeats '
                         'a stage.')
    return tuple(sorted(result))


def resolve_gap_before_final_norm(gap_before_final_norm: Optional[bool],
                                  out_indices: Sequence[int]) -> bool:
    """None (the default) pools only when one stage is requested: several
    stages mean a dense task, whose neck needs feature maps, not vectors."""
    if gap_before_final_norm is None:
        return len(out_indices) == 1
    return bool(gap_before_final_norm)


def check_frozen_stages(frozen_stages: int, num_stages: int,
                        family: str) -> int:
    """``frozen_stages`` if it is an int in -1..``num_stages``, else one
    ValueError naming ``family`` and the valid range."""
    if not isinstance(frozen_stages, int) or not \
            -1 <= frozen_stages <= num_stages:
        raise ValueError(f'{family} frozen_stages={frozen_stages!r} is out of '
                         f'range; valid values are -1..{num_stages} '
                         '(-1 or 0 freezes nothing).')
    return frozen_stages


def freeze_modules(modules: Iterable[nn.Module]) -> None:
    """Eval mode and no gradients for every module (frozen stages)."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


class FrozenStagesMixin:
    """``frozen_stages`` and ``norm_eval``, the same way for every backbone.

    The backbone sets ``self.frozen_stages`` (checked with
    :func:`check_frozen_stages`; 0 or -1 freezes nothing) and lists in
    :meth:`frozen_parts` the modules (and loose parameters) the first
    ``frozen_stages`` stages consist of. :meth:`_freeze_stages` puts those in
    eval mode without gradients; ``train()`` freezes them again after every
    mode switch and, if the backbone has ``norm_eval=True`` (only those with
    batch norms declare the argument), keeps every batch norm in eval mode.
    Call ``self._freeze_stages()`` at the end of ``__init__``.
    """

    norm_eval: bool = False

    def frozen_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """The modules and parameters of the first ``frozen_stages`` stages
        (stem included); each backbone says what they are."""
        raise NotImplementedError

    def _freeze_stages(self) -> None:
        if getattr(self, 'frozen_stages', 0) <= 0:
            return
        for part in self.frozen_parts():
            if isinstance(part, torch.Tensor):  # a loose parameter (RevCol's alpha)
                part.requires_grad = False
            else:
                freeze_modules([part])

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


def _autocast_active(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):  # a device type autocast does not know
        return False


def check_input_size(x: torch.Tensor, min_size: int, family: str,
                     why: Optional[str] = 'total stride 32',
                     stem: Optional[nn.Conv2d] = None) -> None:
    """The checks every backbone's ``forward`` makes on its input, each with
    one clear error instead of a raw torch one deep in the network:

    * ``x`` is a 4-D ``(N, C, H, W)`` tensor (ValueError; a 3-D image lacks
      the batch dimension);
    * with ``stem`` (the backbone's first conv): ``C`` is its
      ``in_channels`` (ValueError) and ``x``'s dtype is its weight's, unless
      autocast is active on ``x``'s device (TypeError: a float64 or half
      input into a float32 model);
    * ``H`` and ``W`` are at least ``min_size`` (ValueError; ``why``: the
      reason given in the message).

    A few attribute reads: no loop over parameters.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        got = (f'a {x.dim()}-D tensor of shape {tuple(x.shape)}'
               if isinstance(x, torch.Tensor) else type(x).__name__)
        hint = (' (a single image: add the batch dimension, x[None])'
                if isinstance(x, torch.Tensor) and x.dim() == 3 else '')
        raise ValueError(f'{family} takes a 4-D (N, C, H, W) image batch, '
                         f'got {got}{hint}.')
    if stem is not None:
        if x.shape[1] != stem.in_channels:
            raise ValueError(
                f'{family} was built with in_channels={stem.in_channels}, '
                f'got an input with {x.shape[1]} channels (shape '
                f'{tuple(x.shape)}): convert the images (e.g. gray -> RGB, '
                'drop an alpha channel) or build the backbone with '
                f'in_channels={x.shape[1]}.')
        dtype = stem.weight.dtype
        if x.dtype != dtype and not _autocast_active(x.device.type):
            raise TypeError(
                f'{family} has {dtype} parameters, got a {x.dtype} input: '
                f'cast the input (x.to({dtype})), the model (model.to('
                f'{x.dtype})) or run under torch.autocast.')
    if min(x.shape[-2:]) < min_size:
        reason = f' ({why})' if why else ''
        raise ValueError(f'{family} needs inputs of at least {min_size}x{min_size} '
                         f'pixels{reason}, got {tuple(x.shape[-2:])}.')


def check_batch_norm_batch(x: torch.Tensor, bn: Optional[nn.Module],
                           map_size: Tuple[int, int], family: str,
                           valid_size: str) -> None:
    """In training, one ValueError if the batch norm ``bn`` (the backbone's
    last, on its smallest map, of ``map_size`` for this input) would see
    one value per channel (batch size 1 and a 1x1 map): torch's "Expected
    more than 1 value per channel". ``valid_size``: the input sizes that
    work with batch size 1, for the message. Call it only when
    ``x.shape[0] == 1`` in training (the check itself is then cheap)."""
    if bn is None or not bn.training or x.shape[0] * map_size[0] * map_size[1] > 1:
        return
    if 'Sync' in type(bn).__name__ and torch.distributed.is_available() and \
            torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        return  # a synchronised BN gathers one value per rank
    raise ValueError(
        f'{family} in training mode got batch size 1 at input size '
        f'{tuple(x.shape[-2:])}: its last batch norm would see a 1x1 map, '
        'one value per channel, and batch norm needs more than one. Train '
        f'with batch size >= 2, or (batch size 1) with inputs of {valid_size}, '
        'or keep the batch norms in eval mode (norm_eval=True).')


def convnext_layer_depth(backbone: nn.Module, param_name: str, prefix: str,
                         rule: str) -> Tuple[int, int]:
    """``(layer_id, num_layers)`` of a parameter of a ConvNeXt-layout
    backbone (``downsample_layers.i``, ``stages.i.j``, ``backbone.depths``).

    ``rule``: ``'group'`` is mmpretrain's ``ConvNeXt.get_layer_depth`` (the
    mmdet ``layer_wise`` rule, 6 groups for ``depths[-2] <= 9`` else 12);
    ``'stage'`` mmseg's ConvNeXt ``stage_wise`` rule (downsample layers 0,
    ``stages.i`` ``i + 1``); ``'single'`` one id per block (the official
    ConvNeXt V2 fine-tuning rule). Parameters outside the backbone (no
    ``prefix``) and the output norms get ``num_layers - 1``, i.e. lr scale 1.
    """
    depths = backbone.depths
    if rule == 'group':
        from mmpretrain.models.backbones import ConvNeXt
        return ConvNeXt.get_layer_depth(backbone, param_name, prefix)
    if rule == 'stage':
        num_layers = (12 if depths[-2] > 9 else 6) + 2
    else:
        num_layers = sum(depths) + 2
    if not param_name.startswith(prefix):
        return num_layers - 1, num_layers
    parts = param_name[len(prefix):].split('.')
    if parts[0] not in ('downsample_layers', 'stages'):
        return num_layers - 1, num_layers
    stage = int(parts[1])
    if rule == 'stage':
        return (0 if parts[0] == 'downsample_layers' else stage + 1), num_layers
    if parts[0] == 'downsample_layers':
        return sum(depths[:stage]) + 1, num_layers
    return sum(depths[:stage]) + int(parts[2]) + 1, num_layers
