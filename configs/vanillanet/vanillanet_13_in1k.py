# VanillaNet-13 on ImageNet-1k, 224px, with deep training (λ 0 -> 1 in 100 of
# 300 epochs). The official repo does not release the -11..-13 training
# recipe; this uses its largest released one (VanillaNet-10, README): LAMB
# lr 3.5e-3 wd 0.25, mixup 0.4; everything else as vanillanet_5_in1k.py
# (1024 batch, drop 0.05, rand-m7-mstd0.5-inc1, BCE, EMA 0.99996, AMP,
# --decay_epochs 100).
_base_ = ['./vanillanet_5_in1k.py']

model = dict(
    backbone=dict(arch='13'),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.4),
        dict(type='CutMix', alpha=1.0),
    ]))
optim_wrapper = dict(optimizer=dict(lr=3.5e-3, weight_decay=0.25))
