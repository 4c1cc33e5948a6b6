# Mask2Former (mmdet heads inside mmseg), ConvNeXt V2-T, ADE20K 512x512, 160k.
# Recipe: mmseg's Mask2Former Swin-T (inherited: pixel decoder, 9-layer
# decoder, losses, 160k poly schedule, AdamW lr 1e-4 wd 0.05, grad clip 0.01);
# Swin-T and ConvNeXt-T share channels 96..768. As there, the backbone runs at
# 0.1x lr and norms/queries get no weight decay (here: all 1-D params and
# biases, the ConvNeXt V2 advice for GRN). Drop path 0.3 as mmseg's Swin-T.
_base_ = ['../_base_/mask2former_ade20k.py']
checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-tiny_fcmae-pre_3rdparty_in1k_20230104-471a86de.pth'  # noqa

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmconvarch.ConvNeXtV2',
        arch='tiny',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.3,
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file,
                      prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
