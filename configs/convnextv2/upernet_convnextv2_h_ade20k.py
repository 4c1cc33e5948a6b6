# UperNet, ConvNeXt V2-H, ADE20K 512x512, 160k iterations. No official number for this recipe
# (no official ConvNeXt V2 segmentation code; the paper's UperNet runs are not released).
# Recipe: upernet_convnextv2_b_ade20k.py's (mmseg's ConvNeXt UperNet, inherited; AdamW lr 1e-4
# wd 0.05, drop path 0.4, stage-wise layer decay 0.9 over 12 groups, slide stride 341: the official
# ConvNeXt (V1) Base 512 values) with the arch changed: ConvNeXt V1's larger UperNet recipes are for
# IN-22k weights at 640 px.
_base_ = ['../_base_/upernet_ade20k.py', './_base_/convnextv2_h.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='stage'),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))
