# Mask2Former (mmdet heads inside mmseg), ADE20K 512x512, 160k, for mmconvarch backbones.
# Recipe: mmseg's Mask2Former Swin-T (inherited: pixel decoder, 9-layer decoder, losses, 160k poly
# schedule, AdamW lr 1e-4 wd 0.05, grad clip 0.01). As there, the backbone runs at 0.1x lr and
# norms/queries get no weight decay (here: all 1-D params and biases). Family configs replace
# model.backbone (with _delete_=True) and decode_head.in_channels.
_base_ = ['mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmdet.models', 'mmpretrain.models', 'mmconvarch'],
                      allow_failed_imports=False)

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
            'query_embed': dict(decay_mult=0.0),
            'query_feat': dict(decay_mult=0.0),
            'level_embed': dict(decay_mult=0.0),
        }))

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
