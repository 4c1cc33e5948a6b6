import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from mmconvarch.checkpoint.converters import convert_checkpoint
from mmconvarch.models.backbones import RevCol

from conftest import REPO

CH, LAYERS, COLS, NC = [8, 16, 24, 32], [1, 2, 1, 1], 4, 10


def official_revcol_state_dict(inter_supv: bool):
    """Random weights laid out with the official key template (§1.3)."""
    g = torch.Generator().manual_seed(0)

    def t(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    def block(p, c, hidden, k=3):
        return {p + 'dwconv.weight': t(c, 1, k, k), p + 'dwconv.bias': t(c),
                p + 'norm.weight': t(c), p + 'norm.bias': t(c),
                p + 'pwconv1.weight': t(hidden, c), p + 'pwconv1.bias': t(hidden),
                p + 'pwconv2.weight': t(c, hidden), p + 'pwconv2.bias': t(c),
                p + 'gamma': t(c)}

    sd = {'stem.0.weight': t(CH[0], 3, 4, 4), 'stem.0.bias': t(CH[0]),
          'stem.1.weight': t(CH[0]), 'stem.1.bias': t(CH[0])}
    for i in range(COLS):
        for lv in range(4):
            p = f'subnet{i}.level{lv}.'
            sd[f'subnet{i}.alpha{lv}'] = t(1, CH[lv], 1, 1)
            if lv > 0:
                sd.update({p + 'fusion.down.0.weight': t(CH[lv], CH[lv - 1], 2, 2),
                           p + 'fusion.down.0.bias': t(CH[lv]),
                           p + 'fusion.down.1.weight': t(CH[lv]),
                           p + 'fusion.down.1.bias': t(CH[lv])})
            if i > 0 and lv < 3:
                q = p + 'fusion.up.channel_reschedule.'
                sd.update({q + '0.weight': t(CH[lv], CH[lv + 1]), q + '0.bias': t(CH[lv]),
                           q + '1.weight': t(CH[lv]), q + '1.bias': t(CH[lv])})
            for j in range(LAYERS[lv]):
                sd.update(block(f'{p}blocks.{j}.', CH[lv], 4 * CH[lv]))
    heads = [f'cls_blocks.{h}.' for h in range(4)] if inter_supv else ['cls.']
    for p in heads:
        sd.update({p + 'classifier.0.weight': t(CH[3]), p + 'classifier.0.bias': t(CH[3]),
                   p + 'classifier.1.weight': t(NC, CH[3]), p + 'classifier.1.bias': t(NC)})
    if inter_supv:
        dims = CH[::-1]
        for d in range(3):
            p = f'decoder_blocks.{d}.'
            for s in range(3):
                sd.update({f'{p}proj_layers.{s}.0.weight': t(dims[s + 1], dims[s], 1, 1),
                           f'{p}proj_layers.{s}.0.bias': t(dims[s + 1]),
                           f'{p}proj_layers.{s}.1.weight': t(dims[s + 1]),
                           f'{p}proj_layers.{s}.1.bias': t(dims[s + 1])})
                sd.update(block(f'{p}normal_layers.{s}.0.', dims[s + 1], dims[s + 1]))
            sd.update({p + 'projback.0.weight': t(48, CH[0], 1, 1), p + 'projback.0.bias': t(48)})
    return sd


def test_finetuned_layout_converts_with_no_missing_keys():
    sd = official_revcol_state_dict(inter_supv=False)
    new, cfg = convert_checkpoint({'model': sd, 'epoch': 30}, 'revcol')
    assert cfg['arch'] == dict(channels=CH, layers=LAYERS, num_columns=COLS)
    assert cfg['out_norm'] and cfg['gap_before_final_norm']
    backbone = RevCol(**{k: v for k, v in cfg.items() if k != 'type'})
    missing, unexpected = backbone.load_state_dict(
        {k[9:]: v for k, v in new.items() if k.startswith('backbone.')}, strict=True)
    assert not missing and not unexpected
    assert set(k for k in new if not k.startswith('backbone.')) == {'head.fc.weight',
                                                                    'head.fc.bias'}
    torch.testing.assert_close(backbone.subnet2.level1.blocks[1].depthwise_conv.weight,
                               sd['subnet2.level1.blocks.1.dwconv.weight'])


def test_inter_supv_layout_loads_into_classifier_strictly():
    sd = official_revcol_state_dict(inter_supv=True)
    new, cfg = convert_checkpoint({'state_dict_ema': sd, 'model': {}}, 'revcol', ema=True)
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='mmconvarch.RevColClassifier',
        backbone=dict(cfg, type='mmconvarch.RevCol'),
        head=dict(type='LinearClsHead', num_classes=NC, in_channels=CH[3])))
    missing, unexpected = model.load_state_dict(new, strict=True)
    assert not missing and not unexpected
    # the last official head is the final one; the others are auxiliary
    torch.testing.assert_close(model.head.fc.weight, sd['cls_blocks.3.classifier.1.weight'])
    torch.testing.assert_close(model.aux_heads[0].norm.weight,
                               sd['cls_blocks.0.classifier.0.weight'])
    torch.testing.assert_close(model.decoders[2].normal_layers[1][0].pointwise_conv1.weight,
                               sd['decoder_blocks.2.normal_layers.1.0.pwconv1.weight'])


