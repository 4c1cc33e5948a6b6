"""Argument checks shared by every mmconvarch backbone: one clear error each,
their ConvNeXt-layout layer-decay rules and their checkpoint loading
(:class:`OfficialCheckpointMixin`, through :mod:`mmconvarch.checkpoint_layouts`)."""
import functools
import logging
import re
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmconvarch.checkpoint_layouts import (convert_official_in_place,
                                           convert_official_model_in_place, diff_keys,
                                           guess_family, known_families, show_keys)


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
    """``train()`` that re-freezes the frozen stages (``_freeze_stages()``)
    and, with ``norm_eval``, keeps every batch norm in eval mode."""

    norm_eval: bool = False

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


def check_pretrained_keys(module: nn.Module, state_dict: dict, checkpoint: str,
                          strict: bool, optional_keys: str) -> None:
    """Compare a (converted) pretrained ``state_dict`` with ``module``'s keys.

    Keys matching ``optional_keys`` (``re.match``) may be absent from either
    side: missing ones keep their init, extra ones are ignored (one info
    line). Any other missing, unexpected or misshapen key raises one
    ValueError naming the family the checkpoint looks like, unless
    ``strict`` is False: then one warning says what was skipped.
    """
    from mmengine.logging import print_log

    name = type(module).__name__
    expected = module.state_dict()
    optional = re.compile(optional_keys)
    missing, unexpected, misshapen = diff_keys(expected, state_dict)
    excused = [k for k in missing + unexpected if optional.match(k)]
    loaded = len(expected) - len(missing) - len(misshapen)
    missing = [k for k in missing if k not in excused]
    unexpected = [k for k in unexpected if k not in excused]
    skipped = (f'missing {show_keys(missing)}, unexpected {show_keys(unexpected)}, '
               f'wrong shape {show_keys(misshapen)}')
    if not (missing or unexpected or misshapen) or not strict:
        excused = [k for k in excused if not k.endswith('num_batches_tracked')]
        if excused:
            print_log(f'{name}: {show_keys(excused)} keys are missing from or extra in '
                      f'{checkpoint}, as allowed (output norms, heads): missing ones keep '
                      'their init.', logger='current')
        if missing or unexpected or misshapen:
            print_log(f'{name}: partial load (strict=False) of {checkpoint}: loaded {loaded} '
                      f'of {len(expected)} keys; skipped: {skipped}.',
                      logger='current', level=logging.WARNING)
        return
    family = guess_family(str(k) for k in state_dict)
    if family:
        hint = f'It looks like a {family} checkpoint.'
    else:
        hint = f'Its keys are of none of the families mmconvarch knows ({known_families()}).'
    prefixed = [k for k in unexpected if str(k).startswith(('backbone.', 'module.'))]
    if len(prefixed) * 2 > len(unexpected):
        first = prefixed[0].split('.')[0] + '.'
        hint += (f" Its keys start with '{first}' (a whole-model checkpoint): add "
                 f"prefix='{first}' to the init_cfg.")
    raise ValueError(
        f'{name}: the Pretrained checkpoint {checkpoint} does not fit this backbone '
        f'({loaded} of {len(expected)} keys fit): {skipped}. {hint} To load only the keys '
        "that fit, say so: init_cfg=dict(type='Pretrained', checkpoint=..., strict=False).")


def _is_pretrained(cfg) -> bool:
    """As mmengine's ``BaseModule.init_weights`` tells a Pretrained init."""
    from mmengine.model.weight_init import PretrainedInit
    return isinstance(cfg, dict) and (cfg.get('type') == 'Pretrained'
                                      or cfg.get('type') is PretrainedInit)


