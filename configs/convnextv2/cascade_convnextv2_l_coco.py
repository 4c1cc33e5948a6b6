# Cascade Mask R-CNN + FPN, ConvNeXt V2-L, 3x multi-scale-crop schedule, COCO. No official number:
# the ConvNeXt V2 repo ships no detection recipe (its paper's COCO results use Mask R-CNN).
# Recipe: cascade_convnextv2_b_coco.py's (mmdet's ConvNeXt-T cascade with the official ConvNeXt (V1)
# Base IN-1k cascade values: AdamW lr 2e-4 wd 0.05, drop path 0.7, layer decay 0.8 over 12 groups)
# with the arch changed: ConvNeXt V1's only Large cascade recipe is for IN-22k weights.
# Backbone: mmpretrain's ConvNeXt V2-L weights (FCMAE pre-trained, IN-1k fine-tuned).
_base_ = ['../_base_/cascade_coco.py', './_base_/convnextv2_l.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.7,
                  layer_decay_type='group'),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
