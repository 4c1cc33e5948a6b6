# ConvNeXt V2-H with ImageNet-22k intermediate fine-tuning, ImageNet-1k fine-tuned, 512px
# (88.9 top-1 officially: convnextv2_huge_22k_512_ema.pt). Init and recipe as
# convnextv2_h_in22k_in1k_384.py, with the 512px weights and data.
_base_ = ['./convnextv2_h_in22k_in1k_384.py']
# weights: mmpretrain's convnext-v2-huge_fcmae-in21k-pre_3rdparty_in1k-512px
#   (the official convnextv2_huge_22k_512_ema.pt converted)
checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-huge_fcmae-in21k-pre_3rdparty_in1k-512px_20230104-ce32e63c.pth'  # noqa

model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint_file)))

# Data at 512px as mmpretrain's convnext-v2-huge_32xb32_in1k-512px.py
# (tests/test_convnextv2_converter.py checks they are equal): RandomResizedCrop 512 + flip for
# training; evaluation resizes to 512x512 without a crop, as the official datasets.py does at 384
# and above.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=512, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=512, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