class OfficialCheckpointMixin:
    """Checkpoint loading shared by the backbones (put it first in the bases).

    * ``init_cfg=dict(type='Pretrained', checkpoint=...)`` takes an official
      checkpoint of the family (file or URL, its ``model``,
      ``state_dict_ema`` or ``model_ema`` weights), converted on the fly at
      load time. Set ``official_family`` to the converter's name.
    * A Pretrained load is strict: every backbone key must be in the
      checkpoint with its shape, and no other key may be, except those
      matching ``pretrained_optional_keys`` (output norms ``norm{i}``,
      classifier heads ``head``/``fc``/``cls*``, BN ``num_batches_tracked``;
      missing ones keep their init). Otherwise one ValueError lists the
      missing/unexpected/misshapen keys and the family the checkpoint looks
      like, and nothing is loaded.
    * ``strict=False`` in the Pretrained init_cfg (``dict(type='Pretrained',
      checkpoint=..., strict=False)``, mmengine's PretrainedInit never sees
      it) loads the keys that fit and logs one warning with what it skipped.

    Loading a whole model (``load_from``, resume, ``load_state_dict``) is
    unchanged: only a Pretrained init of the backbone itself is checked.
    """

    official_family: str = ''

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get('__init__')
        if init is None:
            return

        @functools.wraps(init)
        def checked_init(self, *args, pretrained=None, **kw):
            # mmseg's EncoderDecoder (and old mmdet configs) hand the model's
            # ``pretrained`` to the backbone; stock ResNet configs set it
            if pretrained is not None:
                name = cls.__name__
                raise ValueError(
                    f'{name} got pretrained={pretrained!r}, most likely from the '
                    "model's `pretrained` (mmseg's EncoderDecoder passes it to the "
                    'backbone; stock ResNet configs set it). Set `model.pretrained=None` '
                    f'and load {name} weights with backbone init_cfg=dict('
                    "type='Pretrained', checkpoint=...).")
            init(self, *args, **kw)

        cls.__init__ = checked_init

    pretrained_optional_keys: str = \
        r'(norm\d+|head|fc|cls\d*)\.|(.*\.)?num_batches_tracked$'
    _pretrained_check: Optional[dict] = None

    def init_weights(self) -> None:
        """mmengine's init, with the Pretrained load checked (see above)."""
        init_cfg = self.init_cfg
        cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
        pretrained = [c for c in cfgs if _is_pretrained(c)]
        if not pretrained:
            return super().init_weights()
        strict = [c.get('strict', True) for c in pretrained]
        if not all(isinstance(s, bool) for s in strict):
            raise TypeError(f'{type(self).__name__}: Pretrained init_cfg '
                            f'strict must be True or False, got {strict}.')
        self._pretrained_check = dict(
            strict=all(strict),
            checkpoint=', '.join(str(c.get('checkpoint')) for c in pretrained))
        stripped = [{k: v for k, v in c.items() if k != 'strict'}
                    if _is_pretrained(c) else c for c in cfgs]
        self.init_cfg = stripped if isinstance(init_cfg, list) else stripped[0]
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
            self._pretrained_check = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix == '':
            if self.official_family:
                convert_official_in_place(state_dict, self.official_family)
            if self._pretrained_check is not None:
                check_pretrained_keys(self, state_dict,
                                      optional_keys=self.pretrained_optional_keys,
                                      **self._pretrained_check)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _load_official_into_model(model: nn.Module, state_dict: dict, prefix: str,
                              *args) -> None:
    """Load-state-dict pre-hook of a model holding one of our backbones."""
    family = getattr(getattr(model, 'backbone', None), 'official_family', '')
    if family:
        convert_official_model_in_place(state_dict, prefix, family)


def _hook_models_of_our_backbones(module: nn.Module, name: str,
                                  submodule: Optional[nn.Module]) -> None:
    """torch's module-registration hook: a model that sets one of our
    backbones as ``backbone`` (mmpretrain's ImageClassifier and the like)
    gets :func:`_load_official_into_model` as a load-state-dict pre-hook.
    mmengine and torch load children from a per-prefix copy, so only the
    model above the backbone sees (and can convert) a whole checkpoint."""
    if (name == 'backbone' and isinstance(submodule, OfficialCheckpointMixin)
            and not getattr(module, '_loads_official_checkpoints', False)):
        module.register_load_state_dict_pre_hook(_load_official_into_model)
        module._loads_official_checkpoints = True


_MODEL_HOOK = []


def load_official_checkpoints_into_models() -> None:
    """Let whole models with our backbones load official checkpoints
    (``get_model(name, pretrained=True)`` fetches the official files).
    Idempotent; ``import mmconvarch`` calls it."""
    if not _MODEL_HOOK:
        from torch.nn.modules.module import register_module_module_registration_hook
        _MODEL_HOOK.append(register_module_module_registration_hook(
            _hook_models_of_our_backbones))
