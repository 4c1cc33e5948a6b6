"""RevCol: Reversible Column Networks (Cai et al., ICLR 2023).

N ConvNeXt-like columns of 4 levels; every column reads the stem output and
the previous column's features (reversible multi-level fusion), and the last
column's levels are the outputs. With ``save_memory=True`` the backward pass
recomputes each column from the next one
(:mod:`mmconvarch.models.layers.reversible`), so training memory does not grow
with the number of columns. Parameter names follow the official code
(``stem``, ``subnet{i}.alpha{l}``, ``subnet{i}.level{l}.fusion.{down,up,up2}``)
except the blocks, which are mmpretrain ``ConvNeXtBlock``s (with a one-pass
residual tail, :class:`RevColBlock`).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from mmpretrain.models.backbones.convnext import ConvNeXtBlock
from mmpretrain.models.utils import LayerNorm2d

from mmconvarch.models.layers import reversible_columns
from mmconvarch.models.memory_format import MemoryFormatPolicy
from mmconvarch.registry import MODELS
from .base import (FrozenStagesMixin, OfficialCheckpointMixin, check_drop_path_rate,
                   check_frozen_stages, check_input_size, check_positive_ints,
                   normalize_out_indices, reject_pretrained_argument, resolve_arch)


__all__ = ['RevCol']


class UpSampleConvNeXt(nn.Module):
    """Channel re-mapping (Linear + LN, channels-last), then nearest upsampling
    to the size of the level it is added to (so odd input sizes work)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.channel_reschedule = nn.Sequential(
            nn.Linear(in_channels, out_channels),
            nn.LayerNorm(out_channels, eps=1e-6))

    def forward(self, x: torch.Tensor, size) -> torch.Tensor:
        x = self.channel_reschedule(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return F.interpolate(x, size=size, mode='nearest')


class Fusion(nn.Module):
    """Level input: down(lower level of this column) + up(higher levels of
    the previous column)."""

    def __init__(self, level: int, channels: Sequence[int], first_col: bool,
                 top_to_level0: bool) -> None:
        super().__init__()
        if level == 0:
            self.down = nn.Identity()
        else:  # conv then LN: the reverse of ConvNeXt's downsampling
            self.down = nn.Sequential(
                nn.Conv2d(channels[level - 1], channels[level], 2, 2),
                LayerNorm2d(channels[level], eps=1e-6))
        ups = nn.ModuleDict()
        if not first_col and level < len(channels) - 1:
            ups['up'] = UpSampleConvNeXt(channels[level + 1], channels[level])
        if not first_col and level == 0 and top_to_level0:  # RevCol-H
            ups['up2'] = UpSampleConvNeXt(channels[-1], channels[0])
        for name, module in ups.items():
            self.add_module(name, module)
        self.up_names = list(ups)

    def forward(self, down: torch.Tensor,
                ups: Sequence[torch.Tensor]) -> torch.Tensor:
        out = self.down(down)
        for name, up in zip(self.up_names, ups):
            out = out + getattr(self, name)(up, out.shape[-2:])
        return out


class RevColBlock(ConvNeXtBlock):
    """mmpretrain's ``ConvNeXtBlock`` (same parameters, init and outputs)
    with its tail ``shortcut + drop_path(gamma * x)`` in one pass
    (``addcmul`` with a per-sample, per-channel scale) instead of three over
    the map (figures: docs/benchmarks.md). Used with
    ``linear_pw_conv=True``, layer scale on and no GRN, as RevCol builds it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm(self.depthwise_conv(x).permute(0, 2, 3, 1), data_format='channel_last')
        x = self.pointwise_conv2(self.act(self.pointwise_conv1(x))).permute(0, 3, 1, 2)
        # the block's own drop path (mmcv's, or Identity) applied to ones: its
        # per-sample mask, with the same random draws as on the whole map
        keep = self.drop_path(x.new_ones((x.shape[0], 1, 1, 1)))
        return torch.addcmul(shortcut, x, self.gamma.view(1, -1, 1, 1) * keep)


class Level(nn.Module):
    """Fusion, then the level's ConvNeXt blocks, which run in the layout
    ``memory_format`` gives for the input's device (the down path's LN hands
    over NCHW maps); None: NCHW."""

    def __init__(self, level: int, channels: Sequence[int],
                 layers: Sequence[int], kernel_size: int, first_col: bool,
                 dp_rates: Sequence[float], top_to_level0: bool,
                 memory_format: Optional[MemoryFormatPolicy] = None) -> None:
        super().__init__()
        self.memory_format = memory_format or MemoryFormatPolicy('contiguous', 'RevCol')
        self.fusion = Fusion(level, channels, first_col, top_to_level0)
        start = sum(layers[:level])
        self.blocks = nn.Sequential(*[
            RevColBlock(
                channels[level],
                dw_conv_cfg=dict(kernel_size=kernel_size,
                                 padding=(kernel_size - 1) // 2),
                drop_path_rate=dp_rates[start + i],
                layer_scale_init_value=1e-6) for i in range(layers[level])
        ])

    def forward(self, down: torch.Tensor,
                ups: Sequence[torch.Tensor]) -> torch.Tensor:
        fused = self.fusion(down, ups)
        return self.blocks(fused.contiguous(memory_format=self.memory_format(fused.device)))


class RevColColumn(nn.Module):
    """One column (``SubNet`` in the official code): 4 levels and their
    per-channel reversible shortcuts ``alpha{l}``."""

    def __init__(self, channels: Sequence[int], layers: Sequence[int],
                 kernel_size: int, first_col: bool,
                 dp_rates: Sequence[float], top_to_level0: bool,
                 memory_format: Optional[MemoryFormatPolicy] = None) -> None:
        super().__init__()
        self.num_levels = len(channels)
        self.first_col = first_col
        self.top_to_level0 = top_to_level0
        for level, c in enumerate(channels):
            # the first column's alphas multiply nothing (officially int 0):
            # kept for checkpoint compatibility, never trained
            self.register_parameter(
                f'alpha{level}',
                nn.Parameter(0.5 * torch.ones(1, c, 1, 1),
                             requires_grad=not first_col))
            self.add_module(
                f'level{level}',
                Level(level, channels, layers, kernel_size, first_col,
                      dp_rates, top_to_level0, memory_format))

    # --- the interface of reversible_column -------------------------------
    def up_sources(self, level: int) -> Tuple[int, ...]:
        if self.first_col:
            return ()
        ups = (level + 1, ) if level < self.num_levels - 1 else ()
        if level == 0 and self.top_to_level0:
            ups += (self.num_levels - 1, )
        return ups

    def level_module(self, level: int) -> nn.Module:
        return getattr(self, f'level{level}')

    def level_forward(self, level: int, down: torch.Tensor,
                      ups: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.level_module(level)(down, ups)

    def alpha(self, level: int) -> nn.Parameter:
        return getattr(self, f'alpha{level}')
    # -----------------------------------------------------------------------

    def clamped_alpha(self, level: int, min_abs: float) -> torch.Tensor:
        """``alpha{level}`` with |alpha| >= min_abs, sign kept (0 counts as
        +): a new tensor, the parameter is not written (a traced / exported
        graph has no in-place parameter write). Values are exact (a Where,
        not ``a + (c - a)``); an alpha already in range is passed through
        with its gradient."""
        a = self.alpha(level)
        bound = torch.where(a >= 0, min_abs, -min_abs).to(a.dtype)
        return torch.where(a.abs() >= min_abs, a, bound)

    @torch.no_grad()
    def clamp_alphas(self, min_abs: float) -> None:
        """Project the parameters in place (|alpha| >= min_abs, sign kept),
        as officially; only the training / reversible path calls it."""
        for level in range(self.num_levels):
            self.alpha(level).copy_(self.clamped_alpha(level, min_abs))

    def forward(self, x: torch.Tensor, c_prev: Sequence[torch.Tensor],
                alpha_min: float = 1e-3) -> List[torch.Tensor]:
        c_new, down = [], x
        for level in range(self.num_levels):
            ups = [c_prev[k] for k in self.up_sources(level)]
            out = self.level_forward(level, down, ups)
            if c_prev:
                out = out + self.clamped_alpha(level, alpha_min) * c_prev[level]
            c_new.append(out)
            down = out
        return c_new


@MODELS.register_module()
class RevCol(OfficialCheckpointMixin, FrozenStagesMixin, BaseModule):
    """RevCol backbone (`arXiv:2212.11696`) for classification and dense tasks.

    Args:
        arch (str | dict): ``tiny/T, small/S, base/B, large/L, xlarge/XL,
            huge/H`` or a dict with ``channels``, ``layers``, ``num_columns``
            (and optionally ``drop_path_rate``, ``top_to_level0``).
        in_channels (int): Input image channels. Defaults to 3.
        kernel_size (int): Depthwise kernel of the blocks (3 officially; 7
            for the RevCol-H segmentation checkpoint). Defaults to 3.
        drop_path_rate (float, optional): Stochastic depth, linear over the
            blocks of one column and the same in every column (official).
            Defaults to the arch's builder value.
        out_indices (int | Sequence[int]): Levels of the last column to
            return (strides 4, 8, 16, 32). Defaults to (0, 1, 2, 3).
        out_norm (bool): Add an LN per returned level (``norm{i}``); the
            official detection/segmentation backbones have none. Defaults to
            False.
        gap_before_final_norm (bool): Pool each returned level before its
            norm (classification; needs ``out_norm=True``). Defaults to False.
        save_memory (bool): Reversible backward: recompute columns instead
            of storing their activations. Defaults to False.
        alpha_min (float): Lower bound of |alpha| (the inversion divides by
            alpha). Defaults to 1e-3, the official value.
        frozen_stages (int): Freeze the stem and levels ``< frozen_stages``
            of every column (their alphas too); 0 or -1 freezes nothing.
        memory_format (str): Layout the columns' blocks run in: ``'auto'``
            (default: per device type, :data:`mmconvarch.models.
            memory_format.MEMORY_FORMAT_POLICY`), ``'channels_last'`` or
            ``'contiguous'`` (NCHW, as the official code, which falls into
            channels-last only where its upsampled term comes first in a
            sum). Outputs are NCHW-contiguous either way.
        pretrained (None): Always None; weights load through ``init_cfg``
            (a value, e.g. mmseg's ``model.pretrained`` handed down, raises
            one ValueError saying so).
        init_cfg (dict | list, optional): Initialisation config. An
            official RevCol checkpoint (file or URL) loads directly with
            ``dict(type='Pretrained', checkpoint=...)``, strictly: see
            :class:`~mmconvarch.checkpoint.OfficialCheckpointMixin`.
    """

    official_family = 'revcol'
    arch_zoo = {
        'tiny': dict(channels=[64, 128, 256, 512], layers=[2, 2, 4, 2],
                     num_columns=4, drop_path_rate=0.1),
        'small': dict(channels=[64, 128, 256, 512], layers=[2, 2, 4, 2],
                      num_columns=8, drop_path_rate=0.3),
        'base': dict(channels=[72, 144, 288, 576], layers=[1, 1, 3, 2],
                     num_columns=16, drop_path_rate=0.4),
        'large': dict(channels=[128, 256, 512, 1024], layers=[1, 2, 6, 2],
                      num_columns=8, drop_path_rate=0.5),
        'xlarge': dict(channels=[224, 448, 896, 1792], layers=[1, 2, 6, 2],
                       num_columns=8, drop_path_rate=0.5),
        'huge': dict(channels=[360, 720, 1440, 2880], layers=[1, 2, 6, 2],
                     num_columns=8, drop_path_rate=0.5, top_to_level0=True),
    }
    for _short, _name in (('t', 'tiny'), ('s', 'small'), ('b', 'base'),
                          ('l', 'large'), ('xl', 'xlarge'), ('h', 'huge')):
        arch_zoo[_short] = arch_zoo[_name]
    del _short, _name
    min_input_size = 32

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 kernel_size: int = 3,
                 drop_path_rate: Optional[float] = None,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 out_norm: bool = False,
                 gap_before_final_norm: bool = False,
                 save_memory: bool = False,
                 alpha_min: float = 1e-3,
                 frozen_stages: int = 0,
                 memory_format: str = 'auto',
                 pretrained: None = None,
                 init_cfg=(dict(type='TruncNormal', layer=['Conv2d', 'Linear'],
                                std=.02, bias=0.),
                           dict(type='Constant', layer=['LayerNorm'], val=1.,
                                bias=0.))) -> None:
        reject_pretrained_argument(pretrained, 'RevCol')
        super().__init__(init_cfg=list(init_cfg) if isinstance(
            init_cfg, tuple) else init_cfg)
        arch = resolve_arch(arch, self.arch_zoo,
                            ('channels', 'layers', 'num_columns'), 'RevCol',
                            optional_keys=('drop_path_rate', 'top_to_level0'))
        self.channels = check_positive_ints('arch channels', arch['channels'], 'RevCol')
        self.layers = check_positive_ints('arch layers', arch['layers'], 'RevCol')
        self.num_columns = arch['num_columns']
        if not isinstance(self.num_columns, int) or self.num_columns < 1:
            raise ValueError(f'RevCol arch num_columns must be an int >= 1, '
                             f'got {self.num_columns!r}.')
        check_positive_ints('in_channels', in_channels, 'RevCol')
        check_positive_ints('kernel_size', kernel_size, 'RevCol')
        if len(self.channels) != 4 or len(self.layers) != 4:
            raise ValueError('RevCol arch needs 4 channels and 4 layers, got '
                             f'{self.channels} and {self.layers}.')
        self.out_indices = normalize_out_indices(out_indices, 4, 'RevCol')
        self.frozen_stages = max(
            check_frozen_stages(frozen_stages, 4, 'RevCol'), 0)
        if not alpha_min > 0:
            raise ValueError(
                f'RevCol alpha_min must be > 0, got {alpha_min}: the '
                'reversible backward divides by alpha, and a zero alpha also '
                'cuts the column shortcut.')
        if gap_before_final_norm and not out_norm:
            raise ValueError('RevCol gap_before_final_norm=True needs '
                             'out_norm=True (pooled features are normed).')
        self.alpha_min = alpha_min
        self.memory_format = MemoryFormatPolicy(memory_format, 'RevCol')
        self.save_memory = save_memory
        self.out_norm = out_norm
        self.gap_before_final_norm = gap_before_final_norm
        if drop_path_rate is None:
            drop_path_rate = arch.get('drop_path_rate', 0.)
        drop_path_rate = check_drop_path_rate(drop_path_rate, 'RevCol')
        dp_rates = torch.linspace(0, drop_path_rate,
                                  sum(self.layers)).tolist()

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, self.channels[0], 4, 4),
            LayerNorm2d(self.channels[0], eps=1e-6))
        for i in range(self.num_columns):
            self.add_module(
                f'subnet{i}',
                RevColColumn(self.channels, self.layers, kernel_size,
                             first_col=i == 0, dp_rates=dp_rates,
                             top_to_level0=arch.get('top_to_level0', False),
                             memory_format=self.memory_format))
        if out_norm:
            for i in self.out_indices:
                self.add_module(f'norm{i}',
                                LayerNorm2d(self.channels[i], eps=1e-6))
        self._freeze_stages()

    @property
    def columns(self) -> List[RevColColumn]:
        return [getattr(self, f'subnet{i}') for i in range(self.num_columns)]

    def _check_reversible(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, _BatchNorm) and module.training:
                raise RuntimeError(
                    f'RevCol save_memory=True cannot invert {name} '
                    f'({type(module).__name__}): its running statistics '
                    'would be updated again during recomputation. Use '
                    'LayerNorm, keep the BN in eval mode, or save_memory='
                    'False.')

    def forward_columns(self, x: torch.Tensor, returned: Sequence[int] = (-1, )
                        ) -> List[Optional[List[torch.Tensor]]]:
        """Levels of the columns in ``returned`` (``[column][level]``; None
        for the others, which the reversible path never keeps)."""
        check_input_size(x, self.min_input_size, 'RevCol', stem=self.stem[0])
        x = self.stem(x)
        x = x.contiguous(memory_format=self.memory_format(x.device))
        reversible = self.save_memory and torch.is_grad_enabled()
        if self.training or reversible:
            # training keeps the official in-place projection (the optimizer
            # steps from clamped alphas; the reversible backward divides by
            # the parameter itself). Other forwards (eval without the
            # reversible backward: export, inference) never write
            # parameters: the columns clamp functionally (clamped_alpha).
            for column in self.columns:
                column.clamp_alphas(self.alpha_min)
        if reversible:
            self._check_reversible()
            return reversible_columns(self.columns, x, returned)
        keep = {i % self.num_columns for i in returned}
        features, c = [], []
        for i, column in enumerate(self.columns):
            c = column(x, c, self.alpha_min)
            features.append(c if i in keep else None)
        return features

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return self.format_outputs(self.forward_columns(x)[-1])

    def format_outputs(self, levels: Sequence[torch.Tensor]
                       ) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i in self.out_indices:
            out = levels[i]
            if self.gap_before_final_norm:
                out = out.mean((-2, -1), keepdim=True)
            if self.out_norm:
                out = getattr(self, f'norm{i}')(out)
            # NCHW-contiguous, whatever memory_format: necks and mmcv ops see what they expect
            outs.append(out.flatten(1) if self.gap_before_final_norm else out.contiguous())
        return tuple(outs)

    def frozen_parts(self) -> List[Union[nn.Module, nn.Parameter]]:
        """The stem, and in every column the levels ``< frozen_stages`` with
        their fusion weights ``alpha``."""
        if self.frozen_stages <= 0:
            return []
        parts: List[Union[nn.Module, nn.Parameter]] = [self.stem]
        for column in self.columns:
            for level in range(self.frozen_stages):
                parts += [getattr(column, f'level{level}'), column.alpha(level)]
        return parts

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Official RevCol layer ids: ``block + column + 1`` on the
        (block, column) grid; stem 0; heads/necks/out norms ``D + N``.

        Returns ``(layer_id, D + N + 1)`` with D blocks per column and N
        columns, which gives the official scales with
        :class:`LayerDecayOptimWrapperConstructor`.
        """
        depth, cols = sum(self.layers), self.num_columns
        max_id = depth + cols + 1
        if not param_name.startswith(prefix):
            return max_id - 1, max_id
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'stem':
            return 0, max_id
        if parts[0].startswith('subnet'):
            col = int(parts[0][len('subnet'):])
            if parts[1].startswith('alpha'):
                return col + 1, max_id
            level = int(parts[1][len('level'):])
            start = sum(self.layers[:level])
            if parts[2] == 'fusion':
                return start + col + 1, max_id
            block = int(parts[3])
            return start + min(block, self.layers[level] - 1) + col + 1, \
                max_id
        return max_id - 1, max_id
