# VanillaNet-11 on ImageNet-1k, 224px, with deep training (λ 0 -> 1 in 100 of
# 300 epochs). The official repo does not release the -11..-13 training recipe;
# this is vanillanet_13_in1k.py's, its largest released one (VanillaNet-10,
# README): LAMB lr 3.5e-3 wd 0.25, mixup 0.4, cutmix 1.0, 1024 batch, drop 0.05,
# rand-m7-mstd0.5-inc1, BCE, EMA 0.99996, AMP, --decay_epochs 100.
_base_ = ['./vanillanet_13_in1k.py']

model = dict(backbone=dict(arch='11'))
