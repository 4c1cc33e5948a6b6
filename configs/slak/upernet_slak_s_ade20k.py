# UperNet, SLaK-S (51/49/47/13, N=5), ADE20K 512x512, 160k iterations (49.4 mIoU officially).
# Recipe: official SLaK upernet_slak_small_512_160k_ade20k_ss.py: as upernet_slak_t_ade20k.py (AdamW
# lr 1e-4 wd 0.05, stage-wise decay 0.9, 1500 warm-up iters then poly, UperNet 512 channels, aux FCN
# on stage 3; mmseg's ConvNeXt-T UperNet inherited, with its AMP) with drop path 0.3 and the decay
# over 12 groups (stage 3 has 27 blocks). Sparsity hook ON with fixed masks, as the official
# sparse=True. Weights: see _base_/slak_s.py for the converter command.
_base_ = ['../_base_/upernet_ade20k.py', './_base_/slak_s.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='stage'),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))

custom_hooks = [
    dict(type='mmconvarch.SparseRegrowHook', module='backbone',
         sparse_init='from_weights', update_frequency=None),
]
