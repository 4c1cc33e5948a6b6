"""The config variants: configs that differ from a reference config by a declared set of changes
(another size of the backbone, up to RevCol-H's 2.2B parameters; another resolution, schedule,
kernel size or pre-training; another detector on the same backbone), which the smoke and wiring
suites do not run in full. Running each in full would add far more than CI's budget, most of it
building, training and checkpointing large backbones on a CPU;
what a variant adds over its reference is checked instead by:

- ``check_diff``: the resolved variant equals its resolved reference with exactly the ``changes``
  declared here (each named by the variant's header comment), nothing else;
- its parameter count on the meta device (full arch) against the official one: the backbone in
  its classification form plus the 1000-way classifier (``cls_params``) and, where the official
  repo reports it, the whole model (``task_params``);
- its parameter groups on the meta device against its PROMISES line (test_config_wiring.py);
- a loss + predict step with ``shrunk_options``: one block per stage (two columns for RevCol),
  the real channels, so every neck/head input width is the real one.

A reference may itself be a variant; every chain ends at a config the suites run in full.
"""
import copy
import functools
import math
import os.path as osp
from dataclasses import dataclass
from typing import Optional

from conftest import CONFIG_IDS, CONFIGS, REPO

DELETED = object()  # a key the variant drops


class FromConfig(str):
    """A change whose value is that key's value in another config (e.g. mmseg's 640 pipeline)."""


@dataclass(frozen=True)
class Official:
    """An official parameter count: ``count`` in ``unit`` as printed there, to the printed
    precision (``rounding``: 'round', or 'floor' where the source truncates), times ``density``
    for SLaK's sparse counts."""
    count: float
    unit: float = 1e6
    rounding: str = 'round'
    density: float = 1.0
    source: str = ''

    def matches(self, params: int) -> bool:
        value = params * self.density / self.unit
        decimals = len(repr(float(self.count)).split('.')[1].rstrip('0'))
        scale = 10**decimals
        got = math.floor(value * scale) if self.rounding == 'floor' else round(value * scale)
        return got == round(self.count * scale)


@dataclass(frozen=True)
class Variant:
    reference: str
    changes: dict
    cls_params: Optional[Official]  # None: no official classification count (task_params then)
    task_params: Optional[Official] = None


def _id(family: str, name: str) -> str:
    return f'configs/{family}/{name}.py'


# the head inputs a dense config sets from its backbone channels
_HEAD_INPUTS = {
    'cascade': lambda c: {'model.neck.in_channels': c},
    'upernet': lambda c: {'model.decode_head.in_channels': c,
                          'model.auxiliary_head.in_channels': c[2]},
    'mask2former': lambda c: {'model.decode_head.in_channels': c},
}


def dense(head: str, checkpoint_var: str, arch: str, checkpoint: str, channels=None,
          backbone: Optional[dict] = None, more: Optional[dict] = None) -> dict:
    """The changes of a dense variant: its backbone base (the top-level ``backbone`` and
    ``backbone_channels``, the model's backbone, the checkpoint variable) and the head inputs;
    ``backbone``: other changes of the base (model backbone too), ``more``: any other key."""
    changes = {checkpoint_var: checkpoint}
    for prefix in ('backbone', 'model.backbone'):
        changes[f'{prefix}.arch'] = arch
        changes[f'{prefix}.init_cfg.checkpoint'] = checkpoint
        for key, value in (backbone or {}).items():
            changes[f'{prefix}.{key}'] = value
    if channels is not None:
        changes['backbone_channels'] = channels
        changes.update(_HEAD_INPUTS[head](channels))
    changes.update(more or {})
    return changes


def _lr(lr: float) -> dict:
    return {'optim_wrapper.optimizer.lr': lr}


def _decay(rate: float) -> dict:
    return {'optim_wrapper.paramwise_cfg.layer_decay_rate': rate}


REVCOL_URL = 'https://github.com/megvii-research/RevCol/releases/download/checkpoint/'
REVCOL_HF = 'https://huggingface.co/LarryTsai/RevCol/resolve/main/revcol_models/'
CNV2_URL = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/'
CNV2_DENSE = {  # FCMAE pre-trained, IN-1k fine-tuned (mmpretrain metafile)
    'base': CNV2_URL + 'convnext-v2-base_fcmae-pre_3rdparty_in1k_20230104-00a70fa4.pth',
    'large': CNV2_URL + 'convnext-v2-large_fcmae-pre_3rdparty_in1k_20230104-ef393013.pth',
    'huge': CNV2_URL + 'convnext-v2-huge_fcmae-pre_3rdparty_in1k_20230104-f795e5b8.pth'}
