"""Dynamic sparsity engine (the official ``sparse_core.Masking``), plain torch.

Usage (no runner needed)::

    engine = SparseMasking(model, density=0.6, sparse_init='ERK',
                           prune_rate=0.3, update_frequency=100,
                           total_steps=num_optimizer_steps,
                           optimizer=optimizer)
    engine.init_masks()
    for batch in loader:
        loss(model, batch).backward()
        optimizer.step()
        engine.step()         # re-apply masks; prune + regrow when due
        optimizer.zero_grad()

What is sparsified follows the official code: every parameter with 2 or 4
dims (stem/downsample convs, the large-kernel branch convs, pwconv1/2, a
classifier fc), never 1-D ones (BN, LN, gamma, biases); ``only_large_kernel``
is the official ``--only-L`` (names containing ``large_kernel.LoRA``); a layer
whose initial density is >= ``dense_threshold`` (0.99) stays dense.

Differences from the official code, on purpose:

- masks are realised and regrown with exact counts (random positions drawn
  without replacement) instead of Bernoulli draws, so the number of active
  weights is exactly preserved by prune + regrow;
- a density that leaves a masked layer without any weight (a small layer at
  a low uniform/ERK/SNIP density; official: a Bernoulli draw that may come
  out empty) is refused with one error naming the layers and the smallest
  density that keeps a weight in each, instead of zeroing the layer;
- optimizer moments are masked for AdamW too (``exp_avg``,
  ``exp_avg_sq``), not only SGD momentum, except under momentum growth,
  which reads them at the pruned positions: there neither SGD nor Adam
  moments are masked (official: SGD momentum is masked, so its momentum
  growth only ever sees the just-pruned positions);
- gradient growth ranks the gradients of the optimizer step that precedes
  the update, kept by a step post-hook on the attached optimizers, so it
  also works when ``optimizer.zero_grad()`` runs before :meth:`step` (as
  in mmengine's ``OptimWrapper.update_params``);
- the random generator is our own, seeded identically on every rank and
  saved in :meth:`state_dict`; under ``torch.distributed`` densities and
  masks are also broadcast from rank 0 after every change.
"""
import math
import numbers
import re
import warnings
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

from .density import erk_densities, snip_densities, uniform_densities

_MOMENT_KEYS = ('momentum_buffer', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq')
SPARSE_INITS = ('ERK', 'uniform', 'snip', 'from_weights')
GROWTH_MODES = ('random', 'gradient', 'momentum')
PRUNE_MODES = ('magnitude', )


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_range(name: str, value: Any, low: float, high: float,
                 closed: str, hint: str = '') -> None:
    """``value`` is a real number in the interval from ``low`` to ``high``;
    ``closed`` is ``'[]'``, ``'[)'``, ``'(]'`` or ``'()'``."""
    interval = f'{closed[0]}{low}, {high}{closed[1]}'
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f'{name} must be a number in {interval}{hint}, got '
                        f'{value!r} ({type(value).__name__}).')
    above = value >= low if closed[0] == '[' else value > low
    below = value <= high if closed[1] == ']' else value < high
    if not (above and below):  # also false for nan
        raise ValueError(f'{name} must be in {interval}{hint}, got '
                         f'{value!r}.')


def _check_optional_positive_int(name: str, value: Any, meaning: str) -> None:
    if value is None:
        return
    if not _is_int(value):
        raise TypeError(f'{name} must be a positive int ({meaning}) or None, '
                        f'got {value!r} ({type(value).__name__}).')
    if value < 1:
        raise ValueError(f'{name} must be a positive int ({meaning}) or None, '
                         f'got {value!r}.')


def _check_bool(name: str, value: Any, allow_none: bool = False) -> None:
    if isinstance(value, bool) or (allow_none and value is None):
        return
    valid = 'True, False or None' if allow_none else 'True or False'
    raise TypeError(f'{name} must be {valid}, got {value!r} '
                    f'({type(value).__name__}).')


def _check_choice(name: str, value: Any, choices: Sequence[str],
                  ignore_case: bool = False) -> None:
    ok = isinstance(value, str) and (
        value.lower() in [c.lower() for c in choices] if ignore_case
        else value in choices)
    if not ok:
        raise ValueError(f'{name} must be one of {tuple(choices)}, got '
                         f'{value!r}.')


