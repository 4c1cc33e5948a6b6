"""SparseRegrowHook with the real mmengine Runner on the sample set, using
configs/slak/slak_t_in1k.py with a tiny SLaK: kill-and-resume equality,
gradient accumulation, AMP-like skipped steps, logging, gradient growth."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner import Runner

from conftest import REPO
from mmconvarch.checkpoint import safe_checkpoint_loading
from mmconvarch.engine.hooks import SparseRegrowHook
from mmconvarch.utils.sample_data import apply_sample_data
from test_sparsity import CPUAmpOptimWrapper

CONFIG = osp.join(REPO, 'configs/slak/slak_t_in1k.py')
EPOCHS, ITERS_PER_EPOCH, FREQ = 4, 4, 3  # 8 images, batch 2
pytestmark = pytest.mark.usefixtures('single_thread')


class KillAfterEpoch(Hook):
    """Dies right after the checkpoint of ``epoch`` was written."""

    def __init__(self, epoch):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:
            raise KeyboardInterrupt('killed')


@OPTIM_WRAPPERS.register_module(force=True)
class SkippingCPUAmpOptimWrapper(CPUAmpOptimWrapper):
    """bf16 autocast + a CPU GradScaler whose 2nd step overflows."""

    def optim_context(self, model):
        from contextlib import ExitStack
        stack = ExitStack()
        stack.enter_context(super().optim_context(model))
        stack.enter_context(torch.autocast('cpu', dtype=torch.bfloat16))
        return stack

    def step(self, **kwargs):
        if self._inner_count == 2:  # overflow -> the scaler skips the step
            next(p for g in self.param_groups for p in g['params']
                 if p.grad is not None).grad.view(-1)[0] = float('inf')
        super().step(**kwargs)


def make_cfg(sample_root, work_dir, **options):
    cfg = Config.fromfile(CONFIG)
    apply_sample_data(cfg, root=sample_root, img_size=64, batch_size=2)
    cfg.model.backbone.update(
        arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 24, 32]),
        width_factor=1.0, kernel_size=[13, 11, 9, 7, 3], drop_path_rate=0.,
        norm_cfg=dict(type='BN'))
    cfg.model.head.update(in_channels=32, num_classes=3)
    cfg.model.train_cfg = None  # mixup/cutmix draw from the global RNG
    cfg.custom_hooks = [dict(
        type='mmconvarch.SparseRegrowHook', density=0.5, sparse_init='snip',
        prune_rate=0.5, update_frequency=FREQ)]
    cfg.train_cfg = dict(by_epoch=True, max_epochs=EPOCHS, val_interval=100)
    cfg.default_hooks.checkpoint.update(interval=1, by_epoch=True)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(options)
    return cfg


def run(cfg, kill_at=None):
    runner = Runner.from_cfg(cfg)
    if kill_at is not None:
        runner.register_hook(KillAfterEpoch(kill_at), priority='LOWEST')
    with safe_checkpoint_loading():  # resume/load_from on torch>=2.6, as tools/train.py
        runner.train()
    return runner


def sparse_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, SparseRegrowHook))


def final_state(work_dir):
    ckpt = torch.load(osp.join(work_dir, f'epoch_{EPOCHS}.pth'),
                      weights_only=False)
    return ckpt['state_dict'], ckpt['sparse_regrow'], ckpt


def test_kill_and_resume_reproduces_masks(tmp_path, sample_root):
    full = tmp_path / 'full'
    runner = run(make_cfg(sample_root, full))
    engine = sparse_hook(runner).engine
    total = EPOCHS * ITERS_PER_EPOCH
    assert engine.steps == total and engine.total_steps == total
    # SNIP init, density logged to the message hub and the log
    assert runner.message_hub.get_scalar('train/sparsity_density').current(
    ) == pytest.approx(engine.total_density())
    assert runner.message_hub.get_scalar('train/sparsity_pruned').current() > 0

    killed = tmp_path / 'killed'
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg(sample_root, killed), kill_at=2)
    assert osp.exists(killed / 'epoch_2.pth')
    assert not osp.exists(killed / 'epoch_3.pth')
    resumed = run(make_cfg(sample_root, killed, resume=True,
                           load_from=str(killed / 'epoch_2.pth')))
    assert sparse_hook(resumed).engine.steps == total

    weights_a, sparse_a, ckpt_a = final_state(full)
    weights_b, sparse_b, _ = final_state(killed)
    assert sparse_a['steps'] == sparse_b['steps'] == total
    assert sparse_a['masks'].keys() == sparse_b['masks'].keys()
    assert len(sparse_a['masks']) > 0
    for name, mask in sparse_a['masks'].items():
        assert torch.equal(mask, sparse_b['masks'][name]), name
    assert torch.equal(sparse_a['generator'], sparse_b['generator'])
    for key, value in weights_a.items():
        assert torch.equal(value, weights_b[key]), key
    # the checkpoint's weights and Adam moments are zero where masked
    params = [n for n, _ in runner.model.named_parameters()]
    for name, mask in sparse_a['masks'].items():
        assert (weights_a[name][~mask] == 0).all()
        state = ckpt_a['optimizer']['state'][params.index(name)]
        assert (state['exp_avg'][~mask] == 0).all()
        assert (state['exp_avg_sq'][~mask] == 0).all()


def test_gradient_accumulation_and_skipped_amp_steps(tmp_path, sample_root):
    cfg = make_cfg(sample_root, tmp_path, **{
        'train_cfg.max_epochs': 2,
        'optim_wrapper.type': 'SkippingCPUAmpOptimWrapper',
        'optim_wrapper.accumulative_counts': 2,
        'custom_hooks.0.update_frequency': 2})
    runner = run(cfg)
    wrapper = runner.optim_wrapper
    engine = sparse_hook(runner).engine
    # 8 iterations, accumulation 2: 4 optimizer updates (one skipped by
    # the scaler), all counted, as the lr schedule counts them
    assert wrapper.loss_scaler.get_scale() < 2.**8
    assert engine.total_steps == 4 and engine.steps == 4
    params = dict(runner.model.named_parameters())
    for name, mask in engine.masks.items():
        assert (params[name][~mask] == 0).all()
        state = wrapper.optimizer.state[params[name]]
        assert (state['exp_avg'][~mask] == 0).all()


def test_load_from_does_not_resume_sparsity(tmp_path, sample_root):
    cfg = make_cfg(sample_root, tmp_path / 'a', **{'train_cfg.max_epochs': 1})
    run(cfg)
    cfg = make_cfg(sample_root, tmp_path / 'b', **{
        'train_cfg.max_epochs': 1,
        'load_from': str(tmp_path / 'a' / 'epoch_1.pth'),
        'custom_hooks.0.sparse_init': 'from_weights'})
    runner = run(cfg)
    engine = sparse_hook(runner).engine
    # a new run: schedule from 0, masks rebuilt from the loaded zeros
    assert engine.steps == ITERS_PER_EPOCH
    assert engine.total_density() == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize('mask_ema', [True, False])
def test_ema_weights_are_masked(tmp_path, sample_root, mask_ema):
    cfg = make_cfg(sample_root, tmp_path, **{
        'train_cfg.max_epochs': 2, 'custom_hooks.0.update_frequency': 2,
        'custom_hooks.0.mask_ema': mask_ema})
    cfg.custom_hooks.insert(0, dict(type='EMAHook', momentum=0.1,
                                    priority='ABOVE_NORMAL'))
    runner = run(cfg)
    engine = sparse_hook(runner).engine
    ema_hook = next(h for h in runner.hooks if hasattr(h, 'ema_model'))
    ema = dict(ema_hook.ema_model.module.named_parameters())
    zero = all((ema[n][~m] == 0).all() for n, m in engine.masks.items())
    assert zero == mask_ema  # without masking, pruned weights linger
    assert all((ema[n][m] != 0).any() for n, m in engine.masks.items())


class CheckGradientGrowth(Hook):
    """Records |grad|, masks and weights right after each optimizer step
    that precedes a prune/regrow (mmengine zeroes the gradients before any
    hook runs), then checks the topology the update made: the smallest
    active |w| pruned, and the regrown positions those of largest |grad|."""

    def __init__(self):
        self.seen, self.events, self.regrown_inactive = None, 0, 0

    def before_train(self, runner):  # after SparseRegrowHook's (HIGH)
        self.engine = sparse_hook(runner).engine
        runner.optim_wrapper.optimizer.register_step_post_hook(self.record)

    def record(self, optimizer, args, kwargs):
        engine = self.engine
        self.seen = None
        if (engine.steps + 1) % engine.update_frequency:
            return
        params = dict(engine.model.named_parameters())
        self.seen = {n: (params[n].grad.abs().flatten().clone(),
                         m.flatten().clone(),
                         params[n].detach().abs().flatten().clone())
                     for n, m in engine.masks.items()}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self.seen is None:
            return
        rate = self.engine.current_prune_rate()
        for name, (grad, old, weight) in self.seen.items():
            new = self.engine.masks[name].flatten()
            num = math.ceil(rate * int(old.sum()))
            active = old.nonzero().flatten()
            order = torch.sort(weight[active], stable=True).indices
            after_prune = old.clone()
            after_prune[active[order[:num]]] = False
            assert new[after_prune].all(), name  # only the pruned ones left
            grown = new & ~after_prune
            assert int(grown.sum()) == num, name
            # regrown: the largest |grad| among all inactive positions
            assert grad[grown].min() >= grad[~new].max(), name
            self.regrown_inactive += int((grown & ~old).sum())
        self.events += 1
        self.seen = None


def test_gradient_growth_in_a_runner(tmp_path, sample_root):
    """growth_mode='gradient' under mmengine's OptimWrapper, which zeroes
    the gradients in update_params, before after_train_iter."""
    cfg = make_cfg(sample_root, tmp_path, **{
        'train_cfg.max_epochs': 1,
        'custom_hooks.0.growth_mode': 'gradient',
        'custom_hooks.0.sparse_init': 'uniform',
        'custom_hooks.0.update_frequency': 2})
    runner = Runner.from_cfg(cfg)
    check = CheckGradientGrowth()
    runner.register_hook(check, priority='LOWEST')
    runner.train()
    assert check.events == 2  # steps 2 and 4
    assert check.regrown_inactive > 0  # not only the just-pruned came back
    engine = sparse_hook(runner).engine
    assert engine.steps == ITERS_PER_EPOCH and not engine._grad_scores
