# SLaK-S ImageNet-1k, 300 epochs, 224px, dynamic sparsity (40% sparse).
# Recipe: official SLaK README (SLaK-S) + main.py defaults: as SLaK-T (AdamW lr 4e-3 at batch 4096,
# wd 0.05, 20 warm-up epochs, per-iteration cosine to 1e-6, EMA 0.9999; sparsity 0.4, SNIP init,
# random growth, magnitude prune) but drop path 0.4 and --prune_rate 0.3 -u 100. The data recipe
# is the same as mmpretrain's ConvNeXt-S (whose config differs from ConvNeXt-T's in the model only).
_base_ = ['./slak_t_in1k.py']

model = dict(backbone=dict(arch='small', drop_path_rate=0.4))

custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
    dict(type='mmconvarch.SparseRegrowHook', density=0.6, sparse_init='snip',
         prune_rate=0.3, update_frequency=100, growth_mode='random',
         prune_mode='magnitude'),
]
