"""Official ConvNeXt V2 (facebookresearch/ConvNeXt-V2) -> ConvNeXtV2 keys.

Fine-tuned (dense) checkpoints map 1:1 up to names; mmpretrain keeps GRN
gamma/beta as (C,) where the official ones are (1, 1, 1, C).
"""
from typing import Tuple

from . import StateDict, register_converter

_BLOCK_RENAMES = {'dwconv': 'depthwise_conv', 'pwconv1': 'pointwise_conv1',
                  'pwconv2': 'pointwise_conv2'}


def infer_arch(state_dict: StateDict) -> dict:
    depths = []
    for stage in range(4):
        blocks = {int(k.split('.')[2]) for k in state_dict
                  if k.startswith(f'stages.{stage}.')}
        depths.append(len(blocks))
    stem = state_dict.get('downsample_layers.0.0.weight')
    if stem is None or not all(depths):
        raise ValueError('Not an official ConvNeXt V2 checkpoint: expected '
                         'downsample_layers.0.0.weight and stages.0-3.*, got '
                         f'keys like {sorted(state_dict)[:6]}.')
    channels = [state_dict[f'downsample_layers.{i}.{0 if i == 0 else 1}'
                           '.weight'].shape[0] for i in range(4)]
    return dict(depths=depths, channels=channels)


@register_converter('convnextv2')
def convert_convnextv2(state_dict: StateDict) -> Tuple[StateDict, dict]:
    arch = infer_arch(state_dict)
    new = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] == 'stages':
            parts[3] = _BLOCK_RENAMES.get(parts[3], parts[3])
            if parts[3] == 'grn':
                value = value.reshape(-1)
            new['backbone.' + '.'.join(parts)] = value
        elif parts[0] == 'downsample_layers':
            new['backbone.' + key] = value
        elif parts[0] == 'norm':
            new[f'backbone.norm3.{parts[1]}'] = value
        elif parts[0] == 'head':
            new[f'head.fc.{parts[1]}'] = value
        else:
            new[key] = value  # left for the family check to report
    return new, dict(type='ConvNeXtV2', arch=arch)
