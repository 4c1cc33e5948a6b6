# Cascade Mask R-CNN + FPN, ConvNeXt V2-T, 3x multi-scale-crop schedule, COCO.
# Recipe: mmdet's ConvNeXt-T cascade (inherited: GIoU 4conv1fc heads, DETR-style
# ms crop, 36 epochs, steps 27/33, AMP); AdamW lr 2e-4 wd 0.05, drop path 0.4,
# layer decay 0.7 over 6 groups are mmdet's ConvNeXt-T values (the ConvNeXt V2
# repo ships no detection recipe). Backbone: mmpretrain's ConvNeXt V2-T weights
# (FCMAE pre-trained, IN-1k fine-tuned), whose keys ours share.
_base_ = ['../_base_/cascade_coco.py', './_base_/convnextv2_t.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='group'),
    neck=dict(in_channels=_base_.backbone_channels))
