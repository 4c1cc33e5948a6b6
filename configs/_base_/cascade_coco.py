# Cascade Mask R-CNN + FPN, COCO, 3x multi-scale-crop schedule, for mmconvarch backbones.
# Recipe: mmdet's ConvNeXt-T cascade (inherited: GIoU 4conv1fc heads, DETR-style ms crop, 36 epochs,
# steps 27/33, AMP) with its AdamW lr 2e-4 wd 0.05 and layer decay 0.7 over the backbone's own
# get_layer_depth groups, through mmconvarch's constructor. Family configs replace model.backbone
# (with _delete_=True) and neck.in_channels, and override what their recipe changes.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_'
          '4conv1fc-giou_amp-ms-crop-3x_coco.py']
custom_imports = dict(imports=['mmpretrain.models', 'mmconvarch'],
                      allow_failed_imports=False)

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7),
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05))

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
