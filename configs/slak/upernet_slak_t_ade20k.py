# UperNet, SLaK-T (51/49/47/13, N=5), ADE20K 512x512, 160k iterations.
# Recipe: official SLaK upernet_slak_tiny_512_160k_ade20k_ss.py: drop path
# 0.4, AdamW lr 1e-4 wd 0.05, stage-wise decay 0.9 over 6, linear warm-up
# 1500 iters (ratio 1e-6) then poly(1.0) to 0, 16 images per iteration,
# UperNet channels 512, aux FCN on stage 3: these equal mmseg's ConvNeXt-T
# UperNet, which is inherited (with its AMP; SparseRegrowHook is AMP-safe).
# Sparsity hook ON with fixed masks, as the official sparse=True: the zeros
# of the sparse pre-trained checkpoint stay zero (from_weights).
_base_ = ['../_base_/upernet_ade20k.py', './_base_/slak_t.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='stage'),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))

custom_hooks = [
    dict(type='mmconvarch.SparseRegrowHook', module='backbone',
         sparse_init='from_weights', update_frequency=None),
]
