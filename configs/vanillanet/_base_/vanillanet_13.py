# VanillaNet-13 (act_num 4) as every dense VanillaNet-13 config uses it: the official detection
# backbone (outputs 0/1/8/10 at strides 4/8/16/32, SyncBN), starting from the finished (λ = 1)
# state. Weights: the official KD-pretrained act_num=4 release (object_detection/README.md), loaded
# in place (VanillaNet converts official checkpoints while loading). The in-place load takes the
# file's 'model' weights if it has them, else 'model_ema'; the official detection code loads
# 'model_ema', so for exactly those convert first and point checkpoint at the result (with
# prefix='backbone.'):
#   python tools/model_converters/convert.py vanillanet \
#       vanillanet_13_act_num_4_kd_pretrain.pth <file> --ema
backbone = dict(
    type='mmconvarch.VanillaNet',
    arch='13',
    act_num=4,
    out_indices=[0, 1, 8, 10],  # strides 4/8/16/32
    norm_cfg=dict(type='SyncBN', eps=1e-6, requires_grad=True),
    init_cfg=dict(type='Pretrained',
                  checkpoint='https://github.com/huawei-noah/VanillaNet/releases/download/ckpt/vanillanet_13_act_num_4_kd_pretrain.pth'))  # noqa
backbone_channels = [512, 1024, 2048, 4096]