def _check_regex(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f'{name} must be a regex string or None, got '
                        f'{value!r} ({type(value).__name__}).')
    try:
        re.compile(value)
    except re.error as err:
        raise ValueError(f'{name} is not a valid regex ({err}): '
                         f'{value!r}.') from None


def check_masking_args(*, density: Any, sparse_init: Any, prune_rate: Any,
                       update_frequency: Any, total_steps: Any,
                       prune_mode: Any, growth_mode: Any,
                       min_prune_rate: Any, erk_power_scale: Any,
                       only_large_kernel: Any, include: Any, exclude: Any,
                       dense_threshold: Any, mask_optimizer_state: Any,
                       seed: Any, sync: Any) -> None:
    """Check the settings of :class:`SparseMasking` (all but ``model`` and
    ``optimizer``; see its docstring for their meaning). Raises one
    ``TypeError`` (wrong type) or ``ValueError`` (wrong value) naming the
    argument and its valid values or range. Also used by
    :class:`mmconvarch.engine.hooks.SparseRegrowHook` at construction."""
    _check_range('density', density, 0, 1, '(]',
                 ' (density = 1 - sparsity; SLaK uses 0.6)')
    _check_choice('sparse_init', sparse_init, SPARSE_INITS, ignore_case=True)
    _check_range('prune_rate', prune_rate, 0, 1, '[)')
    _check_range('min_prune_rate', min_prune_rate, 0, prune_rate, '[]',
                 ' (0 <= min_prune_rate <= prune_rate)')
    _check_optional_positive_int(
        'update_frequency', update_frequency,
        'optimizer steps between prune/regrow; None: fixed masks')
    _check_optional_positive_int(
        'total_steps', total_steps,
        'optimizer steps of the run, the prune-rate decay period')
    _check_choice('prune_mode', prune_mode, PRUNE_MODES)
    _check_choice('growth_mode', growth_mode, GROWTH_MODES)
    _check_range('erk_power_scale', erk_power_scale, 0, math.inf, '[)')
    _check_bool('only_large_kernel', only_large_kernel)
    _check_regex('include', include)
    _check_regex('exclude', exclude)
    _check_range('dense_threshold', dense_threshold, 0, 1, '(]')
    _check_bool('mask_optimizer_state', mask_optimizer_state,
                allow_none=True)
    if mask_optimizer_state is True and growth_mode == 'momentum':
        raise ValueError(
            "mask_optimizer_state=True cannot be combined with growth_mode="
            "'momentum': it zeroes the optimizer moments at pruned positions "
            'every step, and momentum growth ranks the pruned positions by '
            'those moments (all would score 0 and regrowth would fall back '
            'to index order). Use mask_optimizer_state=None (the default: '
            'no moment masking under momentum growth) or False, or another '
            "growth_mode ('random', 'gradient').")
    if not _is_int(seed):
        raise TypeError(f'seed must be an int, got {seed!r} '
                        f'({type(seed).__name__}).')
    _check_bool('sync', sync)


def cosine_prune_rate(step: int, prune_rate: float, total_steps: int,
                      min_prune_rate: float = 0.005) -> float:
    """The official ``CosineDecay``: a cosine annealing of ``prune_rate`` to
    ``min_prune_rate`` over ``total_steps`` optimizer steps (held at the
    minimum afterwards)."""
    if total_steps is None or total_steps <= 0:
        return prune_rate
    t = min(step, total_steps)
    return min_prune_rate + (prune_rate - min_prune_rate) * (
        1 + math.cos(math.pi * t / total_steps)) / 2


def _dist_world() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _choose(num: int, candidates: torch.Tensor, scores: Optional[torch.Tensor],
            generator: torch.Generator) -> torch.Tensor:
    """Flat indices of ``num`` candidates: the ``num`` highest ``scores``
    (ties broken in index order, so every rank picks the same), or uniformly
    at random when ``scores`` is None."""
    idx = candidates.nonzero().flatten()
    if num >= idx.numel():
        return idx
    if num <= 0:
        return idx[:0]
    if scores is None:
        perm = torch.randperm(idx.numel(), generator=generator)[:num]
        return idx[perm.to(idx.device)]
    vals = scores[idx].float()
    # the num-th largest value by selection (O(n)), not a full sort
    kth = torch.kthvalue(vals, vals.numel() - num + 1).values
    above = (vals > kth).nonzero().flatten()
    ties = (vals == kth).nonzero().flatten()[:num - above.numel()]
    return idx[torch.cat([above, ties])]


