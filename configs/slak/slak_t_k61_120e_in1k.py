# SLaK-T with 61x61 kernels (61/59/57/13, N=5) ImageNet-1k, 120 epochs, 224px, 40% sparse.
# Recipe: slak_t_120e_in1k.py (the official 120-epoch SLaK-T table, its 61x61 row, 81.5 top-1)
# with the stage kernels 61-59-57-13 (the README's --kernel_size convention, as its 51x51 row is
# 51 49 47 13 5). Official size: 31M params, 5.2G FLOPs.
_base_ = ['./slak_t_120e_in1k.py']

model = dict(backbone=dict(kernel_size=[61, 59, 57, 13, 5]))
