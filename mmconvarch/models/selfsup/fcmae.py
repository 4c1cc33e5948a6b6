"""FCMAE: ConvNeXt V2's fully convolutional masked autoencoder (arXiv:2301.00808).

Structured as mmpretrain structures MAE/SparK: ``FCMAE`` (algorithm: random
patch masks) + ``MaskedConvNeXtV2`` (encoder) + ``FCMAEDecoder`` (neck) +
``FCMAEPretrainHead`` (mmpretrain's MAE pixel head, loss on masked patches).

The official encoder runs on MinkowskiEngine sparse tensors holding only the
visible sites. ``MaskedConvNeXtV2`` computes the same thing densely, without a
CUDA extension: masked sites are zero at the input of every operation that
mixes sites (the 7x7 depthwise conv, GRN's statistics, the 2x2 downsampling
conv), and per-site operations (LayerNorm, Linear, GELU, biases) may write
values at masked sites that are zeroed before the next mixing operation. The
encoder's parameters are exactly those of ``ConvNeXtV2`` (same keys, no
output norm), so a pre-trained ``backbone.*`` loads into ``ConvNeXtV2`` for
fine-tuning with ``init_cfg=dict(type='Pretrained', prefix='backbone.')``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmpretrain.models.backbones.convnext import ConvNeXtBlock
from mmpretrain.models.heads import MAEPretrainHead
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import GRN

from mmconvarch.registry import MODELS
from ..backbones.base import check_input_size
from ..backbones.convnextv2 import ConvNeXtV2, FP32GRN

__all__ = ['FCMAE', 'MaskedConvNeXtV2', 'FCMAEDecoder', 'FCMAEPretrainHead',
           'masked_grn']

ENCODER_STRIDE = 32  # stem /4, three /2 downsamples


def masked_grn(grn: GRN, x: torch.Tensor, keep: torch.Tensor,
               reduction: str = 'batch') -> torch.Tensor:
    """GRN on channels-last ``x`` (N, H, W, C) with statistics over visible
    sites only (``keep`` (N, H, W, 1), 1 = visible), computed in fp32.

    ``reduction='batch'``: L2 norm over the visible sites of the whole batch,
    as MinkowskiGRN (the official PyTorch pre-training) computes it over all
    active rows of the sparse tensor. ``'sample'``: per sample and channel,
    as the dense GRN and the authors' JAX pre-training (which differs only by
    putting its 1e-6 inside the square root).
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x32 = x.float() * keep.float()
        dims = (0, 1, 2) if reduction == 'batch' else (1, 2)
        gx = torch.linalg.vector_norm(x32, dim=dims, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + grn.eps)
        out = grn.gamma.float() * (x32 * nx) + grn.beta.float() + x32
    return out.to(x.dtype)