CNV2_FCMAE = {  # FCMAE pre-trained only
    'atto': CNV2_URL + 'convnext-v2-atto_3rdparty-fcmae_in1k_20230104-07514db4.pth',
    'femto': CNV2_URL + 'convnext-v2-femto_3rdparty-fcmae_in1k_20230104-adbe2082.pth',
    'pico': CNV2_URL + 'convnext-v2-pico_3rdparty-fcmae_in1k_20230104-147b1b59.pth',
    'nano': CNV2_URL + 'convnext-v2-nano_3rdparty-fcmae_in1k_20230104-3dd1f29e.pth',
    'base': CNV2_URL + 'convnext-v2-base_3rdparty-fcmae_in1k_20230104-8a798eaf.pth',
    'large': CNV2_URL + 'convnext-v2-large_3rdparty-fcmae_in1k_20230104-bf38df92.pth',
    'huge': CNV2_URL + 'convnext-v2-huge_3rdparty-fcmae_in1k_20230104-fe43ae6c.pth'}
CNV2_CHANNELS = {'atto': [40, 80, 160, 320], 'femto': [48, 96, 192, 384],
                 'pico': [64, 128, 256, 512], 'nano': [80, 160, 320, 640],
                 'base': [128, 256, 512, 1024], 'large': [192, 384, 768, 1536],
                 'huge': [352, 704, 1408, 2816]}
# classifier totals: mmpretrain's metafile (the official README prints 3.7M / 5.2M / 9.1M /
# 15.6M / 28.6M / 89M / 198M / 660M)
CNV2_PARAMS = {'atto': 3_708_400, 'femto': 5_233_240, 'pico': 9_066_280, 'nano': 15_623_800,
               'tiny': 28_635_496, 'base': 88_717_800, 'large': 197_956_840,
               'huge': 660_289_640}
# IN-22k intermediate fine-tuned, IN-1k fine-tuned (mmpretrain metafile; official im22k files)
CNV2_IN21K = {
    (arch, px): CNV2_URL + f'convnext-v2-{arch}_fcmae-in21k-pre_3rdparty_in1k'
    + ('' if px == 224 else f'-{px}px') + f'_20230104-{tag}.pth'
    for (arch, px), tag in {
        ('nano', 224): '91fa8ae2', ('nano', 384): 'f951ae87', ('tiny', 224): '8cc8b8f2',
        ('tiny', 384): 'd8579f84', ('base', 224): 'c48d16a5', ('base', 384): '379425cc',
        ('large', 224): 'd9c4dc0c', ('large', 384): '9139a1f3', ('huge', 384): '02a4eb35',
        ('huge', 512): 'ce32e63c'}.items()}
VANILLA_URL = 'https://github.com/huawei-noah/VanillaNet/releases/download/ckpt/'
MMSEG_640 = FromConfig('mmseg::convnext/convnext-large_upernet_8xb2-amp-160k_ade20k-640x640.py')

REVCOL_L = Official(273, rounding='floor', source='RevCol README (truncated M)')
REVCOL_B = Official(138, rounding='floor', source='RevCol README (truncated M)')
REVCOL_H = Official(2.1, unit=1e9, rounding='floor', source='RevCol README (2.1B, truncated)')
SLAK_S = Official(55, density=0.6, source='SLaK README (40% sparse)')
SLAK_B = Official(95, density=0.6, source='SLaK README (40% sparse)')
VANILLA_X1_5 = Official(127.8, source='VanillaNet README (deploy form)')

VARIANTS = {}

# -- RevCol -------------------------------------------------------------------------------------
VARIANTS[_id('revcol', 'revcol_l_in1k')] = Variant(
    _id('revcol', 'revcol_t_in1k'), {
        'checkpoint': REVCOL_URL + 'revcol_large_22k.pth',
        'model.backbone.arch': 'large', 'model.backbone.drop_path_rate': 0.3,
        'model.backbone.init_cfg': dict(type='Pretrained',
                                        checkpoint=REVCOL_URL + 'revcol_large_22k.pth'),
        'model.head.in_channels': 1024,
        'model.head.init_cfg': dict(type='TruncNormal', layer='Linear', std=2e-5, bias=0.),
        'model.inter_supv': False, 'model.train_cfg': None,
        'optim_wrapper.optimizer.weight_decay': 1e-8,
        'optim_wrapper.clip_grad': dict(max_norm=10.0),
        **_lr(5e-5), **_decay(0.8),
        'param_scheduler': [dict(type='CosineAnnealingLR', eta_min=2e-7, by_epoch=True, begin=0,
                                 convert_to_iter_based=True)],
        'train_cfg.max_epochs': 30, 'custom_hooks': []},
    REVCOL_L)
