# ConvNeXt V2-H as every dense ConvNeXt V2-H config uses it: as convnextv2_t.py with mmpretrain's
# ConvNeXt V2-H weights (FCMAE pre-trained, IN-1k fine-tuned: the official
# convnextv2_huge_1k_224_ema.pt converted), whose keys ours share.
_base_ = ['./convnextv2_t.py']

backbone = dict(
    arch='huge',
    init_cfg=dict(checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-huge_fcmae-pre_3rdparty_in1k_20230104-f795e5b8.pth'))  # noqa
backbone_channels = [352, 704, 1408, 2816]
