# VanillaNet-13-1.5x† on ImageNet-1k, 224px, with deep training (λ 0 -> 1 in
# 100 of 300 epochs): vanillanet_13_x1_5_in1k.py with the official
# vanillanet_13_x1_5_ada_pool arch (models/vanillanet.py: stem stride 3,
# padding 1; adaptive max pools to 38/19/10 in blocks 1/2/9), the README's
# 83.11 top-1 model. Recipe: not published for -11..-13; vanillanet_13_in1k.py's
# (the released VanillaNet-10 one: LAMB lr 3.5e-3 wd 0.25, mixup 0.4, cutmix
# 1.0, 1024 batch, drop 0.05, BCE, EMA 0.99996, AMP, --decay_epochs 100).
_base_ = ['./vanillanet_13_x1_5_in1k.py']

model = dict(backbone=dict(arch='13_x1_5_ada_pool'))
