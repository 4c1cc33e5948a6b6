# UperNet, ADE20K 512x512, 160k iterations, for mmconvarch backbones.
# Recipe: mmseg's ConvNeXt-T UperNet (inherited: heads, 160k poly schedule, AMP, 8x2 batch) with its
# AdamW lr 1e-4 wd 0.05 and layer decay 0.9 over the backbone's own get_layer_depth groups, through
# mmconvarch's constructor. Family configs replace model.backbone (with _delete_=True),
# decode_head.in_channels and auxiliary_head.in_channels (stage 3).
_base_ = ['mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmpretrain.models', 'mmconvarch'], allow_failed_imports=False)

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9),
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    loss_scale='dynamic')

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
