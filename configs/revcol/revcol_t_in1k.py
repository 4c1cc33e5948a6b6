# RevCol-T ImageNet-1k pre-training with intermediate supervision, 224px, 300 epochs.
# Recipe: official configs/revcol_tiny_1k.yaml: batch 1024, AdamW lr 1e-3 wd 0.05 (alphas decayed,
# 1-D params not), 20 warm-up epochs from 1e-5, cosine to 1e-6, drop path 0.1, AMP, EMA 0.9999,
# RandAug/RandomErasing/mixup 0.8/cutmix 1.0/label smoothing 0.1, FCOE 3.0 / CCOE 0.7, no layer
# decay. Data pipeline and AdamW schedule shape: mmpretrain's Swin ImageNet configs (inherited).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)

model = dict(
    type='mmconvarch.RevColClassifier',
    backbone=dict(
        type='mmconvarch.RevCol',
        arch='tiny',
        drop_path_rate=0.1,
        out_indices=(3, ),
        out_norm=True,
        gap_before_final_norm=True,
        save_memory=True),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=None),
    inter_supv=True,
    recon_weight=3.0,
    aux_cls_weight=0.7,
    init_cfg=dict(type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=64)  # x 16 GPUs = 1024

optim_wrapper = dict(
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=1e-3),
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=1.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=20),
]

custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
