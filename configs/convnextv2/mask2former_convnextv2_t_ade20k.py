# Mask2Former (mmdet heads inside mmseg), ConvNeXt V2-T, ADE20K 512x512, 160k.
# Recipe: mmseg's Mask2Former Swin-T (inherited: pixel decoder, 9-layer
# decoder, losses, 160k poly schedule, AdamW lr 1e-4 wd 0.05, grad clip 0.01);
# Swin-T and ConvNeXt-T share channels 96..768. As there, the backbone runs at
# 0.1x lr and norms/queries get no weight decay (here: all 1-D params and
# biases, the ConvNeXt V2 advice for GRN). Drop path 0.3 as mmseg's Swin-T.
_base_ = ['../_base_/mask2former_ade20k.py', './_base_/convnextv2_t.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.3),
    decode_head=dict(in_channels=_base_.backbone_channels))
