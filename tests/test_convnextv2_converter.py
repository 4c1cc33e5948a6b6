"""Every released ConvNeXt V2 model (official README) converts and loads strictly into the config
that uses it, for all 8 sizes, on the meta device (shapes only, no GBs of tensors):

- the fine-tuned classifiers (im1k/, im22k/ files: the dense ``models/convnextv2.py`` layout with
  ``norm`` and ``head``) into the whole model of each fine-tuning config of that size;
- the FCMAE pre-trained files (pt_only/: the whole ``models/fcmae.py`` model, i.e. the sparse
  MinkowskiEngine encoder under ``encoder.*`` plus ``proj``, ``mask_token``, ``decoder`` and
  ``pred``) into the backbone of the FCMAE config of that size, and into the fine-tuning
  backbone where only the output norm starts fresh (as the official fine-tuning).

The key layouts and shapes are re-stated here from the official code (commit 2553895):
``models/convnextv2.py`` (dense blocks, ``GRN`` gamma/beta (1, 1, 1, C)), ``models/
convnextv2_sparse.py`` + ``models/utils.py`` (``MinkowskiLayerNorm.ln``, ``MinkowskiLinear.
linear``, ``MinkowskiGRN`` (1, C)), MinkowskiEngine's kernels ((kv, in, out) for convolutions,
(kv, C) depthwise, (1, out) biases) and ``models/fcmae.py`` (decoder 512 x 1 block, 32px patches).
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from conftest import REPO, num_params, on_meta
from mmconvarch.checkpoint.converters import convert_checkpoint

# official models/convnextv2.py (convnextv2_atto ... convnextv2_huge): depths, dims
ARCHS = {
    'atto': ([2, 2, 6, 2], [40, 80, 160, 320]),
    'femto': ([2, 2, 6, 2], [48, 96, 192, 384]),
    'pico': ([2, 2, 6, 2], [64, 128, 256, 512]),
    'nano': ([2, 2, 8, 2], [80, 160, 320, 640]),
    'tiny': ([3, 3, 9, 3], [96, 192, 384, 768]),
    'base': ([3, 3, 27, 3], [128, 256, 512, 1024]),
    'large': ([3, 3, 27, 3], [192, 384, 768, 1536]),
    'huge': ([3, 3, 27, 3], [352, 704, 1408, 2816]),
}
# official README #params (M, as printed: both tables give the same per size) and mmpretrain's
# metafile counts of the same files (exact)
README_M = {'atto': '3.7', 'femto': '5.2', 'pico': '9.1', 'nano': '15.6', 'tiny': '28.6',
            'base': '89', 'large': '198', 'huge': '660'}
MMPRETRAIN = {'atto': 3_708_400, 'femto': 5_233_240, 'pico': 9_066_280, 'nano': 15_623_800,
              'tiny': 28_635_496, 'base': 88_717_800, 'large': 197_956_840,
              'huge': 660_289_640}
# the configs whose model a released fine-tuned file of that size is
FINETUNE_CONFIGS = {
    'atto': ['convnextv2_a_in1k'], 'femto': ['convnextv2_f_in1k'],
    'pico': ['convnextv2_p_in1k'],
    'nano': ['convnextv2_n_in1k', 'convnextv2_n_in22k_in1k', 'convnextv2_n_in22k_in1k_384'],
    'tiny': ['convnextv2_t_in1k', 'convnextv2_t_in22k_in1k', 'convnextv2_t_in22k_in1k_384'],
    'base': ['convnextv2_b_in1k', 'convnextv2_b_in22k_in1k', 'convnextv2_b_in22k_in1k_384'],
    'large': ['convnextv2_l_in1k', 'convnextv2_l_in22k_in1k', 'convnextv2_l_in22k_in1k_384'],
    'huge': ['convnextv2_h_in1k', 'convnextv2_h_in22k_in1k_384', 'convnextv2_h_in22k_in1k_512'],
}
DECODER_DIM, PATCH = 512, 32  # official main_pretrain.py defaults (all sizes)


def official_finetuned_shapes(depths, dims, num_classes=1000) -> dict:
    """Key -> shape of the official dense ConvNeXtV2 classifier."""
    shapes = {'downsample_layers.0.0.weight': (dims[0], 3, 4, 4),
              'downsample_layers.0.0.bias': (dims[0], ),
              'downsample_layers.0.1.weight': (dims[0], ),
              'downsample_layers.0.1.bias': (dims[0], )}
    for i in range(1, 4):
        p = f'downsample_layers.{i}.'
        shapes.update({p + '0.weight': (dims[i - 1], ), p + '0.bias': (dims[i - 1], ),
                       p + '1.weight': (dims[i], dims[i - 1], 2, 2), p + '1.bias': (dims[i], )})
    for s, (depth, c) in enumerate(zip(depths, dims)):
        for b in range(depth):
            shapes.update(_dense_block(f'stages.{s}.{b}.', c))
    shapes.update({'norm.weight': (dims[3], ), 'norm.bias': (dims[3], ),
                   'head.weight': (num_classes, dims[3]), 'head.bias': (num_classes, )})
    return shapes


def _dense_block(p, c) -> dict:
    return {p + 'dwconv.weight': (c, 1, 7, 7), p + 'dwconv.bias': (c, ),
            p + 'norm.weight': (c, ), p + 'norm.bias': (c, ),
            p + 'pwconv1.weight': (4 * c, c), p + 'pwconv1.bias': (4 * c, ),
            p + 'grn.gamma': (1, 1, 1, 4 * c), p + 'grn.beta': (1, 1, 1, 4 * c),
            p + 'pwconv2.weight': (c, 4 * c), p + 'pwconv2.bias': (c, )}


def official_fcmae_shapes(depths, dims) -> dict:
    """Key -> shape of the official FCMAE model (a pt_only file's ``model``)."""
    e = 'encoder.'
    shapes = {e + 'downsample_layers.0.0.weight': (dims[0], 3, 4, 4),
              e + 'downsample_layers.0.0.bias': (dims[0], ),
              e + 'downsample_layers.0.1.weight': (dims[0], ),  # dense channels_first LN
              e + 'downsample_layers.0.1.bias': (dims[0], )}
    for i in range(1, 4):
        p = f'{e}downsample_layers.{i}.'
        shapes.update({p + '0.ln.weight': (dims[i - 1], ), p + '0.ln.bias': (dims[i - 1], ),
                       p + '1.kernel': (4, dims[i - 1], dims[i]), p + '1.bias': (1, dims[i])})
    for s, (depth, c) in enumerate(zip(depths, dims)):
        for b in range(depth):
            p = f'{e}stages.{s}.{b}.'
            shapes.update({
                p + 'dwconv.kernel': (49, c), p + 'dwconv.bias': (1, c),
                p + 'norm.ln.weight': (c, ), p + 'norm.ln.bias': (c, ),
                p + 'pwconv1.linear.weight': (4 * c, c), p + 'pwconv1.linear.bias': (4 * c, ),
                p + 'grn.gamma': (1, 4 * c), p + 'grn.beta': (1, 4 * c),
                p + 'pwconv2.linear.weight': (c, 4 * c), p + 'pwconv2.linear.bias': (c, )})
    d = DECODER_DIM
    shapes.update({'proj.weight': (d, dims[3], 1, 1), 'proj.bias': (d, ),
                   'mask_token': (1, d, 1, 1),
                   'pred.weight': (PATCH**2 * 3, d, 1, 1), 'pred.bias': (PATCH**2 * 3, )})
    shapes.update(_dense_block('decoder.0.', d))
    return shapes


def on_meta_tensors(shapes: dict) -> dict:
    return {k: torch.empty(s, device='meta') for k, s in shapes.items()}


def numel(shapes: dict, skip=()) -> int:
    return sum(torch.Size(s).numel() for k, s in shapes.items()
               if not k.startswith(tuple(skip)))


def build(config: str):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'convnextv2', f'{config}.py'))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if cfg.get('data_preprocessor'):  # as Runner does (mmpretrain configs)
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with on_meta():
        return MODELS.build(cfg.model)


