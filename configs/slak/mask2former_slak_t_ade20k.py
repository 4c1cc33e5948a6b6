# Mask2Former (mmdet heads inside mmseg), SLaK-T, ADE20K 512x512, 160k.
# Recipe: mmseg's Mask2Former Swin-T (inherited: pixel decoder, 9-layer
# decoder, losses, 160k poly schedule, AdamW lr 1e-4 wd 0.05, grad clip 0.01,
# backbone at 0.1x lr); SLaK ships no Mask2Former recipe, so drop path 0.4
# and SyncBN follow its UperNet-T config.
# Sparsity hook OFF: with no official recipe we fine-tune densely (the
# mmseg Mask2Former default); add the SparseRegrowHook of
# upernet_slak_t_ade20k.py to keep the pre-trained zeros instead.
_base_ = ['../_base_/mask2former_ade20k.py']
checkpoint_file = 'checkpoints/slak_t_in1k_300ep.pth'  # see cascade_slak_t

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmconvarch.SLaK',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 5],
        width_factor=1.3,
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False,
        drop_path_rate=0.4,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file,
                      prefix='backbone.')),
    decode_head=dict(in_channels=[124, 249, 499, 998]))