VARIANTS[_id('revcol', 'cascade_revcol_l_coco')] = Variant(
    _id('revcol', 'cascade_revcol_s_coco'),
    dense('cascade', 'checkpoint', 'large', REVCOL_URL + 'revcol_large_22k.pth',
          [128, 256, 512, 1024], more={'model.backbone.drop_path_rate': 0.5, **_lr(1e-4)}),
    REVCOL_L, Official(330, rounding='floor', source='RevCol Detection README'))
VARIANTS[_id('revcol', 'upernet_revcol_l_ade20k')] = Variant(
    _id('revcol', 'upernet_revcol_t_ade20k'),
    dense('upernet', 'checkpoint', 'large', REVCOL_URL + 'revcol_large_22k.pth',
          [128, 256, 512, 1024], more={
              **{key: MMSEG_640 for key in (
                  'checkpoint_file', 'crop_size', 'data_preprocessor',
                  'model.data_preprocessor', 'model.test_cfg', 'train_pipeline',
                  'test_pipeline', 'train_dataloader', 'val_dataloader', 'test_dataloader')},
              **_lr(4e-5), **_decay(0.9),
              'param_scheduler': [
                  dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=3000),
                  dict(type='PolyLR', power=1.0, begin=3000, end=160000, eta_min=0.0,
                       by_epoch=False)]}),
    REVCOL_L, Official(306, rounding='floor', source='RevCol Segmentation README'))
VARIANTS[_id('revcol', 'mask2former_revcol_b_ade20k')] = Variant(
    _id('revcol', 'mask2former_revcol_t_ade20k'),
    dense('mask2former', 'checkpoint', 'base', REVCOL_URL + 'revcol_base_1k.pth',
          [72, 144, 288, 576]),
    REVCOL_B)
VARIANTS[_id('revcol', 'mask2former_revcol_l_ade20k')] = Variant(
    _id('revcol', 'mask2former_revcol_t_ade20k'),
    dense('mask2former', 'checkpoint', 'large', REVCOL_URL + 'revcol_large_22k.pth',
          [128, 256, 512, 1024]),
    REVCOL_L)

# the 224 -> 384 / 640 ImageNet fine-tunes: the training crop and the test resize (no crop)
def _resize_test(size: int) -> list:
    """The test pipeline of a 384/512/640px ImageNet config: resize, no crop (official code)."""
    return [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=size, backend='pillow', interpolation='bicubic'),
            dict(type='PackInputs')]


def _imagenet_size(size: int) -> dict:
    test = _resize_test(size)
    return {'train_pipeline.1.scale': size, 'train_dataloader.dataset.pipeline.1.scale': size,
            'test_pipeline': test, 'val_dataloader.dataset.pipeline': test,
            'test_dataloader.dataset.pipeline': test}


VARIANTS[_id('revcol', 'revcol_b_in22k_in1k')] = Variant(
    _id('revcol', 'revcol_l_in1k'), {
        'checkpoint': REVCOL_URL + 'revcol_base_22k.pth',
        'model.backbone.arch': 'base', 'model.backbone.drop_path_rate': 0.2,
        'model.backbone.init_cfg.checkpoint': REVCOL_URL + 'revcol_base_22k.pth',
        'model.head.in_channels': 576, 'model.head.init_cfg': None,
        **_lr(1e-4), **_decay(0.9)},
    REVCOL_B)
VARIANTS[_id('revcol', 'revcol_b_in22k_in1k_384')] = Variant(
    _id('revcol', 'revcol_b_in22k_in1k'), _imagenet_size(384), REVCOL_B)
VARIANTS[_id('revcol', 'revcol_l_in1k_384')] = Variant(
    _id('revcol', 'revcol_l_in1k'), _imagenet_size(384), REVCOL_L)
