# Cascade Mask R-CNN + FPN, ConvNeXt V2-T, 3x multi-scale-crop schedule, COCO.
# Recipe: mmdet's ConvNeXt-T cascade (inherited: GIoU 4conv1fc heads, DETR-style
# ms crop, 36 epochs, steps 27/33, AMP); AdamW lr 2e-4 wd 0.05, drop path 0.4,
# layer decay 0.7 over 6 groups are mmdet's ConvNeXt-T values (the ConvNeXt V2
# repo ships no detection recipe). Backbone: mmpretrain's ConvNeXt V2-T weights
# (FCMAE pre-trained, IN-1k fine-tuned), whose keys ours share.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_'
          '4conv1fc-giou_amp-ms-crop-3x_coco.py']
custom_imports = dict(imports=['mmpretrain.models', 'mmconvarch'],
                      allow_failed_imports=False)
checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-tiny_fcmae-pre_3rdparty_in1k_20230104-471a86de.pth'  # noqa

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmconvarch.ConvNeXtV2',
        arch='tiny',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        gap_before_final_norm=False,
        layer_decay_type='group',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file,
                      prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7),
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999),
                   weight_decay=0.05))
