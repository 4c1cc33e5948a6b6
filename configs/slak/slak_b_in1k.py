# SLaK-B ImageNet-1k, 300 epochs, 224px, dynamic sparsity (40% sparse; 84.0 top-1 officially).
# Recipe: official SLaK README (SLaK-B command): as SLaK-S (AdamW lr 4e-3 at batch 4096, wd 0.05,
# 20 warm-up epochs, cosine to 1e-6, EMA 0.9999; --sparsity 0.4 --sparse_init snip --growth random
# --prune magnitude --prune_rate 0.3 -u 100) with the Base widths (x 1.3: 166..1331) and drop path
# 0.5; the README's 16 GPUs x 32 x update_freq 8 is the same 4096 batch.
_base_ = ['./slak_s_in1k.py']

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.5),
    head=dict(in_channels=1331))
