"""SLaK: Sparse Large Kernel Network (Liu et al., ICLR 2023).

A ConvNeXt macro-architecture (x1.3 wider) whose 7x7 depthwise conv is a
decomposed large kernel: two parallel rectangular depthwise convs (KxN and
NxK) plus a small NxN one, each followed by BN, summed. Pure PyTorch (with
mmpretrain's ``LayerNorm2d`` and ConvNeXt layer-decay rule); the official
MegEngine/cutlass implicit-GEMM kernel is used only if importable (and only
on CUDA). Parameter names follow the official code
(``downsample_layers``, ``stages.s.b.large_kernel.LoRA1.conv``...,
``norm{i}`` per output as in the official detection/segmentation backbones),
so official checkpoints map almost 1:1 (see :mod:`mmconvarch.checkpoint.converters.slak`).

Dynamic sparsity (ERK/SNIP init, prune and regrow) lives in
:mod:`mmconvarch.sparsity`, driven by ``SparseRegrowHook``.
"""
import importlib.util
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmpretrain.models.utils import LayerNorm2d
from torch.nn.utils.fusion import fuse_conv_bn_weights

from mmconvarch.models.memory_format import MemoryFormatPolicy
from mmconvarch.registry import MODELS
from .base import (FrozenStagesMixin, OfficialCheckpointMixin, check_batch_norm_batch,
                   check_drop_path_rate, check_frozen_stages, check_input_size,
                   check_positive_ints, convnext_layer_depth, normalize_out_indices,
                   reject_pretrained_argument, resolve_arch, resolve_gap_before_final_norm)

try:  # optional fast path (not on PyPI; SLaK #4, LKCell #5)
    import depthwise_conv2d_implicit_gemm as _igemm
except Exception:  # pragma: no cover - depends on an optional CUDA build
    _igemm = None

__all__ = ['SLaK', 'DecomposedLargeKernelConv', 'SLaKBlock', 'LayerNorm2d',
           'DepthwiseConv2d', 'crop_kernel_to_input']


