"""The sparsity engine (plain torch): densities, masks, prune/regrow,
optimizer-state masking, schedule, resume state and sparse export."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from conftest import load_tool
from mmconvarch.models.backbones import SLaK
from mmconvarch.sparsity import (SparseMasking,
                                 compress_tensor, cosine_prune_rate,
                                 decompress_tensor, erk_densities,
                                 erk_raw_probabilities, snip_densities,
                                 snip_scores, sparse_export, sparse_load)

TINY = dict(depths=[1, 1, 2, 1], channels=[8, 16, 24, 32])
pytestmark = pytest.mark.usefixtures('single_thread')


class Net(nn.Module):
    """Tiny SLaK + classifier, as the official model (head sparsified)."""

    def __init__(self, channels=(8, 16, 24, 32), kernels=(13, 11, 9, 7, 3)):
        super().__init__()
        self.backbone = SLaK(dict(depths=[1, 1, 2, 1],
                                  channels=list(channels)), width_factor=1.0,
                             kernel_size=kernels, drop_path_rate=0.)
        self.head = nn.Linear(channels[-1], 5)

    def forward(self, x):
        return self.head(self.backbone(x)[0])


def batch(seed=0, n=2, size=32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, size, size, generator=g),
            torch.randint(0, 5, (n, ), generator=g))


def loss_of(model, seed=0):
    x, y = batch(seed)
    return nn.functional.cross_entropy(model(x), y)


def test_sparsified_layers_follow_official_rule():
    net = Net()
    engine = SparseMasking(net, sparse_init='uniform')
    names = set(engine.candidates)
    expected = {n for n, p in net.named_parameters() if p.ndim in (2, 4)}
    assert names == expected
    assert 'backbone.downsample_layers.0.0.weight' in names  # stem conv
    assert 'backbone.stages.0.0.large_kernel.LoRA1.conv.weight' in names
    assert 'backbone.stages.0.0.large_kernel.small_conv.conv.weight' in names
    assert 'backbone.stages.0.0.pwconv1.weight' in names
    assert 'head.weight' in names
    assert not any(n.endswith(('bias', 'gamma')) or '.bn.' in n or
                   'norm' in n for n in names)
    only_l = SparseMasking(net, only_large_kernel=True).candidates
    assert only_l and all('large_kernel.LoRA' in n for n in only_l)
    bb = SparseMasking(net.backbone, exclude=r'downsample').candidates
    assert not any('downsample' in n for n in bb)


def test_erk_densities_match_formula_and_target():
    net = Net(channels=(16, 32, 48, 64))
    engine = SparseMasking(net, density=0.5, sparse_init='ERK')
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()
              if n in engine.candidates}
    numel = {n: math.prod(s) for n, s in shapes.items()}
    dens = erk_densities(shapes, 0.5)
    raw = erk_raw_probabilities(shapes)
    for n, s in shapes.items():
        assert raw[n] == pytest.approx(sum(s) / math.prod(s))
    sparse = [n for n in shapes if dens[n] < 1]
    dense = [n for n in shapes if dens[n] == 1]
    assert sparse and dense  # the tiny model exercises the capping loop
    # one epsilon for every sparse layer: density = eps * raw
    eps = {dens[n] / raw[n] for n in sparse}
    assert max(eps) == pytest.approx(min(eps), rel=1e-9)
    # a layer is dense only if its raw probability beats every sparse one's
    assert min(raw[n] for n in dense) >= max(raw[n] for n in sparse)
    assert sum(dens[n] * numel[n] for n in shapes) == pytest.approx(
        0.5 * sum(numel.values()))

    realised = engine.init_masks()
    for n in sparse:  # exact counts: off by at most one weight
        if dens[n] < engine.dense_threshold:
            assert abs(realised[n] - dens[n]) <= 1 / numel[n] + 1e-12
    assert set(realised) == {n for n in sparse
                             if dens[n] < engine.dense_threshold}
    assert engine.total_density() == pytest.approx(0.5, rel=0.01)
    for n, mask in engine.masks.items():  # weights zeroed where masked
        p = dict(net.named_parameters())[n]
        assert (p[~mask] == 0).all() and mask.dtype == torch.bool


@pytest.mark.parametrize('init', ['uniform', 'snip'])
def test_uniform_and_snip_total_density(init):
    torch.manual_seed(0)
    net = Net()
    engine = SparseMasking(net, density=0.6, sparse_init=init)
    scores = snip_scores(net, engine.candidates, loss_of) \
        if init == 'snip' else None
    engine.init_masks(scores)
    assert engine.total_density() == pytest.approx(0.6, rel=0.01)
    assert net.head.weight.grad is None  # SNIP ran on a copy


def test_snip_densities_are_global_topk_shares():
    scores = {'a': torch.tensor([5., 4., 0.1, 0.2]),
              'b': torch.tensor([3., 0.3, 0.4, 0.5])}
    # keep the top 4 of 8: 5, 4, 3 and 0.5
    assert snip_densities(scores, 0.5) == {'a': 0.5, 'b': 0.25}


def test_masks_are_buffers_on_the_weight_device_model_untouched():
    net = Net()
    keys, buffers = set(net.state_dict()), list(net.buffers())
    engine = SparseMasking(net, sparse_init='uniform')
    engine.init_masks()
    # the model is unchanged (strict loading, EMA/DDP buffer lists)
    assert set(net.state_dict()) == keys and list(net.buffers()) == buffers
    store = dict(engine.mask_store.named_buffers())
    for name, mask in engine.masks.items():
        assert store[name.replace('.', '__')] is mask
    net.to('meta')  # masks follow the weights wherever the model goes
    for name, mask in engine.masks.items():
        assert mask.device.type == 'meta'


def train_steps(net, engine, optimizer, steps, seed0=0, autocast=False):
    stats = []
    for i in range(steps):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            loss = loss_of(net, seed0 + i)
        loss.backward()
        optimizer.step()
        stats.append(engine.step())
        optimizer.zero_grad()
    return [s for s in stats if s is not None]


@pytest.mark.parametrize('growth,opt', [('random', 'sgd'),
                                        ('gradient', 'adamw'),
                                        ('momentum', 'adamw'),
                                        ('momentum', 'sgd')])
def test_prune_regrow_keeps_active_count(growth, opt):
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9) \
        if opt == 'sgd' else torch.optim.AdamW(net.parameters(), lr=1e-2)
    engine = SparseMasking(net, density=0.5, sparse_init='uniform',
                           prune_rate=0.3, update_frequency=2,
                           total_steps=8, growth_mode=growth,
                           optimizer=optimizer)
    engine.init_masks()
    per_layer = {n: int(m.sum()) for n, m in engine.masks.items()}
    before = {n: m.clone() for n, m in engine.masks.items()}
    stats = train_steps(net, engine, optimizer, 6)
    assert len(stats) == 3
    assert {n: int(m.sum()) for n, m in engine.masks.items()} == per_layer
    for s in stats:
        assert s['pruned'] == s['regrown'] > 0
    assert any(not torch.equal(before[n], m)
               for n, m in engine.masks.items())  # the topology moved


def chosen_inactive(mask, num, seed=0):
    """``num`` random positions that ``mask`` leaves inactive, as a mask."""
    g = torch.Generator().manual_seed(seed)
    inactive = (~mask).flatten().nonzero().flatten()
    pick = inactive[torch.randperm(inactive.numel(), generator=g)[:num]]
    chosen = torch.zeros(mask.numel(), dtype=torch.bool)
    chosen[pick] = True
    return chosen.view_as(mask)


def one_layer_engine(growth, optimizer_name, **kw):
    """A 10x10 layer at density 0.5, 10 of its 50 weights pruned (and as
    many regrown) at step 3."""
    torch.manual_seed(0)
    layer = nn.Linear(10, 10, bias=False)
    optimizer = {
        'sgd': lambda: torch.optim.SGD(layer.parameters(), lr=0.01,
                                       momentum=0.9),
        'adamw': lambda: torch.optim.AdamW(layer.parameters(), lr=1e-3)
    }[optimizer_name]()
    engine = SparseMasking(layer, density=0.5, sparse_init='uniform',
                           prune_rate=0.2, min_prune_rate=0.2,
                           update_frequency=3, total_steps=3,
                           growth_mode=growth, optimizer=optimizer, **kw)
    engine.init_masks()
    return layer, optimizer, engine


@pytest.mark.parametrize('opt', ['sgd', 'adamw'])
def test_momentum_growth_regrows_the_largest_momentum(opt):
    """10 pruned positions get a steady gradient (+-1 every step), all the
    others one of alternating sign and larger size (1.05..1.5): the steady
    ones have the largest SGD momentum and Adam |m| / sqrt(v), though not
    the largest last gradient; exactly they must regrow."""
    layer, optimizer, engine = one_layer_engine('momentum', opt)
    old = engine.masks['weight'].clone()
    chosen = chosen_inactive(old, 10)
    g = torch.Generator().manual_seed(1)
    sign = torch.randint(0, 2, (10, 10), generator=g) * 2. - 1
    size = 1.05 + 0.45 * torch.rand(10, 10, generator=g)
    stats = []
    for t in range(3):
        layer.weight.grad = torch.where(chosen, sign, (-1.)**t * size)
        optimizer.step()
        optimizer.zero_grad()
        stats.append(engine.step())
    assert stats[:2] == [None, None] and stats[2]['regrown'] == 10
    new = engine.masks['weight']
    assert int(new.sum()) == 50
    assert torch.equal(new & ~old, chosen)  # which ones, not only how many
    assert (layer.weight[~new] == 0).all()


def test_momentum_growth_refuses_masked_moments():
    net = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="mask_optimizer_state=True cannot "
                       "be combined with growth_mode='momentum'"):
        SparseMasking(net, growth_mode='momentum', mask_optimizer_state=True)
    # the default masks moments except under momentum growth
    assert SparseMasking(net).mask_optimizer_state is True
    assert SparseMasking(net, growth_mode='gradient').mask_optimizer_state
    assert SparseMasking(net, growth_mode='momentum').mask_optimizer_state \
        is False
    assert SparseMasking(net, mask_optimizer_state=False
                         ).mask_optimizer_state is False


@pytest.mark.parametrize('opt', ['sgd', 'adamw'])
def test_gradient_growth_after_zero_grad(opt):
    """mmengine's OptimWrapper order: step, zero_grad, then engine.step().
    The 10 largest |grad| of the step before the update are at chosen
    pruned positions; exactly those regrow."""
    layer, optimizer, engine = one_layer_engine('gradient', opt)
    old = engine.masks['weight'].clone()
    chosen = chosen_inactive(old, 10)
    g = torch.Generator().manual_seed(1)
    for t in range(3):
        grad = torch.rand(10, 10, generator=g) - 0.5  # |grad| < 0.5
        if t == 2:  # the step before the update
            grad[chosen] = torch.where(grad[chosen] < 0, -2., 2.)
        layer.weight.grad = grad
        optimizer.step()
        optimizer.zero_grad()  # .grad is None from here on
        stats = engine.step()
    assert stats['regrown'] == 10 and not engine._grad_scores
    new = engine.masks['weight']
    assert int(new.sum()) == 50 and torch.equal(new & ~old, chosen)


def test_gradient_growth_without_a_gradient():
    layer, optimizer, engine = one_layer_engine('gradient', 'adamw')
    for _ in range(2):
        layer.weight.grad = torch.randn(10, 10)
        optimizer.step()
        optimizer.zero_grad()
        engine.step()
    # the optimizer step before the update was skipped (AMP overflow):
    # nothing to rank by, regrow at random, keep the count
    with pytest.warns(UserWarning, match='regrow at random this time'):
        stats = engine.step()
    assert stats['pruned'] == stats['regrown'] == 10
    assert int(engine.masks['weight'].sum()) == 50
    # no optimizer attached and no .grad: say what to do
    engine = SparseMasking(layer, density=0.5, sparse_init='uniform',
                           update_frequency=1, total_steps=1,
                           growth_mode='gradient')
    engine.init_masks()
    with pytest.raises(RuntimeError, match='attach the optimizer'):
        engine.step()


def test_magnitude_prune_removes_smallest_active_weights():
    torch.manual_seed(0)
    layer = nn.Linear(20, 10, bias=False)
    engine = SparseMasking(layer, density=0.5, sparse_init='uniform',
                           prune_rate=0.2, update_frequency=1, total_steps=1,
                           min_prune_rate=0.2)
    engine.init_masks()
    mask = engine.masks['weight'].clone()
    w = layer.weight.detach().clone()
    stats = engine.update_topology()
    assert stats['pruned'] == math.ceil(0.2 * 100)
    magnitude = w.abs()[mask]
    cut = magnitude.sort().values[stats['pruned'] - 1]
    new = engine.masks['weight']
    # only the smallest active weights were removed (some may be regrown):
    # every active weight above the cut is still active
    removed = mask & ~new
    assert removed.any() and (w.abs()[removed] <= cut).all()
    assert new[mask & (w.abs() > cut)].all()


def test_grown_weights_start_at_zero():
    torch.manual_seed(0)
    layer = nn.Linear(30, 30, bias=False)
    engine = SparseMasking(layer, density=0.3, sparse_init='uniform',
                           prune_rate=0.5, update_frequency=1, total_steps=1,
                           min_prune_rate=0.5)
    engine.init_masks()
    old = engine.masks['weight'].clone()
    engine.update_topology()
    grown = engine.masks['weight'] & ~old
    assert grown.any() and (layer.weight[grown] == 0).all()


@pytest.mark.parametrize('opt', ['sgd', 'adamw'])
@pytest.mark.parametrize('autocast', [False, True])
def test_masked_weights_and_moments_stay_zero(opt, autocast):
    """mmengine OptimWrapper, optionally under torch.autocast(bf16)."""
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9) \
        if opt == 'sgd' else torch.optim.AdamW(net.parameters(), lr=1e-2)
    wrapper = OptimWrapper(optimizer)
    engine = SparseMasking(net, density=0.5, sparse_init='ERK',
                           update_frequency=2, total_steps=6,
                           optimizer=optimizer)
    engine.init_masks()
    params = dict(net.named_parameters())
    for i in range(5):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            loss = loss_of(net, i)
        wrapper.update_params(loss)
        engine.step()
        for name, mask in engine.masks.items():
            p = params[name]
            assert (p[~mask] == 0).all()
            state = optimizer.state[p]
            for key in ('momentum_buffer', 'exp_avg', 'exp_avg_sq'):
                if key in state:
                    assert (state[key][~mask] == 0).all(), key
    assert engine.steps == 5


class CPUAmpOptimWrapper(OptimWrapper):
    """AmpOptimWrapper's logic with torch.amp.GradScaler('cpu'):
    mmengine's refuses to run without a GPU."""

    def __init__(self, optimizer, **kwargs):
        super().__init__(optimizer, **kwargs)
        self.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.**8)

    def backward(self, loss, **kwargs):
        self.loss_scaler.scale(loss).backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs):
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()


