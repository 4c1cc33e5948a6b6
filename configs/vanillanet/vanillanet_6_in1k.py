# VanillaNet-6 on ImageNet-1k, 224px, with deep training (λ 0 -> 1 in 100 of
# 300 epochs). Recipe: official VanillaNet README (VanillaNet-6 command): LAMB
# lr 4.8e-3 wd 0.32, layer decay 0.8 over 4 layers (--layer_decay 0.8
# --layer_decay_num_layers 4: stem 0.8^5, block i 0.8^(4-i), classifier 1),
# mixup 0.15; everything else as vanillanet_5_in1k.py (1024 batch, drop 0.05,
# rand-m7-mstd0.5-inc1, cutmix 1.0, BCE, EMA 0.99996, AMP, --decay_epochs 100).
_base_ = ['./vanillanet_5_in1k.py']

model = dict(
    backbone=dict(arch='6'),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.15),
        dict(type='CutMix', alpha=1.0),
    ]))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.8),
    optimizer=dict(lr=4.8e-3, weight_decay=0.32))
