# Cascade Mask R-CNN + FPN, RevCol-S, 3x multi-scale-crop schedule, COCO (box 52.6 / mask 45.5
# officially). Recipe: official Detection/configs cascade_mask_rcnn_revcol_small_3x: AdamW lr 2e-4
# wd 0.05, layer decay 0.85 on the (block, column) grid, no weight decay on alphas, drop path 0.4,
# 36 epochs (steps 27/33), fp16. Heads and pipeline come from mmdet's ConvNeXt cascade config
# (inherited): the same GIoU 4conv1fc heads and DETR-style multi-scale crop as the official one.
_base_ = ['../_base_/cascade_coco.py', './_base_/revcol_t.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
# official IN-1k weights; RevCol converts official checkpoints while loading
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_small_1k.pth'  # noqa
# the family base's variables, kept at this config's arch (print_config shows them)
backbone = dict(arch='small', init_cfg=dict(checkpoint=checkpoint))

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, arch='small', drop_path_rate=0.4,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.85, custom_keys={'.alpha': dict(decay_mult=0.)}))
