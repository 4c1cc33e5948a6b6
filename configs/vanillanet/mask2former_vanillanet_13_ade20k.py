# Mask2Former (mmdet heads inside mmseg), VanillaNet-13 (act_num 4), ADE20K
# 512x512, 160k. Recipe: mmseg's Mask2Former Swin-T (inherited: pixel decoder,
# 9-layer decoder, losses, 160k poly schedule, AdamW lr 1e-4 wd 0.05, grad
# clip 0.01); as there, the backbone runs at 0.1x lr and norms/queries get no
# weight decay (here: all 1-D params and biases, as VanillaNet's
# optim_factory). The official repo has no segmentation code; backbone
# settings (act_num 4, outputs 0/1/8/10, SyncBN) follow its detection
# backbone. The backbone starts from the finished (λ = 1) state with no
# annealing, as the official detection code does; weights: the
# official KD-pretrained act_num=4 release (see _base_/vanillanet_13.py).
_base_ = ['../_base_/mask2former_ade20k.py', './_base_/vanillanet_13.py']
checkpoint_file = _base_.backbone.init_cfg.checkpoint  # the inherited name, pointing at ours

model = dict(
    backbone=dict(_base_.backbone, _delete_=True),
    decode_head=dict(in_channels=_base_.backbone_channels))
