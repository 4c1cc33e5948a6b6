"""ActivationAnnealHook: schedule values, EMA copies, real mmengine runs
(epoch- and iteration-based), exact resume, and deploy conversion of the
resulting checkpoints with tools/deploy/convert_to_deploy.py."""
import glob
import json
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import EMAHook
from mmengine.logging import MessageHub, MMLogger
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner

from conftest import REPO, load_tool
from mmconvarch.checkpoint import safe_checkpoint_loading
from mmconvarch.engine.hooks import ActivationAnnealHook
from mmconvarch.engine.hooks.activation_anneal import act_learn_at
from mmconvarch.models.backbones.vanillanet import VanillaNet, get_act_learn
from mmconvarch.models.heads import VanillaNetClsHead
from mmconvarch.launch import fall_back_from_amp_on_cpu
from mmconvarch.utils.sample_data import apply_sample_data

BASE = osp.join(REPO, 'configs/vanillanet/vanillanet_5_in1k.py')
# the shipped VanillaNet-5 recipe at 1/32 width, 3 sample classes, no
# dropout/mixup (their RNG is not part of a checkpoint, so resumed runs
# could not be compared bit for bit)
TINY = f"""
_base_ = [{BASE!r}]
model = dict(
    backbone=dict(arch=dict(_delete_=True, dims=[16, 32, 64, 128],
                            strides=[2, 2, 2])),
    head=dict(num_classes=3, in_channels=128, drop_rate=0.),
    train_cfg=None)
data_preprocessor = dict(num_classes=3)
randomness = dict(seed=0)
"""


pytestmark = pytest.mark.usefixtures('single_thread')  # tiny convs


def test_schedule_values():
    # official main.py: epoch / decay_epochs, or 0.5 * (1 - cos(pi e / T))
    assert [act_learn_at(e, 100) for e in (0, 25, 99, 100, 150)] == \
        [0., .25, .99, 1., 1.]
    assert act_learn_at(25, 100, 'cosine') == pytest.approx(
        0.5 * (1 - math.cos(math.pi / 4)))
    assert act_learn_at(50, 100, 'cosine') == pytest.approx(0.5)
    assert act_learn_at(100, 100, 'cosine') == 1.
    assert act_learn_at(300, 100, 'cosine') == 1.


def test_bad_hook_arguments():
    with pytest.raises(ValueError, match='exactly one of'):
        ActivationAnnealHook(decay_epochs=10, decay_iters=100)
    with pytest.raises(ValueError, match='positive int'):
        ActivationAnnealHook(decay_epochs=0)
    with pytest.raises(ValueError, match="'linear', 'cosine'"):
        ActivationAnnealHook(schedule='exp')


def fake_runner(model, **kw):
    ema = EMAHook(momentum=0.5)
    ema.before_run(SimpleNamespace(model=model))
    return SimpleNamespace(
        model=model, hooks=[ema], train_loop=object(),
        message_hub=MessageHub.get_instance('anneal_test'),
        logger=MMLogger.get_instance('anneal_test'), epoch=0, iter=0, **kw)


def test_hook_sets_model_and_ema_copy():
    model = torch.nn.ModuleDict(dict(
        backbone=VanillaNet(dict(dims=[8, 16], strides=[2])),
        head=VanillaNetClsHead(3, 16)))
    runner = fake_runner(model)
    hook = ActivationAnnealHook(decay_epochs=8, schedule='cosine')
    hook.before_train(runner)
    for epoch, value in [(0, 0.), (2, 0.5 * (1 - math.cos(math.pi / 4))),
                         (4, 0.5), (8, 1.), (11, 1.)]:
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        hook.before_train_iter(runner, 0)  # epoch mode: no per-iter change
        for lam in list(get_act_learn(model).values()) + list(
                get_act_learn(runner.hooks[0].ema_model).values()):
            assert lam == pytest.approx(value)
        assert runner.message_hub.get_scalar(
            'train/act_learn').current() == pytest.approx(value)
    assert len(get_act_learn(runner.hooks[0].ema_model)) == 2

    hook = ActivationAnnealHook(decay_epochs=None, decay_iters=40)
    for it, value in [(0, 0.), (10, .25), (39, 39 / 40), (40, 1.)]:
        runner.iter = it
        hook.before_train_iter(runner, it)
        for lam in get_act_learn(model).values():  # float32 buffers
            assert lam == pytest.approx(value)


def test_hook_refuses_models_without_act_learn():
    runner = fake_runner(VanillaNet(dict(dims=[8, 16], strides=[2]),
                                    deploy=True))
    with pytest.raises(RuntimeError, match='no act_learn buffer'):
        ActivationAnnealHook().before_train(runner)


def tiny_cfg(tmp_path, sample_root, work_dir, iters=None, **hook):
    """The tiny config on the sample set; ``iters``: iteration-based."""
    cfg_file = tmp_path / 'tiny_vanillanet.py'
    cfg_file.write_text(TINY)
    cfg = Config.fromfile(str(cfg_file))
    if iters:
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    apply_sample_data(cfg, root=sample_root, img_size=64, batch_size=4,
                      train_steps=iters or 40)
    fall_back_from_amp_on_cpu(cfg)
    cfg.work_dir = str(work_dir)
    cfg.custom_hooks = [  # re-added: apply_sample_data drops EMAHook
        dict(type='EMAHook', momentum=0.1, update_buffers=True,
             priority='ABOVE_NORMAL'),
        dict(type='mmconvarch.ActivationAnnealHook', **hook)]
    return cfg, str(cfg_file)


