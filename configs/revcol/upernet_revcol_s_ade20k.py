# UperNet, RevCol-S, ADE20K 512x512, 160k (47.9 mIoU officially).
# Recipe: official Segmentation configs (small 512): as RevCol-T with lr 4e-5.
_base_ = ['./upernet_revcol_t_ade20k.py']
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_small_1k.pth'  # noqa
# the family base's variables, kept at this config's arch (print_config shows them)
backbone = dict(arch='small', init_cfg=dict(checkpoint=checkpoint))

model = dict(backbone=dict(arch='small', init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
optim_wrapper = dict(optimizer=dict(lr=4e-5))
