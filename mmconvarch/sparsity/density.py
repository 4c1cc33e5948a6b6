"""Per-layer densities for sparse initialisation: uniform, ERK and SNIP
(the official ``sparse_core.Masking.init`` modes), as plain functions of
tensor shapes or scores."""
import copy
import math
from typing import Callable, Dict, Sequence

import torch
import torch.nn as nn

Shapes = Dict[str, Sequence[int]]


def _check_density(density: float) -> None:
    if not 0. < density <= 1.:
        raise ValueError(f'density must be in (0, 1], got {density!r} '
                         '(density = 1 - sparsity; SLaK uses 0.6).')


def uniform_densities(shapes: Shapes, density: float) -> Dict[str, float]:
    """Every layer at ``density``."""
    _check_density(density)
    return {name: float(density) for name in shapes}


def erk_raw_probabilities(shapes: Shapes,
                          erk_power_scale: float = 1.0) -> Dict[str, float]:
    """ERK's un-normalised layer probabilities ``(sum(shape)/prod(shape))^p``
    (for 4-D kernels the kernel height/width are in both sums)."""
    return {name: (sum(shape) / math.prod(shape))**erk_power_scale
            for name, shape in shapes.items()}


def erk_densities(shapes: Shapes, density: float,
                  erk_power_scale: float = 1.0) -> Dict[str, float]:
    """Erdos-Renyi-Kernel densities (the official ``fixed_ERK``).

    Layer ``l`` gets ``eps * raw_l`` with ``eps`` chosen so that the total
    number of non-zeros is ``density * total``; a layer whose density would
    exceed 1 becomes dense and ``eps`` is solved again for the others.
    """
    _check_density(density)
    if not shapes:
        return {}
    raw = erk_raw_probabilities(shapes, erk_power_scale)
    numel = {name: math.prod(shape) for name, shape in shapes.items()}
    dense = set()
    while True:
        # sparse layers share what the dense ones leave of the budget
        rhs = sum(numel[n] * density - (numel[n] if n in dense else 0.)
                  for n in shapes)
        divisor = sum(raw[n] * numel[n] for n in shapes if n not in dense)
        if divisor == 0:  # everything dense
            break
        eps = rhs / divisor
        max_prob = max(raw[n] for n in shapes if n not in dense)
        if max_prob * eps <= 1:
            break
        dense.update(n for n in shapes
                     if n not in dense and raw[n] == max_prob)
    return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}


def snip_scores(model: nn.Module, names: Sequence[str],
                loss_fn: Callable[[nn.Module], torch.Tensor]
                ) -> Dict[str, torch.Tensor]:
    """``|w * dL/dw|`` of the named parameters on one batch.

    Computed on a deep copy (as official), so neither the model's gradients
    nor its BN statistics change. ``loss_fn(model_copy)`` returns the loss.
    """
    replica = copy.deepcopy(model)
    replica.train()
    params = dict(replica.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f'snip_scores: parameters {missing[:4]} not found.')
    wanted = [params[n] for n in names]
    for p in wanted:
        p.requires_grad_(True)
    loss = loss_fn(replica)
    grads = torch.autograd.grad(loss, wanted, allow_unused=True)
    scores = {}
    for name, p, g in zip(names, wanted, grads):
        g = torch.zeros_like(p) if g is None else g
        scores[name] = (p.detach() * g).abs()
    del replica
    return scores


def snip_densities(scores: Dict[str, torch.Tensor],
                   density: float) -> Dict[str, float]:
    """Layer densities from global SNIP: keep the ``density`` fraction of
    all weights with the highest score; a layer's density is its share of
    the kept weights (official: only the ratios are used, the positions are
    drawn at random)."""
    _check_density(density)
    if not scores:
        return {}
    flat = torch.cat([s.flatten().float().cpu() for s in scores.values()])
    num_keep = int(flat.numel() * density)
    if num_keep == 0:
        raise ValueError('snip: density too low, nothing kept.')
    threshold = torch.topk(flat, num_keep, sorted=True).values[-1]
    return {name: int((s > threshold).sum()) / s.numel()
            for name, s in scores.items()}
