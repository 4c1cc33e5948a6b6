# Cascade Mask R-CNN + FPN, SLaK-T (51/49/47/13, N=5) pre-trained 120 epochs, 1x (12 epochs), COCO.
# Recipe: official SLaK detection config
# cascade_mask_rcnn_slak_tiny_120_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x_coco_in1k.py
# (the README's "120epochs/12epochs" row: 48.4 box AP, 41.8 mask AP). It is the 3x config
# (cascade_slak_t_coco.py, inherited: drop path 0.4, AdamW lr 2e-4 wd 0.05, layer decay 0.7,
# 4conv1fc GIoU heads, ms crop, fixed sparse masks) with 12 epochs, steps 8/11, starting from the
# 120-epoch SLaK-T weights. Convert them first (Surf Drive link in metafile.yml):
#   python tools/model_converters/convert.py slak <SLaK-T 120-epoch checkpoint> \
#       checkpoints/slak_t_in1k_120ep.pth
_base_ = ['./cascade_slak_t_coco.py']
checkpoint_file = 'checkpoints/slak_t_in1k_120ep.pth'

backbone = dict(init_cfg=dict(checkpoint=checkpoint_file))  # the family base's, kept in step
model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint_file)))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
         gamma=0.1)
]
