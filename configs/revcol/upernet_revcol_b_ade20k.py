# UperNet, RevCol-B (IN-1k), ADE20K 512x512, 160k (49.0 mIoU officially).
# Recipe: official Segmentation configs (base 512, 1k): lr 4e-5, drop path 0.3, slide stride 426.
_base_ = ['./upernet_revcol_t_ade20k.py']
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_base_1k.pth'  # noqa
# the family base's variables, kept at this config's arch (print_config shows them)
backbone = dict(arch='base', init_cfg=dict(checkpoint=checkpoint))
backbone_channels = [72, 144, 288, 576]

model = dict(
    backbone=dict(arch='base', init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(in_channels=[72, 144, 288, 576]),
    auxiliary_head=dict(in_channels=288),
    test_cfg=dict(stride=(426, 426)))
optim_wrapper = dict(optimizer=dict(lr=4e-5))