def test_skipped_amp_step_still_masks_and_counts():
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    wrapper = CPUAmpOptimWrapper(optimizer)
    engine = SparseMasking(net, density=0.5, sparse_init='uniform',
                           update_frequency=3, total_steps=6,
                           optimizer=optimizer)
    engine.init_masks()
    name, mask = next(iter(engine.masks.items()))
    param = dict(net.named_parameters())[name]
    # a real step, then one whose gradients overflow
    wrapper.update_params(loss_of(net, 0))
    engine.step()
    snapshot = {n: p.detach().clone() for n, p in net.named_parameters()}
    scale = wrapper.loss_scaler.get_scale()
    loss = loss_of(net, 1)
    wrapper.backward(loss)
    param.grad[0].fill_(float('inf'))
    with torch.no_grad():
        param[~mask] = 3.  # something wrote into pruned positions
    wrapper.step()
    wrapper.zero_grad()
    assert wrapper.loss_scaler.get_scale() < scale  # the step was skipped
    engine.step()
    assert engine.steps == 2
    assert (param[~mask] == 0).all()
    for n, p in net.named_parameters():
        if n != name:
            assert torch.equal(p, snapshot[n])  # nothing else moved
    # a third step reaches the update: topology moves under AMP too
    wrapper.update_params(loss_of(net, 2))
    assert engine.step() is not None


