import pytest
import torch.nn as nn
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, init_default_scope

from mmconvarch.engine.optimizers import LayerDecayOptimWrapperConstructor
from mmconvarch.models.backbones import ConvNeXtV2

OPTIM = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))


class ToyDetector(nn.Module):
    """backbone + neck, the shape the constructor sees for mmdet/mmseg."""

    def __init__(self, **backbone_kwargs):
        super().__init__()
        self.backbone = ConvNeXtV2('atto', out_indices=(0, 1, 2, 3),
                                   gap_before_final_norm=False,
                                   **backbone_kwargs)
        self.neck = nn.Conv2d(320, 8, 1)


def per_param(optim_wrapper):
    """{name: (lr, weight_decay)} from groups carrying param_names."""
    result = {}
    for group in optim_wrapper.optimizer.param_groups:
        for name in group['param_names']:
            result[name] = (group['lr'], group['weight_decay'])
    return result


def ours(model, **paramwise):
    return LayerDecayOptimWrapperConstructor(dict(OPTIM),
                                             paramwise)(model)


def test_group_rule_equals_mmdet_layer_wise():
    from mmdet.engine.optimizers import LearningRateDecayOptimizerConstructor
    model = ToyDetector(layer_decay_type='group')
    ref = LearningRateDecayOptimizerConstructor(
        dict(OPTIM), dict(decay_rate=0.7, decay_type='layer_wise',
                          num_layers=6))(model)
    got = per_param(ours(model, layer_decay_rate=0.7))
    expected = per_param(ref)
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == pytest.approx(expected[name]), name
    # the rule really decays: stem lr = 0.7**7, neck lr = base
    assert got['backbone.downsample_layers.0.0.weight'][0] == \
        pytest.approx(1e-3 * 0.7**7)
    assert got['neck.weight'] == pytest.approx((1e-3, 0.05))
    assert got['neck.bias'] == pytest.approx((1e-3, 0.))


def test_stage_rule_equals_mmseg_stage_wise():
    from mmseg.engine.optimizers import LearningRateDecayOptimizerConstructor
    model = ToyDetector(layer_decay_type='stage')
    ref = LearningRateDecayOptimizerConstructor(
        dict(OPTIM), dict(decay_rate=0.9, decay_type='stage_wise',
                          num_layers=6))(model)
    got = per_param(ours(model, layer_decay_rate=0.9))
    expected = per_param(ref)
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == pytest.approx(expected[name]), name


def test_classifier_single_rule_and_custom_keys():
    from mmpretrain.models import ImageClassifier
    init_default_scope('mmpretrain')
    model = ImageClassifier(
        backbone=dict(type='mmconvarch.ConvNeXtV2', arch='atto',
                      layer_decay_type='single'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=320))
    got = per_param(ours(model, layer_decay_rate=0.9,
                         custom_keys={'head': dict(lr_mult=2.0,
                                                   decay_mult=0.5)}))
    num_blocks = 12  # atto: 2+2+6+2; ids 1..12, rest 13, max 14
    assert got['backbone.stages.2.3.pointwise_conv1.weight'] == \
        pytest.approx((1e-3 * 0.9**(num_blocks + 1 - 8), 0.05))
    assert got['backbone.stages.2.3.grn.gamma'][1] == 0.  # no wd on GRN
    assert got['backbone.downsample_layers.0.0.weight'][0] == \
        pytest.approx(1e-3 * 0.9**num_blocks)
    assert got['head.fc.weight'] == pytest.approx((2e-3, 0.025))


def test_frozen_params_are_skipped():
    model = ToyDetector(frozen_stages=1)
    got = per_param(ours(model, layer_decay_rate=0.8))
    assert not any(n.startswith('backbone.stages.0.') for n in got)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize(
    'name', ['mmconvarch.LayerDecayOptimWrapperConstructor',
             'LayerDecayOptimWrapperConstructor'])
def test_registered_for_every_scope(scope, name):
    init_default_scope(scope)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type=name, optim_wrapper_cfg=dict(OPTIM),
             paramwise_cfg=dict(layer_decay_rate=0.5)))
    assert isinstance(constructor, LayerDecayOptimWrapperConstructor)


def test_clear_errors():
    with pytest.raises(TypeError, match='get_layer_depth'):
        ours(nn.Sequential(nn.Linear(2, 2)), layer_decay_rate=0.9)
    with pytest.raises(KeyError, match="decay_rate'.*valid keys"):
        ours(ToyDetector(), decay_rate=0.9)


def test_defaults_apply_without_paramwise_cfg():
    """mmengine skips add_params for an empty paramwise_cfg; ours must not."""
    model = ToyDetector()
    for paramwise in (None, {}):
        got = per_param(LayerDecayOptimWrapperConstructor(dict(OPTIM), paramwise)(model))
        assert got['neck.bias'] == pytest.approx((1e-3, 0.))
        assert got['backbone.stages.0.0.grn.gamma'][1] == 0.
        assert got['neck.weight'] == pytest.approx((1e-3, 0.05))


def test_every_matching_custom_key_applies():
    """An inherited 'backbone' key must not hide a more specific one (RevCol's alphas in
    the Mask2Former configs): the multipliers of all matching keys compose."""
    model = ToyDetector()
    got = per_param(ours(model, custom_keys={'backbone': dict(lr_mult=0.1),
                                             'depthwise': dict(decay_mult=0.),
                                             'stages.0': dict(lr_mult=0.5)}))
    assert got['backbone.stages.1.0.depthwise_conv.weight'] == pytest.approx((1e-4, 0.))
    assert got['backbone.stages.0.0.depthwise_conv.weight'] == pytest.approx((5e-5, 0.))
    assert got['backbone.stages.0.0.pointwise_conv1.weight'] == pytest.approx((5e-5, 0.05))
    assert got['neck.weight'] == pytest.approx((1e-3, 0.05))


def test_revcol_mask2former_alphas_get_no_weight_decay():
    from mmengine.config import Config
    from mmengine.registry import MODELS
    from conftest import REPO
    cfg = Config.fromfile(f'{REPO}/configs/revcol/mask2former_revcol_t_ade20k.py')
    init_default_scope('mmseg')
    backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    model = nn.Module()
    model.backbone = backbone
    wrapper = dict(cfg.optim_wrapper)
    paramwise = wrapper.pop('paramwise_cfg')
    wrapper.pop('constructor')
    got = per_param(LayerDecayOptimWrapperConstructor(wrapper, paramwise)(model))
    alphas = [n for n in got if '.alpha' in n]
    assert alphas and all(got[n] == pytest.approx((1e-5, 0.)) for n in alphas)
