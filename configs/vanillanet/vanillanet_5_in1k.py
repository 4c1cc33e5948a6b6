# VanillaNet-5 on ImageNet-1k, 224px, with deep training (λ 0 -> 1 in 100 of
# 300 epochs). Recipe: official VanillaNet README (VanillaNet-5 command) and
# main.py defaults: 8x128 = 1024 batch, 300 epochs, LAMB lr 3.5e-3 wd 0.35
# (none on biases/1-D params, official optim_factory), 5 warm-up epochs then
# per-iteration cosine to 1e-6, drop 0.05, RandAugment rand-m7-mstd0.5-inc1,
# random erasing 0.25, mixup 0.1 / cutmix 1.0, label smoothing 0.1 with BCE,
# EMA 0.99996, AMP, --decay_epochs 100 (linear); eval: crop 0.875 bicubic.
# The data pipeline is mmpretrain's imagenet_bs64_swin_224 (magnitude 9 -> 7).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs2048_rsb.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)

model = dict(
    # ImageClassifier that also loads official checkpoints whole (load_from, get_model)
    type='mmconvarch.OfficialCheckpointClassifier',
    backbone=dict(type='mmconvarch.VanillaNet', arch='5', act_num=3),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmconvarch.VanillaNetClsHead',
        num_classes=1000,
        in_channels=4096,
        drop_rate=0.05,
        # timm BinaryCrossEntropy on mixup targets smoothed by 0.1
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original', use_sigmoid=True)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.1),
        dict(type='CutMix', alpha=1.0),
    ]))

bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2,
         total_level=10, magnitude_level=7, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean],
                      interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3, fill_color=bgr_mean,
         fill_std=bgr_std),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0),  # -6: 0.8, -7: 0.8 (official)
    optimizer=dict(type='Lamb', lr=3.5e-3, weight_decay=0.35))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, eta_min=1e-6, by_epoch=True,
         begin=5, end=300, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)

custom_hooks = [
    dict(type='EMAHook', momentum=4e-5, update_buffers=True,
         priority='ABOVE_NORMAL'),
    dict(type='mmconvarch.ActivationAnnealHook', decay_epochs=100,
         schedule='linear'),
]

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
