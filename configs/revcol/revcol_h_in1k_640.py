# RevCol-H ImageNet-1k fine-tuning from the official MegData-168M weights at 640px, 20 epochs
# (90.0 top-1 officially). Recipe: official configs/revcol_huge_1k_640_finetune.yaml: as RevCol-L
# (revcol_l_in1k.py: AdamW wd 1e-8, layer decay 0.8, no warm-up, per-iteration cosine, AMP, no
# mixup/cutmix, no intermediate supervision, classifier initialised at 0.001x) with lr 4e-5 at
# batch 1024, cosine to 2e-8, drop path 0.4, gradient clipping 100, EMA 0.9999 (MODEL_EMA), 20
# epochs, and 640px: training crops of 640 (the inherited RandAugment / random-erasing pipeline),
# test images resized to 640x640 with no crop (official build_transform for sizes > 224; as
# mmpretrain's imagenet_bs64_swin_384.py test pipeline). RevCol-H (arch 'huge') has the extra
# top-level -> level-0 fusion branch of the official models/revcol_huge.py.
_base_ = ['./revcol_l_in1k.py']
# official MegData-168M weights (Hugging Face); RevCol converts official checkpoints while loading
checkpoint = 'https://huggingface.co/LarryTsai/RevCol/resolve/main/revcol_models/classification/revcol_huge_megdata.pth'  # noqa

model = dict(
    backbone=dict(arch='huge', drop_path_rate=0.4,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(in_channels=2880))

optim_wrapper = dict(optimizer=dict(lr=4e-5), clip_grad=dict(max_norm=100.0))

param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=2e-8, by_epoch=True, begin=0,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=20)
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]

train_pipeline = _base_.train_pipeline
train_pipeline[1].scale = 640  # RandomResizedCrop
train_dataloader = _base_.train_dataloader
train_dataloader.dataset.pipeline[1].scale = 640
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=640, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
