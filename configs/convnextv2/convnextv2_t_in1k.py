# ConvNeXt V2-T ImageNet-1k fine-tuning (from FCMAE weights), 224px.
# Recipe: official ConvNeXt-V2 TRAINING.md for Tiny: 300 epochs, 40 warm-up,
# batch 1024, AdamW blr 8e-4 (lr = 8e-4 * 1024/256 = 3.2e-3), wd 0.05,
# drop path 0.2, layer decay 0.9 per block ("single"), mixup 0.8 / cutmix 1.0,
# label smoothing 0.1, EMA. mmpretrain's ConvNeXt V2-T config provides the
# data pipeline (inherited).
_base_ = ['mmpretrain::convnext_v2/convnext-v2-tiny_32xb32_in1k.py']
custom_imports = dict(imports=['mmconvarch'], allow_failed_imports=False)
# FCMAE-pretrained encoder weights (official pt_only file, converted by mmpretrain)
fcmae_checkpoint = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-tiny_3rdparty-fcmae_in1k_20230104-80513adc.pth'  # noqa

model = dict(
    # ImageClassifier that also loads official checkpoints whole (load_from, get_model)
    type='mmconvarch.OfficialCheckpointClassifier',
    backbone=dict(
        _delete_=True,
        type='mmconvarch.ConvNeXtV2',
        arch='tiny',
        drop_path_rate=0.2,
        layer_decay_type='single',
        init_cfg=dict(type='Pretrained', checkpoint=fcmae_checkpoint,
                      prefix='backbone.')),
    head=dict(loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mmconvarch.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9),
    optimizer=dict(type='AdamW', lr=3.2e-3, betas=(0.9, 0.999),
                   weight_decay=0.05, eps=1e-8))

# process-group timeout (s): a rank whose peer is gone (node lost) fails after it instead of
# hanging (docs/multinode.md). The inherited backend stays (nccl; gloo without a GPU).
env_cfg = dict(dist_cfg=dict(timeout=600))
