# Cascade Mask R-CNN + FPN, RevCol-B (IN-22k), 3x (box 55.0 / mask 47.5 officially).
# Recipe: official cascade_mask_rcnn_revcol_base_3x_in22k: as the IN-1k one
# (cascade_revcol_b_coco.py: layer decay 0.9, drop path 0.4) from the IN-22k weights with lr 1e-4.
_base_ = ['./cascade_revcol_b_coco.py']
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_base_22k.pth'  # noqa
# the family base's variables, kept at this config's arch (print_config shows them)
backbone = dict(init_cfg=dict(checkpoint=checkpoint))

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))

optim_wrapper = dict(optimizer=dict(lr=1e-4))
