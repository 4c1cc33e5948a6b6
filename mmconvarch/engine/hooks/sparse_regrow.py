"""SparseRegrowHook: SLaK's dynamic sparsity driven by an mmengine runner.

Thin: the schedule, masks and prune/regrow live in
:class:`mmconvarch.sparsity.SparseMasking`; the hook decides *when*
(after every real optimizer step), builds the SNIP loss from the runner's
model and data, and keeps the engine's state in the checkpoint.
"""
import math
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from mmconvarch.registry import HOOKS
from mmconvarch.sparsity import SparseMasking, check_masking_args, snip_scores

__all__ = ['SparseRegrowHook']

CHECKPOINT_KEY = 'sparse_regrow'


@HOOKS.register_module()
class SparseRegrowHook(Hook):
    """Dynamic sparse training (SLaK): masks, magnitude prune and regrow.

    - ``before_train``: build the masks (ERK/SNIP/uniform/from_weights) and
      zero the pruned weights, or restore them from the resumed checkpoint.
    - ``after_train_iter``: on iterations where the optimizer wrapper
      updated (``should_update()``: gradient-accumulation iterations do not
      count; an AMP step skipped for inf/nan gradients does, as the lr
      schedule does) re-apply the masks to the weights and optimizer
      moments, advance the cosine prune-rate schedule and prune/regrow every
      ``update_frequency`` steps. The official code never calls its mask
      step under AMP (masks silently stop); here AMP changes nothing.
      mmengine's ``OptimWrapper.update_params`` zeroes the gradients right
      after the optimizer step, before this hook runs: gradient growth
      ranks the ``|grad|`` that the engine keeps from a step post-hook on
      the optimizer (only on steps followed by an update).
    - ``before_save_checkpoint``/``after_load_checkpoint``: masks, step and
      generator state go into ``checkpoint['sparse_regrow']``, so a resumed
      run reproduces the masks of an uninterrupted one.
    - Under DDP the engine's generator is seeded identically on every rank
      and densities/masks are broadcast from rank 0 after every change.
    - Density, prune rate and pruned/regrown counts are logged (message hub
      scalars ``train/sparsity_*`` and an info line per update).

    - With an ``EMAHook`` (``mask_ema=True``) the EMA weights are masked too,
      so they are exactly zero where the model is (the official sparse-aware
      EMA). Priority ``HIGH``: before the EMA update (mmpretrain configs:
      ``ABOVE_NORMAL``), which then averages masked weights.

    Args:
        density (float): Target density (1 - sparsity). Official: 0.6.
        sparse_init (str): ``'snip'`` (official default), ``'ERK'``,
            ``'uniform'`` or ``'from_weights'`` (mask = loaded weight != 0:
            sparse fine-tuning from a sparse checkpoint).
        prune_rate (float): Initial prune rate. Official: 0.3 (S/B), 0.5 (T).
        update_frequency (int, optional): Optimizer steps between
            prune/regrow (official ``-u``: 100 S/B, 2000 T). None: fixed
            masks (official ``--fix`` and the downstream ``sparse=True``).
        growth_mode (str): ``'random'`` (official), ``'gradient'``
            (largest ``|grad|`` of the optimizer step before the update) or
            ``'momentum'`` (largest SGD ``|momentum_buffer|`` or Adam(W)
            ``|exp_avg| / sqrt(exp_avg_sq)``).
        prune_mode (str): ``'magnitude'``.
        min_prune_rate (float): End of the cosine decay. Defaults to 0.005.
        total_steps (int, optional): Decay period in optimizer steps; by
            default ``ceil(max_iters / accumulative_counts)`` of the run.
        module (str, optional): Sparsify only this submodule of the model
            (e.g. ``'backbone'``); None: the whole model, as the official
            classification code (head included). A name the model lacks
            raises one ValueError listing its submodules, in
            ``before_train``.
        only_large_kernel (bool): Official ``--only-L``.
        include, exclude (str, optional): Regexes on parameter names
            (relative to ``module``).
        dense_threshold (float): Layers initialised at least this dense stay
            dense. Defaults to 0.99.
        mask_optimizer_state (bool, optional): Zero SGD ``momentum_buffer``
            and Adam(W) ``exp_avg``/``exp_avg_sq`` at pruned positions after
            every step. None (default): True, except under momentum growth,
            which ranks pruned positions by those moments and so keeps them
            (True with ``growth_mode='momentum'`` is refused).
        erk_power_scale (float): ERK exponent. Defaults to 1.
        seed (int): Seed of the engine's generator (same on every rank).
        mask_ema (bool): Also mask the EMA model of an ``EMAHook``.
            Defaults to True.

    Every argument is checked here, when the hook is built (not at the
    first iteration): a ``TypeError``/``ValueError`` names the argument and
    its valid values or range (``density`` in (0, 1], ``prune_rate`` in
    [0, 1), ``update_frequency`` a positive int or None, the modes from
    :data:`mmconvarch.sparsity.masking.SPARSE_INITS` / ``GROWTH_MODES`` /
    ``PRUNE_MODES``, ...).
    """

    priority = 'HIGH'

    def __init__(self,
                 density: float = 0.6,
                 sparse_init: str = 'snip',
                 prune_rate: float = 0.3,
                 update_frequency: Optional[int] = 100,
                 growth_mode: str = 'random',
                 prune_mode: str = 'magnitude',
                 min_prune_rate: float = 0.005,
                 total_steps: Optional[int] = None,
                 module: Optional[str] = None,
                 only_large_kernel: bool = False,
                 include: Optional[str] = None,
                 exclude: Optional[str] = None,
                 dense_threshold: float = 0.99,
                 mask_optimizer_state: Optional[bool] = None,
                 erk_power_scale: float = 1.0,
                 seed: int = 0,
                 mask_ema: bool = True) -> None:
        self.engine_kwargs = dict(
            density=density, sparse_init=sparse_init, prune_rate=prune_rate,
            update_frequency=update_frequency, growth_mode=growth_mode,
            prune_mode=prune_mode, min_prune_rate=min_prune_rate,
            only_large_kernel=only_large_kernel, include=include,
            exclude=exclude, dense_threshold=dense_threshold,
            mask_optimizer_state=mask_optimizer_state,
            erk_power_scale=erk_power_scale, seed=seed)
        check_masking_args(total_steps=total_steps, sync=True,
                           **self.engine_kwargs)
        if module is not None and not isinstance(module, str):
            raise TypeError(f'module must be a submodule name (e.g. '
                            f"'backbone') or None, got {module!r}.")
        if not isinstance(mask_ema, bool):
            raise TypeError(f'mask_ema must be True or False, got '
                            f'{mask_ema!r}.')
        self.total_steps = total_steps
        self.module = module
        self.mask_ema = mask_ema
        self.engine: Optional[SparseMasking] = None
        self._resume_state: Optional[dict] = None

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @staticmethod
    def _optim_wrappers(runner) -> Sequence:
        ow = runner.optim_wrapper
        if isinstance(ow, OptimWrapperDict):
            return list(ow.values())
        return [ow]

    def _total_steps(self, runner) -> int:
        if self.total_steps is not None:
            return self.total_steps
        accum = getattr(self._optim_wrappers(runner)[0],
                        '_accumulative_counts', 1)
        return max(1, math.ceil(runner.max_iters / accum))

    def _snip_scores(self, runner, prefix: str):
        model = self._model(runner)
        batch = next(iter(runner.train_dataloader))

        def loss_fn(replica):
            data = replica.data_preprocessor(batch, True)
            loss, _ = replica.parse_losses(replica(**data, mode='loss'))
            return loss

        names = [prefix + n for n in self.engine.candidates]
        scores = snip_scores(model, names, loss_fn)
        return {n[len(prefix):]: s for n, s in scores.items()}

    def _mask_ema(self, runner) -> None:
        """Zero the EMA weights where the masks are: the EMA update then
        averages two zeros there."""
        prefix = f'{self.module}.' if self.module else ''
        for hook in getattr(runner, 'hooks', ()):
            ema = getattr(hook, 'ema_model', None)
            if ema is None or not hasattr(ema, 'module'):
                continue
            params = dict(ema.module.named_parameters())
            for name, mask in self.engine.masks.items():
                param = params.get(prefix + name)
                if param is not None and param.shape == mask.shape:
                    param.data.masked_fill_(~mask.to(param.device), 0)

    def _log(self, runner, stats: dict, what: str) -> None:
        for key, value in stats.items():
            runner.message_hub.update_scalar(f'train/sparsity_{key}', value)
        text = ', '.join(f'{k} {v:.4g}' if isinstance(v, float) else
                         f'{k} {v}' for k, v in stats.items())
        runner.logger.info(f'SparseRegrowHook {what} (step '
                           f'{self.engine.steps}): {text}')

    # -------------------------------------------------------------- hooks
    def _target(self, model):
        """The submodule ``self.module`` names (the model itself for None),
        or one ValueError listing the submodules there are."""
        if not self.module:
            return model
        try:
            return model.get_submodule(self.module)
        except AttributeError:
            names = [n for n, _ in model.named_children()]
            raise ValueError(
                f'SparseRegrowHook module={self.module!r}: the model '
                f'({type(model).__name__}) has no such submodule; its '
                f'submodules are {names} (a dotted path below one of them, '
                "e.g. 'backbone.stages', works too), or None for the whole "
                'model.') from None

    def before_train(self, runner) -> None:
        model = self._model(runner)
        target = self._target(model)
        prefix = f'{self.module}.' if self.module else ''
        if self.engine is not None:  # a second train(): drop the old hooks
            self.engine.detach_optimizers()
        self.engine = SparseMasking(target, total_steps=self._total_steps(
            runner), **self.engine_kwargs)
        for wrapper in self._optim_wrappers(runner):
            self.engine.attach_optimizer(wrapper.optimizer)
        if self._resume_state is not None:
            self.engine.load_state_dict(self._resume_state)
            self._resume_state = None
            what = 'resumed masks'
        else:
            scores = self._snip_scores(runner, prefix) \
                if self.engine.sparse_init == 'snip' else None
            self.engine.init_masks(scores)
            what = f'initialised masks ({self.engine.sparse_init})'
        self._log(runner, dict(
            density=self.engine.total_density(),
            masked_layers=len(self.engine.masks),
            dense_layers=len(self.engine.candidates) - len(self.engine.masks),
            total_steps=self.engine.total_steps), what)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self.engine is None:
            return
        if not any(w.should_update() for w in self._optim_wrappers(runner)):
            return  # gradient accumulation: no optimizer step this iteration
        stats = self.engine.step()
        if self.mask_ema:
            self._mask_ema(runner)
        if stats is not None:
            self._log(runner, stats, 'prune/regrow')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.engine is not None:
            checkpoint[CHECKPOINT_KEY] = self.engine.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY not in checkpoint:
            return
        if getattr(runner, '_resume', False):
            self._resume_state = checkpoint[CHECKPOINT_KEY]
        else:  # load_from: new run, new schedule
            runner.logger.info(
                'SparseRegrowHook: the loaded checkpoint has sparsity state '
                "but this is not a resume; masks are built anew (use "
                "sparse_init='from_weights' to keep its zeros).")