def test_whole_classifier_loads_official_checkpoint_as_converted():
    """A RevColClassifier given the whole official checkpoint (as ``load_from``,
    ``tools/test.py`` and ``get_model(name, pretrained=True)`` give it) loads
    exactly the converter's output, strictly: backbone, head, aux heads."""
    sd = official_revcol_state_dict(inter_supv=True)
    new, cfg = convert_checkpoint({'model': sd}, 'revcol')
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='mmconvarch.RevColClassifier',
        backbone=dict(cfg, type='mmconvarch.RevCol'),
        head=dict(type='LinearClsHead', num_classes=NC, in_channels=CH[3])))
    missing, unexpected = model.load_state_dict({'model': sd, 'epoch': 300}, strict=True)
    assert not missing and not unexpected
    loaded = model.state_dict()
    assert sorted(new) == sorted(k for k in loaded if not k.endswith('num_batches_tracked'))
    for key, value in new.items():
        assert torch.equal(loaded[key], value), key


def test_official_checkpoint_loads_directly_through_init_cfg(tmp_path):
    sd = official_revcol_state_dict(inter_supv=True)
    path = str(tmp_path / 'revcol_official.pth')
    torch.save({'model': sd, 'epoch': 300}, path)
    backbone = RevCol(dict(channels=CH, layers=LAYERS, num_columns=COLS),
                      init_cfg=dict(type='Pretrained', checkpoint=path))
    backbone.init_weights()
    for ours, theirs in (('subnet3.alpha2', 'subnet3.alpha2'),
                         ('subnet1.level0.fusion.up.channel_reschedule.0.weight',
                          'subnet1.level0.fusion.up.channel_reschedule.0.weight'),
                         ('subnet1.level2.blocks.0.pointwise_conv2.weight',
                          'subnet1.level2.blocks.0.pwconv2.weight')):
        torch.testing.assert_close(backbone.state_dict()[ours], sd[theirs])


def test_other_family_is_refused():
    from test_converters import official_convnextv2_state_dict
    with pytest.raises(ValueError, match='Not an official RevCol checkpoint'):
        convert_checkpoint({'model': official_convnextv2_state_dict()}, 'revcol')
    sd = official_revcol_state_dict(inter_supv=False)
    sd['subnet1.level0.blocks.0.grn.gamma'] = torch.zeros(8)
    with pytest.raises(ValueError, match=r"unexpected keys 1 \['subnet1.level0.blocks.0.grn"):
        convert_checkpoint({'model': sd}, 'revcol')


def test_converter_cli(tmp_path):
    """tools/model_converters/convert.py's main, in this process (its __main__ only calls it):
    an official file converts; a file of another layout exits naming the file and the reason."""
    from conftest import load_tool
    convert = load_tool('tools/model_converters/convert.py')
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'ours.pth')
    torch.save({'model': official_revcol_state_dict(inter_supv=False)}, src)
    convert.main(['revcol', src, dst])
    state_dict = torch.load(dst)['state_dict']  # pure tensors: weights_only works
    assert 'backbone.subnet3.level3.blocks.0.depthwise_conv.weight' in state_dict
    torch.save({'model': {'stem.0.weight': torch.ones(1)}}, src)
    with pytest.raises(SystemExit, match=f'{src}: .*Not an official RevCol checkpoint'):
        convert.main(['revcol', src, dst])


# -- every published arch at full size, on the meta device ----------------------------------
# Widths, depths and columns of the official builders (megvii-research/RevCol models/revcol.py
# revcol_tiny .. revcol_large, models/revcol_huge.py revcol_huge; RevCol-XL has a builder but no
# released weights) and the README parameter counts (truncated: 30M .. 273M, H 2.1B).
OFFICIAL_ARCHS = {
    'tiny': ([64, 128, 256, 512], [2, 2, 4, 2], 4),
    'small': ([64, 128, 256, 512], [2, 2, 4, 2], 8),
    'base': ([72, 144, 288, 576], [1, 1, 3, 2], 16),
    'large': ([128, 256, 512, 1024], [1, 2, 6, 2], 8),
    'huge': ([360, 720, 1440, 2880], [1, 2, 6, 2], 8),
}
OFFICIAL_PARAMS = {'tiny': (30, 1e6), 'small': (60, 1e6), 'base': (138, 1e6),
                   'large': (273, 1e6), 'huge': (21, 1e8)}  # 2.1B: 21 x 1e8
