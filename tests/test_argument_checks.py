"""Issue 23, items 6 and 7: bad arguments and inputs get one clear error that
names the argument and what is valid, instead of a silently corrupted model
(drop_path_rate >= 1, a typo'd arch key, zero depths, a sparsity density that
empties a layer) or a raw torch error deep in the network (wrong channels,
dtype or dimensions, batch 1 at a 1x1 batch-norm map, an unknown hook module,
another family's checkpoint in the converter, ``init_cfg`` options with
``--sample-data``). Tiny archs, 32-64 px."""
import runpy
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from conftest import REPO
from mmconvarch.checkpoint.converters import convert_checkpoint
from mmconvarch.engine.hooks import SparseRegrowHook
from mmconvarch.models.backbones import ConvNeXtV2, RevCol, SLaK, VanillaNet
from mmconvarch.sparsity import SparseMasking
from test_pretrained_strict import BACKBONES, OFFICIAL
from test_revcol_converter import CH, COLS, LAYERS
from test_slak_converter import DEPTHS, DIMS, KERNELS, N

NAMES = {'revcol': 'RevCol', 'convnextv2': 'ConvNeXtV2', 'slak': 'SLaK',
         'vanillanet': 'VanillaNet'}
# (family, a valid arch dict) for the families built from arch dicts
ARCHS = {
    'revcol': (RevCol, dict(channels=CH, layers=LAYERS, num_columns=COLS), {}),
    'convnextv2': (ConvNeXtV2, dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]), {}),
    'slak': (SLaK, dict(depths=DEPTHS, channels=DIMS),
             dict(width_factor=1.0, kernel_size=KERNELS + [N])),
    'vanillanet': (VanillaNet, dict(dims=[16, 32, 64, 128], strides=[2, 2, 2]), {}),
}


def build(family, arch_update=None, **kwargs):
    cls, arch, extra = ARCHS[family]
    return cls(dict(arch, **(arch_update or {})), **extra, **kwargs)


# ---------------------------------------------------------------- item 6
@pytest.mark.parametrize('rate', [1.5, 1.0, -0.5, 'x'])
@pytest.mark.parametrize('family', ['revcol', 'convnextv2', 'slak'])
def test_drop_path_rate_outside_0_1_is_refused(family, rate):
    with pytest.raises(ValueError) as error:
        BACKBONES[family](drop_path_rate=rate)
    assert str(error.value) == (f'{NAMES[family]} drop_path_rate must be a number in [0, 1) '
                                f'(the stochastic depth of the last block), got {rate!r}.')
    BACKBONES[family](drop_path_rate=0.5)  # the valid range builds


def test_revcol_arch_drop_path_rate_is_checked_too():
    with pytest.raises(ValueError, match=r'RevCol drop_path_rate must be a number in \[0, 1\)'):
        build('revcol', dict(drop_path_rate=1.5))


def test_vanillanet_has_no_drop_path_rate():
    # nothing to check: VanillaNet has no stochastic depth (no silent accept either)
    with pytest.raises(TypeError, match='drop_path_rate'):
        BACKBONES['vanillanet'](drop_path_rate=0.1)


@pytest.mark.parametrize('family, typo, required, optional', [
    ('revcol', 'top_to_level_0', ['channels', 'layers', 'num_columns'],
     ['drop_path_rate', 'top_to_level0']),
    ('convnextv2', 'depth', ['depths', 'channels'], []),
    ('slak', 'depth', ['depths', 'channels'], []),
    ('vanillanet', 'ada_pol', ['dims', 'strides'], ['ada_pool']),
])
def test_unknown_arch_key_is_refused_with_the_valid_keys(family, typo, required, optional):
    with pytest.raises(ValueError) as error:
        build(family, {typo: 1})
    assert str(error.value).startswith(
        f"{NAMES[family]} arch dict has unknown keys ['{typo}']; valid keys are "
        f'{required} (required) and {optional} (optional), got [')


def test_misspelt_required_key_names_both_the_missing_and_the_unknown_key():
    with pytest.raises(ValueError) as error:
        SLaK(dict(depth=DEPTHS, channels=DIMS), width_factor=1.0, kernel_size=KERNELS + [N])
    assert str(error.value) == (
        "SLaK arch dict lacks keys ['depths'] and has unknown keys ['depth']; valid keys are "
        "['depths', 'channels'] (required) and [] (optional), got ['depth', 'channels'].")


