# SLaK-T (51/49/47/13, N=5, width 1.3) as every dense SLaK-T config uses it: the official downstream
# backbone (drop path 0.4, SyncBN branches). Convert the official 300-epoch weights first:
#   python tools/model_converters/convert.py slak SLaK_tiny_checkpoint.pth \
#       checkpoints/slak_t_in1k_300ep.pth
backbone = dict(
    type='mmconvarch.SLaK',
    arch='tiny',
    kernel_size=[51, 49, 47, 13, 5],
    width_factor=1.3,
    out_indices=[0, 1, 2, 3],
    gap_before_final_norm=False,
    drop_path_rate=0.4,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/slak_t_in1k_300ep.pth',
                  prefix='backbone.'))
backbone_channels = [124, 249, 499, 998]
