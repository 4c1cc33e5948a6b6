# ConvNeXt V2-B as every dense ConvNeXt V2-B config uses it: as convnextv2_t.py with mmpretrain's
# ConvNeXt V2-B weights (FCMAE pre-trained, IN-1k fine-tuned: the official
# convnextv2_base_1k_224_ema.pt converted), whose keys ours share.
_base_ = ['./convnextv2_t.py']

backbone = dict(
    arch='base',
    init_cfg=dict(checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-base_fcmae-pre_3rdparty_in1k_20230104-00a70fa4.pth'))  # noqa
backbone_channels = [128, 256, 512, 1024]
