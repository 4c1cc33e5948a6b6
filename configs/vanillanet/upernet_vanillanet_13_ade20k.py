# UperNet, VanillaNet-13 (act_num 4), ADE20K 512x512, 160k iterations.
# Recipe: mmseg's ConvNeXt-T UperNet (inherited: heads, 160k poly schedule,
# AMP, 8x2 batch); AdamW lr 1e-4 wd 0.05 and layer decay 0.9 over 6 groups are
# mmseg's ConvNeXt-T values, here over the official VanillaNet detection
# grouping (stage i -> i // 2 + 1; 6 groups for -13). The official repo has no
# segmentation code; backbone settings (act_num 4, outputs 0/1/8/10, SyncBN)
# follow its detection backbone. The backbone starts from the finished
# (λ = 1) state with no annealing, as the official detection code does;
# weights: the official KD-pretrained act_num=4 release (see
# _base_/vanillanet_13.py).
_base_ = ['../_base_/upernet_ade20k.py', './_base_/vanillanet_13.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='pair'),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))
