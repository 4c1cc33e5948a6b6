# UperNet, RevCol-B (IN-22k), ADE20K 640x640, 160k iterations (52.7 mIoU officially).
# Recipe: official Segmentation configs upernet_revcol_base_fp16_640x640_160k_ade20k: as RevCol-L
# 640 (upernet_revcol_l_ade20k.py: AdamW lr 4e-5 wd 0.01, layer decay 0.9 on the (block, column)
# grid, no weight decay on alphas, drop path 0.3, poly, fp16, batch 8x2, 640 crops, slide test
# stride 426; mmseg's ConvNeXt-L 640 heads and pipeline) with RevCol-B from the IN-22k weights and
# 1500 warm-up iterations.
_base_ = ['./upernet_revcol_l_ade20k.py']
# official IN-22k weights; RevCol converts official checkpoints while loading
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_base_22k.pth'  # noqa
backbone = dict(arch='base', init_cfg=dict(checkpoint=checkpoint))
backbone_channels = [72, 144, 288, 576]

model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint=checkpoint)),
    decode_head=dict(in_channels=backbone_channels),
    auxiliary_head=dict(in_channels=backbone_channels[2]))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=160000, eta_min=0.0, by_epoch=False),
]
