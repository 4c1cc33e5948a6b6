# UperNet, RevCol-T, ADE20K 512x512, 160k iterations (47.4 mIoU officially).
# Recipe: official Segmentation configs (tiny 512): AdamW lr 6e-5 wd 0.01, no layer decay,
# drop path 0.3, 1500 warm-up iterations, poly, fp16, batch 8x2, slide test stride 341. Heads,
# schedule and pipeline come from mmseg's ConvNeXt-T UperNet config (inherited through
# ../_base_/upernet_ade20k.py; same as official).
# save_memory=True: reversible backward (identical gradients, less memory).
_base_ = ['../_base_/upernet_ade20k.py', './_base_/revcol_t.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint = _base_.backbone.init_cfg.checkpoint

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.backbone_channels),
    auxiliary_head=dict(in_channels=_base_.backbone_channels[2]))

optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=1.0, custom_keys={'.alpha': dict(decay_mult=0.)}),
    optimizer=dict(lr=6e-5, weight_decay=0.01))