VARIANTS[_id('revcol', 'revcol_h_in1k_640')] = Variant(
    _id('revcol', 'revcol_l_in1k'), {
        'checkpoint': REVCOL_HF + 'classification/revcol_huge_megdata.pth',
        'model.backbone.arch': 'huge', 'model.backbone.drop_path_rate': 0.4,
        'model.backbone.init_cfg.checkpoint': REVCOL_HF + 'classification/revcol_huge_megdata.pth',
        'model.head.in_channels': 2880, **_lr(4e-5),
        'optim_wrapper.clip_grad.max_norm': 100.0, 'param_scheduler.0.eta_min': 2e-8,
        'train_cfg.max_epochs': 20,
        'custom_hooks': [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')],
        **_imagenet_size(640)},
    REVCOL_H)
VARIANTS[_id('revcol', 'cascade_revcol_b_in22k_coco')] = Variant(
    _id('revcol', 'cascade_revcol_b_coco'), {
        'checkpoint': REVCOL_URL + 'revcol_base_22k.pth',
        'backbone.init_cfg.checkpoint': REVCOL_URL + 'revcol_base_22k.pth',
        'model.backbone.init_cfg.checkpoint': REVCOL_URL + 'revcol_base_22k.pth', **_lr(1e-4)},
    REVCOL_B, Official(196, rounding='floor', source='RevCol Detection README'))
# no task_params: the Segmentation README's 122M for RevCol-B UperNet is below the backbone's own
# 138M (a misprint; the 512 one prints it too)
VARIANTS[_id('revcol', 'upernet_revcol_b_in22k_ade20k')] = Variant(
    _id('revcol', 'upernet_revcol_l_ade20k'),
    dense('upernet', 'checkpoint', 'base', REVCOL_URL + 'revcol_base_22k.pth',
          [72, 144, 288, 576], more={
              'param_scheduler.0.end': 1500, 'param_scheduler.1.begin': 1500}),
    REVCOL_B)
# no task_params: the Segmentation README's 2421M is the 3x3-kernel model's (2,421,149,732 here);
# the 7x7 kernels of this config add 40 x 16200 x 8 = 5,184,000 (2,426,333,732)
VARIANTS[_id('revcol', 'upernet_revcol_h_ade20k')] = Variant(
    _id('revcol', 'upernet_revcol_l_ade20k'),
    dense('upernet', 'checkpoint', 'huge', REVCOL_HF + 'segmentation/revcol_huge_k7padded.pth',
          [360, 720, 1440, 2880], backbone={'kernel_size': 7},
          more={'model.decode_head.channels': 1440, 'train_dataloader.batch_size': 1}),
    REVCOL_H)

# -- ConvNeXt V2: B from T, L and H from B (in1k, cascade, UperNet); Mask2Former all from T -----
for size, arch in (('b', 'base'), ('l', 'large'), ('h', 'huge')):
    cls = Official(CNV2_PARAMS[arch], unit=1, source='mmpretrain ConvNeXt V2 metafile')
    ref = 't' if size == 'b' else 'b'
    in1k = {'fcmae_checkpoint': CNV2_FCMAE[arch], 'model.backbone.arch': arch,
            'model.backbone.init_cfg.checkpoint': CNV2_FCMAE[arch],
            'model.head.in_channels': CNV2_CHANNELS[arch][-1]}
    cascade_more, upernet_base = {}, {}
    if size == 'b':  # the Base recipes vs the Tiny ones (headers)
        in1k.update({'model.backbone.drop_path_rate': 0.1,
                     'model.backbone.layer_decay_type': 'group', **_lr(2.5e-3), **_decay(0.6),
                     'param_scheduler.0.end': 20, 'param_scheduler.1.begin': 20,
                     'train_cfg.max_epochs': 100})
        cascade_more = {'model.backbone.drop_path_rate': 0.7, **_decay(0.8)}
    VARIANTS[_id('convnextv2', f'convnextv2_{size}_in1k')] = Variant(
        _id('convnextv2', f'convnextv2_{ref}_in1k'), in1k, cls)
    VARIANTS[_id('convnextv2', f'cascade_convnextv2_{size}_coco')] = Variant(
        _id('convnextv2', f'cascade_convnextv2_{ref}_coco'),
        dense('cascade', 'checkpoint_file', arch, CNV2_DENSE[arch], CNV2_CHANNELS[arch],
              more=cascade_more), cls)
    VARIANTS[_id('convnextv2', f'upernet_convnextv2_{size}_ade20k')] = Variant(
        _id('convnextv2', f'upernet_convnextv2_{ref}_ade20k'),
        dense('upernet', 'checkpoint_file', arch, CNV2_DENSE[arch], CNV2_CHANNELS[arch]), cls)
    VARIANTS[_id('convnextv2', f'mask2former_convnextv2_{size}_ade20k')] = Variant(
        _id('convnextv2', 'mask2former_convnextv2_t_ade20k'),
        dense('mask2former', 'checkpoint_file', arch, CNV2_DENSE[arch], CNV2_CHANNELS[arch]),
        cls)

# -- ConvNeXt V2 small sizes: A from T (the official Atto recipe, header), F/P/N from A -----------
CNV2_SMALL = {'a': 'atto', 'f': 'femto', 'p': 'pico', 'n': 'nano'}
for size, arch in CNV2_SMALL.items():
    changes = {'fcmae_checkpoint': CNV2_FCMAE[arch], 'model.backbone.arch': arch,
               'model.backbone.init_cfg.checkpoint': CNV2_FCMAE[arch],
               'model.head.in_channels': CNV2_CHANNELS[arch][-1]}
    if size == 'a':  # TRAINING.md Atto vs Tiny
        changes.update({'model.backbone.drop_path_rate': 0.1,
                        'model.head.loss.label_smooth_val': 0.2, 'model.train_cfg': None,
                        **_lr(8e-4), 'optim_wrapper.optimizer.weight_decay': 0.3,
                        'param_scheduler': [dict(type='CosineAnnealingLR', eta_min=1e-5,
                                                 by_epoch=True, begin=0)],
                        'train_cfg.max_epochs': 600})
    VARIANTS[_id('convnextv2', f'convnextv2_{size}_in1k')] = Variant(
        _id('convnextv2', 'convnextv2_t_in1k' if size == 'a' else 'convnextv2_a_in1k'),
        changes, Official(CNV2_PARAMS[arch], unit=1, source='mmpretrain ConvNeXt V2 metafile'))

# -- ConvNeXt V2 FCMAE pre-training, the other sizes from Atto (arch, decoder input width) -------
for arch, count in (('femto', 5.2), ('pico', 9.1), ('nano', 15.6), ('base', 89),
                    ('large', 198), ('huge', 660)):
    VARIANTS[_id('convnextv2', f'fcmae_convnextv2_{arch}_in1k')] = Variant(
        _id('convnextv2', 'fcmae_convnextv2_atto_in1k'),
        {'model.backbone.arch': arch, 'model.neck.in_channels': CNV2_CHANNELS[arch][-1]},
        # the encoder (no output norm) + a 1000-way classifier vs the README's FCMAE table
        Official(count, source='official README, FCMAE pre-trained table'))


# -- ConvNeXt V2 IN-22k chain: the released end result as init (headers), then 384/512px data ----
def _cnv2_pixels(scale: int) -> dict:
    """The 384/512px data keys (mmpretrain's convnext-v2-*-384px/512px pipelines)."""
    train = [dict(type='LoadImageFromFile'),
             dict(type='RandomResizedCrop', scale=scale, backend='pillow',
                  interpolation='bicubic'),
             dict(type='RandomFlip', prob=0.5, direction='horizontal'),
             dict(type='PackInputs')]
    test = _resize_test(scale)
    return {'train_pipeline': train, 'test_pipeline': test,
            'train_dataloader.dataset.pipeline': train,
            'val_dataloader.dataset.pipeline': test, 'test_dataloader.dataset.pipeline': test}


for size, arch, px, ref in (
        ('n', 'nano', 224, 'n_in1k'), ('n', 'nano', 384, 'n_in22k_in1k'),
        ('t', 'tiny', 224, 't_in1k'), ('t', 'tiny', 384, 't_in22k_in1k'),
        ('b', 'base', 224, 'b_in1k'), ('b', 'base', 384, 'b_in22k_in1k'),
        ('l', 'large', 224, 'l_in1k'), ('l', 'large', 384, 'l_in22k_in1k'),
        ('h', 'huge', 384, 'h_in1k'), ('h', 'huge', 512, 'h_in22k_in1k_384')):
    url = CNV2_IN21K[arch, px]
    changes = {'checkpoint_file': url, 'model.backbone.init_cfg.checkpoint': url}
    if ref.endswith('_in1k') and '22k' not in ref:  # the first of the chain
        changes['fcmae_checkpoint'] = None
    if px != 224:
        changes.update(_cnv2_pixels(px))
    suffix = '' if px == 224 else f'_{px}'
    VARIANTS[_id('convnextv2', f'convnextv2_{size}_in22k_in1k{suffix}')] = Variant(
        _id('convnextv2', f'convnextv2_{ref}'), changes,
        Official(CNV2_PARAMS[arch], unit=1, source='mmpretrain ConvNeXt V2 metafile'))

# -- SLaK: S keeps the T widths; drop path of the base = official UperNet-S/B --------------------
VARIANTS[_id('slak', 'slak_b_in1k')] = Variant(
    _id('slak', 'slak_s_in1k'), {'model.backbone.arch': 'base',
                                 'model.backbone.drop_path_rate': 0.5,
                                 'model.head.in_channels': 1331}, SLAK_B)
for size, arch, dp, cls, cascade in (
        ('s', 'small', 0.3, SLAK_S, {'model.backbone.drop_path_rate': 0.6}),
        ('b', 'base', 0.4, SLAK_B, {'model.backbone.drop_path_rate': 0.7, **_decay(0.8)})):
    checkpoint = f'checkpoints/slak_{size}_in1k_300ep.pth'
    channels = [166, 332, 665, 1331] if size == 'b' else None
    base = {'drop_path_rate': dp} if dp != 0.4 else {}
    for head, name in (('cascade', f'cascade_slak_{size}_coco'),
                       ('upernet', f'upernet_slak_{size}_ade20k'),
                       ('mask2former', f'mask2former_slak_{size}_ade20k')):
        VARIANTS[_id('slak', name)] = Variant(
            _id('slak', name.replace(f'_{size}_', '_t_')),
            dense(head, 'checkpoint_file', arch, checkpoint, channels, base,
                  cascade if head == 'cascade' else None), cls)

# -- SLaK-T 120 epochs (the official 120-epoch table: 31/51/61 kernels) and its 1x COCO run ------
SLAK_T_120E = Official(30, density=0.6, source='SLaK README, 120-epoch table (40% sparse)')
VARIANTS[_id('slak', 'slak_t_120e_in1k')] = Variant(
    _id('slak', 'slak_t_in1k'), {'train_cfg.max_epochs': 120}, SLAK_T_120E)
for k, params in ((31, 30), (61, 31)):
    VARIANTS[_id('slak', f'slak_t_k{k}_120e_in1k')] = Variant(
        _id('slak', 'slak_t_120e_in1k'),
        {'model.backbone.kernel_size': [k, k - 2, k - 4, 13, 5]},
        Official(params, density=0.6, source='SLaK README, 120-epoch table (40% sparse)'))
VARIANTS[_id('slak', 'cascade_slak_t_120e_1x_coco')] = Variant(
    _id('slak', 'cascade_slak_t_coco'), {
        'checkpoint_file': 'checkpoints/slak_t_in1k_120ep.pth',
        'backbone.init_cfg.checkpoint': 'checkpoints/slak_t_in1k_120ep.pth',
        'model.backbone.init_cfg.checkpoint': 'checkpoints/slak_t_in1k_120ep.pth',
        'max_epochs': 12, 'train_cfg.max_epochs': 12,
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
            dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11],
                 gamma=0.1)]},
    SLAK_T_120E)

