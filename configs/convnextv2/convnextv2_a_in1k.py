# ConvNeXt V2-A ImageNet-1k fine-tuning (from FCMAE weights), 224px (76.7 top-1 officially).
# Recipe: official ConvNeXt-V2 TRAINING.md for Atto: 600 epochs, no warm-up, batch 1024, AdamW
# blr 2e-4 (lr = 2e-4 * 1024/256 = 8e-4), wd 0.3, drop path 0.1, layer decay 0.9 per block
# ("single"), no mixup / cutmix (0 / 0), label smoothing 0.2, random erasing 0.25, EMA, AMP.
# Everything else (data pipeline, AdamW betas, EMA, AMP, cosine to 1e-5) as convnextv2_t_in1k.py.
_base_ = ['./convnextv2_t_in1k.py']
# FCMAE-pretrained encoder weights (official pt_only file, converted by mmpretrain)
fcmae_checkpoint = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-atto_3rdparty-fcmae_in1k_20230104-07514db4.pth'  # noqa

model = dict(
    backbone=dict(arch='atto', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint=fcmae_checkpoint)),
    head=dict(in_channels=320, loss=dict(label_smooth_val=0.2)),
    train_cfg=None)  # --mixup 0 --cutmix 0: no batch augments

optim_wrapper = dict(optimizer=dict(lr=8e-4, weight_decay=0.3))
# --warmup_epochs 0: cosine from the first iteration
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0)]
train_cfg = dict(max_epochs=600)
