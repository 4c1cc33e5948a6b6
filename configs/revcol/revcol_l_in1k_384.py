# RevCol-L ImageNet-1k fine-tuning from the official IN-22k weights at 384px (87.6 top-1
# officially). Recipe: official configs/revcol_large_1k_384_finetune.yaml: revcol_l_in1k.py's
# (inherited) at 384: training crops of 384 (the inherited RandAugment / random-erasing pipeline),
# test images resized to 384x384 with no crop (official build_transform for sizes > 224; the test
# pipeline of mmpretrain's imagenet_bs64_swin_384.py).
_base_ = ['./revcol_l_in1k.py']

train_pipeline = _base_.train_pipeline
train_pipeline[1].scale = 384  # RandomResizedCrop
train_dataloader = _base_.train_dataloader
train_dataloader.dataset.pipeline[1].scale = 384
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
