# Cascade Mask R-CNN + FPN, SLaK-B (51/49/47/13, N=5), 3x ms-crop, COCO. No official number (SLaK
# ships a cascade recipe for SLaK-T only). Recipe: cascade_slak_t_coco.py's, whose values are the
# official ConvNeXt (V1) Tiny ones, with the official ConvNeXt (V1)
# cascade_mask_rcnn_convnext_base_..._3x_coco_in1k values for this size: drop path 0.7, layer-wise
# decay 0.8 over 12 groups (stage 3 has 27 blocks), AdamW lr 2e-4 wd 0.05; 36 epochs, steps 27/33,
# 4conv1fc GIoU heads, DETR-style ms crop and AMP inherited from mmdet's ConvNeXt-T cascade.
# Sparsity hook ON with fixed masks, as cascade_slak_t_coco.py (the official sparse=True
# downstream backbone): the zeros of the sparse pre-trained checkpoint stay zero. Weights: see
# _base_/slak_b.py for the converter command.
_base_ = ['../_base_/cascade_coco.py', './_base_/slak_b.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.7,
                  layer_decay_type='group'),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))

custom_hooks = [
    dict(type='mmconvarch.SparseRegrowHook', module='backbone',
         sparse_init='from_weights', update_frequency=None),
]
