# UperNet, RevCol-T, ADE20K 512x512, 160k iterations (47.4 mIoU officially).
# Recipe: official Segmentation configs (tiny 512): AdamW lr 6e-5 wd 0.01, no layer decay,
# drop path 0.3, 1500 warm-up iterations, poly, fp16, batch 8x2, slide test stride 341. Heads,
# schedule and pipeline come from mmseg's ConvNeXt-T UperNet config (inherited; same as official).
# save_memory=True: reversible backward (identical gradients, less memory).
_base_ = ['mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_tiny_1k.pth'  # noqa

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmconvarch.RevCol',
        arch='tiny',
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        save_memory=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0, custom_keys={'.alpha': dict(decay_mult=0.)}),
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    loss_scale='dynamic')
