# RevCol-B ImageNet-1k fine-tuning from the official IN-22k weights, 224px, 30 epochs (85.6 top-1
# officially). Recipe: official configs/revcol_base_1k_224_finetune.yaml: as RevCol-L
# (revcol_l_in1k.py: AdamW wd 1e-8, no warm-up, per-iteration cosine to 2e-7, gradient clipping 10,
# AMP, no EMA, no mixup/cutmix, no intermediate supervision) with lr 1e-4 at batch 1024, layer
# decay 0.9 and drop path 0.2. The classifier keeps the plain trunc-normal(0.02) init: the yaml's
# HEAD_INIT_SCALE is not applied to RevCol-B (official models/build.py does not pass it to
# revcol_base).
_base_ = ['./revcol_l_in1k.py']
# official IN-22k weights; RevCol converts official checkpoints while loading
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_base_22k.pth'  # noqa

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.2,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    head=dict(in_channels=576, init_cfg=None))

optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(layer_decay_rate=0.9))