IN22K_CLASSES = 21841  # configs/revcol_*_22k_pretrain.yaml NUM_CLASSES


def official_revcol_shapes(arch: str, kernel: int = 3, head='cls', num_classes: int = 1000):
    """``{key: shape}`` of an official checkpoint, re-stated from the official code: FullNet /
    RevColHuge (models/revcol.py, models/revcol_huge.py: stem; per column ``alpha0..3`` and
    levels of Fusion (``down`` conv + channels-first LN from level 1, ``up`` UpSampleConvnext
    from the next level in every column but the first, RevCol-H's ``up2`` from the top level
    into level 0) and ConvNextBlocks (expansion 4, layer scale ``gamma``)); ``head``: 'cls'
    (fine-tuned, INTER_SUPV False), 'inter_supv' (``cls_blocks.0-3`` and three decoders:
    Decoder(depth 1, reversed widths, 3x3 blocks) up to 1000 classes, SimDecoder(LN, 1x1 conv to
    32*32*3) above), or None (the dense backbones of Segmentation/ and Detection/)."""
    channels, layers, columns = OFFICIAL_ARCHS[arch]
    shapes = {'stem.0.weight': (channels[0], 3, 4, 4), 'stem.0.bias': (channels[0], )}

    def ln(p, c):
        shapes.update({p + 'weight': (c, ), p + 'bias': (c, )})

    def block(p, c, hidden, k):
        shapes.update({p + 'dwconv.weight': (c, 1, k, k), p + 'dwconv.bias': (c, ),
                       p + 'pwconv1.weight': (hidden, c), p + 'pwconv1.bias': (hidden, ),
                       p + 'pwconv2.weight': (c, hidden), p + 'pwconv2.bias': (c, ),
                       p + 'gamma': (c, )})
        ln(p + 'norm.', c)

    def up(p, c_in, c_out):
        shapes.update({p + 'channel_reschedule.0.weight': (c_out, c_in),
                       p + 'channel_reschedule.0.bias': (c_out, )})
        ln(p + 'channel_reschedule.1.', c_out)

    ln('stem.1.', channels[0])
    for i in range(columns):
        for lv, c in enumerate(channels):
            p = f'subnet{i}.level{lv}.'
            shapes[f'subnet{i}.alpha{lv}'] = (1, c, 1, 1)
            if lv > 0:
                shapes.update({p + 'fusion.down.0.weight': (c, channels[lv - 1], 2, 2),
                               p + 'fusion.down.0.bias': (c, )})
                ln(p + 'fusion.down.1.', c)
            if i > 0 and lv < 3:
                up(p + 'fusion.up.', channels[lv + 1], c)
            if i > 0 and lv == 0 and arch == 'huge':
                up(p + 'fusion.up2.', channels[3], c)
            for j in range(layers[lv]):
                block(f'{p}blocks.{j}.', c, 4 * c, kernel)
    heads = {'cls': ['cls.'], 'inter_supv': [f'cls_blocks.{h}.' for h in range(4)], None: []}
    for p in heads[head]:
        ln(p + 'classifier.0.', channels[3])
        shapes.update({p + 'classifier.1.weight': (num_classes, channels[3]),
                       p + 'classifier.1.bias': (num_classes, )})
    if head == 'inter_supv':
        dims = channels[::-1]
        for d in range(3):
            p = f'decoder_blocks.{d}.'
            if num_classes > 1000:  # SimDecoder(channels[-1], encoder_stride=32)
                ln(p + 'projback.0.', dims[0])
                shapes.update({p + 'projback.1.weight': (32 * 32 * 3, dims[0], 1, 1),
                               p + 'projback.1.bias': (32 * 32 * 3, )})
                continue
            for s in range(3):
                shapes.update({f'{p}proj_layers.{s}.0.weight': (dims[s + 1], dims[s], 1, 1),
                               f'{p}proj_layers.{s}.0.bias': (dims[s + 1], )})
                ln(f'{p}proj_layers.{s}.1.', dims[s + 1])
                block(f'{p}normal_layers.{s}.0.', dims[s + 1], dims[s + 1], 3)
            shapes.update({p + 'projback.0.weight': (48, channels[0], 1, 1),
                           p + 'projback.0.bias': (48, )})
    return shapes


