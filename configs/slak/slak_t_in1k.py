# SLaK-T ImageNet-1k, 300 epochs, 224px, dynamic sparsity (40% sparse).
# Recipe: official SLaK README (SLaK-T) + main.py defaults: AdamW lr 4e-3 at
# batch 4096 (4 GPUs x 128 x update_freq 8 there, 32 x 128 here: the same
# 312 optimizer steps per epoch), wd 0.05 (none on 1-D params/biases),
# 20 warm-up epochs, per-iteration cosine to 1e-6, drop path 0.1, EMA 0.9999;
# sparsity --sparsity 0.4 --sparse_init snip --growth random --prune magnitude
# --prune_rate 0.5 -u 2000 (cosine decay of the prune rate over all steps),
# masks on every 2-D/4-D weight incl. the head, as the official code.
# mmpretrain's ConvNeXt-T config provides the matching data recipe
# (RandAug m9-mstd0.5, reprob 0.25, mixup 0.8, cutmix 1.0, smoothing 0.1).
# Branch BNs are SyncBN as official (reverted to BN when not distributed).
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)

model = dict(
    # ImageClassifier that also loads official checkpoints whole (load_from, get_model)
    type='mmconvarch.OfficialCheckpointClassifier',
    backbone=dict(
        _delete_=True,
        type='mmconvarch.SLaK',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 5],
        width_factor=1.3,
        drop_path_rate=0.1,
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    head=dict(in_channels=998))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=20,
         convert_to_iter_based=True)
]

custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
    dict(type='mmconvarch.SparseRegrowHook', density=0.6, sparse_init='snip',
         prune_rate=0.5, update_frequency=2000, growth_mode='random',
         prune_mode='magnitude'),
]

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