# -- VanillaNet: 6..12 and 13-1.5x(†) from the classifiers run in full (official README commands;
# 11/12 take -13's), RetinaNet/Mask R-CNN from the cascade (mmdet's stock parts: FromConfig) ------
def _vanilla(count: float) -> Official:
    return Official(count, source='VanillaNet README (deploy form)')


def _vanilla_det(count: float, rounding: str = 'round') -> Official:
    """The whole model, deploy form. We count Mask R-CNN 77.15 M and RetinaNet 75.38 M; the
    README gives 77.1 (so truncated, 'floor') and 75.4 (rounded)."""
    return Official(count, rounding=rounding,
                    source='VanillaNet object_detection/README.md (whole model, deploy form)')


def _mixup(alpha: float) -> dict:
    return {'model.train_cfg.augments.0.alpha': alpha}


def _vanilla_ms_train(with_mask: bool) -> list:
    """The official detection configs' train pipeline (mmdet 3.x names)."""
    return [dict(type='LoadImageFromFile', backend_args=None),
            dict(type='LoadAnnotations', with_bbox=True, **({'with_mask': True} if with_mask
                                                             else {})),
            dict(type='RandomChoiceResize', scales=[(1333, 480 + 32 * i) for i in range(18)],
                 keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs')]


def _stock(config: str, *keys: str) -> dict:
    """Keys whose value is that of mmdet's stock config (as inherited, ``_scope_`` included)."""
    return {key: FromConfig(config) for key in keys}


MMDET_MASK_RCNN = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
MMDET_RETINANET = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
VANILLA_DET_IN1K = None  # act_num 4 (KD pre-training): no official classification count

VARIANTS[_id('vanillanet', 'vanillanet_6_in1k')] = Variant(
    _id('vanillanet', 'vanillanet_5_in1k'), {
        'model.backbone.arch': '6', **_mixup(0.15), **_lr(4.8e-3), **_decay(0.8),
        'optim_wrapper.optimizer.weight_decay': 0.32}, _vanilla(32.5))
VARIANTS[_id('vanillanet', 'vanillanet_7_in1k')] = Variant(
    _id('vanillanet', 'vanillanet_6_in1k'), {
        'model.backbone.arch': '7', **_mixup(0.4), **_lr(4.7e-3),
        'optim_wrapper.optimizer.weight_decay': 0.35}, _vanilla(32.8))
VARIANTS[_id('vanillanet', 'vanillanet_8_in1k')] = Variant(
    _id('vanillanet', 'vanillanet_5_in1k'), {
        'model.backbone.arch': '8', **_mixup(0.4),
        'optim_wrapper.optimizer.weight_decay': 0.3}, _vanilla(37.1))
VARIANTS[_id('vanillanet', 'vanillanet_9_in1k')] = Variant(
    _id('vanillanet', 'vanillanet_8_in1k'), {'model.backbone.arch': '9'}, _vanilla(41.4))
for depth, count in (('10', 45.7), ('11', 50.0), ('12', 54.3)):
    VARIANTS[_id('vanillanet', f'vanillanet_{depth}_in1k')] = Variant(
        _id('vanillanet', 'vanillanet_13_in1k'), {'model.backbone.arch': depth}, _vanilla(count))
VARIANTS[_id('vanillanet', 'vanillanet_13_x1_5_in1k')] = Variant(
    _id('vanillanet', 'vanillanet_13_in1k'),
    {'model.backbone.arch': '13_x1_5', 'model.head.in_channels': 6144}, VANILLA_X1_5)
VARIANTS[_id('vanillanet', 'vanillanet_13_x1_5_ada_pool_in1k')] = Variant(
    _id('vanillanet', 'vanillanet_13_x1_5_in1k'), {'model.backbone.arch': '13_x1_5_ada_pool'},
    VANILLA_X1_5)
# VanillaNet-13-1.5x: VanillaNet-13's recipes, act_num 3 of the released 1.5x weights
for head, name in (('cascade', 'cascade_vanillanet_13{}_coco'),
                   ('upernet', 'upernet_vanillanet_13{}_ade20k'),
                   ('mask2former', 'mask2former_vanillanet_13{}_ade20k')):
    VARIANTS[_id('vanillanet', name.format('_x1_5'))] = Variant(
        _id('vanillanet', name.format('')),
        dense(head, 'checkpoint_file', '13_x1_5', VANILLA_URL + 'vanillanet_13_x1_5.pth',
              [768, 1536, 3072, 6144], {'act_num': 3}),
        VANILLA_X1_5)
# the official mmdet 2.x detection configs (object_detection/configs/vanillanet), whole models
# as the official object_detection/README.md counts them
VARIANTS[_id('vanillanet', 'mask_rcnn_vanillanet_13_coco')] = Variant(
    _id('vanillanet', 'cascade_vanillanet_13_coco'), {
        **_stock(MMDET_MASK_RCNN, 'model.type', 'model.rpn_head', 'model.roi_head',
                 'model.train_cfg'),
        'max_epochs': DELETED, 'train_cfg.max_epochs': 12,
        'train_pipeline': _vanilla_ms_train(True),
        'train_dataloader.dataset.pipeline': _vanilla_ms_train(True),
        'train_dataloader.batch_size': 4, 'auto_scale_lr.base_batch_size': 32,
        'optim_wrapper.type': 'OptimWrapper',
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
            dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[10, 12],
                 gamma=0.1)]},
    VANILLA_DET_IN1K, _vanilla_det(77.1, 'floor'))
