"""Official SLaK (VITA-Group/SLaK) checkpoints -> SLaK keys.

Our parameter names are the official ones, so the map is nearly the
identity: classification ``norm`` (LN on pooled features) -> ``norm3``
(``gap_before_final_norm=True``) and ``head`` -> ``head.fc``; the
detection/segmentation ``norm0..3`` stay. Kernel sizes are not stored in the
checkpoints (SLaK #16: a 31x31 checkpoint gives 0% accuracy when built with
51x51), so they are read from the branch shapes and returned in the backbone
config, with depths, widths, decomposition, layer scale and deploy form.
Pruned weights are exact zeros in the checkpoints (no masks are saved);
``SparseRegrowHook(sparse_init='from_weights')`` rebuilds the masks.
"""
from typing import List, Tuple

import torch

from . import StateDict, official_head_key, register_converter


def _not_slak(state_dict: StateDict, why: str) -> ValueError:
    return ValueError(
        f'Not an official SLaK checkpoint ({why}); expected '
        'downsample_layers.*, stages.s.b.large_kernel.{LoRA1,LoRA2,'
        'lkb_origin,lkb_reparam,small_conv}.*; got keys like '
        f'{sorted(state_dict)[:6]}.')


def infer_backbone_cfg(state_dict: StateDict) -> dict:
    """Backbone config (arch, kernel sizes, decomposition...) of an official
    SLaK state dict."""
    depths, channels, kernels = [], [], []
    small = set()
    decompose, deploy = None, False
    for s in range(4):
        blocks = {int(k.split('.')[2]) for k in state_dict
                  if k.startswith(f'stages.{s}.')}
        if not blocks:
            raise _not_slak(state_dict, f'no stages.{s}.*')
        depths.append(max(blocks) + 1)
        p = f'stages.{s}.0.large_kernel.'
        if p + 'LoRA1.conv.weight' in state_dict:
            k, n = state_dict[p + 'LoRA1.conv.weight'].shape[2:]
            decompose = True
            small.add(int(n))
        elif p + 'lkb_origin.conv.weight' in state_dict:
            k = state_dict[p + 'lkb_origin.conv.weight'].shape[2]
            decompose = False if decompose is None else decompose
        elif p + 'lkb_reparam.weight' in state_dict:
            k = state_dict[p + 'lkb_reparam.weight'].shape[2]
            deploy = True
        else:
            raise _not_slak(state_dict, f'no large kernel in {p[:-1]}')
        if p + 'small_conv.conv.weight' in state_dict:
            small.add(int(state_dict[p + 'small_conv.conv.weight'].shape[2]))
        kernels.append(int(k))
        channels.append(int(state_dict[p[:-len('0.large_kernel.')]
                                       + '0.pwconv2.weight'].shape[0]))
    if 'downsample_layers.0.0.weight' not in state_dict:
        raise _not_slak(state_dict, 'no stem downsample_layers.0.0')
    if len(small) > 1:
        raise _not_slak(state_dict, f'several small kernels {sorted(small)}')
    # no small branch anywhere (deploy form, or ConvNeXt mode): any N >= K
    n = small.pop() if small else max(kernels) + 2
    cfg = dict(type='SLaK', kernel_size=kernels + [n],
               decompose=bool(decompose) if decompose is not None else True,
               deploy=deploy)
    from mmconvarch.models.backbones.slak import SLaK  # its arch names
    arch = dict(depths=depths, channels=channels)
    for name, zoo in SLaK.arch_zoo.items():
        if zoo['depths'] == depths and [int(c * 1.3) for c in
                                        zoo['channels']] == channels:
            cfg.update(arch=name, width_factor=1.3)
            break
    else:
        cfg.update(arch=arch, width_factor=1.0)
    if 'stages.0.0.gamma' not in state_dict:
        cfg['layer_scale_init_value'] = 0.
    cfg['in_channels'] = int(state_dict['downsample_layers.0.0.weight']
                             .shape[1])
    dense_norms: List[int] = sorted(
        int(k[4]) for k in state_dict if k[:4] == 'norm' and k[4:5].isdigit()
        and k.endswith('.weight'))
    if dense_norms:  # detection / segmentation backbone
        cfg.update(out_indices=dense_norms, gap_before_final_norm=False)
    elif 'norm.weight' in state_dict:
        cfg.update(out_indices=[3], gap_before_final_norm=True)
    else:
        raise _not_slak(state_dict, 'no output norm (norm or norm0..3)')
    return cfg


# official classification files keep the pooled LN as ``norm`` and the head
@register_converter('slak', official_marker=r'(norm|head)\.(weight|bias)$',
                    signature=r'stages\.\d+\.\d+\.large_kernel\.', name='SLaK')
def convert_slak(state_dict: StateDict) -> Tuple[StateDict, dict]:
    state_dict = {k[len('backbone.'):] if k.startswith('backbone.') else k: v
                  for k, v in state_dict.items()}
    cfg = infer_backbone_cfg(state_dict)
    new = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] in ('downsample_layers', 'stages') or (
                parts[0][:4] == 'norm' and parts[0][4:].isdigit()):
            new['backbone.' + key] = value
        else:  # classifier norm/head; others left for the family check
            new[official_head_key(key)] = value
    # BN buffers some exports drop: not weights, but strict loading wants them
    for key in list(new):
        if key.endswith('.bn.running_var'):
            counter = key[:-len('running_var')] + 'num_batches_tracked'
            new.setdefault(counter, torch.tensor(0, dtype=torch.long))
    return new, cfg
