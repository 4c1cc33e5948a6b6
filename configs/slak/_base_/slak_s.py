# SLaK-S (51/49/47/13, N=5, width 1.3; 27 blocks in stage 3) as every dense SLaK-S config uses it:
# as slak_t.py with drop path 0.3 (official upernet_slak_small_512_160k). Convert the official
# 300-epoch SLaK-S weights (README: Google Drive) first:
#   python tools/model_converters/convert.py slak <SLaK-S checkpoint> \
#       checkpoints/slak_s_in1k_300ep.pth
_base_ = ['./slak_t.py']

backbone = dict(arch='small', drop_path_rate=0.3,
                init_cfg=dict(checkpoint='checkpoints/slak_s_in1k_300ep.pth'))
