# SLaK-T with 31x31 kernels (31/29/27/13, N=5) ImageNet-1k, 120 epochs, 224px, 40% sparse.
# Recipe: slak_t_120e_in1k.py (the official 120-epoch SLaK-T table, its 31x31 row, 81.5 top-1)
# with the stage kernels 31-29-27-13: the README's --kernel_size convention (three stages
# shrinking by 2 from the named size, stage 4 at 13, small kernel 5), as its 51x51 row is
# 51 49 47 13 5. Official size: 30M params, 4.8G FLOPs.
_base_ = ['./slak_t_120e_in1k.py']

model = dict(backbone=dict(kernel_size=[31, 29, 27, 13, 5]))
