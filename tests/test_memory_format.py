"""memory_format='auto': the layout each family's maps run in, chosen per device type from
one table, decided once per device type; explicit layouts win; bad values are refused."""
import pytest
import torch

import mmconvarch.models.memory_format as mf
from mmconvarch.models.backbones import RevCol, SLaK, VanillaNet
from mmconvarch.models.memory_format import MEMORY_FORMAT_POLICY, MemoryFormatPolicy

pytestmark = pytest.mark.usefixtures('single_thread')


def tiny(family: str, memory_format: str = 'auto') -> torch.nn.Module:
    if family == 'SLaK':
        return SLaK(dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]), width_factor=1.0,
                    kernel_size=(7, 7, 5, 5, 3), memory_format=memory_format)
    if family == 'RevCol':
        return RevCol(dict(channels=[8, 16, 24, 32], layers=[1, 1, 1, 1], num_columns=2),
                      memory_format=memory_format)
    return VanillaNet(dict(dims=[16, 16, 32, 32], strides=[2, 2, 1]),
                      memory_format=memory_format)


def block_inputs(model: torch.nn.Module, family: str) -> list:
    """Record the maps the family's inner blocks receive during one forward."""
    seen = []
    inner = {'SLaK': lambda: model.stages[1][0],
             'RevCol': lambda: model.subnet1.level1.blocks[0],
             'VanillaNet': lambda: model.stages[1]}[family]()
    inner.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    return seen


def test_policy_table():
    """The table as documented in docs/gpu.md: the GPU run measured NCHW faster for SLaK and
    RevCol on CUDA; every family runs channels_last on the CPU."""
    assert MEMORY_FORMAT_POLICY == {
        'VanillaNet': {'cpu': 'channels_last', 'cuda': 'channels_last'},
        'SLaK': {'cpu': 'channels_last', 'cuda': 'contiguous'},
        'RevCol': {'cpu': 'channels_last', 'cuda': 'contiguous'},
    }
    for family, table in MEMORY_FORMAT_POLICY.items():
        auto = MemoryFormatPolicy('auto', family)
        for device_type, name in table.items():
            assert auto(torch.device(device_type)) is mf.LAYOUTS[name]
        # a device type nobody measured runs torch's default layout
        assert auto(torch.device('meta')) is torch.contiguous_format
        for name, layout in mf.LAYOUTS.items():  # an explicit layout wins everywhere
            explicit = MemoryFormatPolicy(name, family)
            assert all(explicit(torch.device(d)) is layout for d in ('cpu', 'cuda', 'meta'))


def test_decided_once_per_device_type(monkeypatch):
    """The table is read on the first call for a device type; later calls reuse it."""
    policy = MemoryFormatPolicy('auto', 'SLaK')
    assert policy(torch.device('cpu')) is torch.channels_last
    monkeypatch.setitem(MEMORY_FORMAT_POLICY, 'SLaK', {'cpu': 'contiguous'})
    assert policy(torch.device('cpu')) is torch.channels_last
    assert MemoryFormatPolicy('auto', 'SLaK')(torch.device('cpu')) is torch.contiguous_format


@pytest.mark.parametrize('family', sorted(MEMORY_FORMAT_POLICY))
def test_auto_follows_the_table_on_this_device(family, monkeypatch):
    """With the default 'auto', the blocks run in the table's layout for the input's device
    type (changing the table changes what a new model runs), outputs are the same."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    weights = tiny(family).state_dict()
    outputs = {}
    for name in ('channels_last', 'contiguous'):
        monkeypatch.setitem(MEMORY_FORMAT_POLICY, family, {'cpu': name})
        model = tiny(family).eval()
        model.load_state_dict(weights)
        seen = block_inputs(model, family)
        with torch.no_grad():
            outputs[name] = model(x)
        assert seen and seen[0].is_contiguous(memory_format=mf.LAYOUTS[name])
        assert seen[0].is_contiguous() == (name == 'contiguous')
    for a, b in zip(outputs['channels_last'], outputs['contiguous']):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('family', sorted(MEMORY_FORMAT_POLICY))
def test_bad_memory_format_is_one_clear_error(family):
    with pytest.raises(ValueError, match=rf"{family} memory_format must be one of \['auto', "
                       r"'channels_last', 'contiguous'\], got 'fast'"):
        tiny(family, 'fast')


@pytest.mark.cuda
@pytest.mark.parametrize('family', sorted(MEMORY_FORMAT_POLICY))
def test_auto_on_cuda_runs_the_cuda_entry(family):
    """On a GPU the default runs the table's CUDA layout and matches the CPU outputs."""
    torch.manual_seed(0)
    model = tiny(family).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        model.cuda()
        seen = block_inputs(model, family)
        outs = model(x.cuda())
    expected = mf.LAYOUTS[MEMORY_FORMAT_POLICY[family]['cuda']]
    assert seen[0].is_contiguous(memory_format=expected)
    assert seen[0].is_contiguous() == (expected is torch.contiguous_format)
    for a, b in zip(outs, ref):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-4)  # cuDNN vs oneDNN sums
