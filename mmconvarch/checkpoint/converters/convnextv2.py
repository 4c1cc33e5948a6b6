"""Official ConvNeXt V2 (facebookresearch/ConvNeXt-V2) -> ConvNeXtV2 keys.

Two official layouts, told apart by their keys:

* fine-tuned (dense ``convnextv2.py``): maps 1:1 up to names; mmpretrain
  keeps GRN gamma/beta as (C,) where the official ones are (1, 1, 1, C).
* FCMAE pre-trained (sparse MinkowskiEngine encoder, ``encoder.*`` keys,
  ``*.kernel``, ``ln``/``linear`` sub-modules, (1, C) biases and GRN): first
  remapped to the dense layout exactly as the official fine-tuning does
  (``utils.remap_checkpoint_keys`` after dropping the decoder, mask token,
  ``proj`` and ``pred``), then as a fine-tuned checkpoint. The encoder has no
  output norm, so the result is checked against ``MaskedConvNeXtV2`` (the
  encoder layout); loaded into ``ConvNeXtV2`` only ``norm3`` is missing and
  starts fresh, as in the official fine-tuning.
"""
import math
from typing import Tuple

import torch

from . import BLOCK_RENAMES, StateDict, official_head_key, register_converter
# official fine-tuning drops keys containing these before remapping
_FCMAE_DECODER_WORDS = ('decoder', 'mask_token', 'proj', 'pred')


def is_fcmae_layout(state_dict: StateDict) -> bool:
    """True for the official sparse FCMAE pre-training layout."""
    return any(k.startswith('encoder.') or k.endswith('.kernel')
               for k in state_dict)


def sparse_kernel_to_dense(kernel: torch.Tensor) -> torch.Tensor:
    """MinkowskiEngine kernel -> ``nn.Conv2d`` weight, as the official
    ``remap_checkpoint_keys``.

    ME enumerates a kernel's offsets with the first spatial axis (H, the
    one ``dense()`` puts at dim 2) fastest, so offset index ``kv = h + k*w``
    and the reshape to (k, k) needs a transpose. (kv, C) depthwise kernels
    become (C, 1, k, k); (kv, in, out) kernels (out, in, k, k).
    """
    ks = math.isqrt(kernel.shape[0])
    if ks * ks != kernel.shape[0]:
        raise ValueError(f'Sparse kernel of shape {tuple(kernel.shape)}: the '
                         'first dim (kernel volume) is not a square.')
    if kernel.dim() == 2:
        dim = kernel.shape[1]
        return kernel.permute(1, 0).reshape(dim, 1, ks, ks).transpose(3, 2)
    if kernel.dim() == 3:
        _, cin, cout = kernel.shape
        return kernel.permute(2, 1, 0).reshape(cout, cin, ks, ks).transpose(
            3, 2)
    raise ValueError(f'Sparse kernel of shape {tuple(kernel.shape)}: expected '
                     '(kv, C) or (kv, in, out).')


def fcmae_to_dense(state_dict: StateDict) -> StateDict:
    """Official sparse FCMAE checkpoint -> official dense ConvNeXt V2 keys
    (the encoder only), as the official fine-tuning loads it."""
    new = {}
    for key, value in state_dict.items():
        if any(word in key for word in _FCMAE_DECODER_WORDS):
            continue
        if key.startswith('encoder.'):
            key = key[len('encoder.'):]
        parts = key.split('.')
        if parts[-1] == 'kernel':
            parts[-1] = 'weight'
            value = sparse_kernel_to_dense(value)
        if len(parts) > 2 and parts[-2] in ('ln', 'linear'):
            del parts[-2]
        if parts[-1] == 'bias' and value.dim() > 1:
            value = value.reshape(-1)
        if len(parts) > 1 and parts[-2] == 'grn':
            value = value.reshape(1, 1, 1, -1)
        new['.'.join(parts)] = value
    return new


def infer_arch(state_dict: StateDict) -> dict:
    depths = []
    for stage in range(4):
        blocks = {int(k.split('.')[2]) for k in state_dict
                  if k.startswith(f'stages.{stage}.')}
        depths.append(len(blocks))
    stem = state_dict.get('downsample_layers.0.0.weight')
    if stem is None or not all(depths):
        raise ValueError('Not an official ConvNeXt V2 checkpoint: expected '
                         'downsample_layers.0.0.weight and stages.0-3.* (or '
                         'encoder.* for FCMAE), got keys like '
                         f'{sorted(state_dict)[:6]}.')
    channels = [state_dict[f'downsample_layers.{i}.{0 if i == 0 else 1}'
                           '.weight'].shape[0] for i in range(4)]
    return dict(depths=depths, channels=channels)


@register_converter('convnextv2',
                    official_marker=r'(encoder\.)?stages\.\d+\.\d+\.dwconv\.',
                    signature=r'stages\.\d+\.\d+\.(dwconv|depthwise_conv|grn)\.',
                    name='ConvNeXt V2')
def convert_convnextv2(state_dict: StateDict) -> Tuple[StateDict, dict]:
    """Either official layout (auto-detected) -> ``backbone.*``/``head.fc.*``.

    Returns the backbone config the keys fit exactly: ``ConvNeXtV2`` for
    fine-tuned checkpoints, ``MaskedConvNeXtV2`` (``ConvNeXtV2`` without
    ``norm3``) for FCMAE ones.
    """
    fcmae = is_fcmae_layout(state_dict)
    if fcmae:
        state_dict = fcmae_to_dense(state_dict)
    arch = infer_arch(state_dict)
    new = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] == 'stages':
            parts[3] = BLOCK_RENAMES.get(parts[3], parts[3])
            if parts[3] == 'grn':
                value = value.reshape(-1)
            new['backbone.' + '.'.join(parts)] = value
        elif parts[0] == 'downsample_layers':
            new['backbone.' + key] = value
        else:  # classifier norm/head; others left for the family check
            new[official_head_key(key)] = value
    backbone = 'MaskedConvNeXtV2' if fcmae else 'ConvNeXtV2'
    return new, dict(type=backbone, arch=arch)
