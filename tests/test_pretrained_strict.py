"""A backbone's ``init_cfg=dict(type='Pretrained', ...)`` load is strict
(OfficialCheckpointMixin, all four families): a checkpoint that does not fit
raises one error naming the family it looks like; EMA-only official
checkpoints load; ``strict=False`` loads what fits and says what it skipped;
whole-model loading (load_from, prefix='backbone.') is unchanged."""
import re

import pytest
import torch
import torch.nn as nn
from mmengine.runner import load_checkpoint

from conftest import REPO  # noqa: F401  (tests/ on sys.path)
from mmconvarch.checkpoint.converters import convert_checkpoint, save_converted
from mmconvarch.models.backbones import ConvNeXtV2, RevCol, SLaK, VanillaNet
from mmconvarch.registry import MODELS
from test_converters import official_convnextv2_state_dict
from test_revcol_converter import CH, COLS, LAYERS, official_revcol_state_dict
from test_slak_converter import DEPTHS, DIMS, KERNELS, N, official_slak_state_dict
from test_vanillanet_converter import official_state_dict as official_vanillanet_state_dict

OFFICIAL = {
    'revcol': lambda: official_revcol_state_dict(inter_supv=False),
    'convnextv2': official_convnextv2_state_dict,
    'slak': official_slak_state_dict,
    'vanillanet': lambda: official_vanillanet_state_dict(deploy=True),
}
# small backbones of each family (another family's checkpoint goes in)
BACKBONES = {
    'revcol': lambda **kw: RevCol(dict(channels=CH, layers=LAYERS, num_columns=COLS), **kw),
    'convnextv2': lambda **kw: ConvNeXtV2('atto', **kw),
    'slak': lambda **kw: SLaK(dict(depths=DEPTHS, channels=DIMS), width_factor=1.0,
                              kernel_size=KERNELS + [N], **kw),
    'vanillanet': lambda **kw: VanillaNet(dict(dims=[16, 32, 64, 128], strides=[2, 2, 2]),
                                          **kw),
}
NAMES = {'revcol': 'RevCol', 'convnextv2': 'ConvNeXt V2', 'slak': 'SLaK',
         'vanillanet': 'VanillaNet'}


def pretrained(path, **kwargs):
    return dict(init_cfg=dict(type='Pretrained', checkpoint=str(path), **kwargs))


def strict_keys(backbone):
    optional = re.compile(backbone.pretrained_optional_keys)
    return [k for k in backbone.state_dict() if not optional.match(k)]


@pytest.mark.parametrize('source, target', [('slak', 'revcol'), ('convnextv2', 'slak'),
                                            ('revcol', 'vanillanet'),
                                            ('vanillanet', 'convnextv2')])
def test_other_family_official_checkpoint_is_refused_with_its_name(source, target, tmp_path):
    path = tmp_path / f'{source}.pth'
    torch.save({'model': OFFICIAL[source](), 'epoch': 299}, path)
    backbone = BACKBONES[target](**pretrained(path))
    with pytest.raises(ValueError) as error:
        backbone.init_weights()
    message = str(error.value)
    n_keys = len(strict_keys(backbone))
    assert message.startswith(f'{type(backbone).__name__}: the Pretrained checkpoint '
                              f'{path} does not fit this backbone (0 of ')
    missing, misshapen = re.search(r'missing (\d+) .*wrong shape (\d+)', message).groups()
    assert int(missing) + int(misshapen) == n_keys  # none fits
    assert f'It looks like a {NAMES[source]} (official layout) checkpoint.' in message
    assert "strict=False" in message


def test_converted_checkpoint_of_another_family_is_refused(tmp_path):
    """Our own (converted) SLaK file, with prefix='backbone.', into RevCol."""
    new, cfg = convert_checkpoint({'model': official_slak_state_dict()}, 'slak')
    path = str(tmp_path / 'slak_converted.pth')
    save_converted(new, cfg, path)
    backbone = BACKBONES['revcol'](**pretrained(path, prefix='backbone.'))
    n_unexpected = sum(k.startswith('backbone.') and 'num_batches_tracked' not in k
                       and not re.match(r'backbone\.norm\d', k) for k in new)
    with pytest.raises(ValueError) as error:
        backbone.init_weights()
    assert re.search(rf'missing {len(strict_keys(backbone))} .*unexpected {n_unexpected} .*'
                     r'It looks like a SLaK checkpoint\.', str(error.value))


def test_junk_is_refused(tmp_path):
    path = tmp_path / 'junk.pth'
    torch.save({'weights': torch.ones(3), 'layer.0.weight': torch.ones(2, 2), 'epoch': 1},
               path)
    for family, build in BACKBONES.items():
        backbone = build(**pretrained(path))
        with pytest.raises(ValueError, match=r'does not fit this backbone \(0 of .*unexpected 3 '
                           r'.*Its keys are of none of the families mmconvarch knows '
                           r'\(ConvNeXt V2, RevCol, SLaK, VanillaNet\)\.'):
            backbone.init_weights()


