# Cascade Mask R-CNN + FPN, RevCol-B (IN-1k), 3x (box 53.0 / mask 45.9 officially).
# Recipe: official cascade_mask_rcnn_revcol_base_3x (1k): lr 2e-4, layer decay 0.9, drop path 0.4.
_base_ = ['./cascade_revcol_s_coco.py']
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_base_1k.pth'  # noqa
# the family base's variables, kept at this config's arch (print_config shows them)
backbone = dict(arch='base', init_cfg=dict(checkpoint=checkpoint))
backbone_channels = [72, 144, 288, 576]

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.4,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(in_channels=[72, 144, 288, 576]))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9))
