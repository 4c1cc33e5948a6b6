"""ConvNeXt V2: mmpretrain's ConvNeXt with GRN, plus what it lacks.

Added here: the V2 arch names (mmpretrain's table), argument checks with clear errors, GRN computed
in fp32 under autocast (fp16 GRN overflows, ConvNeXt-V2 #66) and the official
per-block ("single") layer-decay rule next to mmpretrain's grouped one.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models.backbones import ConvNeXt
from mmpretrain.models.utils import GRN

from mmconvarch.registry import MODELS
from .base import (FrozenStagesMixin, OfficialCheckpointMixin, check_drop_path_rate,
                   check_frozen_stages, check_input_size, check_positive_ints,
                   convnext_layer_depth, normalize_out_indices, reject_pretrained_argument,
                   resolve_arch, resolve_gap_before_final_norm)


__all__ = ['ConvNeXtV2', 'FP32GRN']


class FP32GRN(GRN):
    """GRN whose statistics and output are computed in fp32 under autocast."""

    def forward(self, x: torch.Tensor,
                data_format: str = 'channel_first') -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = super().forward(x.float(), data_format=data_format)
        return out.to(x.dtype)


@MODELS.register_module()
class ConvNeXtV2(OfficialCheckpointMixin, FrozenStagesMixin, ConvNeXt):
    """ConvNeXt V2 backbone (`arXiv:2301.00808`), reusing mmpretrain's ConvNeXt.

    Its state-dict keys are mmpretrain's, so mmpretrain's converted ConvNeXt V2
    checkpoints load directly with ``prefix='backbone.'``; official ones
    (FCMAE or fine-tuned, file or URL, their ``model`` or EMA weights) load
    with ``init_cfg=dict(type='Pretrained', checkpoint=...)`` (converted on
    load), strictly: see :class:`~mmconvarch.checkpoint.OfficialCheckpointMixin`
    (the output norms ``norm{i}``, new for dense tasks or after FCMAE, may be
    missing).

    Args:
        arch (str | dict): One of ``atto, femto, pico, nano, tiny, base,
            large, huge`` or a dict with ``depths`` and ``channels``.
        in_channels (int): Input image channels. Defaults to 3.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        out_indices (int | Sequence[int]): Stages whose (normalised) output is
            returned; negative values count from the end. Defaults to -1.
        frozen_stages (int): Stages (stem/downsample + blocks) to freeze;
            0 or -1 freezes nothing. Defaults to 0.
        gap_before_final_norm (bool, optional): Pool before the output norm,
            giving ``(N, C)`` vectors for classification. None (default):
            pool only when one stage is requested, so several ``out_indices``
            (dense tasks) give feature maps.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        layer_decay_type (str): Layer ids for layer-wise lr decay:
            ``'group'`` (mmdet ``layer_wise``/mmpretrain ConvNeXt rule, 6 or 12
            groups; the official B/L/H fine-tuning rule), ``'single'`` (one id
            per block, the official rule for atto..tiny) or ``'stage'``
            (mmseg's ConvNeXt ``stage_wise`` rule). Defaults to ``'group'``.
        pretrained (None): Always None; weights load through ``init_cfg``
            (a value, e.g. mmseg's ``model.pretrained`` handed down, raises
            one ValueError saying so).
        **kwargs: Passed to mmpretrain's ``ConvNeXt`` (``norm_cfg``,
            ``act_cfg``, ``linear_pw_conv``, ``init_cfg``...).
    """

    official_family = 'convnextv2'
    # the official V2 archs, whose depths/channels mmpretrain's table holds
    arch_zoo = {name: ConvNeXt.arch_settings[name] for name in (
        'atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge')}
    min_input_size = 32  # stem /4 then three /2 downsamples

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = 0,
                 gap_before_final_norm: Optional[bool] = None,
                 with_cp: bool = False,
                 layer_decay_type: str = 'group',
                 pretrained: None = None,
                 **kwargs) -> None:
        reject_pretrained_argument(pretrained, type(self).__name__)
        arch = resolve_arch(arch, self.arch_zoo, ('depths', 'channels'),
                            'ConvNeXtV2')
        name = type(self).__name__  # MaskedConvNeXtV2 (FCMAE) too
        depths = check_positive_ints('arch depths', arch['depths'], name)
        channels = check_positive_ints('arch channels', arch['channels'], name)
        if len(depths) != len(channels):
            raise ValueError(f'{name} arch needs one depth per channel '
                             f'width, got depths={depths}, channels={channels}.')
        check_positive_ints('in_channels', in_channels, name)
        drop_path_rate = check_drop_path_rate(drop_path_rate, name)
        num_stages = len(depths)
        out_indices = normalize_out_indices(out_indices, num_stages,
                                            'ConvNeXtV2')
        frozen_stages = max(
            check_frozen_stages(frozen_stages, num_stages, 'ConvNeXtV2'), 0)
        if layer_decay_type not in ('group', 'single', 'stage'):
            raise ValueError(f'ConvNeXtV2 layer_decay_type must be "group", '
                             f'"single" or "stage", got {layer_decay_type!r}.')
        for fixed in ('use_grn', 'layer_scale_init_value'):
            if fixed in kwargs:
                raise ValueError(f'ConvNeXtV2 fixes {fixed} (GRN on, no layer '
                                 'scale); use mmpretrain.ConvNeXt for V1.')
        super().__init__(
            arch=arch,
            in_channels=in_channels,
            drop_path_rate=drop_path_rate,
            out_indices=list(out_indices),
            frozen_stages=frozen_stages,
            gap_before_final_norm=resolve_gap_before_final_norm(
                gap_before_final_norm, out_indices),
            with_cp=with_cp,
            use_grn=True,
            layer_scale_init_value=0.,
            **kwargs)
        self.layer_decay_type = layer_decay_type
        for stage in self.stages:
            for block in stage:
                block.grn = FP32GRN(block.grn.in_channels, eps=block.grn.eps)
        self._freeze_stages()  # the new GRNs of frozen stages too

    def frozen_parts(self) -> List[nn.Module]:
        """The downsample layer (the first is the stem) and the blocks of each
        frozen stage (what mmpretrain's ConvNeXt freezes)."""
        return [module for i in range(self.frozen_stages)
                for module in (self.downsample_layers[i], self.stages[i])]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_input_size(x, self.min_input_size, 'ConvNeXtV2',
                         stem=self.downsample_layers[0][0])
        return super().forward(x)

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Return ``(layer_id, num_layers)`` of a parameter for layer decay
        (``layer_decay_type``'s rule, see :func:`convnext_layer_depth`).

        A parameter outside this backbone (no ``prefix``) gets
        ``num_layers - 1``, i.e. lr scale 1.
        """
        return convnext_layer_depth(self, param_name, prefix, self.layer_decay_type)
