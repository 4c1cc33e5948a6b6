"""Reversible backward for RevCol-style stacks of multi-level columns.

Column ``i`` maps ``(x, c[i-1][0..L-1]) -> c[i][0..L-1]`` level by level::

    c[i][l] = alpha_i[l] * c[i-1][l] + F_il(c[i][l-1] or x, c[i-1][ups(l)])

where ``ups(l)`` are higher levels of the previous column (l+1, and also the
top level for RevCol-H level 0). Every level is one autograd node
(:class:`ReversibleLevelFunction`) that stores only its RNG state (and ``x``
at level 0); a last node (:class:`ReversibleColumnsFunction`) hands out the
requested columns and stores the last column's levels. In the backward,
autograd runs the level nodes column by column from the last one, top-down in
each column, and each node recomputes ``F_il``, back-propagates through it
and reconstructs ``c[i-1][l] = (c[i][l] - F_il(...)) / alpha_i[l]`` for the
nodes after it. Activation memory is thus that of one level, whatever the
number of columns.

Gradients follow autograd's own contract: each node returns the gradients of
its inputs (features, ``alpha_i[l]`` and the level's parameters), so each
parameter's AccumulateGrad runs once, right after its level. Post-accumulate
hooks, DDP's reducer (also with ``gradient_as_bucket_view``), sharded
optimizers and ``torch.autograd.grad`` thus see ordinary gradients, and at
most one level's parameter gradients are held outside ``.grad``, as with the
plain backward.

Why the order is right: a node runs after all the nodes that read its output
``c[i][l]``: ``(i, l+1)``, ``(i+1, l)`` and ``(i+1, l-1)`` (through ``ups``).
Those reconstruct what it reads, ``c[i][l]`` and ``c[i][l-1]``, and
``c[i-1][ups(l)]`` comes from the nodes above it in its column. This needs
``l in ups(l-1)`` (true of RevCol). A zero-size token that requires grad is an
input of every node, so that frozen levels, which must still reconstruct their
states, are in the graph too.

Exactness: the inverse map is expansive (1/alpha and the fusion's Jacobian),
so fp32 rounding errors would grow by a constant factor per column and swamp
the gradients after ~10 columns. The running column state ``c`` is therefore
carried in float64 (only ever L maps of one or two columns); the levels see
its cast to the dtype the plain forward would have (``out`` promoted with
alpha; under autocast fp32 after the first column), and the
float64 reconstruction is exact enough that the recomputed casts are
bit-identical. Drop-path RNG and the autocast state are replayed.

A column module provides ``num_levels``, ``up_sources(l)``, ``alpha(l)`` (a
non-zero parameter) and ``level_module(l)``, the module computing
``F_il(down, ups)`` (without alpha); see
:class:`mmconvarch.models.backbones.revcol.RevColColumn`.
"""
import contextlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.autograd.function import once_differentiable

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


