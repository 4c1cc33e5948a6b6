# UperNet, ConvNeXt V2-T, ADE20K 512x512, 160k iterations.
# Recipe: mmseg's ConvNeXt-T UperNet (inherited: heads, 160k poly schedule,
# AMP, 8x2 batch); AdamW lr 1e-4 wd 0.05, drop path 0.4, stage-wise layer
# decay 0.9 over 6 are mmseg's ConvNeXt-T values (no official V2 seg recipe).
_base_ = ['../_base_/upernet_ade20k.py', './_base_/convnextv2_t.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='stage'),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))