def test_gradient_accumulation_counts_only_real_steps():
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    wrapper = OptimWrapper(optimizer, accumulative_counts=3)
    wrapper.initialize_count_status(net, 0, 9)
    engine = SparseMasking(net, sparse_init='uniform', update_frequency=2,
                           total_steps=3, optimizer=optimizer)
    engine.init_masks()
    updates = []
    for i in range(9):
        wrapper.update_params(loss_of(net, i))
        if wrapper.should_update():  # what SparseRegrowHook checks
            updates.append(engine.step())
    assert engine.steps == 3
    assert [u is not None for u in updates] == [False, True, False]


def test_cosine_prune_rate_schedule():
    assert cosine_prune_rate(0, 0.5, 100) == pytest.approx(0.5)
    assert cosine_prune_rate(50, 0.5, 100) == pytest.approx(
        0.005 + 0.495 / 2)
    assert cosine_prune_rate(100, 0.5, 100) == pytest.approx(0.005)
    assert cosine_prune_rate(500, 0.5, 100) == pytest.approx(0.005)
    # the official CosineDecay: a dummy SGD + CosineAnnealingLR(eta_min)
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 40, 0.005)
    for t in range(1, 41):
        opt.step()
        sched.step()
        assert cosine_prune_rate(t, 0.3, 40) == pytest.approx(
            opt.param_groups[0]['lr'])


