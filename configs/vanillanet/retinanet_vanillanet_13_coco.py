# RetinaNet + FPN, VanillaNet-13 (act_num 4), 1x multi-scale schedule, COCO:
# the official object_detection/configs/vanillanet/
# retinanet_vanillanet_13_mstrain_480-1024_adamw.py (mmdet 2.x) on mmdet 3.x's
# stock RetinaNet R-50 FPN 1x (head, test pipeline at 1333x800, 12 epochs,
# 500-iteration linear warm-up from 0.001, inherited). Official values: backbone
# outputs 1/8/10 (strides 8/16/32; _base_/vanillanet_13.py otherwise, SyncBN),
# FPN from all three (start_level 0, extra P6/P7 convs on the input as
# inherited, 5 outputs), train resize to one of 1333x(480, 512, ..., 1024)
# keeping the ratio + flip, 4 images per GPU on 8 GPUs (32), AdamW lr 8e-5
# betas (0.9, 0.999) wd 0.05 (none on biases/1-D params), layer decay 0.6 over
# the official detection grouping (stage i -> i // 2 + 1, num_layers 6), fp32,
# no gradient clipping, lr steps [10, 11] (x0.1). The backbone starts from the
# finished (λ = 1) state with no annealing, as the official detection code
# does; weights: the official KD-pretrained act_num=4 release, loaded in place
# (see _base_/vanillanet_13.py for its EMA weights).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', './_base_/vanillanet_13.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the official config's name

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, out_indices=[1, 8, 10],
                  layer_decay_type='pair'),
    neck=dict(in_channels=_base_.backbone_channels[1:], start_level=0, num_outs=5))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
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
    optimizer=dict(type='AdamW', lr=8e-5, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[10, 11],
         gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=32)  # 8 GPUs x 4 images

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
