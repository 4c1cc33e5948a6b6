"""VanillaNet's classification head (for mmpretrain's ``ImageClassifier``)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead

from mmconvarch.registry import MODELS
from ..backbones.vanillanet import (ACT_LEARN, _f64, _norm, check_act_learn_finished,
                                    fuse_bn, leaky_relu)

__all__ = ['VanillaNetClsHead']


@MODELS.register_module()
class VanillaNetClsHead(ClsHead):
    """VanillaNet's classifier, for mmpretrain's ``ImageClassifier``
    after a ``GlobalAveragePooling`` neck.

    Train form (official ``cls1``/``cls2``): ``dropout -> fc1 -> BN ->
    leaky_relu(λ) -> fc2``; its own ``act_learn`` buffer is annealed with
    the backbone's. Deploy form: ``dropout -> fc`` (mmpretrain
    ``LinearClsHead`` keys), built with ``deploy=True`` or by
    :meth:`switch_to_deploy`.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the pooled backbone feature.
        drop_rate (float): Dropout before the classifier (official
            ``--drop``, 0.05 in the recipes).
        norm_cfg (dict): Batch norm config of the first layer.
        deploy (bool): Build the fused single ``fc``.
        init_cfg (dict, optional): Defaults to trunc-normal(0.02) with
            zero bias, as official.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of mmpretrain's
            ``ClsHead``.
    """

    def __init__(self, num_classes: int, in_channels: int,
                 drop_rate: float = 0.,
                 norm_cfg: dict = dict(type='BN1d', eps=1e-6),
                 deploy: bool = False,
                 init_cfg: Optional[dict] = dict(
                     type='TruncNormal', layer='Linear', std=.02,
                     bias=0.),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a '
                             'positive integer.')
        self.num_classes, self.in_channels = num_classes, in_channels
        self.deploy = deploy
        self.dropout = nn.Dropout(drop_rate)
        if deploy:
            self.fc = nn.Linear(in_channels, num_classes)
        else:
            norm_cfg = dict(norm_cfg)
            norm_cfg.setdefault('eps', 1e-6)
            self.fc1 = nn.Linear(in_channels, num_classes)
            self.bn = _norm(norm_cfg, num_classes)
            self.fc2 = nn.Linear(num_classes, num_classes)
            self.register_buffer(ACT_LEARN, torch.tensor(1.))

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        x = self.dropout(feats[-1])
        if self.deploy:
            return x
        if self.training and x.shape[0] == 1 and self.bn.training:
            raise ValueError(
                'VanillaNetClsHead in training mode got batch size 1: its batch '
                'norm (bn, on one pooled vector per image) needs more than one '
                'value per channel. Train with batch size >= 2, or keep the '
                'batch norm in eval mode.')
        return leaky_relu(self.bn(self.fc1(x)), self.act_learn)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        x = self.pre_logits(feats)
        return self.fc(x) if self.deploy else self.fc2(x)

    @torch.no_grad()
    def switch_to_deploy(self, force: bool = False) -> None:
        """Merge ``fc2(BN(fc1))`` into one ``fc`` (exact at λ = 1)."""
        if self.deploy:
            return
        check_act_learn_finished(self, force, type(self).__name__)
        w1, b1 = fuse_bn(self.fc1.weight, self.fc1.bias, self.bn)
        w2, b2 = _f64(self.fc2.weight), _f64(self.fc2.bias)
        self.fc = nn.Linear(self.in_channels, self.num_classes,
                            device=self.fc2.weight.device,
                            dtype=self.fc2.weight.dtype)
        self.fc.weight.copy_(w2 @ w1)
        self.fc.bias.copy_(w2 @ b1 + b2)
        del self.fc1, self.bn, self.fc2, self.act_learn
        self.deploy = True
