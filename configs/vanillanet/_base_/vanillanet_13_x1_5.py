# VanillaNet-13-1.5x as every dense VanillaNet-13-1.5x config uses it: vanillanet_13.py's detection
# backbone (outputs 0/1/8/10, SyncBN, finished λ = 1) at 1.5x width with act_num 3, the act_num of
# the only released 1.5x weights: the official IN-1k classifier (README, 82.53 top-1), loaded in
# place from its release URL (its 'model' weights if the file has them, else 'model_ema'; see
# vanillanet_13.py for converting the EMA weights instead).
_base_ = ['./vanillanet_13.py']

backbone = dict(
    arch='13_x1_5',
    act_num=3,
    init_cfg=dict(checkpoint='https://github.com/huawei-noah/VanillaNet/releases/download/ckpt/vanillanet_13_x1_5.pth'))  # noqa
backbone_channels = [768, 1536, 3072, 6144]
