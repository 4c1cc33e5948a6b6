# ConvNeXt V2-T with ImageNet-22k intermediate fine-tuning, ImageNet-1k fine-tuned, 384px
# (85.1 top-1 officially: convnextv2_tiny_22k_384_ema.pt). Init and recipe as
# convnextv2_t_in22k_in1k.py (its 224px sibling), with the 384px weights and data.
_base_ = ['./convnextv2_t_in22k_in1k.py']
# weights: mmpretrain's convnext-v2-tiny_fcmae-in21k-pre_3rdparty_in1k-384px
#   (the official convnextv2_tiny_22k_384_ema.pt converted)
checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-tiny_fcmae-in21k-pre_3rdparty_in1k-384px_20230104-d8579f84.pth'  # noqa

model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint_file)))

# Data at 384px as mmpretrain's convnext-v2-tiny_32xb32_in1k-384px.py
# (tests/test_convnextv2_converter.py checks they are equal): RandomResizedCrop 384 + flip for
# training; evaluation resizes to 384x384 without a crop, as the official datasets.py does at 384
# and above.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