@pytest.mark.parametrize('family', list(NAMES))
def test_every_arch_table_entry_passes_the_key_check(family):
    """The table's keys are valid arch-dict keys: each entry, with tiny widths
    (and depths), builds."""
    cls, _, extra = ARCHS[family]
    tiny = {'revcol': dict(channels=[8, 8, 8, 8], layers=[1, 1, 1, 1], num_columns=2),
            'convnextv2': dict(depths=[1, 1, 1, 1], channels=[8, 8, 8, 8]),
            'slak': dict(depths=[1, 1, 1, 1], channels=[8, 8, 8, 8])}.get(family)
    for name, arch in cls.arch_zoo.items():
        if family == 'vanillanet':
            tiny = dict(dims=[8] * len(arch['dims']))
        model = cls(dict(arch, **tiny), **extra)
        if 'ada_pool' in arch:
            assert model.ada_pool == arch['ada_pool']
        if arch.get('top_to_level0'):
            assert 'up2' in model.subnet1.level0.fusion.up_names


@pytest.mark.parametrize('family, update, name', [
    ('revcol', dict(layers=[1, 0, 1, 1]), 'arch layers'),
    ('revcol', dict(channels=[8, -8, 16, 16]), 'arch channels'),
    ('convnextv2', dict(depths=[1, 1, 0, 1]), 'arch depths'),
    ('convnextv2', dict(channels=[8, 0, 24, 32]), 'arch channels'),
    ('slak', dict(depths=[1, 1, -1, 1]), 'arch depths'),
    ('slak', dict(channels=[8, 16, 0, 32]), 'arch channels'),
    ('vanillanet', dict(dims=[16, 0, 64, 128]), 'arch dims'),
    ('vanillanet', dict(strides=[2, 0, 2]), 'arch strides'),
])
def test_zero_or_negative_depths_and_widths_are_refused(family, update, name):
    with pytest.raises(ValueError) as error:
        build(family, update)
    value = next(iter(update.values()))
    assert str(error.value) == (f'{NAMES[family]} {name} must be a non-empty list of ints '
                                f'>= 1, got {value!r}.')


def test_revcol_num_columns_and_negative_ada_pool_are_refused():
    with pytest.raises(ValueError, match=r'RevCol arch num_columns must be an int >= 1, got 0'):
        build('revcol', dict(num_columns=0))
    with pytest.raises(ValueError, match=r'VanillaNet arch ada_pool must be a non-empty list '
                                         r'of ints >= 0, got \[0, -1, 0\]'):
        build('vanillanet', dict(ada_pool=[0, -1, 0]))


def test_slak_width_factor_that_rounds_a_stage_to_zero_channels_is_refused():
    with pytest.raises(ValueError, match=r'every stage needs at least 1 channel'):
        SLaK(dict(depths=DEPTHS, channels=DIMS), width_factor=0.1, kernel_size=KERNELS + [N])


@pytest.mark.parametrize('family', list(NAMES))
def test_zero_in_channels_is_refused(family):
    with pytest.raises(ValueError, match=rf'^{NAMES[family]} in_channels must be an int >= 1, '
                                         r'got 0\.$'):
        BACKBONES[family](in_channels=0)


def small_net():
    # an 18-weight conv next to a 65536-weight linear layer
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(256, 256))


def test_density_that_empties_a_small_layer_is_refused_with_the_minimal_density():
    engine = SparseMasking(small_net(), density=0.01, sparse_init='uniform',
                           update_frequency=None)
    with pytest.raises(ValueError) as error:
        engine.init_masks()
    message = str(error.value)
    assert message.startswith(
        'density=0.01 (uniform) leaves 1 masked layer(s) without any weight, which would zero '
        'them for the whole run: 0.weight (18 weights, layer density 0.01). The smallest '
        'density that keeps one is 0.02778;')
    # that density keeps one weight of the small layer (round(0.02778 * 18) = 1)
    minimal = float(message.split('keeps one is ')[1].split(';')[0])
    engine = SparseMasking(small_net(), density=minimal, sparse_init='uniform',
                           update_frequency=None)
    engine.init_masks()
    assert int(engine.masks['0.weight'].sum()) == 1


def test_snip_scores_that_empty_a_layer_are_refused():
    engine = SparseMasking(small_net(), density=0.01, sparse_init='snip',
                           update_frequency=None)
    scores = {'0.weight': torch.zeros(2, 1, 3, 3), '1.weight': torch.rand(256, 256) + 1}
    with pytest.raises(ValueError, match=r"0.weight \(18 weights, layer density 0\)\. No "
                                         r"density keeps one under sparse_init='snip'"):
        engine.init_masks(scores)


