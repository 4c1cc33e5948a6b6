"""mmconvarch.deploy.latency_model: a deploy model bound to one input, replayed as one CUDA graph
on a GPU (outputs equal to the eager model's), the eager model with one warning elsewhere, and
one clear error for any other input."""
import pytest
import torch

from mmconvarch.deploy import LatencyModel, latency_model, switch_to_deploy
from mmconvarch.models.backbones import VanillaNet

pytestmark = pytest.mark.usefixtures('single_thread')


def deploy_vanillanet(device: str = 'cpu', dtype: torch.dtype = torch.float32) -> VanillaNet:
    """A narrow VanillaNet-5 (real structure, 1/16 of the widths) in its fused form, with
    non-trivial BN statistics so the fusion is not the identity."""
    torch.manual_seed(0)
    model = VanillaNet(dict(dims=[32, 64, 128, 256], strides=[2, 2, 2])).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
    switch_to_deploy(model)
    return model.to(device=device, dtype=dtype)


def test_cpu_runs_the_eager_model_with_one_warning():
    model = deploy_vanillanet()
    x = torch.randn(1, 3, 64, 64)
    with pytest.warns(UserWarning, match=r'CUDA graphs need a CUDA input, the example is on '
                      r'cpu; calls run the eager model'):
        fast = latency_model(model, x)
    assert isinstance(fast, LatencyModel) and not fast.graphed
    y = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(y)
    for a, b in zip(fast(y), ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('other', [torch.zeros(2, 3, 64, 64), torch.zeros(1, 3, 96, 64),
                                   torch.zeros(1, 3, 64, 64, dtype=torch.float64)])
def test_another_input_is_one_clear_error(other):
    with pytest.warns(UserWarning):
        fast = latency_model(deploy_vanillanet(), torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r'bound to inputs of shape \(1, 3, 64, 64\), '
                       r'torch.float32, on cpu; got .*Bind another with '
                       r'mmconvarch.deploy.latency_model\(model, example\)'):
        fast(other)


def test_bad_arguments():
    model = deploy_vanillanet()
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match='needs VanillaNet in eval mode'):
        latency_model(model.train(), x)
    model.eval()
    with pytest.raises(TypeError, match='needs an example input tensor, got tuple'):
        latency_model(model, (x, ))
    with pytest.raises(ValueError, match='warmup must be an int >= 1, got 0'):
        latency_model(model, x, warmup=0)
    with pytest.warns(UserWarning):
        fast = latency_model(model, x)
    with pytest.raises(TypeError, match='takes one tensor, got list'):
        fast([x])


@pytest.mark.cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_cuda_graph_replay_equals_eager(dtype):
    """The graph reads each call's input (two different inputs, two different outputs) and
    gives exactly the eager outputs: the same kernels on the same data."""
    model = deploy_vanillanet('cuda', dtype)
    x = torch.randn(1, 3, 64, 64, device='cuda', dtype=dtype)
    fast = latency_model(model, x)
    assert fast.graphed
    for _ in range(2):
        y = torch.randn_like(x)
        with torch.no_grad():
            ref = model(y)
        outs = fast(y)
        for a, b in zip(outs, ref):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match='bound to inputs of shape'):
        fast(torch.randn(2, 3, 64, 64, device='cuda', dtype=dtype))


@pytest.mark.cuda
def test_cuda_clone_output():
    """clone_output=True (default) hands out copies that later calls leave alone; False hands
    out the graph's static output, which the next call overwrites."""
    model = deploy_vanillanet('cuda')
    x = torch.randn(1, 3, 64, 64, device='cuda')
    cloned, static = latency_model(model, x), latency_model(model, x, clone_output=False)
    a, b = cloned(x)[-1], static(x)[-1]
    a_before, b_before = a.clone(), b.clone()
    cloned(-x), static(-x)
    torch.testing.assert_close(a, a_before, rtol=0, atol=0)
    assert static(x)[-1].data_ptr() == b.data_ptr()
    static(-x)
    assert not torch.equal(b, b_before)


def test_benchmark_latency_mode(tmp_path, capsys):
    """tools/analysis/benchmark.py --latency times the tensor forward eager and through
    latency_model of a real config's deploy form (on a CPU: the eager fallback, same
    outputs); its new options refuse what they cannot do."""
    import json
    import os.path as osp

    from conftest import REPO, load_tool
    tool = load_tool('tools/analysis/benchmark.py')
    config = osp.join(REPO, 'configs/vanillanet/vanillanet_5_in1k.py')
    out = str(tmp_path / 'latency.json')
    with pytest.warns(UserWarning, match='calls run the eager model'):
        result = tool.main([config, '--deploy', '--latency', '--shape', '64', '--num-iters', '2',
                            '--num-warmup', '1', '--out', out])
    assert not result['graphed'] and result['max_abs_diff'] == 0
    assert result['eager_median_ms'] > 0 and result['latency_model_median_ms'] > 0
    assert json.load(open(out))['dtype'] == 'float32'
    assert 'latency_model (eager fallback)' in capsys.readouterr().out
    for argv, message in (([config, '--latency'], '--latency times a fixed input: give --shape'),
                          ([config, '--dtype', 'float16'], '--dtype only applies with --latency')):
        with pytest.raises(SystemExit):
            tool.main(argv)
        assert message in capsys.readouterr().err
