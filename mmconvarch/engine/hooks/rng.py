"""Random state that depends only on (seed, position), so a resumed run reproduces the
uninterrupted one."""
import functools
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmconvarch.registry import HOOKS

__all__ = ['StepSeedHook', 'step_seed']

_TAGS = {'epoch': 0, 'iter': 1, 'workers': 2}


def step_seed(seed: int, tag: str, position: int) -> int:
    """The 31-bit seed of ``tag`` (``'epoch'``, ``'iter'`` or ``'workers'``) at ``position`` (an
    epoch or iteration index) of a run seeded with ``seed`` (numpy's ``SeedSequence`` mixing)."""
    entropy = [int(seed) % 2**64, _TAGS[tag], int(position)]
    # 31 bits: mmengine's worker_init_fn adds worker and rank offsets, numpy takes < 2**32
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0]) >> 1


def _seed_everything(value: int) -> None:
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)  # the CPU generator and every CUDA device's


@HOOKS.register_module()
class StepSeedHook(Hook):
    """Reseed the global random generators from the run's seed and the position in training.

    mmengine's checkpoints hold no random state, and whatever state a restored one would hold
    is out of date by the time training goes on: the checkpoint is written in
    ``after_train_epoch``, before validation draws from the torch generator. So instead of saving
    state, this hook makes every training step's randomness a function of (``runner.seed``,
    epoch, iteration) only, never of what ran before:

    - ``before_train_epoch``: python ``random``, numpy's global generator and torch (CPU and
      every CUDA device) are seeded from (seed, epoch); this covers the data loader's base seed,
      the sampler-independent draws of the main process and the first batch of the epoch.
    - ``before_train_iter``: the same from (seed, iteration): batch augments (mmpretrain's
      Mixup/CutMix draw lambda from numpy and the permutation from torch), drop path, dropout.
    - the train data loader's worker seeds (mmengine's ``worker_init_fn``) become
      (seed, epoch)-dependent, so each epoch's augmentations differ and a resumed epoch's
      workers start where the uninterrupted run's did. Persistent workers (``persistent_workers
      =True`` with ``num_workers > 0``) keep their generators across epochs, which a resumed
      run cannot restore: a warning says so, the main-process part is still exact.
    - ``before_train`` sets the train sampler's seed to the run's seed: mmengine builds the
      loader before ``--resume`` restores the checkpoint's seed, so with ``randomness.seed``
      unset a resumed run would otherwise shuffle with a fresh random seed.

    Iteration-based loops (``IterBasedTrainLoop``) re-read the skipped batches on resume;
    their batch augments and model randomness are exact, random data transforms are not.
    """

    priority = 'VERY_HIGH'  # before any hook that might draw in the same stage

    def __init__(self) -> None:
        self._warned_persistent = False

    @staticmethod
    def _base_seed(runner) -> int:
        seed = runner.seed
        # diff_rank_seed adds the rank to the seed; the sampler must shuffle alike on every rank
        if runner._randomness_cfg.get('diff_rank_seed', False):
            seed -= get_rank()
        return seed

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        sampler = getattr(loader, 'sampler', None)
        if sampler is not None and hasattr(sampler, 'seed'):
            sampler.seed = self._base_seed(runner)
        if getattr(loader, 'num_workers', 0) > 0 and \
                getattr(loader, 'persistent_workers', False):
            print_log(
                'StepSeedHook: train_dataloader has persistent_workers=True, so its workers keep '
                'their random state across epochs and a resumed run restarts it; random data '
                'transforms will not match the uninterrupted run (batch augments and the model '
                'will). Set train_dataloader.persistent_workers=False for an exact resume.',
                logger='current', level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        _seed_everything(step_seed(runner.seed, 'epoch', runner.epoch))
        loader = runner.train_dataloader
        init_fn = getattr(loader, 'worker_init_fn', None)
        if getattr(loader, 'num_workers', 0) > 0 and \
                not getattr(loader, 'persistent_workers', False) and \
                isinstance(init_fn, functools.partial) and 'seed' in init_fn.keywords:
            loader.worker_init_fn = functools.partial(
                init_fn.func, *init_fn.args,
                **{**init_fn.keywords,
                   'seed': step_seed(self._base_seed(runner), 'workers', runner.epoch)})

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        _seed_everything(step_seed(runner.seed, 'iter', runner.iter))
