# ConvNeXt V2-N ImageNet-1k fine-tuning (from FCMAE weights), 224px (81.9 top-1 officially).
# Recipe: convnextv2_a_in1k.py's (official TRAINING.md Atto: 600 epochs, no warm-up, batch 1024,
# AdamW lr 8e-4 wd 0.3, drop path 0.1, layer decay 0.9 per block, no mixup / cutmix, smoothing
# 0.2, random erasing 0.25, EMA, AMP) with the arch changed: TRAINING.md gives no Nano command
# (Atto is the only small model it gives) and the paper's per-size table is not shipped.
_base_ = ['./convnextv2_a_in1k.py']
# FCMAE-pretrained encoder weights (official pt_only file, converted by mmpretrain)
fcmae_checkpoint = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-nano_3rdparty-fcmae_in1k_20230104-3dd1f29e.pth'  # noqa

model = dict(
    backbone=dict(arch='nano', init_cfg=dict(checkpoint=fcmae_checkpoint)),
    head=dict(in_channels=640))
