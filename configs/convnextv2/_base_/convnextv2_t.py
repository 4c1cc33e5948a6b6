# ConvNeXt V2-T as every dense ConvNeXt V2-T config uses it (cascade, UperNet, Mask2Former inherit
# it and add what differs: drop path, layer-decay ids). Weights: mmpretrain's ConvNeXt V2-T (FCMAE
# pre-trained, IN-1k fine-tuned), whose keys ours share.
backbone = dict(
    type='mmconvarch.ConvNeXtV2',
    arch='tiny',
    out_indices=[0, 1, 2, 3],
    drop_path_rate=0.4,
    gap_before_final_norm=False,
    init_cfg=dict(type='Pretrained',
                  checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext-v2/convnext-v2-tiny_fcmae-pre_3rdparty_in1k_20230104-471a86de.pth',  # noqa
                  prefix='backbone.'))
backbone_channels = [96, 192, 384, 768]
