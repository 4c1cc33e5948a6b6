# RevCol-L (8 columns, widths 128..1024) as every dense RevCol-L config uses it: as revcol_t.py with
# the official IN-22k weights (the only released RevCol-L pre-training, the one the official L
# downstream configs start from; converted while loading) and drop path 0.3 (official UperNet-L; the
# cascade sets its own).
_base_ = ['./revcol_t.py']

backbone = dict(
    arch='large',
    drop_path_rate=0.3,
    init_cfg=dict(checkpoint='https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_large_22k.pth'))  # noqa
backbone_channels = [128, 256, 512, 1024]
