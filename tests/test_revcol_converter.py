import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from mmconvarch.checkpoint.converters import convert_checkpoint
from mmconvarch.models.backbones import RevCol

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
    import subprocess
    import sys

    from conftest import REPO
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'ours.pth')
    torch.save({'model': official_revcol_state_dict(inter_supv=False)}, src)
    res = subprocess.run([sys.executable, f'{REPO}/tools/model_converters/convert.py',
                          'revcol', src, dst], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    state_dict = torch.load(dst)['state_dict']  # pure tensors: weights_only works
    assert 'backbone.subnet3.level3.blocks.0.depthwise_conv.weight' in state_dict
    torch.save({'model': {'stem.0.weight': torch.ones(1)}}, src)
    res = subprocess.run([sys.executable, f'{REPO}/tools/model_converters/convert.py',
                          'revcol', src, dst], capture_output=True, text=True)
    assert res.returncode != 0 and 'Not an official RevCol checkpoint' in res.stderr
