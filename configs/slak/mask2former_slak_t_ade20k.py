# Mask2Former (mmdet heads inside mmseg), SLaK-T, ADE20K 512x512, 160k.
# Recipe: mmseg's Mask2Former Swin-T (inherited: pixel decoder, 9-layer
# decoder, losses, 160k poly schedule, AdamW lr 1e-4 wd 0.05, grad clip 0.01,
# backbone at 0.1x lr); SLaK ships no Mask2Former recipe, so drop path 0.4
# and SyncBN follow its UperNet-T config.
# Sparsity hook OFF: with no official recipe we fine-tune densely (the
# mmseg Mask2Former default); add the SparseRegrowHook of
# upernet_slak_t_ade20k.py to keep the pre-trained zeros instead.
_base_ = ['../_base_/mask2former_ade20k.py', './_base_/slak_t.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.backbone_channels))
