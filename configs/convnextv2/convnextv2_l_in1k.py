# ConvNeXt V2-L ImageNet-1k fine-tuning (from FCMAE weights), 224px (85.8 top-1 officially, with the
# paper's own L recipe, which the repo does not ship: TRAINING.md gives Base only).
# Recipe: convnextv2_b_in1k.py's (official Base: 100 epochs, 20 warm-up, batch 1024, AdamW lr 2.5e-3
# wd 0.05, drop path 0.1, layer decay 0.6 over 12 groups, mixup 0.8 / cutmix 1.0, smoothing 0.1,
# EMA, AMP) with the arch changed, as mmpretrain's ConvNeXt V2-L config does too (its data
# pipeline and schedule equal the Base one's).
_base_ = ['./convnextv2_b_in1k.py']
# FCMAE-pretrained encoder weights (official pt_only file, converted by mmpretrain)
fcmae_checkpoint = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-large_3rdparty-fcmae_in1k_20230104-bf38df92.pth'  # noqa

model = dict(
    backbone=dict(arch='large', init_cfg=dict(checkpoint=fcmae_checkpoint)),
    head=dict(in_channels=1536))