VARIANTS[_id('vanillanet', 'retinanet_vanillanet_13_coco')] = Variant(
    _id('vanillanet', 'mask_rcnn_vanillanet_13_coco'), {
        **_stock(MMDET_RETINANET, 'model.type', 'model.bbox_head', 'model.train_cfg',
                 'model.test_cfg', 'model.data_preprocessor', 'model.neck.add_extra_convs',
                 'test_pipeline', 'val_dataloader', 'test_dataloader', 'val_evaluator',
                 'test_evaluator', 'img_scales', 'tta_model', 'tta_pipeline'),
        'model.rpn_head': DELETED, 'model.roi_head': DELETED,
        'model.backbone.out_indices': [1, 8, 10], 'model.neck.in_channels': [1024, 2048, 4096],
        'model.neck.start_level': 0,
        'train_pipeline': _vanilla_ms_train(False),
        'train_dataloader.dataset.pipeline': _vanilla_ms_train(False),
        **_lr(8e-5), 'param_scheduler.1.milestones': [10, 11]},
    VANILLA_DET_IN1K, _vanilla_det(75.4))

VARIANT_IDS = sorted(VARIANTS)
VARIANT_CONFIGS = [osp.join(REPO, v) for v in VARIANT_IDS]
# the configs the suites run in full
FULL = [c for c, i in zip(CONFIGS, CONFIG_IDS) if i not in VARIANTS]
FULL_IDS = [i for i in CONFIG_IDS if i not in VARIANTS]


