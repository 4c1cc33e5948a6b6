"""Official RevCol (megvii-research/RevCol) -> RevCol / RevColClassifier keys.

Backbone keys match the official ones except inside the blocks (mmpretrain
``ConvNeXtBlock`` names). Classification heads: the final one becomes
``backbone.norm3`` + ``head.fc`` (fine-tuned ``cls.*`` or, for intermediate
supervision checkpoints, the last of ``cls_blocks``); the other
``cls_blocks`` and the ``decoder_blocks`` map to ``RevColClassifier``'s
``aux_heads`` and ``decoders``.
"""
import re
from typing import Tuple

from . import BLOCK_RENAMES, StateDict, register_converter


def _rename_block(rest: str) -> str:
    name, _, tail = rest.partition('.')
    return f'{BLOCK_RENAMES.get(name, name)}.{tail}' if tail else rest


def infer_arch(state_dict: StateDict) -> dict:
    columns = {int(m.group(1)) for k in state_dict
               if (m := re.match(r'subnet(\d+)\.', k))}
    if 'stem.0.weight' not in state_dict or not columns:
        raise ValueError('Not an official RevCol checkpoint: expected stem.0.weight and '
                         f'subnet*.*, got keys like {sorted(state_dict)[:6]}.')
    channels, layers = [], []
    for level in range(4):
        blocks = {int(m.group(1)) for k in state_dict
                  if (m := re.match(rf'subnet0\.level{level}\.blocks\.(\d+)\.', k))}
        layers.append(len(blocks))
        channels.append(state_dict[f'subnet0.alpha{level}'].shape[1])
    arch = dict(channels=channels, layers=layers, num_columns=len(columns))
    if any('fusion.up2.' in k for k in state_dict):
        arch['top_to_level0'] = True
    kernel = state_dict['subnet0.level0.blocks.0.dwconv.weight'].shape[-1]
    return dict(arch=arch, kernel_size=kernel)


def convert_keys(state_dict: StateDict) -> StateDict:
    """Official names -> ours (unprefixed backbone keys keep no prefix)."""
    heads = sorted({int(m.group(1)) for k in state_dict
                    if (m := re.match(r'cls_blocks\.(\d+)\.', k))})
    new = {}
    for key, value in state_dict.items():
        m = re.match(r'(subnet\d+\.level\d\.blocks\.\d+)\.(.*)', key)
        if m:
            new['backbone.' + m.group(1) + '.' + _rename_block(m.group(2))] = value
        elif key.startswith(('stem.', 'subnet')):
            new['backbone.' + key] = value
        elif m := re.match(r'(cls|cls_blocks\.(\d+))\.classifier\.([01])\.(.*)', key):
            final = m.group(2) is None or int(m.group(2)) == heads[-1]
            part = 'norm' if m.group(3) == '0' else 'fc'
            if final:
                new[('backbone.norm3.' if part == 'norm' else 'head.fc.') + m.group(4)] = value
            else:
                new[f'aux_heads.{m.group(2)}.{part}.{m.group(4)}'] = value
        elif m := re.match(r'decoder_blocks\.(\d+)\.normal_layers\.(\d+)\.0\.(.*)', key):
            new[f'decoders.{m.group(1)}.normal_layers.{m.group(2)}.0.'
                + _rename_block(m.group(3))] = value
        elif key.startswith('decoder_blocks.'):
            new['decoders.' + key[len('decoder_blocks.'):]] = value
        else:
            new[key] = value  # reported by the family check
    return new


@register_converter('revcol', official_marker=r'subnet\d+\.level\d\.blocks\.\d+\.dwconv\.',
                    signature=r'subnet\d+\.level\d\.', name='RevCol')
def convert_revcol(state_dict: StateDict) -> Tuple[StateDict, dict]:
    info = infer_arch(state_dict)
    new = convert_keys(state_dict)
    cfg = dict(type='RevCol', **info)
    if 'backbone.norm3.weight' in new:  # classifier: pooled, normed last level
        cfg.update(out_indices=(3, ), out_norm=True, gap_before_final_norm=True)
    return new, cfg
