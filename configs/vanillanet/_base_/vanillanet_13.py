# VanillaNet-13 (act_num 4) as every dense VanillaNet-13 config uses it: the official detection
# backbone (outputs 0/1/8/10 at strides 4/8/16/32, SyncBN), starting from the finished (λ = 1)
# state.
# Weights (official release 'ckpt', model_ema as the official detection code loads):
#   python tools/model_converters/convert.py vanillanet \
#       vanillanet_13_act_num_4_kd_pretrain.pth <checkpoint_file> --ema
backbone = dict(
    type='mmconvarch.VanillaNet',
    arch='13',
    act_num=4,
    out_indices=[0, 1, 8, 10],  # strides 4/8/16/32
    norm_cfg=dict(type='SyncBN', eps=1e-6, requires_grad=True),
    init_cfg=dict(type='Pretrained',
                  checkpoint='checkpoints/vanillanet_13_act_num_4_kd_pretrain_mmconvarch.pth',
                  prefix='backbone.'))
backbone_channels = [512, 1024, 2048, 4096]