# -- the diff -------------------------------------------------------------------------------
def _path(key: str):
    return [int(p) if p.isdigit() else p for p in key.split('.')]


def _get(tree, key: str):
    for part in _path(key):
        tree = tree[part]
    return tree


def _set(tree, key: str, value) -> None:
    *parents, last = _path(key)
    for part in parents:
        tree = tree[part]
    if value is DELETED:
        del tree[last]
    else:
        tree[last] = value


def _flatten(tree, prefix: str = '') -> dict:
    """``{'a.b.0.c': leaf}``: dicts and lists of containers are walked into."""
    if isinstance(tree, dict) and tree:
        items = tree.items()
    elif isinstance(tree, (list, tuple)) and any(isinstance(x, (dict, list, tuple)) for x in tree):
        items = enumerate(tree)
    else:
        return {prefix[:-1]: tree}
    return {k: v for key, sub in items for k, v in _flatten(sub, f'{prefix}{key}.').items()}


def resolved(config: str) -> dict:
    """The resolved config (an id under the repo, or 'package::path') as a plain dict (a copy:
    references are shared)."""
    return copy.deepcopy(_resolved(config))


@functools.lru_cache(maxsize=None)
def _resolved(config: str) -> dict:
    from mmengine.config import Config
    if '::' in config:  # as a config inheriting it sees it (with the package's _scope_ keys)
        return Config.fromstring(f'_base_ = [{config!r}]\n', '.py').to_dict()
    return Config.fromfile(osp.join(REPO, config)).to_dict()


