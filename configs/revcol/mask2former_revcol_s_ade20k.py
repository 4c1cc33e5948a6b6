# Mask2Former, RevCol-S, ADE20K 512x512, 160k: as the RevCol-T one with 8 columns.
_base_ = ['./mask2former_revcol_t_ade20k.py']
checkpoint = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_small_1k.pth'  # noqa
# the family base's variables, kept at this config's arch (print_config shows them)
backbone = dict(arch='small', init_cfg=dict(checkpoint=checkpoint))

model = dict(backbone=dict(arch='small', init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
