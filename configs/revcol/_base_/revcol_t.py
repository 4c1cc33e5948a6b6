# RevCol-T as every dense RevCol config starts from it (cascade, UperNet, Mask2Former inherit it;
# the S/B variants change arch, drop path and checkpoint). Official IN-1k weights, converted while
# loading. save_memory=True: reversible backward, identical gradients for less memory (the official
# downstream ran without it; set False to trade memory for ~25% speed).
backbone = dict(
    type='mmconvarch.RevCol',
    arch='tiny',
    drop_path_rate=0.3,
    out_indices=(0, 1, 2, 3),
    save_memory=True,
    init_cfg=dict(type='Pretrained', checkpoint='https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_tiny_1k.pth'))  # noqa
backbone_channels = [64, 128, 256, 512]
