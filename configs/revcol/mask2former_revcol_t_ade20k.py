# Mask2Former (mmdet heads inside mmseg), RevCol-T, ADE20K 512x512, 160k.
# No official RevCol Mask2Former recipe: mmseg's Mask2Former Swin-T one (inherited: decoder,
# losses, AdamW lr 1e-4 wd 0.05, grad clip 0.01, poly 160k) with the backbone at 0.1x lr, no
# weight decay on norms, biases, alphas and queries; drop path 0.3 as RevCol-T segmentation.
_base_ = ['../_base_/mask2former_ade20k.py', './_base_/revcol_t.py']
checkpoint = _base_.backbone.init_cfg.checkpoint

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.backbone_channels))

# alphas: no weight decay, as in the official RevCol downstream
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.alpha': dict(decay_mult=0.0)}))