def expected_config(variant_id: str) -> dict:
    """The variant's reference, resolved, with the declared changes applied."""
    variant = VARIANTS[variant_id]
    expected = resolved(variant.reference)
    for key, value in variant.changes.items():
        if isinstance(value, FromConfig):
            value = copy.deepcopy(_get(_resolved(value), key))
        _set(expected, key, value)
    return expected


def config_diff(got: dict, expected: dict) -> list:
    """``'key: expected -> got'`` for every leaf that differs."""
    flat_got, flat_want = _flatten(got), _flatten(expected)
    missing = '<absent>'
    return [f'{key}: {flat_want.get(key, missing)!r} -> {flat_got.get(key, missing)!r}'
            for key in sorted(set(flat_got) | set(flat_want))
            if flat_got.get(key, missing) != flat_want.get(key, missing)]


def reference_chain(variant_id: str) -> list:
    chain = [variant_id]
    while chain[-1] in VARIANTS:
        chain.append(VARIANTS[chain[-1]].reference)
        assert len(chain) < 10, chain
    return chain


# -- parameter counts and the shrunk arch ------------------------------------------------------
def classifier_params(backbone_cfg: dict) -> int:
    """Parameters of the backbone in its classification form (last stage, its output norm, the
    deploy form for VanillaNet, as the official counts) plus a 1000-way classifier, on the meta
    device."""
    from mmengine.registry import MODELS

    from conftest import num_params, on_meta
    cfg = dict(copy.deepcopy(backbone_cfg), init_cfg=None)
    family = cfg['type'].split('.')[-1]
    if family == 'RevCol':
        cfg.update(out_indices=(3, ), out_norm=True, gap_before_final_norm=True)
    elif family == 'VanillaNet':
        cfg.update(out_indices=-1, deploy=True)
    else:
        cfg.update(out_indices=-1, gap_before_final_norm=True)
    with on_meta():
        backbone = MODELS.build(cfg)
        if family == 'VanillaNet':
            from mmconvarch.models.heads import VanillaNetClsHead
            head = num_params(VanillaNetClsHead(1000, backbone.channels[-1], deploy=True))
        else:
            head = backbone.channels[-1] * 1000 + 1000
    return num_params(backbone) + head


def task_model_params(model_cfg: dict) -> int:
    """Parameters of the whole model (detector, segmentor) on the meta device; a VanillaNet
    backbone in its deploy form, as the official counts."""
    from mmengine.registry import MODELS

    from conftest import num_params, on_meta
    cfg = copy.deepcopy(model_cfg)
    if cfg['backbone']['type'].split('.')[-1] == 'VanillaNet':
        cfg['backbone'].update(deploy=True, init_cfg=None)
    with on_meta():
        return num_params(MODELS.build(cfg))


def shrunk_options(cfg) -> dict:
    """cfg_options that keep the backbone's channels (so every input width of the neck and
    heads is the real one) with one block per stage (RevCol: also two columns; VanillaNet: one
    block per output stride)."""
    from mmengine.registry import MODELS
    backbone = cfg.model.backbone
    family = backbone.type.split('.')[-1]
    zoo = MODELS.get(backbone.type).arch_zoo
    arch = zoo[str(backbone.arch)]
    if family == 'RevCol':
        small = dict(channels=arch['channels'], layers=[1] * 4, num_columns=2)
    elif family == 'VanillaNet':
        dims, strides = arch['dims'], arch['strides']
        keep = [i for i, s in enumerate(strides) if s != 1]  # one block per stride
        small = dict(dims=[dims[0], dims[1]] + [dims[i + 1] for i in keep],
                     strides=[1] + [2] * len(keep))
    else:
        small = dict(channels=arch['channels'], depths=[1] * 4)
    options = {'model.backbone.arch': dict(small, _delete_=True)}
    if family == 'VanillaNet' and backbone.get('out_indices', -1) != -1:
        # block i -> the shrunk block of its output stride (0: stride 4, j: j halvings)
        halvings = [sum(s != 1 for s in strides[:i + 1]) for i in range(len(strides))]
        options['model.backbone.out_indices'] = [halvings[i] for i in backbone.out_indices]
    return options
