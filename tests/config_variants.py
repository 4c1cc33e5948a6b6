"""The config variants: configs that scale a family's backbone up (RevCol-L, ConvNeXt V2-B/L/H,
SLaK-S/B, VanillaNet-13-1.5x) and are otherwise their reference config, which the smoke and
wiring suites run in full. Running each variant in full as well would add about 15 minutes to
CI, most of it building, training and checkpointing backbones of up to 660M parameters on a CPU;
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
    cls_params: Official
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
CNV2_URL = 'https://download.openmmlab.com/mmclassification/v0/convnext-v2/'
CNV2_DENSE = {  # FCMAE pre-trained, IN-1k fine-tuned (mmpretrain metafile)
    'base': CNV2_URL + 'convnext-v2-base_fcmae-pre_3rdparty_in1k_20230104-00a70fa4.pth',
    'large': CNV2_URL + 'convnext-v2-large_fcmae-pre_3rdparty_in1k_20230104-ef393013.pth',
    'huge': CNV2_URL + 'convnext-v2-huge_fcmae-pre_3rdparty_in1k_20230104-f795e5b8.pth'}
CNV2_FCMAE = {  # FCMAE pre-trained only
    'base': CNV2_URL + 'convnext-v2-base_3rdparty-fcmae_in1k_20230104-8a798eaf.pth',
    'large': CNV2_URL + 'convnext-v2-large_3rdparty-fcmae_in1k_20230104-bf38df92.pth',
    'huge': CNV2_URL + 'convnext-v2-huge_3rdparty-fcmae_in1k_20230104-fe43ae6c.pth'}
CNV2_CHANNELS = {'base': [128, 256, 512, 1024], 'large': [192, 384, 768, 1536],
                 'huge': [352, 704, 1408, 2816]}
# classifier totals: mmpretrain's metafile (the official README prints 89M / 198M / 660M)
CNV2_PARAMS = {'base': 88_717_800, 'large': 197_956_840, 'huge': 660_289_640}
VANILLA_URL = 'https://github.com/huawei-noah/VanillaNet/releases/download/ckpt/'
MMSEG_640 = FromConfig('mmseg::convnext/convnext-large_upernet_8xb2-amp-160k_ade20k-640x640.py')

REVCOL_L = Official(273, rounding='floor', source='RevCol README (truncated M)')
REVCOL_B = Official(138, rounding='floor', source='RevCol README (truncated M)')
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

# -- VanillaNet-13-1.5x: VanillaNet-13's recipes, act_num 3 of the released 1.5x weights --------
VARIANTS[_id('vanillanet', 'vanillanet_13_x1_5_in1k')] = Variant(
    _id('vanillanet', 'vanillanet_13_in1k'),
    {'model.backbone.arch': '13_x1_5', 'model.head.in_channels': 6144}, VANILLA_X1_5)
for head, name in (('cascade', 'cascade_vanillanet_13{}_coco'),
                   ('upernet', 'upernet_vanillanet_13{}_ade20k'),
                   ('mask2former', 'mask2former_vanillanet_13{}_ade20k')):
    VARIANTS[_id('vanillanet', name.format('_x1_5'))] = Variant(
        _id('vanillanet', name.format('')),
        dense(head, 'checkpoint_file', '13_x1_5', VANILLA_URL + 'vanillanet_13_x1_5.pth',
              [768, 1536, 3072, 6144], {'act_num': 3}),
        VANILLA_X1_5)

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
        options['model.backbone.out_indices'] = list(range(len(small['strides'])))
    return options
