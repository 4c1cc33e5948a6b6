"""mmconvarch.checkpoint: one way to find the weights in a checkpoint
(find_weights) for both of its users, the converters (tools/model_converters)
and the backbones' direct loading of official files; whole models load
official checkpoints only through our classifiers' documented pre-hook
(no process-wide hook: mmpretrain's own ImageClassifier is left alone)."""
import pytest
import torch

from mmconvarch.checkpoint import find_weights, load_official_checkpoints
from mmconvarch.checkpoint.converters import convert_checkpoint, extract_state_dict
from mmconvarch.checkpoint.layouts import convert_official_in_place
from mmconvarch.registry import MODELS
from test_converters import official_convnextv2_state_dict
from test_slak_converter import official_slak_state_dict

A, B, C, D = ({'w': torch.full((1, ), float(i))} for i in range(4))


@pytest.mark.parametrize('checkpoint,ema,expected', [
    (dict(model=A, state_dict=B, state_dict_ema=C, model_ema=D), False, A),
    (dict(state_dict=B, state_dict_ema=C, model_ema=D, meta={}), False, B),
    (dict(state_dict_ema=C, model_ema=D, epoch=3), False, C),  # EMA-only official file
    (dict(model_ema=D, epoch=3), False, D),
    (dict(model=A, state_dict_ema=C, model_ema=D), True, C),
    (dict(model=A, model_ema=D), True, D),
])
def test_find_weights_search_order(checkpoint, ema, expected):
    assert find_weights(checkpoint, ema=ema) == expected
    assert extract_state_dict(checkpoint, ema=ema) == expected


def test_find_weights_bare_dict_module_prefix_and_ema_errors():
    bare = {'module.a': torch.ones(1), 'b': torch.zeros(1), 'epoch': 3}
    assert list(find_weights(bare)) == ['a', 'b', 'epoch']
    assert list(extract_state_dict(bare)) == ['a', 'b']  # tensors only
    assert list(find_weights({'model': {'module.x': torch.ones(1)}})) == ['x']
    # ema=True never falls back to the plain weights
    with pytest.raises(KeyError, match=r"ema=True but the checkpoint has none of "
                                       r"\['state_dict_ema', 'model_ema'\].*'model'"):
        find_weights({'model': A, 'epoch': 3}, ema=True)
    with pytest.raises(TypeError, match='must be a dict, got list'):
        find_weights([A])


def test_both_users_read_an_ema_only_official_file_alike():
    """The converter (ema=False: the only weights there are) and the
    backbones' in-place conversion find the same tensors."""
    sd = official_convnextv2_state_dict()
    converted, cfg = convert_checkpoint({'state_dict_ema': sd, 'epoch': 3}, 'convnextv2')
    loaded = {'model_ema': {'module.' + k: v for k, v in sd.items()}, 'epoch': 3}
    assert convert_official_in_place(loaded, 'convnextv2')
    assert loaded.keys() == {k[len('backbone.'):] for k in converted
                             if k.startswith('backbone.')}
    for key, value in loaded.items():
        assert torch.equal(value, converted['backbone.' + key]), key
    ours = {'stages.0.0.weight': torch.ones(1)}  # our layout: left as it is
    assert not convert_official_in_place(ours, 'convnextv2')


def tiny_classifier(type_: str, backbone: dict, head_weight: torch.Tensor):
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    num_classes, in_channels = head_weight.shape
    return MODELS.build(dict(
        type=type_, backbone=dict(backbone, type='mmconvarch.SLaK'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=in_channels)))


def test_our_classifier_loads_an_official_checkpoint_whole():
    """OfficialCheckpointClassifier (the classification configs' model)
    converts an official SLaK file on load_state_dict exactly as the
    converter does; mmpretrain's ImageClassifier gets no hook."""
    sd = official_slak_state_dict()
    expected, cfg = convert_checkpoint({'model': sd}, 'slak')
    model = tiny_classifier('mmconvarch.OfficialCheckpointClassifier', cfg,
                            expected['head.fc.weight'])
    result = model.load_state_dict({'model': sd, 'epoch': 300}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    state = model.state_dict()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    plain = tiny_classifier('ImageClassifier', cfg, expected['head.fc.weight'])
    hooks = len(model._load_state_dict_pre_hooks)
    assert hooks == len(plain._load_state_dict_pre_hooks) + 1
    assert load_official_checkpoints(model) is model  # idempotent: still one hook
    assert len(model._load_state_dict_pre_hooks) == hooks
    result = plain.load_state_dict({'model': sd, 'epoch': 300}, strict=False)
    assert set(result.unexpected_keys) == {'model', 'epoch'}  # nothing converted


def test_load_from_an_official_checkpoint_as_tools_test_does(tmp_path, sample_root):
    """``tools/test.py configs/vanillanet/vanillanet_5_in1k.py official.pth``: the
    runner's load_from of an official file (random weights, official layout) gives
    the model exactly the converter's output."""
    import mmconvarch
    from conftest import REPO
    from mmconvarch.launch import build_runner, load_config
    from test_vanillanet_converter import official_state_dict
    official = str(tmp_path / 'vanillanet_5.pth')
    torch.save({'model': official_state_dict(), 'epoch': 300}, official)
    expected, _ = convert_checkpoint(torch.load(official, weights_only=True), 'vanillanet')
    cfg = load_config(f'{REPO}/configs/vanillanet/vanillanet_5_in1k.py',
                      sample_data=sample_root, work_dir=str(tmp_path / 'work'))
    cfg.load_from = official
    with mmconvarch.checkpoint.safe_checkpoint_loading():  # as tools/test.py enables it
        runner = build_runner(cfg)
        runner.load_or_resume()
    state = runner.model.state_dict()
    assert expected.keys() <= state.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