def readme_rounds_to(count: int, printed: str) -> bool:
    decimals = len(printed.split('.')[1]) if '.' in printed else 0
    return round(count / 1e6, decimals) == float(printed)


def test_every_size_has_its_configs():
    assert set(FINETUNE_CONFIGS) == set(ARCHS) == set(README_M)
    for arch, configs in FINETUNE_CONFIGS.items():
        for config in configs + [f'fcmae_convnextv2_{arch}_in1k']:
            assert osp.isfile(osp.join(REPO, 'configs', 'convnextv2', f'{config}.py')), config


@pytest.mark.parametrize('arch', list(ARCHS))
def test_official_finetuned_file_loads_strictly_into_each_config(arch):
    depths, dims = ARCHS[arch]
    shapes = official_finetuned_shapes(depths, dims)
    # the official layout's count is the official one (README as printed, mmpretrain exact)
    assert numel(shapes) == MMPRETRAIN[arch]
    assert readme_rounds_to(numel(shapes), README_M[arch])
    with on_meta():
        new, backbone_cfg = convert_checkpoint({'model': on_meta_tensors(shapes)}, 'convnextv2')
    assert backbone_cfg == dict(type='ConvNeXtV2', arch=dict(depths=depths, channels=dims))
    assert len(new) == len(shapes)  # 1:1, nothing dropped
    for config in FINETUNE_CONFIGS[arch]:
        model = build(config)
        assert num_params(model) == numel(shapes), config
        model.load_state_dict(new, strict=True, assign=True)  # raises on any key / shape
        assert model.head.fc.weight.shape == (1000, dims[3]), config
        assert model.backbone.stages[2][depths[2] - 1].grn.gamma.shape == (4 * dims[2], )


