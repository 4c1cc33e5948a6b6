# ConvNeXt V2-B with ImageNet-22k intermediate fine-tuning, ImageNet-1k fine-tuned, 224px
# (86.8 top-1 officially: convnextv2_base_22k_224_ema.pt).
# Init: the official chain is FCMAE pre-training, IN-22k intermediate fine-tuning, then this
# IN-1k fine-tuning; neither its FCMAE nor its IN-22k fine-tuned weights are published (the
# official README releases only the end result), so this step cannot start where the official
# one did. The backbone init loads that end result instead (mmpretrain's conversion of the
# official file named below, the same weights), so fine-tuning with this config continues from
# the released model; evaluating that file (tools/test.py CONFIG WEIGHTS) needs no init.
# fcmae_checkpoint is None: no FCMAE-only weights of this chain exist.
# Recipe: the official IN-22k -> IN-1k fine-tuning recipe is not released (TRAINING.md covers
# IN-1k fine-tuning only); convnextv2_b_in1k.py's is kept, as mmpretrain does (its
# convnext-v2-base_32xb32_in1k.py is the config of both its base IN-1k entries).
_base_ = ['./convnextv2_b_in1k.py']
fcmae_checkpoint = None
# weights: mmpretrain's convnext-v2-base_fcmae-in21k-pre_3rdparty_in1k
#   (the official convnextv2_base_22k_224_ema.pt converted)
checkpoint_file = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-base_fcmae-in21k-pre_3rdparty_in1k_20230104-c48d16a5.pth'  # noqa

model = dict(backbone=dict(init_cfg=dict(checkpoint=checkpoint_file)))
