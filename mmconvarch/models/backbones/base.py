"""What every mmconvarch backbone shares, in one public module.

Each backbone (RevCol, ConvNeXt V2, SLaK, VanillaNet) is built the same way:

* :class:`OfficialCheckpointMixin` first in its bases: the strict Pretrained
  load of official checkpoints (documented there, once, for all four), and
  ``pretrained=None`` checked by :func:`reject_pretrained_argument`;
* :class:`FrozenStagesMixin`: ``frozen_stages`` (the backbone lists what a
  frozen stage is in :meth:`~FrozenStagesMixin.frozen_parts`) and, for the
  backbones with batch norms (SLaK, VanillaNet), ``norm_eval``;
* the argument checks, each with one clear error: :func:`resolve_arch`,
  :func:`normalize_out_indices`, :func:`check_frozen_stages`,
  :func:`resolve_gap_before_final_norm`; :func:`check_input_size` in
  ``forward``;
* ``get_layer_depth`` for layer-wise lr decay: :func:`convnext_layer_depth`
  for the ConvNeXt-layout backbones.
"""
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmconvarch.checkpoint.pretrained import OfficialCheckpointMixin, reject_pretrained_argument

__all__ = [
    'FrozenStagesMixin', 'OfficialCheckpointMixin', 'check_frozen_stages', 'check_input_size',
    'convnext_layer_depth', 'freeze_modules', 'normalize_out_indices', 'resolve_arch',
    'reject_pretrained_argument', 'resolve_gap_before_final_norm'
]


def resolve_arch(arch: Union[str, dict], arch_zoo: Dict[str, dict],
                 required_keys: Sequence[str], family: str) -> dict:
    """Return the arch dict for ``arch`` (a zoo name or a dict)."""
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
        if missing:
            raise ValueError(f'{family} arch dict lacks keys {missing}; it '
                             f'needs {list(required_keys)}, got {list(arch)}.')
        return dict(arch)
    raise TypeError(f'{family} arch must be a str or a dict, '
                    f'got {type(arch).__name__}.')


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


def check_input_size(x: torch.Tensor, min_size: int, family: str,
                     why: Optional[str] = 'total stride 32') -> None:
    """Raise one ValueError if ``x``'s height or width is below ``min_size``
    (``why``: the reason given in the message)."""
    if min(x.shape[-2:]) < min_size:
        reason = f' ({why})' if why else ''
        raise ValueError(f'{family} needs inputs of at least {min_size}x{min_size} '
                         f'pixels{reason}, got {tuple(x.shape[-2:])}.')


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