def test_state_dict_resume_reproduces_masks():
    def make():
        torch.manual_seed(0)
        net = Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        eng = SparseMasking(net, density=0.5, sparse_init='ERK',
                            update_frequency=2, total_steps=8, optimizer=opt)
        return net, opt, eng

    net, opt, eng = make()
    eng.init_masks()
    train_steps(net, eng, opt, 3)
    state = eng.state_dict()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    opt_state = opt.state_dict()
    train_steps(net, eng, opt, 5, seed0=3)  # uninterrupted

    net2, opt2, eng2 = make()
    net2.load_state_dict(weights)
    opt2.load_state_dict(opt_state)
    eng2.load_state_dict(state)
    train_steps(net2, eng2, opt2, 5, seed0=3)
    assert eng2.steps == eng.steps == 8
    for name, mask in eng.masks.items():
        assert torch.equal(mask, eng2.masks[name])
    for k, v in net.state_dict().items():
        assert torch.equal(v, net2.state_dict()[k]), k


def test_from_weights_keeps_existing_zeros():
    layer = nn.Linear(10, 10)
    with torch.no_grad():
        layer.weight[:, :4] = 0
    engine = SparseMasking(layer, sparse_init='from_weights',
                           update_frequency=None)
    engine.init_masks()
    assert engine.layer_densities() == {'weight': 0.6}
    assert engine.step() is None  # fixed masks