class DepthwiseConv2d(nn.Conv2d):
    """Depthwise conv with "same" padding per axis: ``(kh // 2, kw // 2)``.

    This is the padding of the official iGEMM extension, which ignores its
    ``padding`` argument; padding ``K // 2`` on both axes of a ``(K, N)``
    kernel would be wrong. ``use_igemm``: None uses the extension when it is
    importable and the input is a CUDA fp16/fp32 tensor, True requires it,
    False never uses it.

    ``use_triton``: the Triton kernels of
    :mod:`mmconvarch.models.layers.dwconv_triton` for CUDA inputs. None
    (automatic) takes them only for a (device, dtype, kernel, C, H, W) that
    ``MEASURED_TRITON_WINS`` lists as faster than cuDNN (none yet: cuDNN, or
    the iGEMM extension when installed), True always (CUDA tensors only; a
    CPU input raises), False never. CPU inputs, tracing and ONNX export
    always take ``F.conv2d``.
    """

    def __init__(self, channels: int, kernel_size: Tuple[int, int],
                 bias: bool = False, use_igemm: Optional[bool] = None,
                 use_triton: Optional[bool] = None) -> None:
        kh, kw = kernel_size
        super().__init__(channels, channels, (kh, kw), padding=(kh // 2,
                                                                kw // 2),
                         groups=channels, bias=bias)
        if use_igemm and _igemm is None:
            raise ImportError(
                'use_igemm=True needs the optional depthwise_conv2d_implicit_'
                'gemm CUDA extension (built from the SLaK/RepLKNet cutlass '
                'sources); install it or pass use_igemm=None/False for the '
                'PyTorch path.')
        self.use_igemm = use_igemm
        self.use_triton = _check_use_triton(use_triton, use_igemm)

    def _igemm_ok(self, x: torch.Tensor) -> bool:
        return (self.use_igemm is not False and _igemm is not None
                and x.is_cuda and x.dtype in (torch.float16, torch.float32))

    def _triton_ok(self, x: torch.Tensor) -> bool:
        if self.use_triton is False or torch.jit.is_scripting() or \
                torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return False
        if self.use_triton:
            if not x.is_cuda:
                raise RuntimeError(
                    f'DepthwiseConv2d(use_triton=True) runs on CUDA tensors '
                    f'only, got a {x.device} tensor; pass use_triton=None '
                    '(automatic) or False for F.conv2d.')
            return True
        if not x.is_cuda or self._igemm_ok(x):
            return False
        from mmconvarch.models.layers.dwconv_triton import triton_preferred
        return triton_preferred(x, self.kernel_size, torch.is_grad_enabled())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._triton_ok(x):
            from mmconvarch.models.layers.dwconv_triton import \
                triton_depthwise_conv2d
            weight, _ = crop_kernel_to_input(self.weight, self.padding,
                                             x.shape[-2:])
            return triton_depthwise_conv2d(x, weight, self.bias)
        if self._igemm_ok(x):  # pragma: no cover - needs the CUDA extension
            fn = (_igemm._DepthWiseConv2dImplicitGEMMFP16
                  if x.dtype == torch.float16 else
                  _igemm._DepthWiseConv2dImplicitGEMMFP32)
            out = fn.apply(x, self.weight.to(x.dtype))
            if self.bias is not None:
                out = out + self.bias.to(out.dtype).view(1, -1, 1, 1)
            return out
        weight, padding = self.weight, self.padding
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            # an exported graph must keep the whole kernel for other sizes
            weight, padding = crop_kernel_to_input(weight, padding, x.shape[-2:])
        return F.conv2d(x, weight, self.bias, self.stride, padding,
                        self.dilation, self.groups)


def _check_use_triton(use_triton: Optional[bool],
                      use_igemm: Optional[bool]) -> Optional[bool]:
    """One clear error for a bad ``use_triton`` (or both paths forced)."""
    if use_triton is not None and not isinstance(use_triton, bool):
        raise ValueError(
            'use_triton must be None (automatic: Triton only where measured '
            'faster than cuDNN), True (always; CUDA tensors only) or False '
            f'(never), got {use_triton!r}.')
    if use_triton and use_igemm:
        raise ValueError('use_triton=True and use_igemm=True both force a '
                         'kernel; force at most one of them.')
    if use_triton and importlib.util.find_spec('triton') is None:
        raise ImportError('use_triton=True needs the triton package (it '
                          'ships with CUDA builds of torch); pass '
                          'use_triton=None or False for cuDNN.')
    return use_triton


def crop_kernel_to_input(weight: torch.Tensor, padding: Tuple[int, int],
                         size: Sequence[int]) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """The part of a stride-1 "same"-padded kernel that meets an input of
    ``size`` (H, W), and its padding. Kernel rows more than H - 1 from the
    centre only ever multiply padding zeros, so the output and every
    gradient are the same; a 47x5 kernel on SLaK-T's 8x8 stage-3 map at
    128 px shrinks to 15x5."""
    (kh, kw), (ph, pw), (h, w) = weight.shape[-2:], padding, size
    if (kh, kw) != (2 * ph + 1, 2 * pw + 1):  # only odd kernels are "same"
        return weight, padding
    rows, cols = min(ph, h - 1), min(pw, w - 1)
    if (rows, cols) == (ph, pw):
        return weight, padding
    return (weight[..., ph - rows:ph + rows + 1, pw - cols:pw + cols + 1],
            (rows, cols))


def _conv_bn(channels: int, kernel_size: Tuple[int, int],
             norm_cfg: Optional[dict], use_igemm: Optional[bool],
             use_triton: Optional[bool] = None) -> nn.Sequential:
    """``conv`` (depthwise, no bias) then ``bn``: the official ``conv_bn``."""
    branch = nn.Sequential()
    branch.add_module('conv', DepthwiseConv2d(channels, kernel_size,
                                              use_igemm=use_igemm,
                                              use_triton=use_triton))
    if norm_cfg is not None:
        branch.add_module('bn', build_norm_layer(norm_cfg, channels)[1])
    return branch


def _fuse_branch(branch: nn.Sequential) -> Tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of conv+BN at the BN's running statistics."""
    kernel = branch.conv.weight
    bn = getattr(branch, 'bn', None)
    if bn is None:
        return kernel, kernel.new_zeros(kernel.shape[0])
    return fuse_conv_bn_weights(kernel, None, bn.running_mean, bn.running_var,
                                bn.eps, bn.weight, bn.bias)


def _pad_to(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad an odd ``(kh, kw)`` kernel to ``(size, size)``, centred."""
    ph, pw = (size - kernel.shape[2]) // 2, (size - kernel.shape[3]) // 2
    return F.pad(kernel, [pw, pw, ph, ph])


class DecomposedLargeKernelConv(nn.Module):
    """The official ``ReparamLargeKernelConv`` (depthwise, stride 1).

    ``decompose=True`` (SLaK): ``LoRA1`` (KxN) + ``LoRA2`` (NxK) +
    ``small_conv`` (NxN, only when N < K). ``decompose=False`` (RepLKNet /
    ConvNeXt style): ``lkb_origin`` (KxK) + ``small_conv``. Every branch is
    conv + BN. :meth:`switch_to_deploy` fuses the BNs and merges all branches
    into one KxK depthwise conv with bias (``lkb_reparam``), exact because
    all kernels are odd and centred ("same" padding per axis).

    Args:
        channels (int): Channels (groups = channels).
        kernel_size (int): The large kernel K (odd).
        small_kernel (int): N, the short edge and the small kernel (odd).
        decompose (bool): SLaK decomposition. Defaults to True.
        norm_cfg (dict, optional): Norm of each branch; None for no norm
            (and no bias, as the official ``bn=False``). Defaults to BN.
        deploy (bool): Build the merged ``lkb_reparam`` directly.
        use_igemm (bool, optional): See :class:`DepthwiseConv2d`.
        use_triton (bool, optional): The Triton kernels for CUDA inputs:
            None where measured faster than cuDNN, True always, False
            never. See :class:`DepthwiseConv2d`.
    """

    def __init__(self, channels: int, kernel_size: int, small_kernel: int,
                 decompose: bool = True,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 deploy: bool = False,
                 use_igemm: Optional[bool] = None,
                 use_triton: Optional[bool] = None) -> None:
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.small_kernel, self.decompose = small_kernel, decompose
        self.use_igemm = use_igemm
        self.use_triton = _check_use_triton(use_triton, use_igemm)
        self.deploy = deploy
        if deploy:
            self.lkb_reparam = DepthwiseConv2d(
                channels, (kernel_size, kernel_size), bias=True,
                use_igemm=use_igemm, use_triton=use_triton)
            return
        K, N = kernel_size, small_kernel
        if decompose and N >= K:
            raise ValueError(
                f'decompose=True needs the small kernel N={N} below the '
                f'large kernel K={K} (KxN + NxK branches); use '
                'decompose=False for a full KxK kernel (ConvNeXt mode).')
        if decompose:
            self.LoRA1 = _conv_bn(channels, (K, N), norm_cfg, use_igemm,
                                  use_triton)
            self.LoRA2 = _conv_bn(channels, (N, K), norm_cfg, use_igemm,
                                  use_triton)
        else:
            self.lkb_origin = _conv_bn(channels, (K, K), norm_cfg, use_igemm,
                                       use_triton)
        if N < K:
            self.small_conv = _conv_bn(channels, (N, N), norm_cfg, use_igemm,
                                       use_triton)

    def branches(self) -> List[nn.Sequential]:
        names = ('LoRA1', 'LoRA2', 'lkb_origin', 'small_conv')
        return [getattr(self, n) for n in names if hasattr(self, n)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.lkb_reparam(x)
        out = None
        for branch in self.branches():
            y = branch(x)
            out = y if out is None else out + y
        return out

    @torch.no_grad()
    def get_equivalent_kernel_bias(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """One ``(C, 1, K, K)`` kernel and ``(C,)`` bias equal to the sum of
        the branches (BN at its running statistics)."""
        kernel, bias = 0., 0.
        for branch in self.branches():
            k, b = _fuse_branch(branch)
            kernel = kernel + _pad_to(k, self.kernel_size)
            bias = bias + b
        return kernel, bias

    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        kernel, bias = self.get_equivalent_kernel_bias()
        self.lkb_reparam = DepthwiseConv2d(
            self.channels, (self.kernel_size, self.kernel_size), bias=True,
            use_igemm=self.use_igemm,
            use_triton=self.use_triton).to(kernel.device, kernel.dtype)
        self.lkb_reparam.weight.data.copy_(kernel)
        self.lkb_reparam.bias.data.copy_(bias)
        for name in ('LoRA1', 'LoRA2', 'lkb_origin', 'small_conv'):
            if hasattr(self, name):
                delattr(self, name)
        self.deploy = True


class SLaKBlock(nn.Module):
    """large kernel -> LN -> Linear(4C) -> GELU -> Linear(C) -> gamma,
    residual with drop path (the official ``Block``)."""

    def __init__(self, channels: int, kernel_size: int, small_kernel: int,
                 drop_path: float = 0., layer_scale_init_value: float = 1e-6,
                 decompose: bool = True,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 deploy: bool = False, use_igemm: Optional[bool] = None,
                 with_cp: bool = False,
                 use_triton: Optional[bool] = None) -> None:
        super().__init__()
        self.large_kernel = DecomposedLargeKernelConv(
            channels, kernel_size, small_kernel, decompose=decompose,
            norm_cfg=norm_cfg, deploy=deploy, use_igemm=use_igemm,
            use_triton=use_triton)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(
            layer_scale_init_value * torch.ones(channels)) \
            if layer_scale_init_value > 0 else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.with_cp = with_cp

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.large_kernel(x).permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = x * self.gamma
        return shortcut + self.drop_path(x.permute(0, 3, 1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


@MODELS.register_module()
class SLaK(OfficialCheckpointMixin, FrozenStagesMixin, BaseModule):
    """SLaK backbone (`arXiv:2207.03620`), pure PyTorch.

    Official variants (``models/SLaK.py``, README): width factor 1.3 gives
    channels 124/249/499/998 (T, S) and 166/332/665/1331 (B); kernels
    51/49/47/13 per stage with N = 5. The 31/29/27/13 variant (and its
    checkpoints, SLaK #16) is ``kernel_size=(31, 29, 27, 13, 5)``.
    Dense parameter counts are larger than the README's (e.g. T: 50.7M vs
    30M): the README counts the non-zero weights at 40% sparsity.

    Args:
        arch (str | dict): ``tiny``, ``small``, ``base``, ``large`` or a dict
            with ``depths`` and ``channels`` (before ``width_factor``).
        in_channels (int): Input image channels. Defaults to 3.
        kernel_size (Sequence[int]): Five odd ints: the large kernel of each
            stage and the small kernel N (short edge of the decomposed
            kernels). Defaults to ``(51, 49, 47, 13, 5)``. A stage whose
            kernel is not larger than N gets no small branch.
        width_factor (float): Channels are ``int(c * width_factor)`` (floor,
            as official). Defaults to 1.3.
        decompose (bool): SLaK's KxN + NxK decomposition (official
            ``Decom``/``LoRA``). False gives a full KxK branch. Defaults to
            True.
        drop_path_rate (float): Stochastic depth, linear over blocks.
        layer_scale_init_value (float): Init of ``gamma`` (0 disables).
            Defaults to 1e-6.
        out_indices (int | Sequence[int]): Stages whose output (after its
            ``norm{i}``, LN-cf, as the official downstream code) is returned.
            Negative values count from the end. Defaults to -1.
        frozen_stages (int): Freeze (eval + no grad) the stem/downsample
            layers and blocks of the first ``frozen_stages`` stages. 0 or -1
            freeze nothing. Defaults to 0.
        norm_eval (bool): Keep the branch BNs in eval mode while training.
            Defaults to False.
        gap_before_final_norm (bool, optional): Global-average-pool before
            the output norms (classification: ``(N, C)`` vectors, the
            official ``norm(x.mean([-2, -1]))``). None (default): pool only
            when one stage is requested, so several ``out_indices`` (dense
            tasks) give feature maps.
        norm_cfg (dict, optional): Norm of the kernel branches (official:
            SyncBN). None builds branches without norm (official
            ``bn=False``). Defaults to ``dict(type='BN')``.
        deploy (bool): Build the merged (re-parameterised) kernels directly.
            Defaults to False.
        use_igemm (bool, optional): Use the optional iGEMM CUDA extension:
            None if importable, True required, False never. Defaults to None.
        use_triton (bool, optional): The Triton depthwise kernels
            (:mod:`mmconvarch.models.layers.dwconv_triton`) for CUDA inputs:
            None where a measurement on that device says they beat cuDNN
            (none recorded yet, so cuDNN), True always (CUDA only), False
            never. CPU, tracing and ONNX export use ``F.conv2d``. Defaults
            to None.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        layer_decay_type (str): Layer ids for layer-wise lr decay:
            ``'group'`` (the official detection ``layer_wise`` ConvNeXt rule,
            6 or 12 groups) or ``'stage'`` (the official segmentation
            ``stage_wise`` rule). Defaults to ``'group'``.
        memory_format (str): Layout of each stage's maps: ``'auto'``
            (default: per device type, :data:`mmconvarch.models.
            memory_format.MEMORY_FORMAT_POLICY`), ``'channels_last'`` or
            ``'contiguous'`` (NCHW, as official). The LNs between stages
            hand over channels-last-strided maps anyway; converting the
            input and each stage's input makes the layout one decision.
        pretrained (None): Always None; weights load through ``init_cfg``
            (a value, e.g. mmseg's ``model.pretrained`` handed down, raises
            one ValueError saying so).
        init_cfg (dict | list, optional): Defaults to trunc-normal(0.02) for
            every Conv2d and Linear, as the official ``_init_weights``. An
            official classification checkpoint (its ``model`` or EMA
            weights) loads directly with
            ``dict(type='Pretrained', checkpoint=...)``, strictly:
            see :class:`~mmconvarch.checkpoint.OfficialCheckpointMixin`.
    """

    official_family = 'slak'

    arch_zoo = {
        'tiny': dict(depths=[3, 3, 9, 3], channels=[96, 192, 384, 768]),
        'small': dict(depths=[3, 3, 27, 3], channels=[96, 192, 384, 768]),
        'base': dict(depths=[3, 3, 27, 3], channels=[128, 256, 512, 1024]),
        'large': dict(depths=[3, 3, 27, 3], channels=[192, 384, 768, 1536]),
    }
    num_stages = 4
    min_input_size = 32  # stem /4 then three /2 downsamples

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 kernel_size: Sequence[int] = (51, 49, 47, 13, 5),
                 width_factor: float = 1.3,
                 decompose: bool = True,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = 0,
                 norm_eval: bool = False,
                 gap_before_final_norm: Optional[bool] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 deploy: bool = False,
                 use_igemm: Optional[bool] = None,
                 use_triton: Optional[bool] = None,
                 with_cp: bool = False,
                 layer_decay_type: str = 'group',
                 memory_format: str = 'auto',
                 pretrained: None = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = [
                     dict(type='TruncNormal', layer=['Conv2d', 'Linear'],
                          std=.02, bias=0.),
                     dict(type='Constant', layer=['LayerNorm'], val=1.,
                          bias=0.)]) -> None:
        reject_pretrained_argument(pretrained, 'SLaK')
        super().__init__(init_cfg=init_cfg)
        arch = resolve_arch(arch, self.arch_zoo, ('depths', 'channels'),
                            'SLaK')
        depths = check_positive_ints('arch depths', arch['depths'], 'SLaK')
        channels = check_positive_ints('arch channels', arch['channels'], 'SLaK')
        if len(depths) != self.num_stages or len(channels) != self.num_stages:
            raise ValueError(f'SLaK arch needs 4 depths and 4 channels, got '
                             f'depths={depths}, channels={channels}.')
        kernel_size = self._check_kernel_size(kernel_size)
        if not width_factor > 0:
            raise ValueError(f'SLaK width_factor must be > 0, got '
                             f'{width_factor!r}.')
        if min(int(c * width_factor) for c in channels) < 1:
            raise ValueError(
                f'SLaK arch channels {channels} x width_factor {width_factor} '
                f'give {[int(c * width_factor) for c in channels]}; every '
                'stage needs at least 1 channel (int(c * width_factor) >= 1).')
        check_positive_ints('in_channels', in_channels, 'SLaK')
        drop_path_rate = check_drop_path_rate(drop_path_rate, 'SLaK')
        if layer_decay_type not in ('group', 'stage'):
            raise ValueError(f'SLaK layer_decay_type must be "group" or '
                             f'"stage", got {layer_decay_type!r}.')
        self.depths = depths
        self.channels = [int(c * width_factor) for c in channels]
        self.kernel_size = kernel_size
        self.out_indices = normalize_out_indices(out_indices, self.num_stages,
                                                 'SLaK')
        self.frozen_stages = check_frozen_stages(frozen_stages,
                                                 self.num_stages, 'SLaK')
        self.norm_eval = norm_eval
        self.gap_before_final_norm = resolve_gap_before_final_norm(
            gap_before_final_norm, self.out_indices)
        self.layer_decay_type = layer_decay_type
        self.memory_format = MemoryFormatPolicy(memory_format, 'SLaK')
        self.deploy = deploy

        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(in_channels, self.channels[0], 4, stride=4),
            LayerNorm2d(self.channels[0], eps=1e-6)))
        for i in range(1, self.num_stages):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm2d(self.channels[i - 1], eps=1e-6),
                nn.Conv2d(self.channels[i - 1], self.channels[i], 2,
                          stride=2)))

        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        cur = 0
        for i in range(self.num_stages):
            self.stages.append(nn.Sequential(*[
                SLaKBlock(self.channels[i], kernel_size[i], kernel_size[-1],
                          drop_path=dpr[cur + j],
                          layer_scale_init_value=layer_scale_init_value,
                          decompose=decompose, norm_cfg=norm_cfg,
                          deploy=deploy, use_igemm=use_igemm, with_cp=with_cp,
                          use_triton=use_triton)
                for j in range(depths[i])]))
            cur += depths[i]

        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(self.channels[i],
                                                    eps=1e-6))
        self._freeze_stages()

    @staticmethod
    def _check_kernel_size(kernel_size: Sequence[int]) -> Tuple[int, ...]:
        if isinstance(kernel_size, int) or len(kernel_size) != 5 or not all(
                isinstance(k, int) and k > 0 and k % 2 == 1
                for k in kernel_size):
            raise ValueError(
                'SLaK kernel_size must be 5 odd positive ints: the large '
                'kernel of each of the 4 stages, then the small kernel N, '
                f'e.g. (51, 49, 47, 13, 5) or (31, 29, 27, 13, 5); got '
                f'{kernel_size!r}. Odd sizes keep the merged kernel centred.')
        return tuple(kernel_size)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_input_size(x, self.min_input_size, 'SLaK',
                         stem=self.downsample_layers[0][0])
        if self.training and x.shape[0] == 1:
            last = self.stages[-1][-1].large_kernel
            bn = None if last.deploy else getattr(last.branches()[0], 'bn', None)
            check_batch_norm_batch(
                x, bn, (x.shape[-2] // 32, x.shape[-1] // 32), 'SLaK',
                'at least 64x32 (the last stage, at stride 32, must be larger than 1x1)')
        layout = self.memory_format(x.device)
        outs = []
        for i in range(self.num_stages):
            x = self.downsample_layers[i](x.contiguous(memory_format=layout))
            x = self.stages[i](x.contiguous(memory_format=layout))
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean((2, 3), keepdim=True)).flatten(1))
                else:
                    outs.append(norm(x))
        return tuple(outs)

    def frozen_parts(self) -> List[nn.Module]:
        """The downsample layer (the first is the stem) and the blocks of each
        frozen stage."""
        return [module for i in range(self.frozen_stages)
                for module in (self.downsample_layers[i], self.stages[i])]

    def switch_to_deploy(self) -> None:
        """Fuse the BNs and merge every block's branches into one KxK
        depthwise conv (``large_kernel.lkb_reparam``), in place."""
        for m in self.modules():
            if isinstance(m, DecomposedLargeKernelConv):
                m.switch_to_deploy()
        self.deploy = True

    def get_layer_depth(self, param_name: str,
                        prefix: str = '') -> Tuple[int, int]:
        """Return ``(layer_id, num_layers)`` of a parameter for layer decay.

        ``'group'``: the ConvNeXt rule of the official detection constructor
        (and mmdet/mmpretrain), 6 groups for depths[2] <= 9 else 12.
        ``'stage'``: the official segmentation ``stage_wise`` rule.
        Parameters outside the backbone (no ``prefix``) and the output norms
        get ``num_layers - 1``, i.e. lr scale 1 (see
        :func:`convnext_layer_depth`).
        """
        return convnext_layer_depth(self, param_name, prefix, self.layer_decay_type)
