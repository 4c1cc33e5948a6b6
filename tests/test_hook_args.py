"""Every argument of SparseRegrowHook and ActivationAnnealHook is checked
when the hook is built (from a config, before any training), with one
TypeError/ValueError that names the argument and its valid values."""
import re

import pytest
import torch.nn as nn
from mmengine.registry import HOOKS

from mmconvarch.engine.hooks import ActivationAnnealHook, SparseRegrowHook
from mmconvarch.sparsity import SparseMasking

SPARSE_BAD = [
    # (argument, bad value, exception, message)
    ('density', 1.5, ValueError, r'density must be in (0, 1]'),
    ('density', 0, ValueError, r'density must be in (0, 1]'),
    ('density', float('nan'), ValueError, r'density must be in (0, 1]'),
    ('density', '0.6', TypeError, r'density must be a number in (0, 1]'),
    ('density', True, TypeError, r'density must be a number in (0, 1]'),
    ('sparse_init', 'GMP', ValueError,
     "sparse_init must be one of ('ERK', 'uniform', 'snip', 'from_weights')"),
    ('sparse_init', None, ValueError, 'sparse_init must be one of'),
    ('prune_rate', 1.0, ValueError, r'prune_rate must be in [0, 1)'),
    ('prune_rate', -0.1, ValueError, r'prune_rate must be in [0, 1)'),
    ('prune_rate', None, TypeError, r'prune_rate must be a number in [0, 1)'),
    ('update_frequency', 0, ValueError,
     'update_frequency must be a positive int (optimizer steps between '
     'prune/regrow; None: fixed masks) or None, got 0'),
    ('update_frequency', 2.5, TypeError,
     'update_frequency must be a positive int'),
    ('update_frequency', True, TypeError,
     'update_frequency must be a positive int'),
    ('growth_mode', 'magic', ValueError,
     "growth_mode must be one of ('random', 'gradient', 'momentum'), "
     "got 'magic'"),
    ('prune_mode', 'SET', ValueError,
     "prune_mode must be one of ('magnitude',)"),
    ('min_prune_rate', 0.5, ValueError,
     r'min_prune_rate must be in [0, 0.3] (0 <= min_prune_rate <= '
     r'prune_rate), got 0.5'),
    ('min_prune_rate', -1e-3, ValueError, r'min_prune_rate must be in'),
    ('total_steps', 0, ValueError, 'total_steps must be a positive int'),
    ('total_steps', '100', TypeError, 'total_steps must be a positive int'),
    ('module', 3, TypeError, 'module must be a submodule name'),
    ('only_large_kernel', 'yes', TypeError,
     'only_large_kernel must be True or False'),
    ('include', '(unclosed', ValueError, 'include is not a valid regex'),
    ('include', 5, TypeError, 'include must be a regex string or None'),
    ('exclude', '[', ValueError, 'exclude is not a valid regex'),
    ('dense_threshold', 0, ValueError, r'dense_threshold must be in (0, 1]'),
    ('dense_threshold', 1.2, ValueError,
     r'dense_threshold must be in (0, 1]'),
    ('mask_optimizer_state', 1, TypeError,
     'mask_optimizer_state must be True, False or None'),
    ('erk_power_scale', -1, ValueError,
     r'erk_power_scale must be in [0, inf)'),
    ('erk_power_scale', 'one', TypeError, 'erk_power_scale must be a number'),
    ('seed', 1.5, TypeError, 'seed must be an int'),
    ('mask_ema', None, TypeError, 'mask_ema must be True or False'),
]


@pytest.mark.parametrize('arg,value,error,message', SPARSE_BAD,
                         ids=[f'{a}={v!r}' for a, v, *_ in SPARSE_BAD])
def test_sparse_regrow_hook_checks_each_argument(arg, value, error, message):
    with pytest.raises(error, match=re.escape(message)):
        SparseRegrowHook(**{arg: value})
    # the same at build time from a config, before any runner exists
    with pytest.raises(error, match=re.escape(message)):
        HOOKS.build(dict(type='mmconvarch.SparseRegrowHook', **{arg: value}))


def test_momentum_growth_with_masked_moments_is_refused():
    with pytest.raises(ValueError, match=re.escape(
            "mask_optimizer_state=True cannot be combined with growth_mode="
            "'momentum'")):
        SparseRegrowHook(growth_mode='momentum', mask_optimizer_state=True)
    for ok in (None, False):
        SparseRegrowHook(growth_mode='momentum', mask_optimizer_state=ok)


def test_sparse_regrow_hook_good_arguments():
    hook = SparseRegrowHook(density=1, sparse_init='erk', prune_rate=0,
                            min_prune_rate=0, update_frequency=None,
                            total_steps=10, module='backbone', include='x',
                            exclude=None, dense_threshold=1,
                            erk_power_scale=0, seed=-3, mask_ema=False)
    assert hook.engine is None  # the engine is built in before_train


def test_engine_checks_its_own_arguments():
    """The plain-torch engine takes the same checks (and its two own)."""
    net = nn.Linear(4, 4)
    for arg, value, error, message in SPARSE_BAD:
        if arg in ('module', 'mask_ema'):  # hook-only
            continue
        with pytest.raises(error, match=re.escape(message)):
            SparseMasking(net, **{arg: value})
    with pytest.raises(TypeError, match='sync must be True or False'):
        SparseMasking(net, sync='no')
    with pytest.raises(TypeError, match='model must be an nn.Module'):
        SparseMasking({'weight': 1})
    with pytest.raises(TypeError, match='optimizer must be a torch.optim'):
        SparseMasking(net, optimizer=object())


ANNEAL_BAD = [
    (dict(decay_epochs=0), ValueError,
     'decay_epochs must be a positive int or None, got 0'),
    (dict(decay_epochs=-5), ValueError, 'decay_epochs must be a positive int'),
    (dict(decay_epochs=2.5), TypeError,
     'decay_epochs must be a positive int or None, got 2.5 (float)'),
    (dict(decay_epochs=True), TypeError,
     'decay_epochs must be a positive int or None, got True (bool)'),
    (dict(decay_epochs=None, decay_iters=0), ValueError,
     'decay_iters must be a positive int or None, got 0'),
    (dict(decay_epochs=None, decay_iters='100'), TypeError,
     'decay_iters must be a positive int or None'),
    (dict(decay_epochs=10, decay_iters=100), ValueError,
     'needs exactly one of decay_epochs and decay_iters'),
    (dict(decay_epochs=None), ValueError,
     'needs exactly one of decay_epochs and decay_iters'),
    (dict(schedule='exp'), ValueError,
     "schedule must be one of ('linear', 'cosine'), got 'exp'"),
    (dict(schedule=None), ValueError, 'schedule must be one of'),
]


@pytest.mark.parametrize('kwargs,error,message', ANNEAL_BAD,
                         ids=[repr(k) for k, *_ in ANNEAL_BAD])
def test_activation_anneal_hook_checks_each_argument(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        ActivationAnnealHook(**kwargs)
    with pytest.raises(error, match=re.escape(message)):
        HOOKS.build(dict(type='mmconvarch.ActivationAnnealHook', **kwargs))


def test_activation_anneal_hook_good_arguments():
    hook = ActivationAnnealHook(decay_epochs=None, decay_iters=40,
                                schedule='cosine')
    assert (hook.by_epoch, hook.decay, hook.schedule) == (False, 40, 'cosine')
    assert ActivationAnnealHook().decay == 100