def _apply(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Zero masked sites, keeping x's dtype (fp16 under autocast)."""
    return x * keep.to(x.dtype)


def _upsample_mask(mask: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, h, w) patch mask -> (N, 1, h*scale, w*scale)."""
    return mask.repeat_interleave(scale, dim=1).repeat_interleave(
        scale, dim=2).unsqueeze(1)


@MODELS.register_module()
class MaskedConvNeXtV2(ConvNeXtV2):
    """ConvNeXt V2 encoder for FCMAE: a dense emulation of the official
    sparse (MinkowskiEngine) encoder.

    ``forward(x, mask)`` with a patch mask gives, at visible sites, exactly
    what the sparse encoder computes: outputs there do not depend on the
    pixels of masked patches, and masked sites are 0. Without a mask it is
    the plain ``ConvNeXtV2`` stage computation. Outputs are the raw stage
    features (the sparse encoder has no output norm, so neither has this;
    ``ConvNeXtV2`` initialises its ``norm3`` fresh when fine-tuning, as the
    official fine-tuning does).

    Args:
        arch (str | dict): As ``ConvNeXtV2`` (``atto`` ... ``huge`` or a dict
            with ``depths`` and ``channels``). Defaults to ``'tiny'``.
        grn_reduction (str): GRN statistics over visible sites: ``'batch'``
            (the official PyTorch MinkowskiGRN: one L2 norm per channel over
            the visible sites of the whole per-GPU batch) or ``'sample'``
            (per sample, as the JAX pre-training and the dense GRN).
            Defaults to ``'batch'``.
        out_indices (int | Sequence[int]): Stages whose features are
            returned. Defaults to -1 (the last, what FCMAE decodes).
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        **kwargs: Passed to ``ConvNeXtV2`` (``in_channels``, ``init_cfg``,
            ``frozen_stages``...). ``linear_pw_conv`` must stay True.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 grn_reduction: str = 'batch',
                 out_indices: Union[int, Sequence[int]] = -1,
                 drop_path_rate: float = 0.,
                 with_cp: bool = False,
                 **kwargs) -> None:
        if grn_reduction not in ('batch', 'sample'):
            raise ValueError('MaskedConvNeXtV2 grn_reduction must be "batch" '
                             '(official PyTorch, batch-global) or "sample" '
                             f'(JAX, per sample), got {grn_reduction!r}.')
        if not kwargs.get('linear_pw_conv', True):
            raise ValueError('MaskedConvNeXtV2 needs linear_pw_conv=True (the '
                             'ConvNeXt V2 layout).')
        kwargs.pop('gap_before_final_norm', None)
        super().__init__(arch=arch, out_indices=out_indices,
                         drop_path_rate=drop_path_rate, with_cp=with_cp,
                         gap_before_final_norm=False, **kwargs)
        self.grn_reduction = grn_reduction
        self.with_cp = with_cp
        for i in self.out_indices:  # no output norms (sparse encoder has none)
            delattr(self, f'norm{i}')

    def forward(self, x: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Encode ``x`` (N, C, H, W); ``mask`` (N, h, w) marks masked
        patches with 1 (official convention), each patch ``H/h`` pixels with
        ``H/h`` a multiple of 32. Returns features of ``out_indices``."""
        check_input_size(x, self.min_input_size, 'MaskedConvNeXtV2', why=None,
                         stem=self.downsample_layers[0][0])
        if mask is None:
            return self._forward_dense(x)
        keeps = self._stage_keeps(x, mask)
        outs = []
        for i, stage in enumerate(self.stages):
            if i == 0:  # patch-aligned k4 s4 conv + per-site LN, then mask
                x = _apply(self.downsample_layers[0](x), keeps[0])
            else:  # per-site LN; k2 s2 windows never straddle patches
                norm, conv = self.downsample_layers[i]
                x = _apply(conv(_apply(norm(x), keeps[i - 1])), keeps[i])
            for block in stage:
                if self.with_cp and x.requires_grad:
                    x = cp.checkpoint(self._masked_block, block, x, keeps[i],
                                      use_reentrant=False)
                else:
                    x = self._masked_block(block, x, keeps[i])
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _forward_dense(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(self.downsample_layers[i](x))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _stage_keeps(self, x: torch.Tensor,
                     mask: torch.Tensor) -> List[torch.Tensor]:
        """Per-stage (N, 1, H_i, W_i) keep maps (1 = visible)."""
        if mask.dim() == 4 and mask.shape[1] == 1:
            mask = mask[:, 0]
        n, _, height, width = x.shape
        mh, mw = mask.shape[-2:] if mask.dim() == 3 else (0, 0)
        if mask.dim() != 3 or mask.shape[0] != n or not mh or height % mh \
                or width % mw or (height // mh) % ENCODER_STRIDE or \
                height // mh != width // mw:
            raise ValueError(
                f'MaskedConvNeXtV2: mask of shape {tuple(mask.shape)} does not '
                f'fit input {tuple(x.shape)}: expected (N, h, w) with square '
                f'patches of a multiple of {ENCODER_STRIDE} pixels '
                '(the encoder stride), tiling the image.')
        cell = height // mh // 4  # patch size in stem-resolution sites
        keep = 1. - mask.to(x.dtype)
        return [_upsample_mask(keep, cell >> i) for i in range(len(self.stages))]

    def _masked_block(self, block: ConvNeXtBlock, x: torch.Tensor,
                      keep: torch.Tensor) -> torch.Tensor:
        # x is 0 at masked sites here (stem/downsample output and every block
        # output are masked), so the depthwise conv sees only visible sites.
        shortcut = x
        y = _apply(block.depthwise_conv(x), keep)  # bias hits masked sites
        y = y.permute(0, 2, 3, 1)
        y = block.norm(y, data_format='channel_last')
        y = block.act(block.pointwise_conv1(y))
        y = masked_grn(block.grn, y, keep.permute(0, 2, 3, 1),
                       self.grn_reduction)
        y = _apply(block.pointwise_conv2(y).permute(0, 3, 1, 2), keep)
        return shortcut + block.drop_path(y)


@MODELS.register_module()
class FCMAEDecoder(BaseModule):
    """The FCMAE decoder (neck): 1x1 projection, mask tokens at masked
    sites, ``depth`` dense ConvNeXt V2 blocks, 1x1 prediction of each
    patch's ``patch_size**2 * out_channels`` pixels, ordered ``(p, q, c)``.

    Args:
        in_channels (int): Channels of the encoder's last stage.
        embed_dim (int): Decoder width. Defaults to 512.
        depth (int): Number of ConvNeXt V2 blocks. Defaults to 1.
        patch_size (int): Pixels per patch side. Defaults to 32.
        out_channels (int): Image channels. Defaults to 3.
        init_cfg (dict | list[dict], optional): Defaults to truncated normal
            (std 0.02) for Conv2d/Linear and (1, 0) for LayerNorm; the mask
            token is drawn from N(0, 0.02) as in the official code.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dim: int = 512,
                 depth: int = 1,
                 patch_size: int = 32,
                 out_channels: int = 3,
                 init_cfg: Optional[Union[dict, List[dict]]] = (
                     dict(type='TruncNormal', layer=['Conv2d', 'Linear'],
                          std=.02, bias=0.),
                     dict(type='Constant', layer=['LayerNorm'], val=1.,
                          bias=0.))) -> None:
        super().__init__(init_cfg=list(init_cfg) if init_cfg else None)
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=1)
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim, 1, 1))
        nn.init.normal_(self.mask_token, std=.02)
        blocks = []
        for _ in range(depth):
            block = ConvNeXtBlock(embed_dim, drop_path_rate=0.,
                                  layer_scale_init_value=0., use_grn=True)
            block.grn = FP32GRN(block.grn.in_channels, eps=block.grn.eps)
            blocks.append(block)
        self.decoder = nn.Sequential(*blocks)
        self.pred = nn.Conv2d(embed_dim, patch_size**2 * out_channels,
                              kernel_size=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, h, w) encoder output, ``mask`` (N, h, w) with 1 at
        masked patches -> (N, patch_size**2 * out_channels, h, w)."""
        x = self.proj(x)
        if mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f'FCMAEDecoder: mask {tuple(mask.shape)} does not '
                             f'match the feature grid {tuple(x.shape[-2:])}.')
        m = mask.reshape(x.shape[0], 1, *x.shape[-2:]).to(x.dtype)
        x = x * (1. - m) + self.mask_token.to(x.dtype) * m
        return self.pred(self.decoder(x))


@MODELS.register_module()
class FCMAEPretrainHead(MAEPretrainHead):
    """mmpretrain's MAE pixel head for FCMAE's per-site predictions.

    Targets are the image's patches in ``(p, q, c)`` order, normalised per
    patch (mean, unbiased variance, eps 1e-6) with ``norm_pix=True``; the
    loss is averaged over masked patches only. Rectangular images work.

    Args:
        loss (dict): Defaults to ``PixelReconstructionLoss`` (L2), i.e. the
            official per-patch MSE averaged over masked patches.
        norm_pix (bool): Per-patch normalised targets. Defaults to True
            (the official ``main_pretrain`` forces it on).
        patch_size (int): Defaults to 32.
        in_channels (int): Image channels. Defaults to 3.
    """

    def __init__(self,
                 loss: dict = dict(type='PixelReconstructionLoss',
                                   criterion='L2'),
                 norm_pix: bool = True,
                 patch_size: int = 32,
                 in_channels: int = 3) -> None:
        super().__init__(loss=loss, norm_pix=norm_pix, patch_size=patch_size,
                         in_channels=in_channels)

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, h*w, p*p*C), patch vectors ordered (p, q, c)."""
        n, c, height, width = imgs.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f'FCMAEPretrainHead: image {height}x{width} is '
                             f'not a multiple of patch_size {p}.')
        x = imgs.reshape(n, c, height // p, p, width // p, p)
        x = torch.einsum('nchpwq->nhwpqc', x)
        return x.reshape(n, (height // p) * (width // p), p * p * c)

    def unpatchify(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(N, h*w, p*p*C) -> (N, C, h*p, w*p)."""
        p, c = self.patch_size, self.in_channels
        x = x.reshape(x.shape[0], h, w, p, p, c)
        x = torch.einsum('nhwpqc->nchpwq', x)
        return x.reshape(x.shape[0], c, h * p, w * p)

    def loss(self, pred: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor) -> torch.Tensor:
        """``pred`` (N, p*p*C, h, w) or (N, h*w, p*p*C), ``target`` the
        images (N, C, H, W), ``mask`` (N, h, w) or (N, h*w), 1 = masked."""
        if pred.dim() == 4:
            pred = pred.flatten(2).transpose(1, 2)
        mask = mask.reshape(mask.shape[0], -1).to(pred.dtype)
        if not bool(mask.sum() > 0):
            raise ValueError(
                'FCMAE: no patch is masked, and the reconstruction loss is '
                'averaged over masked patches only. Use 0 < mask_ratio < 1 '
                'with images large enough to mask at least one patch.')
        return self.loss_module(pred, self.construct_target(target), mask)


@MODELS.register_module()
class FCMAE(BaseSelfSupervisor):
    """Fully convolutional masked autoencoder pre-training (ConvNeXt V2).

    ``loss``: draw a random patch mask (official ``gen_random_mask``: per
    sample, ``int(L * (1 - mask_ratio))`` of the ``L`` patches stay
    visible), encode with the mask, decode, MSE on masked patches. Mode
    ``'tensor'`` returns the backbone's unmasked features; there is no
    ``'predict'`` mode (as in mmpretrain's MAE); :meth:`reconstruct` gives
    images for visualisation.

    Args:
        backbone (dict): ``MaskedConvNeXtV2`` config.
        neck (dict): ``FCMAEDecoder`` config.
        head (dict): ``FCMAEPretrainHead`` config.
        patch_size (int): Mask patch size; must equal the encoder stride
            (32) and the head's/neck's patch size. Defaults to 32.
        mask_ratio (float): Fraction of masked patches, in [0, 1). 0 builds
            (features only) but the loss refuses it. Defaults to 0.6.
        pretrained (str, optional): Checkpoint to initialise from.
        data_preprocessor (dict, optional): Defaults to mmpretrain's
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 patch_size: int = 32,
                 mask_ratio: float = 0.6,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not 0. <= mask_ratio < 1.:
            raise ValueError(f'FCMAE mask_ratio must be in [0, 1), got '
                             f'{mask_ratio!r}.')
        if patch_size != ENCODER_STRIDE:
            raise ValueError(f'FCMAE patch_size must equal the encoder stride '
                             f'{ENCODER_STRIDE} (one decoder site per patch), '
                             f'got {patch_size}.')
        super().__init__(backbone=backbone, neck=neck, head=head,
                         pretrained=pretrained,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        for part in (self.neck, self.head):
            if getattr(part, 'patch_size', patch_size) != patch_size:
                raise ValueError(f'FCMAE patch_size={patch_size} but '
                                 f'{type(part).__name__} has patch_size='
                                 f'{part.patch_size}.')
        self.patch_size = patch_size
        self.mask_ratio = mask_ratio

    def gen_random_mask(self, inputs: torch.Tensor,
                        generator: Optional[torch.Generator] = None
                        ) -> torch.Tensor:
        """(N, h, w) mask, 1 = masked, as the official ``gen_random_mask``
        (argsort of Gaussian noise, the first ``len_keep`` kept)."""
        n, _, height, width = inputs.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f'FCMAE: input {height}x{width} is not a multiple '
                             f'of patch_size {p}.')
        h, w = height // p, width // p
        num_patches = h * w
        len_keep = int(num_patches * (1 - self.mask_ratio))
        noise = torch.randn(n, num_patches, generator=generator,
                            device=generator.device if generator is not None
                            else inputs.device)
        ids_restore = noise.argsort(dim=1).argsort(dim=1)
        mask = (ids_restore >= len_keep).to(inputs.device, torch.float32)
        return mask.reshape(n, h, w)

    def _check_mask_counts(self, inputs: torch.Tensor) -> None:
        h, w = (s // self.patch_size for s in inputs.shape[-2:])
        num_patches = h * w
        len_keep = int(num_patches * (1 - self.mask_ratio))
        if len_keep >= num_patches:
            raise ValueError(
                f'FCMAE mask_ratio={self.mask_ratio} masks no patch of the '
                f'{h}x{w} patch grid ({num_patches} patches, {len_keep} kept), '
                'and the loss is computed on masked patches only: use '
                '0 < mask_ratio < 1 leaving at least one patch masked.')
        if len_keep == 0:
            raise ValueError(
                f'FCMAE mask_ratio={self.mask_ratio} keeps no patch of the '
                f'{h}x{w} patch grid ({num_patches} patches): the encoder '
                'would see nothing. Use larger images or a lower mask_ratio.')

    def loss(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
             **kwargs) -> Dict[str, torch.Tensor]:
        if not torch.is_tensor(inputs) or inputs.dim() != 4:
            raise TypeError(
                'FCMAE expects a batched (N, C, H, W) image tensor, got '
                f'{type(inputs).__name__}: the train dataloader needs '
                "collate_fn=dict(type='default_collate') for mmpretrain's "
                'SelfSupDataPreprocessor.')
        self._check_mask_counts(inputs)
        mask = self.gen_random_mask(inputs)
        latent = self.backbone(inputs, mask)[-1]
        pred = self.neck(latent, mask)
        return dict(loss=self.head.loss(pred, inputs, mask))

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor,
                    mask: Optional[torch.Tensor] = None
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct ``inputs`` (N, C, H, W, preprocessed).

        Returns ``(images, pixel_mask)``: the predicted images in the input's
        (normalised) space and (N, 1, H, W) with 1 at masked pixels. With
        ``norm_pix`` the per-patch predictions are mapped back with each
        target patch's own mean and std (for display; the model never sees
        those of masked patches).
        """
        if mask is None:
            mask = self.gen_random_mask(inputs)
        latent = self.backbone(inputs, mask)[-1]
        pred = self.neck(latent, mask).flatten(2).transpose(1, 2)
        if self.head.norm_pix:
            target = self.head.patchify(inputs)
            pred = pred * (target.var(dim=-1, keepdim=True) + 1e-6)**.5 + \
                target.mean(dim=-1, keepdim=True)
        h, w = mask.shape[-2:]
        images = self.head.unpatchify(pred, h, w)
        return images, _upsample_mask(mask.to(images.dtype), self.patch_size)