def _meta(shapes):
    return {k: torch.empty(s, device='meta') for k, s in shapes.items()}


def _numel(shapes):
    return sum(math.prod(s) for s in shapes.values())


# the layout of each official file the configs name (released weights and pre-training inits)
_INIT_LAYOUTS = {
    'revcol_tiny_1k.pth': ('inter_supv', 1000, 3), 'revcol_small_1k.pth': ('inter_supv', 1000, 3),
    'revcol_base_1k.pth': ('inter_supv', 1000, 3),
    'revcol_base_22k.pth': ('inter_supv', IN22K_CLASSES, 3),
    'revcol_large_22k.pth': ('inter_supv', IN22K_CLASSES, 3),
    # the 7x7-padded MegData backbone (heads unknown: the file is not read here)
    'revcol_huge_k7padded.pth': (None, 0, 7),
    # revcol_huge_megdata.pth (MegData-168M pre-training): its head layout is not published
}
REVCOL_CONFIGS = sorted(osp.relpath(p, REPO)
                        for p in glob.glob(osp.join(REPO, 'configs/revcol/*.py')))


def _config(rel):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, rel))
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    return cfg


def _convert_on_meta(shapes):
    from conftest import on_meta
    with on_meta():  # the converter builds the reference backbone: on the meta device too
        return convert_checkpoint({'model': _meta(shapes)}, 'revcol')


@pytest.mark.parametrize('rel', REVCOL_CONFIGS)
def test_every_config_loads_its_official_files_strictly(rel):
    """Each config's model (meta device) loads, strictly, the official files it names in the
    official key layout, converted: a classifier its released weights as a whole model (1k
    pre-training with intermediate supervision, or a fine-tuned file), every config the
    pre-training its init_cfg loads into its backbone. The model's parameters (without the
    auxiliary heads and decoders) are the official model's, and their count is the README's."""
    from conftest import num_params, on_meta
    cfg = _config(rel)
    bb_cfg = cfg.model.backbone
    arch = bb_cfg.arch
    kernel = bb_cfg.get('kernel_size', 3)
    channels, layers, columns = OFFICIAL_ARCHS[arch]
    expected_arch = dict(channels=channels, layers=layers, num_columns=columns)
    if arch == 'huge':
        expected_arch['top_to_level0'] = True
    checked = 0
    if cfg.model.type == 'mmconvarch.RevColClassifier':
        head = 'inter_supv' if cfg.model.inter_supv else 'cls'
        shapes = official_revcol_shapes(arch, kernel, head)
        new, conv_cfg = _convert_on_meta(shapes)
        assert conv_cfg['arch'] == expected_arch and conv_cfg['kernel_size'] == kernel
        with on_meta():
            model = MODELS.build(cfg.model)
        model.load_state_dict(new, strict=True, assign=True)
        assert all(p.device.type == 'meta' for p in model.parameters())
        # the official inference model: its fine-tuned layout (stem, columns, final head)
        official = _numel(official_revcol_shapes(arch, kernel, 'cls'))
        ours = sum(p.numel() for n, p in model.named_parameters()
                   if not n.startswith(('aux_heads.', 'decoders.')))
        assert ours == official
        count, unit = OFFICIAL_PARAMS[arch]
        assert math.floor(official / unit) == count, (official, count, unit)
        checked += 1
    init = bb_cfg.get('init_cfg') or {}
    layout = _INIT_LAYOUTS.get(osp.basename(init.get('checkpoint', '')))
    if layout is not None:
        head, num_classes, init_kernel = layout
        assert init_kernel == kernel
        new, conv_cfg = _convert_on_meta(official_revcol_shapes(arch, kernel, head, num_classes))
        assert conv_cfg['arch'] == expected_arch and conv_cfg['kernel_size'] == kernel
        with on_meta():
            backbone = MODELS.build(dict(bb_cfg, init_cfg=None))
        weights = {k[len('backbone.'):]: v for k, v in new.items() if k.startswith('backbone.')}
        if not bb_cfg.get('out_norm', False):  # the classifier's final norm: a dense backbone
            # has none, and a Pretrained load skips it (and nothing else: strict below)
            assert {k for k in weights if k.startswith('norm')} == (
                {'norm3.weight', 'norm3.bias'} if head else set())
            weights = {k: v for k, v in weights.items() if not k.startswith('norm')}
        backbone.load_state_dict(weights, strict=True, assign=True)
        assert num_params(backbone) == sum(v.numel() for v in weights.values())
        checked += 1
    assert checked, f'{rel}: no official file checked'
