"""Our backbones dropped into stock mmdet/mmseg configs, as a user writes them: only the
backbone dict and the neck's in_channels change."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmconvarch  # noqa: F401

SLAK = dict(type='mmconvarch.SLaK', arch=dict(depths=[1, 1, 1, 1], channels=[16, 32, 48, 64]),
            kernel_size=(7, 7, 7, 7, 3), width_factor=1.0)
CONVNEXTV2 = dict(type='mmconvarch.ConvNeXtV2', arch='atto')


@pytest.mark.parametrize('backbone, channels', [(SLAK, [32, 48, 64]),
                                                (CONVNEXTV2, [80, 160, 320])],
                         ids=['slak', 'convnextv2'])
def test_several_out_indices_give_feature_maps_in_dino(backbone, channels, tmp_path):
    """No gap_before_final_norm in the user's dict: several stages mean feature maps (the
    stock DINO neck failed with 'Expected 3D or 4D input to conv2d, got [2, C]')."""
    from mmdet.registry import MODELS
    user_config = tmp_path / 'my_dino.py'
    user_config.write_text(
        "_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']\n"
        "custom_imports = dict(imports=['mmconvarch'])\n"
        f"model = dict(backbone=dict(_delete_=True, out_indices=(1, 2, 3), **{backbone!r}),\n"
        f"             neck=dict(in_channels={channels!r}))\n")
    cfg = Config.fromfile(str(user_config))
    init_default_scope('mmdet')
    detector = MODELS.build(cfg.model)
    feats = detector.extract_feat(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(2, 256, 8, 8), (2, 256, 4, 4), (2, 256, 2, 2),
                                               (2, 256, 1, 1)]


@pytest.mark.parametrize('backbone', [SLAK, CONVNEXTV2], ids=['slak', 'convnextv2'])
def test_pooling_defaults(backbone):
    from mmengine.registry import MODELS
    single = MODELS.build(dict(backbone, out_indices=-1))
    several = MODELS.build(dict(backbone, out_indices=(2, 3)))
    explicit = MODELS.build(dict(backbone, out_indices=(2, 3), gap_before_final_norm=True))
    x = torch.randn(1, 3, 64, 64)
    assert single(x)[-1].ndim == 2  # classification: pooled, as before
    assert [f.ndim for f in several(x)] == [4, 4]
    assert [f.ndim for f in explicit(x)] == [2, 2]  # asked for explicitly
