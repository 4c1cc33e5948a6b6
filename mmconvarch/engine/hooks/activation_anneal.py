"""VanillaNet "deep training": anneal the leaky-ReLU slope λ from 0 to 1."""
import math
import numbers
from typing import Optional

from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop

from mmconvarch.models.backbones.vanillanet import set_act_learn
from mmconvarch.registry import HOOKS

__all__ = ['ActivationAnnealHook', 'act_learn_at']

SCHEDULES = ('linear', 'cosine')


def act_learn_at(progress: int, decay: int, schedule: str = 'linear') -> float:
    """λ after ``progress`` of ``decay`` epochs/iterations (official
    ``main.py``): ``t / T`` (linear) or ``(1 - cos(pi t / T)) / 2``
    (cosine), then 1 from ``t >= T`` on."""
    ratio = min(max(progress / decay, 0.), 1.)
    if schedule == 'linear':
        return ratio
    return 0.5 * (1. - math.cos(math.pi * ratio))


@HOOKS.register_module()
class ActivationAnnealHook(Hook):
    """Anneal VanillaNet's λ (``act_learn``) from 0 (ReLU) to 1 (identity).

    λ is the negative slope of the leaky ReLU between the two 1x1 convs of
    each block (and after the stem and the classifier's first layer). At the
    start of epoch ``e`` (0-based, as the runner counts) it is set to
    ``e / decay_epochs`` (official default: 100 of 300 epochs), or, with
    ``decay_iters``, before iteration ``i`` to ``i / decay_iters`` (for
    iteration-based loops such as mmseg's). Once it reaches 1 the model can be
    fused with ``switch_to_deploy()``.

    λ is written into every ``act_learn`` buffer of the model (backbone and
    :class:`VanillaNetClsHead`), so checkpoints carry it, and into the EMA
    copy of any :class:`mmengine.hooks.EMAHook` (official EMA copies keep λ=1
    throughout, which evaluates the EMA weights with the wrong activation).
    It is logged as ``act_learn`` with every training log line.

    Args:
        decay_epochs (int, optional): Epochs until λ = 1. Defaults to 100.
        decay_iters (int, optional): Iterations until λ = 1; use instead of
            ``decay_epochs`` (set that to None) for iteration-based schedules.
        schedule (str): ``'linear'`` (official default) or ``'cosine'``
            (official ``--decay_linear False``).

    The arguments are checked when the hook is built: a ``TypeError`` for
    a decay length that is not an int (``True`` included), a
    ``ValueError`` for one that is not positive, for both or neither of
    them set, and for an unknown ``schedule``.
    """

    priority = 'NORMAL'  # after EMAHook (ABOVE_NORMAL) built its copy

    def __init__(self, decay_epochs: Optional[int] = 100,
                 decay_iters: Optional[int] = None,
                 schedule: str = 'linear') -> None:
        for name, value in (('decay_epochs', decay_epochs),
                            ('decay_iters', decay_iters)):
            if value is None:
                continue
            if not isinstance(value, numbers.Integral) or isinstance(
                    value, bool):
                raise TypeError(
                    f'ActivationAnnealHook {name} must be a positive int or '
                    f'None, got {value!r} ({type(value).__name__}).')
            if value <= 0:
                raise ValueError(f'ActivationAnnealHook {name} must be a '
                                 f'positive int or None, got {value!r}.')
        if (decay_epochs is None) == (decay_iters is None):
            raise ValueError(
                'ActivationAnnealHook needs exactly one of decay_epochs and '
                f'decay_iters, got decay_epochs={decay_epochs!r}, '
                f'decay_iters={decay_iters!r} (use decay_epochs=None with '
                'decay_iters).')
        decay = decay_epochs if decay_iters is None else decay_iters
        if not isinstance(schedule, str) or schedule not in SCHEDULES:
            raise ValueError(f'ActivationAnnealHook schedule must be one of '
                             f'{SCHEDULES}, got {schedule!r}.')
        self.by_epoch = decay_iters is None
        self.decay = int(decay)
        self.schedule = schedule
        self.act_learn: Optional[float] = None

    def value(self, progress: int) -> float:
        return act_learn_at(progress, self.decay, self.schedule)

    def before_train(self, runner) -> None:
        if self.by_epoch and isinstance(runner.train_loop, IterBasedTrainLoop):
            raise ValueError(
                'ActivationAnnealHook(decay_epochs=...) needs an epoch-based '
                'train loop; this runner is iteration-based, so use '
                'decay_epochs=None, decay_iters=N.')
        self._apply(runner, runner.epoch if self.by_epoch else runner.iter,
                    log=True)

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._apply(runner, runner.epoch, log=True)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self.by_epoch:
            self._apply(runner, runner.iter, log=False)

    def _apply(self, runner, progress: int, log: bool) -> None:
        value = self.value(progress)
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        if set_act_learn(model, value) == 0:
            raise RuntimeError(
                f'ActivationAnnealHook: {type(model).__name__} has no '
                'act_learn buffer, i.e. no train-form VanillaNet (deploy=True '
                'models have nothing to anneal).')
        for hook in runner.hooks:  # keep EMA copies on the same λ
            if isinstance(hook, EMAHook) and hasattr(hook, 'ema_model'):
                set_act_learn(hook.ema_model, value)
        runner.message_hub.update_scalar('train/act_learn', value)
        changed = value != self.act_learn
        self.act_learn = value
        if changed and (log or value == 1.):
            unit = 'epoch' if self.by_epoch else 'iter'
            runner.logger.info(
                f'ActivationAnnealHook: {unit} {progress}: act_learn (λ) = '
                f'{value:.4f} ({self.schedule}, 1 from {unit} {self.decay})')
