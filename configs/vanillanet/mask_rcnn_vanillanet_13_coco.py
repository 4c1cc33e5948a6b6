# Mask R-CNN + FPN, VanillaNet-13 (act_num 4), 1x multi-scale schedule, COCO:
# the official object_detection/configs/vanillanet/
# mask_rcnn_vanillanet_13_mstrain_480-1024_adamw.py (mmdet 2.x) on mmdet 3.x's
# stock Mask R-CNN R-50 FPN 1x (heads, test pipeline at 1333x800, 12 epochs,
# 500-iteration linear warm-up from 0.001, inherited). Official values: backbone
# outputs 0/1/8/10 (strides 4/8/16/32, _base_/vanillanet_13.py, SyncBN), train
# resize to one of 1333x(480, 512, ..., 1024) keeping the ratio + flip, 4
# images per GPU on 8 GPUs (32), AdamW lr 1.3e-4 betas (0.9, 0.999) wd 0.05
# (none on biases/1-D params), layer decay 0.6 over the official detection
# grouping (stage i -> i // 2 + 1, num_layers 6), fp32 (no fp16 in the
# official config), no gradient clipping, lr steps [10, 12] (x0.1; the 12 is
# never reached in 12 epochs, as official). The backbone starts from the
# finished (λ = 1) state with no annealing, as the official detection code
# does; weights: the official KD-pretrained act_num=4 release, loaded in place
# (see _base_/vanillanet_13.py for its EMA weights).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/vanillanet_13.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the official config's name

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='pair'),
    neck=dict(in_channels=_base_.backbone_channels))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize',
         scales=[(1333, 480 + 32 * i) for i in range(18)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.6),
    optimizer=dict(type='AdamW', lr=1.3e-4, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[10, 12],
         gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=32)  # 8 GPUs x 4 images

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
