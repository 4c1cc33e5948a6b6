# ConvNeXt V2-H with ImageNet-22k intermediate fine-tuning, ImageNet-1k fine-tuned, 384px
# (88.7 top-1 officially: convnextv2_huge_22k_384_ema.pt; no 224px one is released).
# Init: the official chain is FCMAE pre-training, IN-22k intermediate fine-tuning, then this
# IN-1k fine-tuning; neither its FCMAE nor its IN-22k fine-tuned weights are published (the
# official README releases only the end result), so this step cannot start where the official
# one did. The backbone init loads that end result instead (mmpretrain's conversion of the
# official file named below, the same weights), so fine-tuning with this config continues from
# the released model; evaluating that file (tools/test.py CONFIG WEIGHTS) needs no init.
# fcmae_checkpoint is None: no FCMAE-only weights of this chain exist.
# Recipe: the official IN-22k -> IN-1k fine-tuning recipe is not released (TRAINING.md covers
# IN-1k fine-tuning only); convnextv2_h_in1k.py's (the Base one) is kept, as mmpretrain does
# (its convnext-v2-huge_32xb32_in1k-384px.py is its Base recipe at 384px).
_base_ = ['./convnextv2_h_in1k.py']
fcmae_checkpoint = None
# weights: mmpretrain's convnext-v2-huge_fcmae-in21k-pre_3rdparty_in1k-384px
#   (the official convnextv2_huge_22k_384_ema.pt converted)
checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-huge_fcmae-in21k-pre_3rdparty_in1k-384px_20230104-02a4eb35.pth'  # noqa

model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint_file)))

# Data at 384px as mmpretrain's convnext-v2-huge_32xb32_in1k-384px.py
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
