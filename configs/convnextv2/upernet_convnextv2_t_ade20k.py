# UperNet, ConvNeXt V2-T, ADE20K 512x512, 160k iterations.
# Recipe: mmseg's ConvNeXt-T UperNet (inherited: heads, 160k poly schedule,
# AMP, 8x2 batch); AdamW lr 1e-4 wd 0.05, drop path 0.4, stage-wise layer
# decay 0.9 over 6 are mmseg's ConvNeXt-T values (no official V2 seg recipe).
_base_ = ['../_base_/upernet_ade20k.py']
checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-tiny_fcmae-pre_3rdparty_in1k_20230104-471a86de.pth'  # noqa

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmconvarch.ConvNeXtV2',
        arch='tiny',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        gap_before_final_norm=False,
        layer_decay_type='stage',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file,
                      prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