def test_erk_gives_small_layers_a_weight_at_low_density():
    # ERK raises the density of small layers, so 1% keeps every layer non-empty
    engine = SparseMasking(small_net(), density=0.01, sparse_init='ERK',
                           update_frequency=None)
    engine.init_masks()
    assert all(int(mask.sum()) >= 1 for mask in engine.masks.values())


# ---------------------------------------------------------------- item 7
@pytest.mark.parametrize('family', list(NAMES))
@pytest.mark.parametrize('channels', [1, 4])
def test_wrong_channel_count_is_one_clear_error(family, channels):
    model = BACKBONES[family]().eval()
    with pytest.raises(ValueError) as error:
        model(torch.randn(2, channels, 32, 32))
    assert str(error.value).startswith(
        f'{NAMES[family]} was built with in_channels=3, got an input with {channels} channels '
        f'(shape (2, {channels}, 32, 32))')
    assert tuple(BACKBONES[family](in_channels=channels).eval()(
        torch.randn(2, channels, 32, 32))[-1].shape[:1]) == (2, )


@pytest.mark.parametrize('family', list(NAMES))
def test_missing_batch_dimension_is_one_clear_error(family):
    model = BACKBONES[family]().eval()
    with pytest.raises(ValueError) as error:
        model(torch.randn(3, 32, 32))
    assert str(error.value) == (
        f'{NAMES[family]} takes a 4-D (N, C, H, W) image batch, got a 3-D tensor of shape '
        '(3, 32, 32) (a single image: add the batch dimension, x[None]).')


@pytest.mark.parametrize('family', list(NAMES))
@pytest.mark.parametrize('dtype', [torch.float64, torch.float16, torch.uint8])
def test_input_dtype_other_than_the_parameters_is_one_clear_error(family, dtype):
    model = BACKBONES[family]().eval()
    with pytest.raises(TypeError) as error:
        model(torch.zeros(2, 3, 32, 32, dtype=dtype))
    assert str(error.value) == (
        f'{NAMES[family]} has torch.float32 parameters, got a {dtype} input: cast the input '
        f'(x.to(torch.float32)), the model (model.to({dtype})) or run under torch.autocast.')


@pytest.mark.parametrize('family', list(NAMES))
def test_matching_dtypes_and_autocast_keep_working(family):
    model = BACKBONES[family]().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.double()(x.double())[-1].dtype == torch.float64
        model.float()
        with torch.autocast('cpu', dtype=torch.bfloat16):  # a bf16 input under autocast
            out = model(x.bfloat16())[-1]
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize('family, valid', [('slak', (64, 32)), ('vanillanet', (64, 32))])
def test_batch_one_training_at_a_1x1_batch_norm_map_is_one_clear_error(family, valid):
    model = BACKBONES[family]().train()
    assert model.min_input_size == 32
    with pytest.raises(ValueError) as error:
        model(torch.randn(1, 3, 32, 32))
    message = str(error.value)
    assert message.startswith(
        f'{NAMES[family]} in training mode got batch size 1 at input size (32, 32): its last '
        'batch norm would see a 1x1 map, one value per channel, and batch norm needs more than '
        'one. Train with batch size >= 2, or (batch size 1) with inputs of at least '
        f'{valid[0]}x{valid[1]}')
    model(torch.randn(1, 3, *valid))  # the size it names works with batch 1
    model(torch.randn(2, 3, 32, 32))  # so does batch 2 at the minimum size
    model.eval()(torch.randn(1, 3, 32, 32))  # and batch 1 in eval
    BACKBONES[family](norm_eval=True).train()(torch.randn(1, 3, 32, 32))


def test_sparse_regrow_hook_unknown_module_is_one_clear_error():
    model = nn.Module()
    model.backbone, model.head = small_net(), nn.Linear(2, 2)
    hook = SparseRegrowHook(module='nonexistent', sparse_init='ERK')
    with pytest.raises(ValueError) as error:
        hook.before_train(SimpleNamespace(model=model))
    assert str(error.value) == (
        "SparseRegrowHook module='nonexistent': the model (Module) has no such submodule; its "
        "submodules are ['backbone', 'head'] (a dotted path below one of them, e.g. "
        "'backbone.stages', works too), or None for the whole model.")


@pytest.mark.parametrize('family', ['slak', 'convnextv2', 'revcol'])
def test_converter_given_a_vanillanet_checkpoint_names_the_family(family):
    with pytest.raises(ValueError) as error:
        convert_checkpoint({'model': OFFICIAL['vanillanet']()}, family)
    name = {'slak': 'SLaK', 'convnextv2': 'ConvNeXt V2', 'revcol': 'RevCol'}[family]
    assert str(error.value) == (
        f"Not an official {name} checkpoint (family '{family}'): its keys look like a "
        "VanillaNet (official layout) checkpoint; convert it with family 'vanillanet', or "
        f'pass a {name} checkpoint.')


