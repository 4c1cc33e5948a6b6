# SLaK-B (51/49/47/13, N=5, width 1.3: widths 166..1331) as every dense SLaK-B config uses it: as
# slak_t.py with drop path 0.4 (official upernet_slak_base_512_160k). Convert the official
# 300-epoch SLaK-B weights (README: Google Drive) first:
#   python tools/model_converters/convert.py slak <SLaK-B checkpoint> \
#       checkpoints/slak_b_in1k_300ep.pth
_base_ = ['./slak_t.py']

backbone = dict(arch='base', drop_path_rate=0.4,
                init_cfg=dict(checkpoint='checkpoints/slak_b_in1k_300ep.pth'))
backbone_channels = [166, 332, 665, 1331]
