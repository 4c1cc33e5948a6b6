"""The reversible backward (RevCol save_memory=True) under autograd's own
gradient contract: parameter gradients are returned by the autograd nodes, so
AccumulateGrad (and everything hooked on it) sees them like in the plain
backward."""
import pytest
import torch

from test_revcol import SMALL, pair, rel, run


def hooked(model):
    """Record, for every trainable parameter, the gradients its tensor hook
    receives (``register_hook``) and the ``.grad`` its post-accumulate-grad
    hook sees."""
    seen = {}

    def record(name, kind):
        def hook(t):  # t: the incoming gradient, or the parameter
            seen.setdefault((name, kind), []).append((t if kind == 'in' else t.grad).clone())
        return hook

    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_hook(record(name, 'in'))
            p.register_post_accumulate_grad_hook(record(name, 'acc'))
    return seen


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_grad_hooks_fire_once_with_plain_grads(frozen_stages):
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3, frozen_stages=frozen_stages)
    seen_p, seen_r = hooked(plain), hooked(rev)
    x = torch.randn(2, 3, 64, 64)
    trainable = {n for n, p in plain.named_parameters() if p.requires_grad}
    for calls in (1, 2):  # the second backward accumulates into .grad
        run(plain, x)
        run(rev, x)
        assert seen_p.keys() == seen_r.keys() == {(n, k) for n in trainable for k in ('in', 'acc')}
        for key, grads in seen_r.items():
            assert len(grads) == calls, key
            assert rel(grads[-1], seen_p[key][-1]) <= 1e-5, key


def test_flat_parameter_views_get_grads():
    """Parameters that are views of one flat leaf, as in FSDP's flat
    parameter: the gradients reach the leaf through autograd."""
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3)
    x = torch.randn(1, 3, 32, 32)
    flat_grads = []
    for model in (plain, rev):
        # not the alphas: RevCol clamps them in place
        params = {n: p for n, p in model.named_parameters()
                  if p.requires_grad and 'alpha' not in n}
        flat = torch.cat([p.detach().flatten() for p in params.values()]).requires_grad_()
        views = flat.split([p.numel() for p in params.values()])
        views = {n: v.view_as(p) for (n, p), v in zip(params.items(), views)}
        torch.manual_seed(1)
        outs = torch.func.functional_call(model, views, (x, ))
        sum(o.square().sum() for o in outs).backward()
        flat_grads.append(flat.grad)
        assert all(p.grad is None for p in params.values())
    assert rel(flat_grads[1], flat_grads[0]) <= 1e-5


def test_autograd_grad_returns_parameter_grads():
    """torch.autograd.grad gets the parameters' gradients (and leaves .grad
    alone), as with the plain backward."""
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3, frozen_stages=1)
    x = torch.randn(2, 3, 64, 64)
    _, _, expected = run(plain, x)
    names = [n for n, p in rev.named_parameters() if p.requires_grad]
    params = [p for p in rev.parameters() if p.requires_grad]
    torch.manual_seed(1)
    outs = rev(x)
    g = torch.Generator().manual_seed(2)
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)
    got = torch.autograd.grad(loss, params)
    for name, grad in zip(names, got):
        assert rel(grad, expected[name]) <= 1e-5, name
    assert all(p.grad is None for p in rev.parameters())


def test_frozen_parameters_get_no_grad():
    _, rev = pair(arch=SMALL, frozen_stages=2)
    frozen = [n for n, p in rev.named_parameters() if not p.requires_grad]
    assert 'stem.0.weight' in frozen and 'subnet1.alpha1' in frozen
    run(rev, torch.randn(1, 3, 32, 32))
    grads = dict(rev.named_parameters())
    assert all(grads[n].grad is None for n in frozen)
    # all frozen: nothing requires grad, as in the plain path
    _, rev = pair(arch=SMALL, frozen_stages=4)
    with pytest.raises(RuntimeError, match='does not require grad'):
        sum(o.sum() for o in rev(torch.randn(1, 3, 32, 32))).backward()


def test_double_backward_raises():
    _, rev = pair(arch=SMALL)
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    loss = sum(o.square().sum() for o in rev(x))
    (gx, ) = torch.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError, match='once_differentiable'):
        gx.sum().backward()


def test_backward_twice_with_retain_graph():
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3)
    x = torch.randn(1, 3, 32, 32)
    for model in (plain, rev):
        torch.manual_seed(1)
        loss = sum(o.square().sum() for o in model(x))
        loss.backward(retain_graph=True)
        loss.backward()
    for (n, p), r in zip(plain.named_parameters(), rev.parameters()):
        if p.grad is not None:
            assert rel(r.grad, p.grad) <= 1e-5, n


def test_partial_outputs_and_intermediate_columns():
    """The backward runs whichever outputs the loss uses: one low level of
    the last column, or an intermediate column only."""
    plain, rev = pair(arch=SMALL, drop_path_rate=0.3)
    x = torch.randn(1, 3, 32, 32)
    for returned, pick in (((-1, ), (3, 0)), ((1, -1), (1, 2))):
        for model in (plain, rev):
            model.zero_grad(set_to_none=True)
            torch.manual_seed(1)
            cols = model.forward_columns(x, returned)
            cols[pick[0]][pick[1]].square().sum().backward()
        for (n, p), r in zip(plain.named_parameters(), rev.parameters()):
            assert (p.grad is None) == (r.grad is None), n
            if p.grad is not None:
                assert rel(r.grad, p.grad) <= 1e-5, n
