"""The strict Pretrained load of our backbones and official checkpoints for
whole models.

:class:`OfficialCheckpointMixin` is the one description of how a backbone's
``init_cfg=dict(type='Pretrained', ...)`` loads (the backbones' docstrings
refer to it). :func:`load_official_checkpoints` is the documented way a
whole model (a classifier holding one of our backbones as ``backbone``) loads
an official checkpoint: a load-state-dict pre-hook on that model, registered
by our classifiers (``OfficialCheckpointClassifier``, ``RevColClassifier``).
Nothing here changes torch or mmengine globally.
"""
import logging
import os.path as osp
import re
from typing import Optional

import torch.nn as nn

from .layouts import (convert_official_in_place, convert_official_model_in_place,
                      diff_keys, guess_family, known_families, show_keys)
from .safe_load import CorruptCheckpointError, checkpoint_problem

__all__ = ['OfficialCheckpointMixin', 'check_pretrained_keys', 'load_official_checkpoints',
           'reject_pretrained_argument']


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


def reject_pretrained_argument(pretrained: object, name: str) -> None:
    """One clear error for a backbone's ``pretrained`` argument (its only
    valid value is None). mmseg's ``EncoderDecoder`` (and old mmdet configs)
    hand the model's ``pretrained`` to the backbone; stock ResNet configs set
    it. Our backbones load weights through ``init_cfg`` only."""
    if pretrained is not None:
        raise ValueError(
            f'{name} got pretrained={pretrained!r}, most likely from the '
            "model's `pretrained` (mmseg's EncoderDecoder passes it to the "
            'backbone; stock ResNet configs set it). Set `model.pretrained=None` '
            f'and load {name} weights with backbone init_cfg=dict('
            "type='Pretrained', checkpoint=...).")


def _is_pretrained(cfg) -> bool:
    """As mmengine's ``BaseModule.init_weights`` tells a Pretrained init."""
    from mmengine.model.weight_init import PretrainedInit
    return isinstance(cfg, dict) and (cfg.get('type') == 'Pretrained'
                                      or cfg.get('type') is PretrainedInit)


class OfficialCheckpointMixin:
    """Checkpoint loading shared by the backbones (put it first in the bases).

    This is what the backbones' docstrings call "the strict Pretrained load":

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

    * A ``pretrained=`` argument (mmseg's ``EncoderDecoder`` hands the
      model's ``pretrained`` to its backbone) raises one ValueError saying to
      use the init_cfg instead: each backbone takes ``pretrained=None`` and
      calls :func:`reject_pretrained_argument`.

    Loading a whole model (``load_from``, resume, ``load_state_dict``) is
    unchanged: only a Pretrained init of the backbone itself is checked. A
    whole model converts an official checkpoint when it registers
    :func:`load_official_checkpoints` (our classifiers do).
    """

    official_family: str = ''

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
        for c in pretrained:  # a file that is no checkpoint: one error naming it, whichever
            # loader mmengine uses (the safe one checks too; mmengine's own would not)
            checkpoint = c.get('checkpoint')
            if isinstance(checkpoint, str) and '://' not in checkpoint and \
                    osp.lexists(osp.expanduser(checkpoint)):
                problem = checkpoint_problem(osp.expanduser(checkpoint))
                if problem is not None:
                    raise CorruptCheckpointError(
                        f'{type(self).__name__}: cannot load the Pretrained init_cfg checkpoint '
                        f'{checkpoint}: the file is {problem}.')
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


def load_official_checkpoints(model: nn.Module) -> nn.Module:
    """Let ``model`` (a classifier whose ``backbone`` is one of ours) load an
    official checkpoint of its backbone's family as a whole: ``get_model(name,
    pretrained=<official file or URL>)``, ``load_from``, ``tools/test.py
    CONFIG official.pth`` and ``model.load_state_dict(checkpoint)``. The
    official keys are converted to the model's (backbone, head, RevCol's
    auxiliary heads); an official checkpoint of another family raises one
    ValueError naming both. Checkpoints in our layout load unchanged.

    Registers a load-state-dict pre-hook on ``model`` only (torch and mmengine
    load children from per-prefix copies, so only the model above the
    backbone sees a whole checkpoint). Idempotent; returns ``model``.
    """
    if not getattr(model, '_loads_official_checkpoints', False):
        model.register_load_state_dict_pre_hook(_load_official_into_model)
        model._loads_official_checkpoints = True
    return model