def logged_act_learn(work_dir, last_run_only=False):
    """{step: act_learn} from every run's scalars.json in work_dir."""
    logged = {}
    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    for path in paths[-1:] if last_run_only else paths:
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'act_learn' in record:
                    logged[record['step']] = record['act_learn']
    return logged


@pytest.fixture(scope='module')
def runs(tmp_path_factory, sample_root):
    """4 epochs straight vs 2 epochs + resume to 4 (2 iters per epoch),
    λ reaching 1 at epoch 3 (decay_epochs=3)."""
    tmp = tmp_path_factory.mktemp('anneal')

    def train(work_dir, max_epochs, resume_from=None):
        cfg, cfg_file = tiny_cfg(tmp, sample_root, work_dir, decay_epochs=3)
        cfg.train_cfg = dict(type='EpochBasedTrainLoop',
                             max_epochs=max_epochs, val_interval=max_epochs)
        cfg.default_hooks.checkpoint.update(interval=1, by_epoch=True)
        if resume_from:
            cfg.resume, cfg.load_from = True, resume_from
        with safe_checkpoint_loading():  # resume on torch>=2.6, as tools/train.py enables it
            Runner.from_cfg(cfg).train()
        return cfg_file

    straight, split = tmp / 'straight', tmp / 'split'
    cfg_file = train(straight, 4)
    train(split, 2)
    train(split, 4, resume_from=str(split / 'epoch_2.pth'))
    return SimpleNamespace(straight=str(straight), split=str(split),
                           cfg_file=cfg_file)


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_runner_schedule_and_exact_resume(runs):
    third = 1 / 3
    expected = {1: 0., 2: 0., 3: third, 4: third, 5: 2 * third,
                6: 2 * third, 7: 1., 8: 1.}
    for work_dir in (runs.straight, runs.split):
        logged = logged_act_learn(work_dir)
        assert sorted(logged) == list(expected)
        for step, value in expected.items():
            assert logged[step] == pytest.approx(value, abs=1e-4), step
    # λ is in the checkpoints (model and EMA copy): 1/3 during epoch 2
    mid = load(osp.join(runs.split, 'epoch_2.pth'))
    assert mid['state_dict']['backbone.act_learn'] == pytest.approx(third)
    assert mid['state_dict']['head.act_learn'] == pytest.approx(third)
    assert mid['ema_state_dict']['module.backbone.act_learn'] == \
        pytest.approx(third)
    # the resumed run trained epochs 3-4 only and ends where the straight
    # one does
    assert sorted(logged_act_learn(runs.split, last_run_only=True)) == [
        5, 6, 7, 8]
    a = load(osp.join(runs.straight, 'epoch_4.pth'))
    b = load(osp.join(runs.split, 'epoch_4.pth'))
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    for key in ('state_dict', 'ema_state_dict'):
        assert a[key].keys() == b[key].keys()
        for name, value in a[key].items():
            torch.testing.assert_close(b[key][name], value, msg=name)
    assert float(a['state_dict']['backbone.act_learn']) == 1.
    moved = mid['state_dict']['backbone.stages.2.conv2.0.weight'] - \
        a['state_dict']['backbone.stages.2.conv2.0.weight']
    assert moved.abs().max() > 1e-4  # epochs 3-4 did train


def test_deploy_tool_on_trained_checkpoints(runs, tmp_path):
    tool = load_tool('tools/deploy/convert_to_deploy.py')
    out = str(tmp_path / 'deploy.pth')
    # mid-annealing (λ = 1/3): refused, fusion would change outputs
    with pytest.raises(RuntimeError, match='not 1'):
        tool.main([runs.cfg_file, osp.join(runs.split, 'epoch_2.pth'), out])
    tool.main([runs.cfg_file, osp.join(runs.straight, 'epoch_4.pth'), out])

    cfg = Config.fromfile(runs.cfg_file)
    init_default_scope('mmpretrain')
    train_form = MODELS.build(cfg.model).eval()
    train_form.load_state_dict(
        load(osp.join(runs.straight, 'epoch_4.pth'))['state_dict'])
    cfg.model.backbone.deploy = cfg.model.head.deploy = True
    deploy_form = MODELS.build(cfg.model).eval()
    deploy_form.load_state_dict(load(out)['state_dict'], strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(deploy_form(x, mode='tensor'),
                                   train_form(x, mode='tensor'),
                                   atol=1e-4, rtol=1e-4)


def test_iteration_based_runner(tmp_path, sample_root):
    cfg, _ = tiny_cfg(tmp_path, sample_root, tmp_path / 'iters', iters=6,
                      decay_epochs=None, decay_iters=4)
    Runner.from_cfg(cfg).train()
    assert logged_act_learn(cfg.work_dir) == {
        1: 0., 2: .25, 3: .5, 4: .75, 5: 1., 6: 1.}

    cfg, _ = tiny_cfg(tmp_path, sample_root, tmp_path / 'wrong', iters=2,
                      decay_epochs=3)
    with pytest.raises(ValueError, match='decay_iters'):
        Runner.from_cfg(cfg).train()
