# RevCol-B (16 columns, widths 72..576) as the dense RevCol-B configs that inherit it use it: as
# revcol_t.py with the official IN-1k weights (converted while loading) and drop path 0.3 (official
# RevCol-B UperNet).
_base_ = ['./revcol_t.py']

backbone = dict(
    arch='base',
    drop_path_rate=0.3,
    init_cfg=dict(checkpoint='https://github.com/megvii-research/RevCol/releases/download/checkpoint/revcol_base_1k.pth'))  # noqa
backbone_channels = [72, 144, 288, 576]