class _Tape:
    """What the nodes of one call share: the columns, the float64 states
    ``(column, level) -> c`` not yet consumed (and, in the backward, their
    casts, made once for up to three readers), the level dtypes and the
    forward's autocast state."""

    def __init__(self, columns: Sequence[nn.Module], x: torch.Tensor) -> None:
        self.columns = list(columns)
        self.states: Dict[Tuple[int, int], torch.Tensor] = {}
        self.casts: Dict[Tuple[int, int], torch.Tensor] = {}
        self.dtypes: Dict[Tuple[int, int], torch.dtype] = {}
        self.autocast = _autocast_state()
        self.cuda_devices = [x.device.index] if x.is_cuda else []

    def state(self, key: Tuple[int, int], pop: bool = False) -> torch.Tensor:
        if key not in self.states:
            raise RuntimeError(
                f'Reversible backward: the state of column {key[0]} level {key[1]} '
                'was not reconstructed (level l must read level l+1 of the '
                'previous column, as in RevCol).')
        if not pop:
            return self.states[key]
        self.casts.pop(key, None)
        return self.states.pop(key)

    def put(self, key: Tuple[int, int], state: torch.Tensor) -> None:
        """Set a (reconstructed) state; its old cast, if any, is dropped."""
        self.states[key] = state
        self.casts.pop(key, None)

    def cast(self, key: Tuple[int, int], requires_grad: bool) -> torch.Tensor:
        """The state as the level read it in the forward (a new alias each
        time, so readers' autograd graphs stay apart)."""
        if key not in self.casts:
            self.casts[key] = self.state(key).to(self.dtypes[key])
        return self.casts[key].detach().requires_grad_(requires_grad)

    @contextlib.contextmanager
    def replay(self, rng):
        """Grad mode, the forward's autocast state and RNG state ``rng``
        (the caller's RNG state is restored on exit)."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.enable_grad())
            stack.enter_context(torch.random.fork_rng(devices=self.cuda_devices))
            for d, on, dt in self.autocast:
                stack.enter_context(torch.autocast(d, dtype=dt, enabled=on))
            _set_rng_state(rng, self.cuda_devices)
            yield


Slots = Tuple[Tuple[nn.Module, str], ...]


def trainable_slots(module: nn.Module) -> Tuple[Slots, List[torch.Tensor]]:
    """``(owner, name)`` of each trainable parameter of ``module``, and the
    parameters."""
    slots, params = [], []
    for owner in module.modules():
        for name, p in owner._parameters.items():
            if p is not None and p.requires_grad:
                slots.append((owner, name))
                params.append(p)
    return tuple(slots), params


@contextlib.contextmanager
def swapped_parameters(slots: Slots, tensors: Sequence[torch.Tensor]) -> Iterator[None]:
    """The parameters in ``slots`` replaced by ``tensors`` for the body: what
    ``torch.func.functional_call`` does, without walking the module tree and
    checking names on every call (a tenth of a small RevCol step)."""
    saved = [owner._parameters[name] for owner, name in slots]
    try:
        for (owner, name), t in zip(slots, tensors):
            owner._parameters[name] = t
        yield
    finally:
        for (owner, name), p in zip(slots, saved):
            owner._parameters[name] = p


class ReversibleLevelFunction(torch.autograd.Function):
    """``apply(tape, i, level, slots, token, down, prev, alpha, *ups, *params)``
    -> ``c[i][level]`` in the dtype the plain forward would give it.

    ``down`` is ``x`` or ``c[i][level-1]``; ``prev, alpha`` are
    ``c[i-1][level], alpha_i[level]`` (None in the first column); ``ups`` the
    previous column's ``up_sources(level)``; ``params`` the level module's
    trainable parameters, found at ``slots`` (:func:`trainable_slots`). All
    are cast levels, never the float64 states (those are in the tape).
    """

    @staticmethod
    def forward(ctx, tape: _Tape, i: int, level: int, slots: Slots,
                token: Optional[torch.Tensor], down: torch.Tensor,
                prev: Optional[torch.Tensor], alpha: Optional[torch.Tensor],
                *rest: torch.Tensor) -> torch.Tensor:
        column = tape.columns[i]
        num_ups = len(column.up_sources(level))
        ctx.tape, ctx.key, ctx.slots = tape, (i, level), slots
        ctx.alpha, ctx.params = alpha, rest[num_ups:]
        ctx.set_materialize_grads(False)  # unused outputs: None, not zeros
        ctx.rng = _rng_state(tape.cuda_devices)
        if level == 0:
            ctx.save_for_backward(down)  # x
        out = column.level_module(level)(down, list(rest[:num_ups]))
        # states are updated in place, with ``out`` read as it is (its cast
        # to float64 is exact): fewer float64 passes and allocations. So
        # neither the level module's output nor ours may alias a state.
        dtype = out.dtype
        if prev is None:
            state = out.to(STATE_DTYPE, copy=True)
        else:
            prev_state = tape.states.pop((i - 1, level))  # c = out + alpha * c_prev, one pass
            state = torch.addcmul(out, prev_state, alpha.to(STATE_DTYPE), out=prev_state)
            dtype = torch.promote_types(dtype, alpha.dtype)
        tape.states[i, level], tape.dtypes[i, level] = state, dtype
        return state.to(dtype, copy=True)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Optional[torch.Tensor]):
        tape, (i, level) = ctx.tape, ctx.key
        column = tape.columns[i]
        up_idx = column.up_sources(level)
        needs = ctx.needs_input_grad
        need_down, need_prev, need_alpha = needs[5:8]
        need_ups, need_params = needs[8:8 + len(up_idx)], needs[8 + len(up_idx):]
        nones = (None, ) * len(needs)
        state = tape.state((i, level), pop=True)  # this node is its last reader
        if grad is None and i == 0:
            return nones
        with tape.replay(ctx.rng):
            if level == 0:
                down = ctx.saved_tensors[0].detach().requires_grad_(need_down)
            else:
                down = tape.cast((i, level - 1), need_down)
            ups = [tape.cast((i - 1, k), n) for k, n in zip(up_idx, need_ups)]
            # detached aliases: the inner grad must not run the parameters'
            # hooks (their AccumulateGrad does, once, with what we return)
            params = [p.detach().requires_grad_(n) for p, n in zip(ctx.params, need_params)]
            with swapped_parameters(ctx.slots, params):
                out = column.level_module(level)(down, ups)
            prev = alpha = None
            if i > 0:
                alpha = ctx.alpha.detach().requires_grad_(need_alpha)
                with torch.no_grad():  # invert c = alpha * c_prev + out, in place
                    prev = state.sub_(out.detach()).div_(alpha.to(STATE_DTYPE))
                tape.put((i - 1, level), prev)
            if grad is None:
                return nones
            inputs = [down, *ups, *params]
            wanted = [t for t in inputs if t.requires_grad]
            found = iter(torch.autograd.grad(out, wanted, grad, allow_unused=True)
                         if wanted else ())
            g_in = [next(found) if t.requires_grad else None for t in inputs]
            g_alpha = g_prev = None
            if need_alpha:  # d(alpha * c_prev) / d alpha, as autograd's mul backward
                prev_cast = tape.cast((i - 1, level), False)
                g_alpha = (grad * prev_cast.to(grad.dtype)).sum_to_size(alpha.shape)
        if need_prev:
            g_prev = grad * alpha.to(grad.dtype)
        return (None, ) * 5 + (g_in[0], g_prev, g_alpha, *g_in[1:])


class ReversibleColumnsFunction(torch.autograd.Function):
    """``apply(tape, num_last, *last, *returned)`` -> copies of ``returned``.

    The last node of a call: ``last`` (the last column's levels) are inputs
    so that every level node runs whichever outputs the loss uses. It stores
    the last column's float64 states, from which the backward starts. Copies,
    because inputs returned as they are would be views that cannot be
    modified in place.
    """

    @staticmethod
    def forward(ctx, tape: _Tape, num_last: int, *tensors: torch.Tensor):
        ctx.tape, ctx.num_last = tape, num_last
        ctx.set_materialize_grads(False)
        i = len(tape.columns) - 1
        ctx.save_for_backward(*[tape.states.pop((i, level)) for level in range(num_last)])
        return tuple(t.clone() for t in tensors[num_last:])

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads: Optional[torch.Tensor]):
        i = len(ctx.tape.columns) - 1
        for level, state in enumerate(ctx.saved_tensors):
            # a copy: the level nodes invert states in place, and a second
            # backward (retain_graph=True) starts from these again
            ctx.tape.put((i, level), state.clone())
        return (None, None) + (None, ) * ctx.num_last + grads


def reversible_columns(columns: Sequence[nn.Module], x: torch.Tensor,
                       returned: Sequence[int]) -> List[Optional[List[torch.Tensor]]]:
    """Run ``columns`` on ``x`` with the reversible backward.

    Returns one entry per column: its levels if its index is in ``returned``
    (negative indices count from the end), else None (never materialised
    together, which is what keeps memory flat).
    """
    n = len(columns)
    returned = tuple(sorted({i % n for i in returned}))
    tape = _Tape(columns, x)
    trainable = x.requires_grad or any(
        p.requires_grad for c in columns for p in c.parameters())
    token = torch.empty(0, device=x.device, requires_grad=True) if trainable else None
    levels: List[torch.Tensor] = []
    kept: List[torch.Tensor] = []
    for i, column in enumerate(columns):
        prev, levels, down = levels, [], x
        for level in range(column.num_levels):
            ups = [prev[k] for k in column.up_sources(level)]
            slots, params = trainable_slots(column.level_module(level))
            shortcut = (prev[level], column.alpha(level)) if prev else (None, None)
            down = ReversibleLevelFunction.apply(
                tape, i, level, slots, token, down, *shortcut, *ups, *params)
            levels.append(down)
        if i in returned:
            kept.extend(levels)
    flat = ReversibleColumnsFunction.apply(tape, len(levels), *levels, *kept)
    result: List[Optional[List[torch.Tensor]]] = [None] * n
    start = 0
    for i in returned:
        result[i] = list(flat[start:start + columns[i].num_levels])
        start += columns[i].num_levels
    return result
