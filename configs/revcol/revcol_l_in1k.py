# RevCol-L ImageNet-1k fine-tuning from the official IN-22k weights, 224px, 30 epochs (86.6 top-1
# officially). Recipe: official configs/revcol_large_1k_224_finetune.yaml: AdamW lr 5e-5 at batch
# 1024 (main.py scales BASE_LR by batch / 1024), wd 1e-8 (none on 1-D params), layer decay 0.8 on
# the (block, column) grid, no warm-up, per-iteration cosine to 2e-7, drop path 0.3, gradient
# clipping 10 (config.py default), AMP, no EMA, no mixup/cutmix, label smoothing 0.1, no
# intermediate supervision, classifier initialised at 0.001x (HEAD_INIT_SCALE). Data pipeline
# (RandAug m9, random erasing 0.25): revcol_t_in1k.py's (inherited).
_base_ = ['./revcol_t_in1k.py']
# official IN-22k weights; RevCol converts official checkpoints while loading
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_large_22k.pth'  # noqa

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.3,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    # official: trunc-normal(0.02) weights, then x HEAD_INIT_SCALE 0.001 (bias 0)
    head=dict(in_channels=1024,
              init_cfg=dict(_delete_=True, type='TruncNormal', layer='Linear',
                            std=0.02 * 0.001, bias=0.)),
    inter_supv=False,
    train_cfg=None)

optim_wrapper = dict(
    optimizer=dict(lr=5e-5, weight_decay=1e-8),
    clip_grad=dict(max_norm=10.0),
    paramwise_cfg=dict(layer_decay_rate=0.8))

param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=2e-7, by_epoch=True, begin=0,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=30)
custom_hooks = []
