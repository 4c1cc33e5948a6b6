# Cascade Mask R-CNN + FPN, VanillaNet-13 (act_num 4), 3x multi-scale-crop
# schedule, COCO. Recipe: mmdet's ConvNeXt-T cascade (inherited: GIoU 4conv1fc
# heads, DETR-style ms crop, 36 epochs, steps 27/33, AMP); backbone settings,
# AdamW lr 1.3e-4 wd 0.05 and layer decay 0.6 over the official detection
# grouping (stage i -> i // 2 + 1, 6 groups) are the official VanillaNet-13
# Mask R-CNN values (object_detection/configs/vanillanet). The backbone
# starts from the finished (λ = 1) state with no annealing, as the official
# detection code does; weights: the official KD-pretrained act_num=4 release, loaded in place
# (see _base_/vanillanet_13.py for its EMA weights).
_base_ = ['../_base_/cascade_coco.py', './_base_/vanillanet_13.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True, layer_decay_type='pair'),
    neck=dict(in_channels=_base_.backbone_channels))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.6), optimizer=dict(lr=1.3e-4))
