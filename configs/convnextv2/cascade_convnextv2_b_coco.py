# Cascade Mask R-CNN + FPN, ConvNeXt V2-B, 3x multi-scale-crop schedule, COCO. No official number:
# the ConvNeXt V2 repo ships no detection recipe (its paper's COCO results use Mask R-CNN).
# Recipe: cascade_convnextv2_t_coco.py (mmdet's ConvNeXt-T cascade, inherited: GIoU 4conv1fc heads,
# DETR-style ms crop, 36 epochs, steps 27/33, AMP) with the official ConvNeXt (V1)
# cascade_mask_rcnn_convnext_base_..._3x_coco_in1k values: AdamW lr 2e-4 wd 0.05, drop path 0.7,
# layer decay 0.8 over 12 groups ('group' rule: 12 as stage 3 has 27 blocks).
# Backbone: mmpretrain's ConvNeXt V2-B weights (FCMAE pre-trained, IN-1k fine-tuned).
_base_ = ['../_base_/cascade_coco.py', './_base_/convnextv2_b.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.7,
                  layer_decay_type='group'),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
