# UperNet, VanillaNet-13-1.5x (act_num 3), ADE20K 512x512, 160k iterations. No official number (the
# official repo has no segmentation code): the recipe of upernet_vanillanet_13_ade20k.py (mmseg's
# ConvNeXt-T UperNet inherited; AdamW lr 1e-4 wd 0.05, layer decay 0.9 over the official detection
# grouping, 6 groups; λ = 1 throughout) with the 1.5x widths and act_num 3 of the released 1.5x
# weights (see _base_/vanillanet_13_x1_5.py).
_base_ = ['../_base_/upernet_ade20k.py', './_base_/vanillanet_13_x1_5.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='pair'),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))