class SparseMasking:
    """Masks, their initialisation, and prune/regrow for one model.

    Masks are bool buffers of ``self.mask_store`` (an ``nn.Module`` of the
    engine, not of the model, whose buffers and state dict stay unchanged),
    on each weight's device, following the weight if the model moves.
    :meth:`state_dict` holds what a resume needs.

    Args:
        model (nn.Module): The (unwrapped) module to sparsify.
        density (float): Target density of the sparsified weights
            (1 - sparsity). Defaults to 0.6 (official ``--sparsity 0.4``).
        sparse_init (str): ``'ERK'``, ``'uniform'``, ``'snip'`` (layer
            ratios from SNIP scores, random positions, as official) or
            ``'from_weights'`` (mask = weight != 0, the official ``resume``
            mode and the downstream fixed-mask fine-tuning). Defaults to ERK.
        prune_rate (float): Initial fraction of active weights pruned (and
            regrown) per update. Defaults to 0.3.
        update_frequency (int, optional): Optimizer steps between topology
            updates; None keeps the masks fixed (official ``--fix``).
        total_steps (int, optional): Optimizer steps of the whole run, the
            period of the cosine prune-rate decay. Needed when
            ``update_frequency`` is set.
        prune_mode (str): ``'magnitude'``.
        growth_mode (str): How pruned positions are regrown: ``'random'``
            (uniformly among inactive positions), ``'gradient'`` (largest
            ``|grad|`` of the last optimizer step: the gradient at a zero
            weight says how much the loss wants it back) or ``'momentum'``
            (largest ``|momentum_buffer|`` for SGD, ``|exp_avg| /
            (sqrt(exp_avg_sq) + 1e-8)`` for Adam/AdamW, of the attached
            optimizer).
        min_prune_rate (float): End of the cosine decay. Defaults to 0.005.
        erk_power_scale (float): ERK exponent. Defaults to 1.
        only_large_kernel (bool): Only names containing
            ``large_kernel.LoRA`` (official ``--only-L``).
        include (str, optional): Regex; only matching names are sparsified.
        exclude (str, optional): Regex; matching names stay dense.
        dense_threshold (float): Layers initialised at this density or more
            stay dense. Defaults to 0.99.
        optimizer (torch.optim.Optimizer, optional): Whose moments are masked
            and read by momentum growth, and whose steps gradient growth
            watches (see :meth:`attach_optimizer`).
        mask_optimizer_state (bool, optional): Zero ``momentum_buffer``
            (SGD) and ``exp_avg``/``exp_avg_sq``/``max_exp_avg_sq``
            (Adam/AdamW) at pruned positions after every step, so a regrown
            weight starts with fresh moments. None (default): True, except
            with ``growth_mode='momentum'``, which ranks the pruned positions
            by those moments and so needs them kept (the moments then go on
            accumulating the gradients at pruned positions, the weights stay
            zero there; official AdamW runs behave so). True with momentum
            growth is refused (a ``ValueError``): every pruned position would
            score 0.
        seed (int): Seed of the engine's own generator (same on all ranks).
        sync (bool): Broadcast densities and masks from rank 0 when
            ``torch.distributed`` is initialised. Defaults to True.

    Every argument is checked here (:func:`check_masking_args`): one
    ``TypeError``/``ValueError`` naming it and its valid values or range.
    """

    def __init__(self,
                 model: nn.Module,
                 density: float = 0.6,
                 sparse_init: str = 'ERK',
                 prune_rate: float = 0.3,
                 update_frequency: Optional[int] = 100,
                 total_steps: Optional[int] = None,
                 prune_mode: str = 'magnitude',
                 growth_mode: str = 'random',
                 min_prune_rate: float = 0.005,
                 erk_power_scale: float = 1.0,
                 only_large_kernel: bool = False,
                 include: Optional[str] = None,
                 exclude: Optional[str] = None,
                 dense_threshold: float = 0.99,
                 optimizer: Optional[torch.optim.Optimizer] = None,
                 mask_optimizer_state: Optional[bool] = None,
                 seed: int = 0,
                 sync: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f'model must be an nn.Module, got '
                            f'{type(model).__name__}.')
        if optimizer is not None and not isinstance(optimizer,
                                                    torch.optim.Optimizer):
            raise TypeError(f'optimizer must be a torch.optim.Optimizer or '
                            f'None, got {type(optimizer).__name__}.')
        check_masking_args(
            density=density, sparse_init=sparse_init, prune_rate=prune_rate,
            update_frequency=update_frequency, total_steps=total_steps,
            prune_mode=prune_mode, growth_mode=growth_mode,
            min_prune_rate=min_prune_rate, erk_power_scale=erk_power_scale,
            only_large_kernel=only_large_kernel, include=include,
            exclude=exclude, dense_threshold=dense_threshold,
            mask_optimizer_state=mask_optimizer_state, seed=seed, sync=sync)
        self.model = model
        self.density = float(density)
        self.sparse_init = next(s for s in SPARSE_INITS
                                if s.lower() == sparse_init.lower())
        self.prune_rate = float(prune_rate)
        self.update_frequency = update_frequency
        self.total_steps = total_steps
        self.prune_mode, self.growth_mode = prune_mode, growth_mode
        self.min_prune_rate = float(min_prune_rate)
        self.erk_power_scale = erk_power_scale
        self.dense_threshold = dense_threshold
        # None: mask the moments unless momentum growth reads them
        self.mask_optimizer_state = growth_mode != 'momentum' \
            if mask_optimizer_state is None else mask_optimizer_state
        self.sync = sync
        self.optimizers: List[torch.optim.Optimizer] = []
        # gradient growth: |grad| kept by the optimizer step post-hook of
        # the step just before an update (runners zero the gradients
        # before calling step()), dropped after that step()
        self._grad_scores: Dict[str, torch.Tensor] = {}
        self._no_grad: List[str] = []  # layers regrown at random instead
        self._hook_handles: list = []
        if optimizer is not None:
            self.attach_optimizer(optimizer)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0
        self.densities: Dict[str, float] = {}
        # Masks are bool buffers of a store of our own, created on each
        # weight's device. Not on the model: mmengine's EMA zips model and
        # EMA buffers by position, DDP lists buffers at wrap time, and
        # strict state-dict loading would see extra keys.
        self.mask_store = nn.Module()
        self._names: List[str] = []

        names = []
        for name, param in model.named_parameters():
            if param.ndim not in (2, 4) or not param.requires_grad:
                continue
            if only_large_kernel and 'large_kernel.LoRA' not in name:
                continue
            if include is not None and not re.search(include, name):
                continue
            if exclude is not None and re.search(exclude, name):
                continue
            names.append(name)
        if not names:
            raise ValueError(
                f'SparseMasking found no 2-D/4-D trainable parameter to '
                f'sparsify in {type(model).__name__} (only_large_kernel='
                f'{only_large_kernel}, include={include!r}, '
                f'exclude={exclude!r}).')
        self.candidates = names

    # ------------------------------------------------------------- masks
    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Mask (and, for momentum growth, read) this optimizer's state.

        For gradient growth, also register a step post-hook that keeps the
        masked weights' ``|grad|`` when the coming :meth:`step` is an update
        (no cost on other steps), so the update ranks the gradients of the
        step just taken even if they were zeroed in between.
        """
        if optimizer in self.optimizers:
            return
        self.optimizers.append(optimizer)
        if self.growth_mode == 'gradient':
            self._hook_handles.append(
                optimizer.register_step_post_hook(self._after_optimizer_step))

    def detach_optimizers(self) -> None:
        """Forget the attached optimizers and remove their step hooks."""
        for handle in self._hook_handles:
            handle.remove()
        self._hook_handles, self.optimizers = [], []

    @torch.no_grad()
    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer,
                              args: Any, kwargs: Any) -> None:
        if not self._due(self.steps + 1):
            return
        for name in self._names:
            grad = self._param(name).grad
            if grad is not None:  # keep another optimizer's snapshot
                self._grad_scores[name] = grad.abs().flatten()

    def _param(self, name: str) -> nn.Parameter:
        # looked up each time: model.to() may replace Parameter objects
        return self.model.get_parameter(name)

    @staticmethod
    def _key(name: str) -> str:
        return name.replace('.', '__')  # buffer names cannot hold dots

    def _mask(self, name: str) -> torch.Tensor:
        """The mask of ``name``, moved to its weight's device if the model
        moved since (``model.to(...)`` does not see the store)."""
        key, param = self._key(name), self._param(name)
        mask = self.mask_store._buffers[key]
        if mask.device != param.device:
            mask = mask.to(param.device)
            self.mask_store._buffers[key] = mask
        return mask

    @property
    def masks(self) -> Dict[str, torch.Tensor]:
        """``{param name: bool mask}``, live (the buffers themselves)."""
        return {name: self._mask(name) for name in self._names}

    def _set_mask(self, name: str, mask: torch.Tensor) -> None:
        param = self._param(name)
        mask = mask.to(device=param.device, dtype=torch.bool).reshape(
            param.shape)
        if name in self._names:
            self._mask(name).copy_(mask)  # keep the buffer object
        else:
            self.mask_store.register_buffer(self._key(name), mask.clone())
            self._names.append(name)

    def _drop_mask(self, name: str) -> None:
        self.mask_store._buffers.pop(self._key(name), None)
        if name in self._names:
            self._names.remove(name)

    def remove(self) -> None:
        """Forget every mask (the weights keep their zeros)."""
        for name in list(self._names):
            self._drop_mask(name)

    # -------------------------------------------------------------- init
    def compute_densities(
            self, snip_scores: Optional[Dict[str, torch.Tensor]] = None,
            density: Optional[float] = None) -> Dict[str, float]:
        """Per-layer densities of the candidates for the target ``density``
        (default: the engine's)."""
        density = self.density if density is None else density
        shapes = {n: tuple(self._param(n).shape) for n in self.candidates}
        if self.sparse_init == 'uniform':
            return uniform_densities(shapes, density)
        if self.sparse_init == 'ERK':
            return erk_densities(shapes, density, self.erk_power_scale)
        if self.sparse_init == 'snip':
            if snip_scores is None:
                raise ValueError("sparse_init='snip' needs snip_scores (see "
                                 'mmconvarch.sparsity.snip_scores).')
            missing = set(self.candidates) - set(snip_scores)
            if missing:
                raise KeyError(f'snip_scores lack {sorted(missing)[:4]}.')
            return snip_densities({n: snip_scores[n]
                                   for n in self.candidates}, density)
        return {n: int((self._param(n) != 0).sum()) / self._param(n).numel()
                for n in self.candidates}

    @torch.no_grad()
    def init_masks(self,
                   snip_scores: Optional[Dict[str, torch.Tensor]] = None
                   ) -> Dict[str, float]:
        """Compute the layer densities, draw the masks, apply them.

        Returns the realised density of every masked layer.
        """
        self.remove()
        densities = self.compute_densities(snip_scores)
        densities = self._broadcast_densities(densities)
        if self.sparse_init != 'from_weights':
            self._check_no_empty_layer(densities, snip_scores)
        self.densities = {}
        for name in self.candidates:
            param = self._param(name)
            if self.sparse_init == 'from_weights':
                mask = param != 0
            else:
                num = int(round(densities[name] * param.numel()))
                mask = torch.zeros(param.numel(), dtype=torch.bool)
                keep = torch.randperm(param.numel(),
                                      generator=self.generator)[:num]
                mask[keep] = True
            realised = int(mask.sum()) / mask.numel()
            if realised >= self.dense_threshold:
                continue  # official: (nearly) dense layers are not masked
            self.densities[name] = realised
            self._set_mask(name, mask)
        self.sync_masks()
        self.apply_masks()
        return dict(self.densities)

    def _num_kept(self, densities: Dict[str, float]) -> Dict[str, int]:
        return {n: int(round(densities[n] * self._param(n).numel()))
                for n in self.candidates}

    def _check_no_empty_layer(self, densities: Dict[str, float],
                              snip_scores: Optional[Dict[str, torch.Tensor]]
                              ) -> None:
        """One ValueError if ``densities`` keep no weight of some layer
        (which would zero that layer for the whole run), naming the layers
        and the smallest ``density`` that keeps at least one weight in each
        (bisection over the same density rule)."""
        empty = [n for n, k in self._num_kept(densities).items() if k < 1]
        if not empty:
            return

        def keeps_all(density: float) -> bool:
            kept = self._num_kept(self.compute_densities(snip_scores, density))
            return all(k >= 1 for k in kept.values())

        low, high = self.density, 1.0
        if keeps_all(high):
            for _ in range(40):
                mid = (low + high) / 2
                low, high = (low, mid) if keeps_all(mid) else (mid, high)
            fix = f'the smallest density that keeps one is {high:.4g}'
        else:
            fix = (f"no density keeps one under sparse_init={self.sparse_init!r} "
                   "(e.g. SNIP scores all zero: the layer gets no gradient)")
        layers = ', '.join(
            f'{n} ({self._param(n).numel()} weights, layer density '
            f'{densities[n]:.3g})' for n in empty[:6])
        raise ValueError(
            f'density={self.density} ({self.sparse_init}) leaves '
            f'{len(empty)} masked layer(s) without any weight, which would '
            f'zero them for the whole run: {layers}{" ..." if len(empty) > 6 else ""}. '
            f'{fix[0].upper() + fix[1:]}; or keep these layers dense (exclude=<regex>, '
            'only_large_kernel=True, include=<regex>).')

    def _broadcast_densities(self, densities: Dict[str, float]
                             ) -> Dict[str, float]:
        if not self.sync or _dist_world() == 1:
            return densities
        # SNIP sees a different batch on every rank: rank 0 decides
        device = self._param(self.candidates[0]).device
        if dist.get_backend() == 'gloo':
            device = torch.device('cpu')
        vec = torch.tensor([densities[n] for n in self.candidates],
                           dtype=torch.float64, device=device)
        dist.broadcast(vec, src=0)
        return dict(zip(self.candidates, vec.tolist()))

    @torch.no_grad()
    def sync_masks(self) -> None:
        """Broadcast every mask from rank 0 (no-op when not distributed)."""
        if not self.sync or _dist_world() == 1:
            return
        for name, mask in self.masks.items():
            buf = mask.to(torch.uint8)  # bool is not supported by every backend
            dist.broadcast(buf, src=0)
            mask.copy_(buf.bool())

    # ------------------------------------------------------------- apply
    @torch.no_grad()
    def apply_masks(self, weights: bool = True,
                    optimizer_state: Optional[bool] = None) -> None:
        """Zero the weights (and optimizer moments) at masked positions."""
        if optimizer_state is None:
            optimizer_state = self.mask_optimizer_state
        states = [opt.state for opt in self.optimizers] \
            if optimizer_state else []
        # multiplying by the bool mask (instead of masked_fill_): one fused op,
        # exact for finite values (a diverged inf/nan stays nan)
        for name, mask in self.masks.items():
            param = self._param(name)
            if weights:
                param.data.mul_(mask)
            for state in states:
                values = state.get(param)
                if not values:
                    continue
                for key in _MOMENT_KEYS:
                    value = values.get(key)
                    if torch.is_tensor(value) and value.shape == param.shape:
                        value.mul_(mask)

    # ------------------------------------------------------------ update
    def current_prune_rate(self) -> float:
        return cosine_prune_rate(self.steps, self.prune_rate,
                                 self.total_steps, self.min_prune_rate)

    def _due(self, steps: int) -> bool:
        return (self.update_frequency is not None and steps > 0
                and steps % self.update_frequency == 0)

    def update_due(self) -> bool:
        """Whether the topology changes at the current step count."""
        return self._due(self.steps)

    def step(self) -> Optional[Dict[str, float]]:
        """Call after every real optimizer step (skipped AMP steps included,
        accumulation iterations excluded): re-apply the masks, advance the
        schedule and prune/regrow when due. Returns the update's statistics
        when the topology changed, else None.

        Before or after ``optimizer.zero_grad()``: gradient growth ranks
        the gradients kept at the attached optimizer's step (without an
        attached optimizer, ``.grad`` must still be there)."""
        if self.update_frequency is not None and self.total_steps is None:
            raise ValueError('SparseMasking needs total_steps (optimizer '
                             'steps of the run) for the prune-rate decay.')
        self.steps += 1
        try:
            if self.update_due() and self._names:
                # pruned weights must be 0 first: grown ones then start at 0
                self.apply_masks(weights=True, optimizer_state=False)
                return self.update_topology()  # applies the new masks
            self.apply_masks()
            return None
        finally:
            self._grad_scores = {}

    def _growth_scores(self, name: str) -> Optional[torch.Tensor]:
        param = self._param(name)
        if self.growth_mode == 'random':
            return None
        if self.growth_mode == 'gradient':
            if name in self._grad_scores:  # kept at the optimizer step
                return self._grad_scores[name]
            if param.grad is not None:
                return param.grad.abs().flatten()
            if self.optimizers:
                # the attached optimizer did not step before this update
                # (an AMP step skipped for inf/nan gradients): nothing to
                # rank by, regrow at random this once
                self._no_grad.append(name)
                return None
            raise RuntimeError(
                f"growth_mode='gradient' needs {name}.grad at the update: "
                'attach the optimizer (SparseMasking(optimizer=...)) or call '
                'step() before optimizer.zero_grad().')
        for opt in self.optimizers:
            state = opt.state.get(param) or {}
            if 'exp_avg' in state:
                return (state['exp_avg'] / (state['exp_avg_sq'].sqrt() + 1e-8)
                        ).abs().flatten()
            if torch.is_tensor(state.get('momentum_buffer')):
                return state['momentum_buffer'].abs().flatten()
        raise RuntimeError(
            f"growth_mode='momentum' found no exp_avg/momentum_buffer for "
            f'{name}; attach the optimizer (SparseMasking(optimizer=...)).')

    @torch.no_grad()
    def update_topology(self) -> Dict[str, float]:
        """Prune the smallest-magnitude active weights of every masked layer
        (``ceil(rate * active)``) and regrow as many inactive positions.

        Positions pruned and regrown at once keep their value; other grown
        weights start at 0 (as official).
        """
        rate = self.current_prune_rate()
        pruned_total = grown_total = 0
        self._no_grad = []
        for name, mask in self.masks.items():
            param = self._param(name)
            flat_mask = mask.flatten()
            active = int(flat_mask.sum())
            num_remove = min(math.ceil(rate * active), active)
            if num_remove == 0:
                continue
            magnitude = param.detach().abs().flatten()
            # prune: smallest |w| among active weights
            pruned = _choose(num_remove, flat_mask, -magnitude, self.generator)
            new_mask = flat_mask.clone()
            new_mask[pruned] = False
            # grow exactly as many among all inactive positions (the
            # just-pruned ones included, as official)
            grow = _choose(num_remove, ~new_mask, self._growth_scores(name),
                           self.generator)
            new_mask[grow] = True
            mask.copy_(new_mask.view_as(mask))
            pruned_total += num_remove
            grown_total += int(grow.numel())
        if self._no_grad:
            warnings.warn(
                f"SparseMasking growth_mode='gradient': no gradient of "
                f'{len(self._no_grad)} layer(s) (e.g. {self._no_grad[0]}) at '
                f'step {self.steps} (the optimizer step before it was '
                'skipped?); they regrow at random this time.')
        self._grad_scores = {}
        self.sync_masks()
        self.apply_masks()
        return dict(prune_rate=rate, pruned=pruned_total, regrown=grown_total,
                    density=self.total_density())

    # ------------------------------------------------------------- stats
    def layer_densities(self) -> Dict[str, float]:
        return {n: int(m.sum()) / m.numel() for n, m in self.masks.items()}

    def num_active(self) -> int:
        return sum(int(m.sum()) for m in self.masks.values())

    def total_density(self, include_dense: bool = True) -> float:
        """Active fraction of every candidate weight (layers left dense
        count as dense; the quantity ERK/SNIP target), or with
        ``include_dense=False`` of the masked layers only."""
        masks = self.masks
        names = self.candidates if include_dense else list(masks)
        total = sum(self._param(n).numel() for n in names)
        active = sum(int(masks[n].sum()) if n in masks else
                     self._param(n).numel() for n in names)
        return active / max(total, 1)

    # ------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        """Masks (CPU bool), step count, generator state and settings."""
        return dict(
            masks={n: m.detach().cpu().clone() for n, m in self.masks.items()},
            densities=dict(self.densities),
            steps=self.steps,
            generator=self.generator.get_state(),
            total_steps=self.total_steps,
            prune_rate=self.prune_rate,
            update_frequency=self.update_frequency)

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Restore masks, step and generator; masks are re-applied."""
        names = {n for n, _ in self.model.named_parameters()}
        unknown = set(state['masks']) - names
        if unknown:
            raise KeyError(f'sparsity state has masks for parameters this '
                           f'model lacks: {sorted(unknown)[:4]}.')
        self.remove()
        for name, mask in state['masks'].items():
            self._set_mask(name, mask)
        self.densities = dict(state.get('densities', {}))
        self.steps = int(state['steps'])
        self.generator.set_state(state['generator'])
        self.apply_masks()



__all__: Sequence[str] = ['SparseMasking', 'check_masking_args',
                          'cosine_prune_rate']
