# Cascade Mask R-CNN + FPN, RevCol-L (IN-22k), 3x multi-scale-crop schedule, COCO (box 55.9 / mask
# 48.4 officially). Recipe: official Detection/configs cascade_mask_rcnn_revcol_large_3x_in22k: as
# RevCol-S (AdamW wd 0.05, layer decay 0.85 on the (block, column) grid, no weight decay on alphas,
# 36 epochs, steps 27/33, fp16) with lr 1e-4 and drop path 0.5. Heads and pipeline come from mmdet's
# ConvNeXt cascade config (inherited), as in cascade_revcol_s_coco.py.
_base_ = ['../_base_/cascade_coco.py', './_base_/revcol_l.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint = _base_.backbone.init_cfg.checkpoint

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.5),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.85, custom_keys={'.alpha': dict(decay_mult=0.)}),
    optimizer=dict(lr=1e-4))
