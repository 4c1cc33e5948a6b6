# Mask2Former (mmdet heads inside mmseg), RevCol-L (IN-22k), ADE20K 512x512, 160k. No official
# number (RevCol has no Mask2Former recipe): mask2former_revcol_t_ade20k.py's recipe (mmseg's
# Mask2Former Swin-T: AdamW lr 1e-4 wd 0.05, grad clip 0.01, poly 160k, backbone at 0.1x lr, no
# weight decay on norms, biases, alphas and queries) with RevCol-L; drop path 0.3 as the official
# RevCol-L UperNet.
_base_ = ['../_base_/mask2former_ade20k.py', './_base_/revcol_l.py']
checkpoint = _base_.backbone.init_cfg.checkpoint

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.backbone_channels))

# alphas: no weight decay, as in the official RevCol downstream
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'.alpha': dict(decay_mult=0.0)}))
