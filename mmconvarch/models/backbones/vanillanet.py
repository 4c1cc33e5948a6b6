"""VanillaNet: the Power of Minimalism in Deep Learning (Chen et al., 2023).

A plain stack of 1x1 convs and max pools, no shortcuts. Each block is
``conv1x1 -> BN -> leaky_relu(λ) -> conv1x1 -> BN -> maxpool -> act`` where
``act`` is the *series-informed activation*: ReLU, then a depthwise
``(2n+1)x(2n+1)`` conv and BN (``n = act_num``). During "deep training" λ
(``act_learn``) rises from 0 (ReLU: two nonlinear layers per block) to 1
(identity: the two 1x1 convs are linear and merge into one), driven by
:class:`mmconvarch.engine.hooks.ActivationAnnealHook`. λ is a buffer of the
backbone (and of :class:`VanillaNetClsHead`), so checkpoints record it and
resuming is exact; it defaults to 1, the finished state the official detection
code uses. :meth:`VanillaNet.switch_to_deploy` then folds every BN and merges
the convs, giving ``conv -> pool -> act`` per block.

Parameter names follow the official code (``stem1``, ``stem2``,
``stages.{i}.conv1``/``conv2``/``act``; deploy: ``stem``, ``stages.{i}.conv``)
plus the ``act_learn`` buffer, so official checkpoints convert 1:1
(:mod:`mmconvarch.checkpoint.converters.vanillanet`).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights

from mmconvarch.models.memory_format import MemoryFormatPolicy
from mmconvarch.registry import MODELS
from .base import (FrozenStagesMixin, OfficialCheckpointMixin, check_batch_norm_batch,
                   check_frozen_stages, check_input_size, check_positive_ints,
                   normalize_out_indices, reject_pretrained_argument, resolve_arch)

__all__ = ['VanillaNet', 'SeriesActivation', 'VanillaBlock']

ACT_LEARN = 'act_learn'  # the buffer holding λ, wherever it lives


def leaky_relu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """``F.leaky_relu(x, slope)`` for a tensor slope: reading a device
    buffer as a Python float would sync the device on every forward."""
    return torch.where(x >= 0, x, x * slope.to(x.dtype))


def set_act_learn(model: nn.Module, value: float) -> int:
    """Set λ in every module of ``model`` that holds an ``act_learn`` buffer.

    Returns the number of buffers set (0: no VanillaNet train-form module).
    """
    count = 0
    for module in model.modules():
        buf = module._buffers.get(ACT_LEARN)
        if buf is not None:
            buf.fill_(float(value))
            count += 1
    return count


def get_act_learn(model: nn.Module) -> Dict[str, float]:
    """``{module name: λ}`` of every ``act_learn`` buffer in ``model``."""
    return {name: float(module._buffers[ACT_LEARN])
            for name, module in model.named_modules()
            if module._buffers.get(ACT_LEARN) is not None}


def check_act_learn_finished(module: nn.Module, force: bool,
                             what: str) -> None:
    """Refuse to fuse while λ != 1 (fusion would change outputs)."""
    value = float(module._buffers[ACT_LEARN])
    if abs(value - 1.) > 1e-6 and not force:
        raise RuntimeError(
            f'{what}.switch_to_deploy(): act_learn (λ) is {value:.6g}, not 1. '
            'Merging the 1x1 convs is exact only once the leaky ReLU between '
            'them is the identity, i.e. after ActivationAnnealHook reached '
            'the end of its schedule (decay_epochs/decay_iters). Train '
            'further, or pass force=True to fuse anyway (outputs change).')


def _f64(x: torch.Tensor) -> torch.Tensor:
    # fusion maths in float64 on the CPU (some devices lack float64)
    return x.detach().cpu().double()


def fuse_bn(weight: torch.Tensor, bias: Optional[torch.Tensor],
            bn: _BatchNorm) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BN into the preceding conv/linear (torch's
    ``fuse_conv_bn_weights``, computed in float64 for exactness); returns
    float64 CPU tensors (cast back by the caller)."""
    def f64(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return None if x is None else _f64(x)

    weight, bias = fuse_conv_bn_weights(
        _f64(weight), f64(bias), _f64(bn.running_mean), _f64(bn.running_var),
        bn.eps, f64(bn.weight), f64(bn.bias))
    return weight.detach(), bias.detach()


def _param(value: torch.Tensor, like: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(value.to(like.device, like.dtype).reshape(like.shape))


def _set_conv(conv: nn.Conv2d, weight: torch.Tensor,
              bias: torch.Tensor) -> nn.Conv2d:
    conv.weight = _param(weight, conv.weight)
    conv.bias = _param(bias, conv.bias)
    return conv


def _norm(norm_cfg: dict, channels: int) -> nn.Module:
    layer = build_norm_layer(norm_cfg, channels)[1]
    if not isinstance(layer, _BatchNorm):
        raise TypeError(f'VanillaNet needs batch norm (BN/SyncBN) so that it '
                        f'fuses into convs; norm_cfg {norm_cfg} builds '
                        f'{type(layer).__name__}.')
    return layer


class SeriesActivation(BaseModule):
    """Series-informed activation: ``BN(dwconv_{(2n+1)^2}(ReLU(x)))``.

    Realises ``A_s(x) = sum_ij a_ij,c ReLU(x_{h+i,w+j,c}) + b_c``. The deploy
    form folds the BN into the depthwise kernel plus a bias.

    Args:
        channels (int): Channels (the depthwise conv has one kernel each).
        act_num (int): ``n``; the kernel is ``(2n+1) x (2n+1)``.
        norm_cfg (dict): Batch norm config (train form).
        deploy (bool): Build the fused form (``weight`` + ``bias``).
    """

    def __init__(self, channels: int, act_num: int = 3,
                 norm_cfg: dict = dict(type='BN', eps=1e-6),
                 deploy: bool = False) -> None:
        super().__init__()
        self.channels, self.act_num, self.deploy = channels, act_num, deploy
        k = 2 * act_num + 1
        self.weight = nn.Parameter(torch.empty(channels, 1, k, k))
        nn.init.trunc_normal_(self.weight, std=.02)
        if deploy:
            self.bias = nn.Parameter(torch.zeros(channels))
        else:
            self.bias = None
            self.bn = _norm(norm_cfg, channels)

    def forward(self, x: torch.Tensor, overwrite_input: bool = False) -> torch.Tensor:
        """``overwrite_input``: the ReLU may run in place on ``x`` (VanillaNet's
        deploy forward passes its own fresh maps without grad, which saves
        one map's allocation). Never set it for a tensor the caller still reads."""
        x = F.conv2d(F.relu(x, inplace=overwrite_input), self.weight, self.bias,
                     padding=self.act_num, groups=self.channels)
        return x if self.deploy else self.bn(x)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        weight, bias = fuse_bn(self.weight, None, self.bn)
        self.bias = _param(bias, self.bn.bias)
        self.weight = _param(weight, self.weight)
        del self.bn
        self.deploy = True


def _as_matmul(x: torch.Tensor) -> bool:
    """Whether a 1x1 conv on ``x`` runs as a matmul over the pixels: only for a
    channels-last CPU map outside ONNX export (an export keeps the Conv).
    Figures: docs/benchmarks.md."""
    return (x.device.type == 'cpu' and x.dim() == 4 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
            and not torch.onnx.is_in_onnx_export())


def _pixel_matmul(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A bias-free 1x1 conv of a channels-last map, as one matmul (the same
    sums); the result is channels-last too."""
    return (x.permute(0, 2, 3, 1) @ weight.flatten(1).t()).permute(0, 3, 1, 2)


# glibc's largest mmap threshold: blocks below it are reused from the heap,
# larger ones are mapped and page-faulted in afresh on every call
_CHUNK_BYTES = 32 * 2**20


def _pooled_pixel_matmul(weight: torch.Tensor, x: torch.Tensor,
                         pool: nn.Module) -> torch.Tensor:
    """``pool(_pixel_matmul(weight, x))``, a few samples at a time so that
    each 1x1 conv output stays under ``_CHUNK_BYTES`` (the pools are per
    sample, so the values are the same). Figures: docs/benchmarks.md."""
    n, _, h, w = x.shape
    step = max(1, _CHUNK_BYTES // (h * w * weight.shape[0] * x.element_size()))
    if step >= n:
        return pool(_pixel_matmul(weight, x))
    return torch.cat([pool(_pixel_matmul(weight, x[i:i + step]))
                      for i in range(0, n, step)])


class VanillaBlock(BaseModule):
    """``conv1x1-BN -> leaky_relu(λ) -> conv1x1-BN -> pool -> act``; deploy:
    ``conv1x1 -> pool -> act``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        act_num (int): Series activation size ``n``.
        stride (int): Max-pool stride (1: no pooling).
        ada_pool (int): If non-zero and ``stride != 1``, pool with
            ``AdaptiveMaxPool2d(ada_pool)`` instead (VanillaNet-13-1.5x†).
        norm_cfg (dict): Batch norm config.
        deploy (bool): Build the fused form.
    """

    def __init__(self, in_channels: int, out_channels: int, act_num: int = 3,
                 stride: int = 2, ada_pool: int = 0,
                 norm_cfg: dict = dict(type='BN', eps=1e-6),
                 deploy: bool = False) -> None:
        super().__init__()
        self.deploy = deploy
        if deploy:
            self.conv = nn.Conv2d(in_channels, out_channels, 1)
        else:
            self.conv1 = nn.Sequential(
                nn.Conv2d(in_channels, in_channels, 1),
                _norm(norm_cfg, in_channels))
            self.conv2 = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1),
                _norm(norm_cfg, out_channels))
        if stride == 1:
            self.pool = nn.Identity()
        elif ada_pool:
            self.pool = nn.AdaptiveMaxPool2d((ada_pool, ada_pool))
        else:
            self.pool = nn.MaxPool2d(stride)
        self.act = SeriesActivation(out_channels, act_num, norm_cfg, deploy)

    def forward(self, x: torch.Tensor,
                act_learn: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.deploy and _as_matmul(x):
            # max-pooling commutes with adding a per-channel constant (exactly:
            # rounding is monotonic), so the bias goes on the pooled map,
            # which is 4x smaller than the conv's output
            x = _pooled_pixel_matmul(self.conv.weight, x, self.pool)
            if self.conv.bias is not None:
                x = x.add_(self.conv.bias.view(1, -1, 1, 1))
            return self.act(x, overwrite_input=not torch.is_grad_enabled())
        if self.deploy:
            x = self.conv(x)
        else:
            x = self.conv1(x)
            if act_learn is not None:  # None: λ = 1, the identity
                x = leaky_relu(x, act_learn)
            x = self.conv2(x)
        return self.act(self.pool(x))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Merge ``conv2(BN(conv1))`` into one conv (exact at λ = 1)."""
        if self.deploy:
            return
        w1, b1 = fuse_bn(self.conv1[0].weight, self.conv1[0].bias,
                         self.conv1[1])
        w2, b2 = fuse_bn(self.conv2[0].weight, self.conv2[0].bias,
                         self.conv2[1])
        w1, w2 = w1.flatten(1), w2.flatten(1)  # (C, C), (C_out, C)
        self.conv = _set_conv(self.conv2[0], w2 @ w1, w2 @ b1 + b2)
        del self.conv1, self.conv2
        self.act.switch_to_deploy()
        self.deploy = True


@MODELS.register_module()
class VanillaNet(OfficialCheckpointMixin, FrozenStagesMixin, BaseModule):
    """VanillaNet backbone (`arXiv:2305.12972`), official variants 5-13.

    Train form: ``stem1`` (4x4 conv, stride 4, BN) -> leaky_relu(λ) ->
    ``stem2`` (1x1 conv, BN, series activation) -> ``stages`` (one
    :class:`VanillaBlock` each). Deploy form: ``stem`` (4x4 conv, series
    activation) -> blocks ``conv -> pool -> act``. Outputs are the stage
    outputs of ``out_indices`` (no extra norms, as official).

    Args:
        arch (str | int | dict): ``'5'`` ... ``'13'``, ``'13_x1_5'``,
            ``'13_x1_5_ada_pool'`` (VanillaNet-13-1.5x†; an optional
            ``'vanillanet_'`` prefix is accepted), or a dict with ``dims``
            (stem channels then one entry per block) and ``strides`` (one per
            block) and optionally ``ada_pool`` (one per block; turns the stem
            into stride 3, padding 1 as official). Adaptive pools give fixed
            output sizes (38/19/10), so † suits classification only (the
            official detection backbone has no ``ada_pool`` either).
        in_channels (int): Input image channels. Defaults to 3.
        act_num (int): Series activation size ``n`` (kernel ``2n+1``).
            Official: 3 for classification, 4 for the detection backbone.
        out_indices (int | Sequence[int]): Blocks whose outputs are returned;
            negative values count from the end. Official detection
            (VanillaNet-13): ``(0, 1, 8, 10)``. Defaults to -1.
        frozen_stages (int): Freeze the stem and the first ``frozen_stages``
            blocks (parameters and BN statistics); 0 or -1 freezes nothing.
        norm_eval (bool): Keep every BN in eval mode while training.
        norm_cfg (dict): Batch norm config (``BN`` or ``SyncBN``); ``eps``
            defaults to 1e-6 as official.
        deploy (bool): Build the fused (re-parameterised) form directly.
        with_cp (bool): Gradient checkpointing per block (VanillaNet's
            training memory is large, official issue #35).
        layer_decay_type (str): Layer ids for layer-wise lr decay:
            ``'single'`` (official classification rule: stem 0, block i ->
            i + 1) or ``'pair'`` (official detection rule: block i ->
            i // 2 + 1). Parameters outside the backbone get lr scale 1.
        memory_format (str): Layout the convs run in: ``'auto'`` (default:
            per device type, :data:`mmconvarch.models.memory_format.
            MEMORY_FORMAT_POLICY`), ``'channels_last'`` (the input is
            converted once, every op keeps it) or ``'contiguous'`` (NCHW).
            Outputs are contiguous NCHW either way.
        pretrained (None): Always None; weights load through ``init_cfg``
            (a value, e.g. mmseg's ``model.pretrained`` handed down, raises
            one ValueError saying so).
        init_cfg (dict | list, optional): Defaults to trunc-normal(0.02)
            convs with zero bias, as official. An official checkpoint (its
            ``model`` or EMA weights; λ set to 1) loads directly with
            ``dict(type='Pretrained', checkpoint=...)``, strictly (see
            :class:`~mmconvarch.checkpoint.OfficialCheckpointMixin`); the
            official files have no ``act_learn`` (λ, set to 1).
    """

    official_family = 'vanillanet'
    pretrained_optional_keys = \
        OfficialCheckpointMixin.pretrained_optional_keys + r'|act_learn$'

    arch_zoo = {
        '5': dict(dims=[512, 1024, 2048, 4096], strides=[2, 2, 2]),
        '6': dict(dims=[512, 1024, 2048, 4096, 4096], strides=[2, 2, 2, 1]),
        '7': dict(dims=[512, 512, 1024, 2048, 4096, 4096],
                  strides=[1, 2, 2, 2, 1]),
        '8': dict(dims=[512, 512, 1024, 2048, 2048, 4096, 4096],
                  strides=[1, 2, 2, 1, 2, 1]),
        '9': dict(dims=[512, 512, 1024] + [2048] * 3 + [4096] * 2,
                  strides=[1, 2, 2, 1, 1, 2, 1]),
        '10': dict(dims=[512, 512, 1024] + [2048] * 4 + [4096] * 2,
                   strides=[1, 2, 2, 1, 1, 1, 2, 1]),
        '11': dict(dims=[512, 512, 1024] + [2048] * 5 + [4096] * 2,
                   strides=[1, 2, 2] + [1] * 4 + [2, 1]),
        '12': dict(dims=[512, 512, 1024] + [2048] * 6 + [4096] * 2,
                   strides=[1, 2, 2] + [1] * 5 + [2, 1]),
        '13': dict(dims=[512, 512, 1024] + [2048] * 7 + [4096] * 2,
                   strides=[1, 2, 2] + [1] * 6 + [2, 1]),
        '13_x1_5': dict(dims=[768, 768, 1536] + [3072] * 7 + [6144] * 2,
                        strides=[1, 2, 2] + [1] * 6 + [2, 1]),
        '13_x1_5_ada_pool': dict(
            dims=[768, 768, 1536] + [3072] * 7 + [6144] * 2,
            strides=[1, 2, 2] + [1] * 6 + [2, 1],
            ada_pool=[0, 38, 19, 0, 0, 0, 0, 0, 0, 10, 0]),
    }

    def __init__(self,
                 arch: Union[str, int, dict] = '5',
                 in_channels: int = 3,
                 act_num: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = 0,
                 norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN', eps=1e-6),
                 deploy: bool = False,
                 with_cp: bool = False,
                 layer_decay_type: str = 'single',
                 memory_format: str = 'auto',
                 pretrained: None = None,
                 init_cfg: Optional[Union[dict, list]] = dict(
                     type='TruncNormal', layer='Conv2d', std=.02, bias=0.)
                 ) -> None:
        reject_pretrained_argument(pretrained, 'VanillaNet')
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, int):
            arch = str(arch)
        if isinstance(arch, str) and arch.lower().startswith('vanillanet_'):
            arch = arch[len('vanillanet_'):]
        arch = resolve_arch(arch, self.arch_zoo, ('dims', 'strides'),
                            'VanillaNet', optional_keys=('ada_pool', ))
        dims = check_positive_ints('arch dims', arch['dims'], 'VanillaNet')
        strides = check_positive_ints('arch strides', arch['strides'], 'VanillaNet')
        num_stages = len(strides)
        ada_pool = arch.get('ada_pool')
        if ada_pool is not None:
            ada_pool = check_positive_ints('arch ada_pool', ada_pool, 'VanillaNet',
                                           minimum=0)
        check_positive_ints('in_channels', in_channels, 'VanillaNet')
        if len(dims) != num_stages + 1 or num_stages == 0:
            raise ValueError(
                f'VanillaNet arch needs len(dims) == len(strides) + 1 >= 2 '
                f'(stem channels, then one entry per block); got dims {dims} '
                f'and strides {strides}.')
        if ada_pool is not None and len(ada_pool) != num_stages:
            raise ValueError(f'VanillaNet ada_pool needs one entry per block '
                             f'({num_stages}), got {ada_pool}.')
        if not isinstance(act_num, int) or act_num < 0:
            raise ValueError(f'VanillaNet act_num must be an int >= 0, got '
                             f'{act_num!r}.')
        if layer_decay_type not in ('single', 'pair'):
            raise ValueError(f'VanillaNet layer_decay_type must be "single" '
                             f'or "pair", got {layer_decay_type!r}.')
        self.dims, self.strides = dims, strides
        self.ada_pool = list(ada_pool) if ada_pool else None
        self.num_stages = num_stages
        self.channels = dims[1:]  # output channels of each block
        self.act_num = act_num
        self.out_indices = normalize_out_indices(out_indices, num_stages,
                                                 'VanillaNet')
        self.frozen_stages = check_frozen_stages(frozen_stages, num_stages,
                                                 'VanillaNet')
        self.norm_eval, self.with_cp = norm_eval, with_cp
        self.layer_decay_type = layer_decay_type
        self.memory_format = MemoryFormatPolicy(memory_format, 'VanillaNet')
        self.deploy = deploy
        norm_cfg = dict(norm_cfg)
        norm_cfg.setdefault('eps', 1e-6)

        stride, padding = (3, 1) if self.ada_pool else (4, 0)
        self.stem_stride, self.stem_padding = stride, padding
        if deploy:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, dims[0], 4, stride, padding),
                SeriesActivation(dims[0], act_num, norm_cfg, deploy=True))
        else:
            self.stem1 = nn.Sequential(
                nn.Conv2d(in_channels, dims[0], 4, stride, padding),
                _norm(norm_cfg, dims[0]))
            self.stem2 = nn.Sequential(
                nn.Conv2d(dims[0], dims[0], 1), _norm(norm_cfg, dims[0]),
                SeriesActivation(dims[0], act_num, norm_cfg))
            # λ: 1 = finished (identity); ActivationAnnealHook anneals 0 -> 1
            self.register_buffer(ACT_LEARN, torch.tensor(1.))
        self.stages = nn.ModuleList(
            VanillaBlock(dims[i], dims[i + 1], act_num, strides[i],
                         self.ada_pool[i] if self.ada_pool else 0, norm_cfg,
                         deploy) for i in range(num_stages))
        self.min_input_size = self._min_input_size()
        self._freeze_stages()

    # -- forward -------------------------------------------------------
    def _out_size(self, size: int) -> int:
        """Height (or width) of the last block's output for an input of
        ``size`` (0: some pooling stage gets an empty map)."""
        s = (size + 2 * self.stem_padding - 4) // self.stem_stride + 1
        for i, stride in enumerate(self.strides):
            if s < 1:
                return 0
            if stride != 1:
                ada = self.ada_pool[i] if self.ada_pool else 0
                s = ada if ada else s // stride
        return s

    def _min_input_size(self, out: int = 1) -> Optional[int]:
        """Smallest square input whose last map is at least ``out`` wide
        (None if none is, e.g. behind a 1x1 adaptive pool)."""
        return next((size for size in range(1, 1 << 14)
                     if self._out_size(size) >= out), None)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_input_size(x, self.min_input_size, 'VanillaNet',
                         why='stem and max-pool strides',
                         stem=self.stem[0] if self.deploy else self.stem1[0])
        if self.training and x.shape[0] == 1:
            act = self.stages[-1].act
            two = self._min_input_size(2)
            check_batch_norm_batch(
                x, None if act.deploy else act.bn,
                (self._out_size(x.shape[-2]), self._out_size(x.shape[-1])),
                'VanillaNet', f'at least {two}x{self.min_input_size} (the last '
                'block\'s map must be larger than 1x1)' if two else
                'any size (none: the last adaptive pool gives a 1x1 map)')
        x = x.contiguous(memory_format=self.memory_format(x.device))
        if self.deploy:
            conv, act = self.stem
            x = act(conv(x), overwrite_input=not torch.is_grad_enabled())
            act_learn = None
        else:
            act_learn = self.act_learn
            x = leaky_relu(self.stem1(x), act_learn)
            x = self.stem2(x)
        outs = []
        for i, block in enumerate(self.stages):
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, act_learn, use_reentrant=False)
            else:
                x = block(x, act_learn)
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)

    # -- loading -------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Official train-form weights under any prefix have no λ: the
        official detectors' files (mmdet 2.x ``object_detection/``: this
        backbone's keys under ``backbone.`` beside their heads) load as a
        whole with λ = 1, what their backbone computes (no leaky ReLU), as
        every released file is finished. A file with ``act_learn`` keeps it."""
        key = prefix + ACT_LEARN
        if not self.deploy and key not in state_dict and \
                prefix + 'stem1.0.weight' in state_dict:
            state_dict[key] = torch.ones((), device='cpu')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- deploy --------------------------------------------------------
    @torch.no_grad()
    def switch_to_deploy(self, force: bool = False) -> None:
        """Fuse into the deploy form in place (BN statistics as in eval).

        Every BN folds into its conv, the two 1x1 convs of each block (and
        of the stem) merge into one, and each activation BN folds into its
        depthwise kernel. Refuses while λ != 1 (the merge is exact only when
        the leaky ReLU is the identity) unless ``force=True``.
        """
        if self.deploy:
            return
        check_act_learn_finished(self, force, type(self).__name__)
        self.stem2[2].switch_to_deploy()
        w1, b1 = fuse_bn(self.stem1[0].weight, self.stem1[0].bias,
                         self.stem1[1])
        w2, b2 = fuse_bn(self.stem2[0].weight, self.stem2[0].bias,
                         self.stem2[1])
        w2 = w2.flatten(1)
        conv = _set_conv(self.stem1[0], torch.einsum('oi,icjk->ocjk', w2, w1),
                         w2 @ b1 + b2)
        self.stem = nn.Sequential(conv, self.stem2[2])
        del self.stem1, self.stem2
        for block in self.stages:
            block.switch_to_deploy()
        del self.act_learn
        self.deploy = True

    # -- training helpers ----------------------------------------------
    def frozen_parts(self) -> List[nn.Module]:
        """The stem and the first ``frozen_stages`` stages."""
        if self.frozen_stages <= 0:
            return []
        stems = [self.stem] if self.deploy else [self.stem1, self.stem2]
        return stems + list(self.stages[:self.frozen_stages])

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Return ``(layer_id, num_layers)`` of a parameter for layer decay.

        ``'single'``: stem -> 0, ``stages.i`` -> i + 1, ``num_layers`` =
        blocks + 2 (official ``optim_factory``). ``'pair'``: ``stages.i`` ->
        i // 2 + 1 and ``num_layers`` = (blocks - 1) // 2 + 3, i.e. the
        official detection rule with its ``num_layers`` 6 for VanillaNet-13.
        Parameters outside the backbone get ``num_layers - 1`` (lr scale 1).
        """
        if self.layer_decay_type == 'single':
            max_id = self.num_stages + 2
        else:
            max_id = (self.num_stages - 1) // 2 + 3
        if not param_name.startswith(prefix):
            return max_id - 1, max_id
        parts = param_name[len(prefix):].split('.')
        if parts[0].startswith('stem'):
            return 0, max_id
        if parts[0] == 'stages':
            i = int(parts[1])
            return (i + 1 if self.layer_decay_type == 'single' else
                    i // 2 + 1), max_id
        return max_id - 1, max_id
