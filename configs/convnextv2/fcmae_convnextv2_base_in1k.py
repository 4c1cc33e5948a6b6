# FCMAE self-supervised pre-training of ConvNeXt V2-Base on ImageNet-1k, 224px.
# Recipe: as fcmae_convnextv2_atto_in1k.py (official main_pretrain.py +
# TRAINING.md, one command for all sizes: 1600 epochs, 40 warm-up, batch
# 4096, AdamW lr 2.4e-3, betas (0.9, 0.95), wd 0.05, mask ratio 0.6,
# decoder 512 x 1); only the encoder size (and the decoder's input width,
# 1024) changes.
_base_ = ['./fcmae_convnextv2_atto_in1k.py']

model = dict(
    backbone=dict(arch='base'),
    neck=dict(in_channels=1024))
