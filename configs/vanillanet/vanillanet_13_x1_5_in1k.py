# VanillaNet-13-1.5x on ImageNet-1k, 224px, with deep training (λ 0 -> 1 in 100 of 300 epochs);
# the released weights reach 82.53 top-1 with a recipe the official repo does not publish (none for
# -11..-13). Recipe: vanillanet_13_in1k.py's (the released VanillaNet-10 one: LAMB lr 3.5e-3
# wd 0.25, mixup 0.4, cutmix 1.0, 1024 batch, drop 0.05, BCE, EMA 0.99996, AMP, --decay_epochs 100)
# with the 1.5x widths.
_base_ = ['./vanillanet_13_in1k.py']

model = dict(
    backbone=dict(arch='13_x1_5'),
    head=dict(in_channels=6144))