@pytest.mark.parametrize('arch', list(ARCHS))
def test_official_fcmae_file_loads_strictly_into_the_fcmae_and_finetune_configs(arch):
    depths, dims = ARCHS[arch]
    shapes = official_fcmae_shapes(depths, dims)
    decoder = ('proj.', 'mask_token', 'pred.', 'decoder.')
    encoder = numel(shapes, skip=decoder)
    # the README's FCMAE table prints the classifier's count: encoder + output norm + head
    classifier = encoder + 2 * dims[3] + 1000 * dims[3] + 1000
    assert classifier == MMPRETRAIN[arch] and readme_rounds_to(classifier, README_M[arch])
    with on_meta():
        new, backbone_cfg = convert_checkpoint({'model': on_meta_tensors(shapes)}, 'convnextv2')
    assert backbone_cfg == dict(type='MaskedConvNeXtV2', arch=dict(depths=depths, channels=dims))
    assert all(k.startswith('backbone.') for k in new)  # the decoder is dropped
    assert sum(v.numel() for v in new.values()) == encoder
    # pre-training config: its encoder takes the file's encoder exactly
    model = build(f'fcmae_convnextv2_{arch}_in1k')
    backbone = {k[len('backbone.'):]: v for k, v in new.items()}
    model.backbone.load_state_dict(backbone, strict=True, assign=True)
    assert num_params(model.backbone) == encoder
    # our decoder (not converted: pre-training starts it fresh) has the official one's size
    assert model.neck.proj.weight.shape == (DECODER_DIM, dims[3], 1, 1)
    assert num_params(model.neck) + num_params(model.head) == numel(shapes) - encoder
    # fine-tuning config (the IN-1k one): only the output norm starts fresh
    finetune = build(FINETUNE_CONFIGS[arch][0])
    missing, unexpected = finetune.backbone.load_state_dict(backbone, strict=False, assign=True)
    assert sorted(missing) == ['norm3.bias', 'norm3.weight'] and not unexpected


@pytest.mark.parametrize('config,theirs', [
    (f'convnextv2_{s}_in22k_in1k_{px}', f'convnext-v2-{arch}_32xb32_in1k-{px}px')
    for s, arch, px in (('n', 'nano', 384), ('t', 'tiny', 384), ('b', 'base', 384),
                        ('l', 'large', 384), ('h', 'huge', 384), ('h', 'huge', 512))])
def test_high_resolution_data_is_mmpretrains(config, theirs):
    """The 384/512px configs' data pipelines are mmpretrain's for the same files (as headed)."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != '_scope_'}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    ours = Config.fromfile(osp.join(REPO, 'configs', 'convnextv2', f'{config}.py'))
    ref = Config.fromstring(f"_base_ = ['mmpretrain::convnext_v2/{theirs}.py']\n", '.py')
    for key in ('train_pipeline', 'test_pipeline'):
        assert strip(ours[key]) == strip(ref[key]), key
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert strip(ours[key].dataset.pipeline) == strip(ref[key].dataset.pipeline), key
