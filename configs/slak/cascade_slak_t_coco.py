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
_base_ = ['../_base_/cascade_coco.py', './_base_/slak_t.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='group'),
    neck=dict(in_channels=_base_.backbone_channels))

custom_hooks = [
    dict(type='mmconvarch.SparseRegrowHook', module='backbone',
         sparse_init='from_weights', update_frequency=None),
]
