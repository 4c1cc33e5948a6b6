"""Reversible backward for RevCol-style stacks of multi-level columns.

Column ``i`` maps ``(x, c[i-1][0..L-1]) -> c[i][0..L-1]`` level by level::

    c[i][l] = alpha_i[l] * c[i-1][l] + F_il(c[i][l-1] or x, c[i-1][ups(l)])

where ``ups(l)`` are higher levels of the previous column (l+1, and also the
top level for RevCol-H level 0). One autograd function runs all columns and
stores only ``x`` and the last column's levels. Its backward walks the columns
last to first and, in each, the levels top-down: recompute ``F_il``,
back-propagate through it, and reconstruct the previous column
``c[i-1][l] = (c[i][l] - F_il(...)) / alpha_i[l]``. Activation memory is thus
that of one level, whatever the number of columns.

Exactness: the inverse map is expansive (1/alpha and the fusion's Jacobian),
so fp32 rounding errors would grow by a constant factor per column and swamp
the gradients after ~10 columns. The running column state ``c`` is therefore
carried in float64 (only ever L maps of one or two columns); the levels see
its cast to the dtype the plain forward would have (``out`` promoted with
alpha; under autocast fp32 after the first column), and the
float64 reconstruction is exact enough that the recomputed casts are
bit-identical. Drop-path RNG and the autocast state are replayed. Parameter
gradients are accumulated into ``.grad`` level by level (as officially), so
they are never held twice. They are computed with ``torch.autograd.grad``,
which does not run the parameters' AccumulateGrad nodes: those run once, in
the outer backward (the parameters are inputs of the function, which returns
None for them), so DDP's gradient hooks fire once per parameter, after
``.grad`` is complete, and DDP's unused-parameter search sees the parameters
in the graph. (A nested ``backward`` would fire them a second time: DDP
fails with "marked ready twice".)

A column module provides ``num_levels``, ``up_sources(l)``,
``level_forward(l, down, ups)``, ``alpha(l)`` (a non-zero parameter) and
``level_parameters(l)`` (without alpha); see
:class:`mmconvarch.models.backbones.revcol.RevColColumn`.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

_AUTOCAST_DEVICES = ('cuda', 'cpu')
STATE_DTYPE = torch.float64


def _autocast_state() -> List[Tuple[str, bool, torch.dtype]]:
    return [(d, torch.is_autocast_enabled(d), torch.get_autocast_dtype(d))
            for d in _AUTOCAST_DEVICES]


def _rng_state(cuda_devices: Sequence[int]):
    return (torch.get_rng_state(),
            [torch.cuda.get_rng_state(d) for d in cuda_devices])


def _set_rng_state(state, cuda_devices: Sequence[int]) -> None:
    cpu_state, cuda_states = state
    torch.set_rng_state(cpu_state)
    for d, s in zip(cuda_devices, cuda_states):
        torch.cuda.set_rng_state(s, d)


def column_parameters(column: nn.Module) -> List[nn.Parameter]:
    return [p for p in column.parameters() if p.requires_grad]


class ReversibleColumnsFunction(torch.autograd.Function):
    """``apply(columns, returned, x, *params)`` -> the levels of the columns
    whose indices are in ``returned`` (sorted), flattened.

    ``params`` are ``column_parameters(c)`` of every column; they are inputs
    so that the outputs require grad when ``x`` does not (frozen stem) and
    their AccumulateGrad nodes (DDP's hooks) run once after this backward.
    Their gradients are accumulated into ``.grad`` in the backward, not
    returned.
    """

    @staticmethod
    def forward(ctx, columns: Sequence[nn.Module], returned: Tuple[int, ...],
                x: torch.Tensor, *params: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        ctx.columns, ctx.returned = columns, returned
        ctx.num_params = len(params)
        ctx.set_materialize_grads(False)  # unused outputs: None, not zeros
        ctx.autocast = _autocast_state()
        ctx.cuda_devices = [x.device.index] if x.is_cuda else []
        ctx.rng_states, ctx.dtypes = [], []
        outputs: List[torch.Tensor] = []
        state: List[torch.Tensor] = []
        with torch.no_grad():
            for i, column in enumerate(columns):
                rng, new_state, new_cast, dtypes, down = [], [], [], [], x
                for level in range(column.num_levels):
                    rng.append(_rng_state(ctx.cuda_devices))
                    ups = [state[k].to(ctx.dtypes[-1][k]) for k in column.up_sources(level)]
                    out = column.level_forward(level, down, ups)
                    s, dtype = out.to(STATE_DTYPE), out.dtype
                    if state:
                        alpha = column.alpha(level)
                        s = s + alpha.to(STATE_DTYPE) * state[level]
                        dtype = torch.promote_types(dtype, alpha.dtype)
                    new_state.append(s)
                    down = s.to(dtype)
                    new_cast.append(down)
                    dtypes.append(dtype)
                ctx.rng_states.append(rng)
                ctx.dtypes.append(dtypes)
                if i in returned:
                    outputs.extend(new_cast)
                state = new_state
        ctx.save_for_backward(x, *state)
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grad_outputs: Optional[torch.Tensor]):
        columns, returned = ctx.columns, ctx.returned
        x, *state = ctx.saved_tensors
        external = {}
        offset = 0
        for i in returned:
            external[i] = grad_outputs[offset:offset + columns[i].num_levels]
            offset += columns[i].num_levels
        grad_x = torch.zeros_like(x)
        carry: List[Optional[torch.Tensor]] = [None] * len(state)
        with torch.enable_grad(), torch.random.fork_rng(
                devices=ctx.cuda_devices, enabled=True):
            autocasts = [torch.autocast(d, dtype=dt, enabled=on)
                         for d, on, dt in ctx.autocast]
            for ac in autocasts:
                ac.__enter__()
            try:
                for i in reversed(range(len(columns))):
                    ext = external.get(i, (None, ) * len(state))
                    grads = [_add(g, c) for g, c in zip(ext, carry)]
                    state, carry, g_x = _column_backward(
                        columns[i], x, state, grads, ctx.rng_states[i],
                        ctx.cuda_devices, ctx.dtypes[i], ctx.dtypes[i - 1] if i else None)
                    if g_x is not None:
                        grad_x += g_x
            finally:
                for ac in reversed(autocasts):
                    ac.__exit__(None, None, None)
        return (None, None, grad_x) + (None, ) * ctx.num_params


def _add(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if a is None:
        return b
    return a if b is None else a + b


def _accumulate_grad(param: torch.Tensor, grad: Optional[torch.Tensor]) -> None:
    """Into ``param.grad``, as AccumulateGrad would (its node then runs in the
    outer backward with no gradient, and DDP's hook reads ``.grad``)."""
    if grad is None:
        return
    if param.grad is None:
        param.grad = grad
    else:
        param.grad += grad


def _column_backward(column, x, state, grads, rng_states, cuda_devices, dtypes, prev_dtypes):
    """Back-propagate one column; return (previous column's state, grads
    w.r.t. it, grad w.r.t. x). ``grads[l]`` may be None (no gradient);
    ``dtypes``/``prev_dtypes`` are the forward's level dtypes of this and the
    previous column (None for the first column)."""
    first = prev_dtypes is None
    num_levels = column.num_levels
    prev: List[Optional[torch.Tensor]] = [None] * num_levels
    grad_prev: List[Optional[torch.Tensor]] = [None] * num_levels
    grads = list(grads)
    grad_x = None
    for level in reversed(range(num_levels)):
        _set_rng_state(rng_states[level], cuda_devices)
        down = (x if level == 0 else state[level - 1].to(dtypes[level - 1])).detach()
        down.requires_grad_(True)
        up_idx = [] if first else list(column.up_sources(level))
        ups = [prev[k].to(prev_dtypes[k]).requires_grad_(True) for k in up_idx]
        g = grads[level]
        out = column.level_forward(level, down, ups)
        if g is not None:
            params = [p for p in column.level_parameters(level) if p.requires_grad]
            g_down, *g_rest = torch.autograd.grad(out, [down, *ups, *params], g,
                                                  allow_unused=True)
            if level == 0:
                grad_x = g_down
            else:
                grads[level - 1] = _add(grads[level - 1], g_down)
            for k, g_up in zip(up_idx, g_rest):
                grad_prev[k] = _add(grad_prev[k], g_up)
            for p, g_p in zip(params, g_rest[len(ups):]):
                _accumulate_grad(p, g_p)
        if first:
            continue
        alpha = column.alpha(level)
        with torch.no_grad():  # invert c = alpha * c_prev + out
            prev[level] = (state[level] - out.detach().to(STATE_DTYPE)) / alpha.to(STATE_DTYPE)
        if g is not None:
            if alpha.requires_grad:  # d(alpha * c_prev) / d alpha, into .grad
                _accumulate_grad(alpha, torch.autograd.grad(
                    alpha * prev[level].to(g.dtype), alpha, g)[0])
            with torch.no_grad():
                grad_prev[level] = _add(grad_prev[level], g * alpha.to(g.dtype))
    return prev, grad_prev, grad_x


def reversible_columns(columns: Sequence[nn.Module], x: torch.Tensor,
                       returned: Sequence[int]) -> List[Optional[List[torch.Tensor]]]:
    """Run ``columns`` on ``x`` with the reversible backward.

    Returns one entry per column: its levels if its index is in ``returned``
    (negative indices count from the end), else None (never materialised
    together, which is what keeps memory flat).
    """
    n = len(columns)
    returned = tuple(sorted({i % n for i in returned}))
    params = [p for c in columns for p in column_parameters(c)]
    flat = ReversibleColumnsFunction.apply(list(columns), returned, x, *params)
    result: List[Optional[List[torch.Tensor]]] = [None] * n
    start = 0
    for i in returned:
        result[i] = list(flat[start:start + columns[i].num_levels])
        start += columns[i].num_levels
    return result
