# UperNet, ConvNeXt V2-B, ADE20K 512x512, 160k iterations. No official number for this recipe
# (no official ConvNeXt V2 segmentation code; the paper's UperNet runs are not released).
# Recipe: upernet_convnextv2_t_ade20k.py's, which are also the official ConvNeXt (V1)
# upernet_convnext_base_512_160k values (mmseg's ConvNeXt UperNet inherited: heads, 160k poly
# schedule, AMP, 8x2 batch; AdamW lr 1e-4 wd 0.05, drop path 0.4, slide stride 341); the stage-wise
# layer decay 0.9 runs over 12 groups here (stage 3 has 27 blocks).
_base_ = ['../_base_/upernet_ade20k.py', './_base_/convnextv2_b.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='stage'),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))
