"""Official VanillaNet (huawei-noah/VanillaNet) -> VanillaNet keys.

Backbone keys are the official ones (train form ``stem1``/``stem2``/
``stages.{i}.conv1``...; deploy form ``stem``/``stages.{i}.conv``), so they
map 1:1 under ``backbone.``; the train form gains ``act_learn`` = 1 (released
checkpoints are finished). The classifier becomes :class:`VanillaNetClsHead`:
``cls1.2``/``cls1.3``/``cls2.0`` -> ``head.fc1``/``head.bn``/``head.fc2``
(1x1 convs as Linear weights), deploy ``cls.2`` -> ``head.fc``.

Strides are not stored in a checkpoint: the variant is found from the
channels. VanillaNet-13-1.5x and its adaptive-pool (†) variant share them;
pass ``arch='13_x1_5_ada_pool'`` for the latter (default: plain 1.5x).
"""
import warnings
from typing import Optional, Tuple

import torch

from . import AmbiguousArchWarning, StateDict, register_converter


def _variant(state_dict: StateDict) -> Tuple[bool, list, int, int]:
    """(deploy, dims, act_num, in_channels) of an official state dict."""
    if 'stem1.0.weight' in state_dict:
        deploy, stem, act, conv = False, 'stem1.0.weight', 'stem2.2.weight', \
            'conv2.0.weight'
    elif 'stem.0.weight' in state_dict:
        deploy, stem, act, conv = True, 'stem.0.weight', 'stem.1.weight', \
            'conv.weight'
    else:
        raise ValueError(
            'Not an official VanillaNet checkpoint: expected stem1.0.weight '
            '(train form) or stem.0.weight (deploy form), got keys like '
            f'{sorted(state_dict)[:6]}.')
    num_stages = len({int(k.split('.')[1]) for k in state_dict
                      if k.startswith('stages.')})
    if num_stages == 0 or getattr(state_dict.get(act), 'ndim', 0) != 4:
        raise ValueError(
            f'Not an official VanillaNet checkpoint: {stem} is there but no '
            f'stages.* blocks or no depthwise activation kernel {act} (keys '
            f'like {sorted(state_dict)[:6]}).')
    try:
        dims = [state_dict[stem].shape[0]] + [
            state_dict[f'stages.{i}.{conv}'].shape[0]
            for i in range(num_stages)]
    except KeyError as e:
        raise ValueError(f'Official VanillaNet checkpoint without {e} '
                         f'({num_stages} stages found).') from None
    act_num = (state_dict[act].shape[-1] - 1) // 2
    return deploy, dims, act_num, state_dict[stem].shape[1]


def find_arch(dims: list, arch: Optional[str] = None) -> str:
    from mmconvarch.models.backbones.vanillanet import VanillaNet
    zoo = VanillaNet.arch_zoo
    if arch is not None:
        if arch not in zoo or zoo[arch]['dims'] != dims:
            raise ValueError(f'arch={arch!r} does not fit the checkpoint '
                             f'channels {dims}; valid archs: {sorted(zoo)}.')
        return arch
    names = [name for name, cfg in zoo.items() if cfg['dims'] == dims]
    if not names:
        raise ValueError(f'No VanillaNet variant has channels {dims}; the '
                         f'official ones are {sorted(zoo)}.')
    if len(names) > 1:
        warnings.warn(f'VanillaNet channels {dims} fit {names}; converting '
                      f'as {names[0]!r}. Pass arch= for the other.',
                      AmbiguousArchWarning)
    return names[0]


# official files always hold the classifier: ``cls1``/``cls2`` (``cls`` deploy)
@register_converter('vanillanet', official_marker=r'cls\d?\.\d+\.',
                    signature=r'(^|\.)stem[12]\.|stages\.\d+\.(conv1|conv2|conv|act)\.',
                    name='VanillaNet')
def convert_vanillanet(state_dict: StateDict,
                       arch: Optional[str] = None) -> Tuple[StateDict, dict]:
    deploy, dims, act_num, in_channels = _variant(state_dict)
    arch = find_arch(dims, arch)
    new = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] in ('stem', 'stem1', 'stem2', 'stages'):
            new['backbone.' + key] = value
        elif key.startswith('cls1.2.'):
            new[f'head.fc1.{parts[2]}'] = value.flatten(1) \
                if value.ndim == 4 else value
        elif key.startswith('cls1.3.'):
            new[f'head.bn.{parts[2]}'] = value
        elif key.startswith('cls2.0.'):
            new[f'head.fc2.{parts[2]}'] = value.flatten(1) \
                if value.ndim == 4 else value
        elif key.startswith('cls.2.'):
            new[f'head.fc.{parts[2]}'] = value.flatten(1) \
                if value.ndim == 4 else value
        else:
            new[key] = value  # left for the family check to report
    if not deploy:  # released checkpoints finished annealing: λ = 1
        new['backbone.act_learn'] = torch.tensor(1.)
        if 'head.fc1.weight' in new:
            new['head.act_learn'] = torch.tensor(1.)
    cfg = dict(type='VanillaNet', arch=arch, act_num=act_num, deploy=deploy)
    if in_channels != 3:
        cfg['in_channels'] = in_channels
    return new, cfg