@pytest.mark.parametrize('entry', ['state_dict_ema', 'model_ema'])
@pytest.mark.parametrize('family', list(OFFICIAL))
def test_ema_only_official_checkpoint_loads(family, entry, tmp_path):
    sd = OFFICIAL[family]()
    new, cfg = convert_checkpoint({entry: sd}, family, ema=True)
    expected = {k[len('backbone.'):]: v for k, v in new.items() if k.startswith('backbone.')}
    path = tmp_path / 'ema_only.pth'
    ema = {'module.' + k: v for k, v in sd.items()} if entry == 'model_ema' else sd
    torch.save({entry: ema, 'epoch': 299}, path)
    backbone = MODELS.build(dict(cfg, **pretrained(path)))
    backbone.init_weights()
    state = backbone.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_partial_load_needs_strict_false_and_says_what_it_skipped(tmp_path, log_lines):
    sd = official_revcol_state_dict(inter_supv=False)
    sd = {k: v for k, v in sd.items() if not k.startswith('subnet3.')}  # 3 of 4 columns
    sd['subnet0.level0.blocks.0.grn.gamma'] = torch.zeros(8)  # not a RevCol key
    path = tmp_path / 'three_columns.pth'
    torch.save({'model': sd}, path)
    n_missing = sum(k.startswith('subnet3.') for k in BACKBONES['revcol']().state_dict())
    with pytest.raises(ValueError, match=rf"missing {n_missing} \['subnet3.*unexpected 1 "
                       r"\['subnet0.level0.blocks.0.grn.gamma'\].*It looks like a RevCol"):
        BACKBONES['revcol'](**pretrained(path)).init_weights()

    backbone = BACKBONES['revcol'](**pretrained(path, strict=False))
    backbone.init_weights()
    assert backbone.init_cfg['strict'] is False  # the config is left as given
    torch.testing.assert_close(backbone.subnet2.level1.blocks[1].pointwise_conv1.weight,
                               sd['subnet2.level1.blocks.1.pwconv1.weight'])
    total = len(backbone.state_dict())
    partial = [line for line in log_lines if 'partial load' in line]
    assert len(partial) == 1
    assert partial[0].startswith(
        f'RevCol: partial load (strict=False) of {path}: loaded {total - n_missing} of '
        f"{total} keys; skipped: missing {n_missing} ['subnet3.")
    assert "unexpected 1 ['subnet0.level0.blocks.0.grn.gamma']" in partial[0]

    with pytest.raises(TypeError, match='strict must be True or False'):
        BACKBONES['revcol'](**pretrained(path, strict='no')).init_weights()


def test_output_norms_and_heads_are_allowed(tmp_path, log_lines):
    """A classification checkpoint (norm3 + head) into a dense backbone:
    norm0..2 start fresh, the head is ignored, one info line says so."""
    sd = official_convnextv2_state_dict()
    path = tmp_path / 'cls.pth'
    torch.save({'model': sd}, path)
    backbone = ConvNeXtV2('atto', out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                          **pretrained(path))
    backbone.init_weights()
    torch.testing.assert_close(backbone.norm3.weight, sd['norm.weight'])
    allowed = [line for line in log_lines if 'as allowed' in line]
    assert len(allowed) == 1 and "'norm0.weight'" in allowed[0]


class Classifier(nn.Module):
    def __init__(self, **backbone_kwargs):
        super().__init__()
        self.backbone = BACKBONES['revcol'](**backbone_kwargs)
        self.head = nn.Linear(CH[-1], 10)


def test_whole_model_checkpoint_paths_still_work(tmp_path):
    trained = Classifier()
    for p in trained.parameters():
        nn.init.normal_(p)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': trained.state_dict()}, path)

    model = Classifier()
    load_checkpoint(model, str(path), strict=True)  # what load_from does
    backbone = BACKBONES['revcol'](**pretrained(path, prefix='backbone.'))
    backbone.init_weights()
    for key, value in trained.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
        assert torch.equal(backbone.state_dict()[key], value), key

    with pytest.raises(ValueError, match=r"start with 'backbone.' \(a whole-model "
                       r"checkpoint\): add prefix='backbone.'"):
        BACKBONES['revcol'](**pretrained(path)).init_weights()


@pytest.mark.parametrize('backbone', [
    dict(type='mmconvarch.SLaK', arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]),
         out_indices=(0, 1, 2, 3)),
    dict(type='mmconvarch.VanillaNet', arch='5', out_indices=(0, 1, 2)),
    dict(type='mmconvarch.RevCol', arch=dict(channels=CH, layers=LAYERS, num_columns=COLS)),
    dict(type='mmconvarch.ConvNeXtV2', arch='atto', out_indices=(0, 1, 2, 3))])
def test_stock_mmseg_config_model_pretrained_gets_one_clear_error(backbone, tmp_path):
    """mmseg's stock UperNet config sets ``model.pretrained`` for its ResNet, and
    EncoderDecoder hands it to the backbone: ours say what to do instead of
    ``unexpected keyword argument``; with ``pretrained=None`` the model builds."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS as SEG_MODELS
    config = tmp_path / 'mine.py'
    config.write_text("_base_ = ['mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py']\n")
    cfg = Config.fromfile(str(config))
    assert cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    cfg.model.backbone = dict(backbone)
    init_default_scope('mmseg')
    name = backbone['type'].split('.')[1]
    expected = re.escape(f"{name} got pretrained='open-mmlab://resnet50_v1c'")
    with pytest.raises(ValueError, match=expected + '.*Set `model.pretrained=None`'):
        SEG_MODELS.build(cfg.model)
    cfg.model.pretrained, cfg.model.backbone = None, dict(backbone)  # the build wrote into it
    assert type(SEG_MODELS.build(cfg.model).backbone).__name__ == name
