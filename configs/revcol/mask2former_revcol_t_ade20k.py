# Mask2Former (mmdet heads inside mmseg), RevCol-T, ADE20K 512x512, 160k.
# No official RevCol Mask2Former recipe: mmseg's Mask2Former Swin-T one (inherited: decoder,
# losses, AdamW lr 1e-4 wd 0.05, grad clip 0.01, poly 160k) with the backbone at 0.1x lr, no
# weight decay on norms, biases, alphas and queries; drop path 0.3 as RevCol-T segmentation.
_base_ = ['mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmdet.models', 'mmconvarch'], allow_failed_imports=False)
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
    decode_head=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        layer_decay_rate=1.0,
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            '.alpha': dict(lr_mult=0.1, decay_mult=0.0),
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }))
