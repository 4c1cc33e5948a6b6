# Cascade Mask R-CNN + FPN, RevCol-T, 3x (box 50.8 / mask 44.0 officially).
# Recipe: official cascade_mask_rcnn_revcol_tiny_3x: as RevCol-S (lr 2e-4, layer decay 0.85)
# with drop path 0.3.
_base_ = ['./cascade_revcol_s_coco.py']
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_tiny_1k.pth'  # noqa
# the family base's variables, kept at this config's arch (print_config shows them)
backbone = dict(arch='tiny', init_cfg=dict(checkpoint=checkpoint))

model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.3,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
