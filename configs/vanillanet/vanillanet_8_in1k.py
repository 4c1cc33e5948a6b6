# VanillaNet-8 on ImageNet-1k, 224px, with deep training (λ 0 -> 1 in 100 of
# 300 epochs). Recipe: official VanillaNet README (VanillaNet-8 command): LAMB
# lr 3.5e-3 wd 0.3, mixup 0.4, no layer decay; everything else as
# vanillanet_5_in1k.py (1024 batch, drop 0.05, rand-m7-mstd0.5-inc1, cutmix
# 1.0, BCE, EMA 0.99996, AMP, --decay_epochs 100).
_base_ = ['./vanillanet_5_in1k.py']

model = dict(
    backbone=dict(arch='8'),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.4),
        dict(type='CutMix', alpha=1.0),
    ]))
optim_wrapper = dict(optimizer=dict(lr=3.5e-3, weight_decay=0.3))
