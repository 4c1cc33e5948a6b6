"""RevCol intermediate supervision for ImageNet pre-training (official
``inter_supv=True``): after columns ``k * N/4 - 1`` (k = 1, 2, 3) a
classification head and a reconstruction decoder read the column's top level;
the loss adds, for the k-th of them (k = 0, 1, 2),
``BCE(recon, image) * (1 - k/3) * recon_weight + CE(aux) * (k+1)/4 * cls_weight``
to the final head's CE (official weights 3.0 and 0.7)."""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.backbones.convnext import ConvNeXtBlock
from mmpretrain.models.utils import LayerNorm2d

from mmconvarch.registry import MODELS
from .classifier import OfficialCheckpointClassifier

__all__ = ['RevColClassifier', 'RevColDecoder', 'RevColAuxHead']


class RevColAuxHead(nn.Module):
    """Pool, LayerNorm, Linear (the official ``Classifier``)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x.mean((-2, -1))))


class RevColDecoder(BaseModule):
    """Reconstructs the image from a column's top level (stride 32).

    ``simple=False`` (IN-1k): three (1x1 conv + LN + GELU, x2 bilinear
    upsampling, 3x3 ConvNeXt block without expansion) steps through the
    level widths, then 1x1 conv to 4*4*3 and pixel shuffle. ``simple=True``
    (official ``SimDecoder`` for IN-22k): LN, 1x1 conv to 32*32*3, pixel
    shuffle.
    """

    def __init__(self, channels: Sequence[int], simple: bool = False) -> None:
        super().__init__()
        self.simple = simple
        if simple:
            self.projback = nn.Sequential(
                LayerNorm2d(channels[-1], eps=1e-6),
                nn.Conv2d(channels[-1], 32 * 32 * 3, 1), nn.PixelShuffle(32))
            return
        dims = list(channels)[::-1]
        self.proj_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dims[s], dims[s + 1], 1),
                          LayerNorm2d(dims[s + 1], eps=1e-6), nn.GELU())
            for s in range(3))
        self.normal_layers = nn.ModuleList(
            nn.Sequential(ConvNeXtBlock(dims[s + 1], mlp_ratio=1.,
                                        dw_conv_cfg=dict(kernel_size=3, padding=1)))
            for s in range(3))
        self.projback = nn.Sequential(nn.Conv2d(dims[3], 4 * 4 * 3, 1),
                                      nn.PixelShuffle(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.simple:
            for proj, block in zip(self.proj_layers, self.normal_layers):
                x = F.interpolate(proj(x), scale_factor=2, mode='bilinear',
                                  align_corners=True)
                x = block(x)
        return self.projback(x)


@MODELS.register_module()
class RevColClassifier(OfficialCheckpointClassifier):
    """mmpretrain ``ImageClassifier`` with RevCol's intermediate supervision.

    Args:
        backbone (dict): A ``RevCol`` config with ``out_indices=(3, )``,
            ``out_norm=True``, ``gap_before_final_norm=True`` (its last
            column feeds ``head``), at least 4 columns.
        head (dict): The final classification head (``LinearClsHead``); its
            loss is also used for the auxiliary heads.
        inter_supv (bool): Add the auxiliary heads and decoders and their
            losses in training. Off, this is a plain ``ImageClassifier``
            (official fine-tuning). Defaults to True.
        recon_weight (float): Official ``FCOE``. Defaults to 3.0.
        aux_cls_weight (float): Official ``CCOE``. Defaults to 0.7.
        simple_decoder (bool, optional): Official ``SimDecoder`` (IN-22k).
            Defaults to ``num_classes > 1000`` as officially.
        **kwargs: ``neck``, ``train_cfg``, ``data_preprocessor``,
            ``init_cfg`` of ``ImageClassifier``.
    """

    def __init__(self, backbone: dict, head: dict, inter_supv: bool = True,
                 recon_weight: float = 3.0, aux_cls_weight: float = 0.7,
                 simple_decoder=None, **kwargs) -> None:
        super().__init__(backbone=backbone, head=head, **kwargs)
        self.inter_supv = inter_supv
        self.recon_weight = recon_weight
        self.aux_cls_weight = aux_cls_weight
        if not inter_supv:
            return
        num_columns = getattr(self.backbone, 'num_columns', 0)
        if num_columns < 4:
            raise ValueError(
                'RevColClassifier intermediate supervision needs a RevCol '
                f'backbone with >= 4 columns, got {type(self.backbone).__name__}'
                f' with {num_columns}; set inter_supv=False otherwise.')
        interval = num_columns // 4
        self.aux_columns: List[int] = [interval * (k + 1) - 1 for k in range(3)]
        num_classes = self.head.num_classes
        if simple_decoder is None:
            simple_decoder = num_classes > 1000
        top = self.backbone.channels[-1]
        self.aux_heads = nn.ModuleList(RevColAuxHead(top, num_classes) for _ in range(3))
        self.decoders = nn.ModuleList(
            RevColDecoder(self.backbone.channels, simple_decoder) for _ in range(3))

    def _image_target(self, inputs: torch.Tensor) -> torch.Tensor:
        """The (mixed) input in [0.01, 0.99], as the official target."""
        pre = self.data_preprocessor
        mean = getattr(pre, 'mean', None)
        if mean is None:
            raise ValueError('RevColClassifier reconstruction needs a data '
                             'preprocessor with mean/std normalisation.')
        return ((inputs * pre.std + pre.mean) / 255.).clamp(0.01, 0.99)

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        if not self.inter_supv:
            return super().loss(inputs, data_samples)
        columns = self.backbone.forward_columns(inputs, returned=self.aux_columns + [-1])
        feats = self.backbone.format_outputs(columns[-1])
        if self.with_neck:
            feats = self.neck(feats)
        losses = self.head.loss(feats, data_samples)
        target = self._image_target(inputs)
        for k, col in enumerate(self.aux_columns):
            top = columns[col][-1]
            recon = self.decoders[k](top)
            losses[f'loss_recon{k}'] = F.binary_cross_entropy_with_logits(
                recon, target) * (1 - k / 3) * self.recon_weight
            aux = self.head._get_loss(self.aux_heads[k](top), data_samples)['loss']
            losses[f'loss_aux_cls{k}'] = aux * (k + 1) / 4 * self.aux_cls_weight
        return losses