def test_converter_cli_given_a_vanillanet_checkpoint_exits_with_the_family(tmp_path):
    src = str(tmp_path / 'vanillanet_5.pth')
    torch.save({'model': OFFICIAL['vanillanet']()}, src)
    main = runpy.run_path(f'{REPO}/tools/model_converters/convert.py')['main']
    with pytest.raises(SystemExit) as error:
        main(['slak', src, str(tmp_path / 'out.pth')])
    assert str(error.value).startswith(f"{src}: Not an official SLaK checkpoint (family "
                                       "'slak'): its keys look like a VanillaNet")
    assert not (tmp_path / 'out.pth').exists()


def test_vanillanet_head_batch_one_training_is_one_clear_error():
    from mmconvarch.models.heads import VanillaNetClsHead
    head = VanillaNetClsHead(num_classes=4, in_channels=8).train()
    with pytest.raises(ValueError, match=r'^VanillaNetClsHead in training mode got batch size '
                                         r'1: .* Train with batch size >= 2'):
        head((torch.randn(1, 8), ))
    assert head((torch.randn(2, 8), )).shape == (2, 4)
    assert head.eval()((torch.randn(1, 8), )).shape == (1, 4)


@pytest.mark.parametrize('config, expected', [
    # the config's own Pretrained dict is kept, the option's checkpoint wins
    ('configs/convnextv2/convnextv2_t_in1k.py',
     dict(type='Pretrained', checkpoint='/ckpt/mine.pth', prefix='backbone.')),
    # a backbone without an init_cfg in its config gets a Pretrained one
    ('configs/vanillanet/vanillanet_5_in1k.py',
     dict(type='Pretrained', checkpoint='/ckpt/mine.pth')),
])
def test_init_cfg_option_wins_over_sample_data_in_print_config(config, expected, sample_root,
                                                               capsys):
    main = runpy.run_path(f'{REPO}/tools/misc/print_config.py')['main']
    option = 'model.backbone.init_cfg.checkpoint=/ckpt/mine.pth'
    cfg = main([f'{REPO}/{config}', '--sample-data', sample_root, '--cfg-options', option])
    assert cfg.model.backbone.init_cfg == expected
    # without the option, --sample-data still loads nothing
    cfg = main([f'{REPO}/{config}', '--sample-data', sample_root])
    assert cfg.model.backbone.init_cfg is None


def test_fcmae_encoder_checks_its_input_like_convnextv2():
    from mmconvarch.models.selfsup.fcmae import MaskedConvNeXtV2
    encoder = MaskedConvNeXtV2(dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32])).eval()
    with pytest.raises(ValueError, match=r'^MaskedConvNeXtV2 was built with in_channels=3, '
                                         r'got an input with 1 channels'):
        encoder(torch.randn(2, 1, 32, 32))
    with pytest.raises(TypeError, match=r'^MaskedConvNeXtV2 has torch.float32 parameters, '
                                        r'got a torch.float64 input'):
        encoder(torch.randn(2, 3, 32, 32).double(), torch.zeros(2, 1, 1))
    with pytest.raises(ValueError, match=r'^MaskedConvNeXtV2 drop_path_rate must be a number '
                                         r'in \[0, 1\)'):
        MaskedConvNeXtV2('atto', drop_path_rate=1.5)


def test_init_cfg_option_wins_over_sample_data_in_load_config(sample_root, tmp_path):
    """tools/train.py and tools/test.py load configs through load_config."""
    from mmconvarch.launch import load_config
    config = f'{REPO}/configs/convnextv2/convnextv2_t_in1k.py'
    cfg = load_config(config, {'model.backbone.init_cfg.checkpoint': '/ckpt/mine.pth'},
                      sample_data=sample_root, work_dir=str(tmp_path))
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='/ckpt/mine.pth',
                                               prefix='backbone.')
    cfg = load_config(config, {'train_cfg.max_epochs': 1}, sample_data=sample_root,
                      work_dir=str(tmp_path))
    assert cfg.model.backbone.init_cfg is None


def test_revcol_zero_kernel_size_is_refused():
    with pytest.raises(ValueError, match=r'^RevCol kernel_size must be an int >= 1, got 0\.$'):
        BACKBONES['revcol'](kernel_size=0)
