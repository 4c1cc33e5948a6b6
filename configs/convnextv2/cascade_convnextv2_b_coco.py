# Cascade Mask R-CNN + FPN, ConvNeXt V2-B, 3x multi-scale-crop schedule, COCO. No official number:
# the ConvNeXt V2 repo ships no detection recipe (its paper's COCO results use Mask R-CNN).
# Recipe: cascade_convnextv2_t_coco.py (mmdet's ConvNeXt-T cascade, inherited: GIoU 4conv1fc heads,
# DETR-style ms crop, 36 epochs, steps 27/33, AMP) with the official ConvNeXt (V1)
# cascade_mask_rcnn_convnext_base_..._3x_coco_in1k values: AdamW lr 2e-4 wd 0.05, drop path 0.7,
# layer decay 0.8 over 12 groups ('group' rule: 12 as stage 3 has 27 blocks).
# Backbone: mmpretrain's ConvNeXt V2-B weights (FCMAE pre-trained, IN-1k fine-tuned).
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_'
          '4conv1fc-giou_amp-ms-crop-3x_coco.py', './_base_/convnextv2_b.py']
custom_imports = dict(imports=['mmpretrain.models', 'mmconvarch'],
                      allow_failed_imports=False)
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.7,
                  layer_decay_type='group'),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.8),
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999),
                   weight_decay=0.05))

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging; see README "Two hosts". The base keeps its backend (nccl; gloo on CPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