def test_bad_arguments():
    net = Net()
    with pytest.raises(ValueError, match='sparse_init must be one of'):
        SparseMasking(net, sparse_init='GMP')
    with pytest.raises(ValueError, match='growth_mode must be one of'):
        SparseMasking(net, growth_mode='neuron')
    with pytest.raises(ValueError, match=r'density must be in \(0, 1\]'):
        SparseMasking(net, density=1.5)
    with pytest.raises(ValueError, match='update_frequency must be'):
        SparseMasking(net, update_frequency=0)
    with pytest.raises(ValueError, match='no 2-D/4-D'):
        SparseMasking(nn.LayerNorm(4))
    engine = SparseMasking(net, sparse_init='snip')
    with pytest.raises(ValueError, match='needs snip_scores'):
        engine.init_masks()
    engine = SparseMasking(net, sparse_init='uniform', total_steps=None)
    engine.init_masks()
    with pytest.raises(ValueError, match='needs total_steps'):
        engine.step()


def test_sparse_export_roundtrip_and_size(tmp_path):
    torch.manual_seed(0)
    net = Net(channels=(32, 64, 96, 128))
    engine = SparseMasking(net, density=0.6, sparse_init='ERK')
    engine.init_masks()
    sd = net.state_dict()
    dense_bytes, sparse_bytes = sparse_export(sd, str(tmp_path / 's.pth'))
    back = sparse_load(str(tmp_path / 's.pth'))
    assert back.keys() == sd.keys()
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    assert sparse_bytes < 0.8 * dense_bytes
    # each encoding, exactly
    very_sparse = torch.zeros(1000)
    very_sparse[[3, 500, 999]] = torch.tensor([1., -2., 3.])
    half = torch.randn(64, 64) * (torch.rand(64, 64) > 0.5)
    dense = torch.randn(10, 10)
    for t, kind in [(very_sparse, 'coo'), (half, 'bitmap'),
                    (dense, 'dense'), (torch.arange(5), 'dense')]:
        entry = compress_tensor(t)
        assert entry['kind'] == kind
        assert torch.equal(decompress_tensor(entry), t)


def test_sparse_export_tool(tmp_path, capsys):
    torch.manual_seed(0)
    net = Net()
    SparseMasking(net, density=0.4, sparse_init='uniform').init_masks()
    ckpt = tmp_path / 'ckpt.pth'
    torch.save(dict(state_dict=net.state_dict(), meta=dict(epoch=1)), ckpt)
    tool = load_tool('tools/deploy/sparse_export.py')
    tool.main([str(ckpt), str(tmp_path / 'sparse.pth')])
    out = capsys.readouterr().out
    assert 'size ratio' in out
    tool.main(['--to-dense', str(tmp_path / 'sparse.pth'),
               str(tmp_path / 'dense.pth')])
    restored = torch.load(tmp_path / 'dense.pth')['state_dict']
    for k, v in net.state_dict().items():
        assert torch.equal(restored[k], v)
