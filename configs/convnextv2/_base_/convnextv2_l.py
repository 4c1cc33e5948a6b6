# ConvNeXt V2-L as every dense ConvNeXt V2-L config uses it: as convnextv2_t.py with mmpretrain's
# ConvNeXt V2-L weights (FCMAE pre-trained, IN-1k fine-tuned: the official
# convnextv2_large_1k_224_ema.pt converted), whose keys ours share.
_base_ = ['./convnextv2_t.py']

backbone = dict(
    arch='large',
    init_cfg=dict(checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-large_fcmae-pre_3rdparty_in1k_20230104-ef393013.pth'))  # noqa
backbone_channels = [192, 384, 768, 1536]
