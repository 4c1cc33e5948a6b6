# UperNet, RevCol-L (IN-22k), ADE20K 640x640, 160k iterations (53.4 mIoU officially).
# Recipe: official Segmentation configs (large 640): AdamW lr 4e-5 wd 0.01, layer decay 0.9 on the
# (block, column) grid, no weight decay on alphas, drop path 0.3, 3000 warm-up iterations then poly,
# fp16, batch 8x2, 640 crops, slide test stride 426. Heads, the 640 pipeline and the 160k schedule
# come from mmseg's ConvNeXt-L 640 UperNet config (inherited; the same as official).
_base_ = ['mmseg::convnext/convnext-large_upernet_8xb2-amp-160k_ade20k-640x640.py',
          './_base_/revcol_l.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint = _base_.backbone.init_cfg.checkpoint

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9, custom_keys={'.alpha': dict(decay_mult=0.)}),
    optimizer=dict(type='AdamW', lr=4e-5, betas=(0.9, 0.999), weight_decay=0.01),
    loss_scale='dynamic')

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=3000),
    dict(type='PolyLR', power=1.0, begin=3000, end=160000, eta_min=0.0, by_epoch=False),
]

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
