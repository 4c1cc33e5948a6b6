# RevCol-S ImageNet-1k pre-training with intermediate supervision.
# Recipe: official configs/revcol_small_1k.yaml: as RevCol-T but 8 columns and drop path 0.3.
_base_ = ['./revcol_t_in1k.py']

model = dict(backbone=dict(arch='small', drop_path_rate=0.3))
