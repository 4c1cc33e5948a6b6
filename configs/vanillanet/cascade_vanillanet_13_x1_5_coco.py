# Cascade Mask R-CNN + FPN, VanillaNet-13-1.5x (act_num 3), 3x multi-scale-crop schedule, COCO.
# No official number (VanillaNet's detection code covers VanillaNet-13 only): the recipe of
# cascade_vanillanet_13_coco.py (mmdet's ConvNeXt-T cascade inherited; AdamW lr 1.3e-4 wd 0.05,
# layer decay 0.6 over the official detection grouping, 6 groups; λ = 1 throughout) with the 1.5x
# widths and act_num 3 of the released 1.5x weights (see _base_/vanillanet_13_x1_5.py).
_base_ = ['../_base_/cascade_coco.py', './_base_/vanillanet_13_x1_5.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='pair'),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.6), optimizer=dict(lr=1.3e-4))
