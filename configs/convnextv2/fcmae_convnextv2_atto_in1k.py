# FCMAE self-supervised pre-training of ConvNeXt V2-Atto on ImageNet-1k, 224px.
# Recipe: official ConvNeXt-V2 main_pretrain.py + TRAINING.md (the command given
# there for all sizes): 1600 epochs, 40 warm-up, batch 64/GPU x 64 GPUs = 4096,
# AdamW blr 1.5e-4 -> lr = 1.5e-4 * 4096/256 = 2.4e-3, betas (0.9, 0.95),
# wd 0.05 except 1-D params/biases (timm add_weight_decay), per-iteration
# half-cycle cosine to 0, no AMP; mask ratio 0.6, patch 32, decoder 512 x 1
# block, norm_pix_loss. Data (RandomResizedCrop 224 scale (0.2, 1) bicubic +
# flip, default_collate) and runtime come from mmpretrain's MAE base configs.
# Fine-tune: ConvNeXtV2 with init_cfg=dict(type='Pretrained',
# checkpoint=<this run's .pth>, prefix='backbone.') (norm3 starts fresh).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs512_mae.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)

model = dict(
    type='mmconvarch.FCMAE',
    patch_size=32,
    mask_ratio=0.6,
    # grn_reduction='batch': GRN statistics over the visible sites of the
    # whole per-GPU batch, as the official PyTorch (MinkowskiGRN) code
    backbone=dict(type='mmconvarch.MaskedConvNeXtV2', arch='atto',
                  grn_reduction='batch'),
    neck=dict(type='mmconvarch.FCMAEDecoder', in_channels=320, embed_dim=512,
              depth=1, patch_size=32),
    head=dict(type='mmconvarch.FCMAEPretrainHead', norm_pix=True,
              patch_size=32,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')))

# collate_fn restated: inherited through 'mmpretrain::' it carries a _scope_
# key that mmengine's Runner passes on to default_collate (a TypeError)
train_dataloader = dict(
    batch_size=64, num_workers=8,
    collate_fn=dict(_delete_=True, type='default_collate'))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95),
                   weight_decay=0.05),
    # timm add_weight_decay: no decay for 1-D params (norms, GRN) and biases
    paramwise_cfg=dict(flat_decay_mult=0., bias_decay_mult=0.))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=40,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=1560, eta_min=0., by_epoch=True,
         begin=40, end=1600, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1600)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
# different masks (and crops) on every rank
randomness = dict(seed=0, diff_rank_seed=True)
auto_scale_lr = dict(base_batch_size=4096)

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
