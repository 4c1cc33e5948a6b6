# Mask2Former (mmdet heads inside mmseg), SLaK-B, ADE20K 512x512, 160k. No official number (SLaK
# ships no Mask2Former recipe): mask2former_slak_t_ade20k.py's recipe (mmseg's Mask2Former Swin-T,
# inherited: pixel decoder, 9-layer decoder, losses, 160k poly schedule, AdamW lr 1e-4 wd 0.05, grad
# clip 0.01, backbone at 0.1x lr) with SLaK-B; drop path 0.4 and SyncBN follow the official SLaK-B
# UperNet config. Sparsity hook OFF (dense fine-tuning), as mask2former_slak_t_ade20k.py. Weights:
# see _base_/slak_b.py for the converter command.
_base_ = ['../_base_/mask2former_ade20k.py', './_base_/slak_b.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.backbone_channels))
