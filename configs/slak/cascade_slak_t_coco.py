# Cascade Mask R-CNN + FPN, SLaK-T (51/49/47/13, N=5), 3x ms-crop, COCO.
# Recipe: official SLaK detection config cascade_mask_rcnn_slak_tiny_..._3x
# (36 epochs, steps 27/33, drop path 0.4, AdamW lr 2e-4 wd 0.05, layer-wise
# decay 0.7 over 6 groups, 4conv1fc GIoU heads, DETR-style ms crop: all
# inherited from mmdet's ConvNeXt-T cascade except the values set here).
# mmdet's AMP is kept: SparseRegrowHook is AMP-safe (the official one is not).
# Sparsity hook ON with fixed masks: the official downstream backbone
# (sparse=True) keeps the zeros of the sparse pre-trained checkpoint fixed
# during fine-tuning; sparse_init='from_weights' rebuilds those masks
# (a dense checkpoint gives no masks, i.e. plain dense fine-tuning).
# Convert the official 300-epoch SLaK-T weights first:
#   python tools/model_converters/convert.py slak SLaK_tiny_checkpoint.pth \
#       checkpoints/slak_t_in1k_300ep.pth
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_'
          '4conv1fc-giou_amp-ms-crop-3x_coco.py', './_base_/slak_t.py']
custom_imports = dict(imports=['mmpretrain.models', 'mmconvarch'],
                      allow_failed_imports=False)
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='group'),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.7),
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999),
                   weight_decay=0.05))

custom_hooks = [
    dict(type='mmconvarch.SparseRegrowHook', module='backbone',
         sparse_init='from_weights', update_frequency=None),
]

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging; see README "Two hosts". The base keeps its backend (nccl; gloo on CPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
