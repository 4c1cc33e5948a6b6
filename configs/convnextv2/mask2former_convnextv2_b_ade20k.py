# Mask2Former (mmdet heads inside mmseg), ConvNeXt V2-B, ADE20K 512x512, 160k. No official number
# (no ConvNeXt V2 Mask2Former recipe). Recipe: mask2former_convnextv2_t_ade20k.py's (mmseg's
# Mask2Former Swin-T, inherited: pixel decoder, 9-layer decoder, losses, 160k poly schedule, AdamW
# lr 1e-4 wd 0.05, grad clip 0.01, backbone at 0.1x lr, no weight decay on norms, biases, GRN and
# queries); drop path 0.3 as there (and as mmseg's Swin-B/L Mask2Former).
_base_ = ['../_base_/mask2former_ade20k.py', './_base_/convnextv2_b.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, drop_path_rate=0.3),
    decode_head=dict(in_channels=_base_.backbone_channels))
