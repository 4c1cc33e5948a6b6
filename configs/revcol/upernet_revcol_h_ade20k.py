# UperNet, RevCol-H (MegData-168M), ADE20K 640x640, 160k iterations (57.8 mIoU officially).
# Recipe: official Segmentation configs upernet_revcol_huge_fp16_640x640_160k_ade20k (with
# _base_/models/upernet_revcol_huge.py): as RevCol-L 640 (upernet_revcol_l_ade20k.py: AdamW lr 4e-5
# wd 0.01, layer decay 0.9, no weight decay on alphas, drop path 0.3, 3000 warm-up iterations then
# poly, fp16, 640 crops, slide test stride 426) with RevCol-H (arch 'huge': the extra top-level ->
# level-0 fusion branch of the official RevCol_Huge) with 7x7 depthwise kernels, from the official
# MegData weights whose kernels were zero-padded to 7x7 after pre-training (revcol_huge_k7padded),
# a UperNet decoder of 1440 channels, and batch 8x1. The official config names a backbone type
# 'FullNet' and a 'LearningRateDecayOptimizerConstructorGLOM' that its code does not register; the
# registered RevCol_Huge (its base model file) and the RevCol layer-decay constructor of the other
# RevCol configs are what it can run with.
_base_ = ['./upernet_revcol_l_ade20k.py']
# official MegData weights, 7x7-padded (Hugging Face); converted while loading
checkpoint = 'https://huggingface.co/LarryTsai/RevCol/resolve/main/revcol_models/segmentation/revcol_huge_k7padded.pth'  # noqa
backbone = dict(arch='huge', kernel_size=7, init_cfg=dict(checkpoint=checkpoint))
backbone_channels = [360, 720, 1440, 2880]

model = dict(
    backbone=dict(arch='huge', kernel_size=7, init_cfg=dict(checkpoint=checkpoint)),
    decode_head=dict(in_channels=backbone_channels, channels=1440),
    auxiliary_head=dict(in_channels=backbone_channels[2]))

train_dataloader = dict(batch_size=1)  # x 8 GPUs
