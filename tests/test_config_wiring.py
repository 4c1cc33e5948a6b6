"""Config wiring suite: every config, in the real mmengine Runner, with its own optimizer,
paramwise_cfg, param schedulers, init_cfg handling and custom hooks (EMA included).

Per config, on the sample data (64 px, batch 4):
- phase 1 trains one epoch (2 iterations; iteration-based configs: 2 iterations) of the
  config's own loop (its length and schedules unchanged) and saves a checkpoint; a
  pretrained ``init_cfg`` URL is replaced by a local file of the same layout, and the
  weights at the start of training must be that file's;
- per-parameter lr and weight decay must be what the config's comments promise (PROMISES);
- phase 2 resumes from that checkpoint in a new Runner and trains one more epoch (2 more
  iterations): weights, EMA weights, sparsity masks and the annealed λ must be restored
  exactly, and every loss must be finite.
A SparseRegrowHook that updates its masks runs with ``update_frequency=2`` so that both phases
see a prune/regrow event. AMP falls back to fp32 on a CPU, as tools/train.py does.

A config variant (config_variants.py: a scaled-up backbone, otherwise its reference config,
which runs here in full; test_configs.py checks the exact difference) gets its PROMISES checked
on the meta device instead: its full-size model, the optimizer its own optim_wrapper builds.
"""
import copy
import fnmatch
import os.path as osp
import shutil
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop, Runner

from config_variants import FULL, FULL_IDS, VARIANT_CONFIGS, VARIANT_IDS, resolved
from conftest import on_meta, reset_visualizers
from mmconvarch.checkpoint import safe_checkpoint_loading
from mmconvarch.launch import fall_back_from_amp_on_cpu
from mmconvarch.utils.sample_data import apply_sample_data

BATCH, SIZE = 4, 64
STEPS = 2  # per phase; the sample train split has 8 images, so one epoch at batch 4


def promise(lr, wd, rate=1.0, backbone_lr=1.0, no_wd=(), decayed=(), flat_no_wd=True,
            act_learn=None):
    """What a config's comments promise about its parameters.

    lr, wd: base values; rate: layer decay per backbone layer; backbone_lr: extra backbone
    multiplier; no_wd / decayed: name substrings that get no / the full weight decay;
    flat_no_wd: biases and 1-D parameters get no weight decay; act_learn: VanillaNet λ as a
    function of the epoch.
    """
    return dict(lr=lr, wd=wd, rate=rate, backbone_lr=backbone_lr, no_wd=tuple(no_wd),
                decayed=tuple(decayed), flat_no_wd=flat_no_wd, act_learn=act_learn)


QUERIES = ('query_embed', 'query_feat', 'level_embed')
ANNEAL_100 = lambda epoch: epoch / 100  # noqa: E731  (--decay_epochs 100, linear)
FINISHED = lambda epoch: 1.0  # noqa: E731  (downstream: λ = 1 throughout)
# Read off each config's header comment. A new config needs its line here.
PROMISES = {
    'cascade_convnextv2_t_coco': promise(2e-4, 0.05, rate=0.7, no_wd=('grn', )),
    'cascade_convnextv2_[blh]_coco': promise(2e-4, 0.05, rate=0.8, no_wd=('grn', )),
    'convnextv2_t_in1k': promise(3.2e-3, 0.05, rate=0.9, no_wd=('grn', )),
    'convnextv2_[blh]_in1k': promise(2.5e-3, 0.05, rate=0.6, no_wd=('grn', )),
    'convnextv2_[afpn]_in1k': promise(8e-4, 0.3, rate=0.9, no_wd=('grn', )),
    'convnextv2_n_in22k_in1k*': promise(8e-4, 0.3, rate=0.9, no_wd=('grn', )),
    'convnextv2_t_in22k_in1k*': promise(3.2e-3, 0.05, rate=0.9, no_wd=('grn', )),
    'convnextv2_[blh]_in22k_in1k*': promise(2.5e-3, 0.05, rate=0.6, no_wd=('grn', )),
    'fcmae_convnextv2_*_in1k': promise(2.4e-3, 0.05, no_wd=('grn', )),
    'mask2former_convnextv2_*_ade20k': promise(1e-4, 0.05, backbone_lr=0.1,
                                               no_wd=QUERIES + ('grn', )),
    'upernet_convnextv2_*_ade20k': promise(1e-4, 0.05, rate=0.9, no_wd=('grn', )),
    'cascade_revcol_[ts]_coco': promise(2e-4, 0.05, rate=0.85, no_wd=('.alpha', )),
    'cascade_revcol_b_coco': promise(2e-4, 0.05, rate=0.9, no_wd=('.alpha', )),
    'cascade_revcol_l_coco': promise(1e-4, 0.05, rate=0.85, no_wd=('.alpha', )),
    'cascade_revcol_b_in22k_coco': promise(1e-4, 0.05, rate=0.9, no_wd=('.alpha', )),
    'mask2former_revcol_*_ade20k': promise(1e-4, 0.05, backbone_lr=0.1,
                                           no_wd=QUERIES + ('.alpha', )),
    'revcol_[tsb]_in1k': promise(1e-3, 0.05, decayed=('.alpha', )),
    'revcol_l_in1k*': promise(5e-5, 1e-8, rate=0.8, decayed=('.alpha', )),
    'revcol_b_in22k_in1k*': promise(1e-4, 1e-8, rate=0.9, decayed=('.alpha', )),
    'revcol_h_in1k_640': promise(4e-5, 1e-8, rate=0.8, decayed=('.alpha', )),
    'upernet_revcol_t_ade20k': promise(6e-5, 0.01, no_wd=('.alpha', )),
    'upernet_revcol_[sb]_ade20k': promise(4e-5, 0.01, no_wd=('.alpha', )),
    'upernet_revcol_l_ade20k': promise(4e-5, 0.01, rate=0.9, no_wd=('.alpha', )),
    'upernet_revcol_b_in22k_ade20k': promise(4e-5, 0.01, rate=0.9, no_wd=('.alpha', )),
    'upernet_revcol_h_ade20k': promise(4e-5, 0.01, rate=0.9, no_wd=('.alpha', )),
    'cascade_slak_[ts]_coco': promise(2e-4, 0.05, rate=0.7),
    'cascade_slak_b_coco': promise(2e-4, 0.05, rate=0.8),
    'cascade_slak_t_120e_1x_coco': promise(2e-4, 0.05, rate=0.7),
    'mask2former_slak_*_ade20k': promise(1e-4, 0.05, backbone_lr=0.1, no_wd=QUERIES),
    'slak_*_in1k': promise(4e-3, 0.05),
    'upernet_slak_*_ade20k': promise(1e-4, 0.05, rate=0.9),
    'cascade_vanillanet_13*_coco': promise(1.3e-4, 0.05, rate=0.6, act_learn=FINISHED),
    'mask2former_vanillanet_13*_ade20k': promise(1e-4, 0.05, backbone_lr=0.1, no_wd=QUERIES,
                                                 act_learn=FINISHED),
    'mask_rcnn_vanillanet_13_coco': promise(1.3e-4, 0.05, rate=0.6, act_learn=FINISHED),
    'retinanet_vanillanet_13_coco': promise(8e-5, 0.05, rate=0.6, act_learn=FINISHED),
    'upernet_vanillanet_13*_ade20k': promise(1e-4, 0.05, rate=0.9, act_learn=FINISHED),
    'vanillanet_1[0-2]_in1k': promise(3.5e-3, 0.25, act_learn=ANNEAL_100),
    'vanillanet_13*_in1k': promise(3.5e-3, 0.25, act_learn=ANNEAL_100),
    'vanillanet_5_in1k': promise(3.5e-3, 0.35, act_learn=ANNEAL_100),
    'vanillanet_6_in1k': promise(4.8e-3, 0.32, rate=0.8, act_learn=ANNEAL_100),
    'vanillanet_7_in1k': promise(4.7e-3, 0.35, rate=0.8, act_learn=ANNEAL_100),
    'vanillanet_[89]_in1k': promise(3.5e-3, 0.3, act_learn=ANNEAL_100),
}


def promise_for(config: str) -> dict:
    name = osp.splitext(osp.basename(config))[0]
    found = [p for pattern, p in PROMISES.items() if fnmatch.fnmatchcase(name, pattern)]
    assert len(found) == 1, f'{name}: add one line for it to PROMISES (found {len(found)})'
    return found[0]


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def _hook(runner, name):
    return next((h for h in runner.hooks if type(h).__name__ == name), None)


def _act_learns(model):
    return {n: float(b) for n, b in model.named_buffers() if n.endswith('act_learn')}


class Probe(Hook):
    """Records what the checks need, and ends the run after ``stop_at`` iterations in all
    (at an epoch's end for epoch-based loops), so that the config's own loop length and
    schedules stay as they are. Runs after every other hook of the same stage (the
    checkpoint hook included)."""

    priority = 'LOWEST'

    def __init__(self, stop_at: int):
        self.stop_at = stop_at
        self.losses, self.start_state, self.start_masks, self.act_learn = [], None, None, []

    def before_train(self, runner):
        model = _unwrap(runner.model)
        self.start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        sparse = _hook(runner, 'SparseRegrowHook')
        if sparse is not None:
            self.start_masks = {k: m.clone() for k, m in sparse.engine.masks.items()}
        ema = _hook(runner, 'EMAHook')
        self.start_ema = None if ema is None else {
            k: v.detach().clone() for k, v in ema.ema_model.module.state_dict().items()}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.act_learn.append((runner.epoch, _act_learns(_unwrap(runner.model))))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(float(outputs['loss']))
        if isinstance(runner.train_loop, IterBasedTrainLoop) and runner.iter + 1 >= self.stop_at:
            runner.train_loop.stop_training = True

    def after_train_epoch(self, runner):
        if runner.iter >= self.stop_at:
            runner.train_loop.stop_training = True


def _local_pretrained(cfg, path):
    """Point a pretrained init_cfg URL at a local file of our layout, with weights that differ
    from any fresh init, so that a load that leaves random weights is caught. The weights are a
    fresh init plus noise: realistic scales (RevCol's reversible inverse divides by the alphas;
    tiny ones blow up a 16-column backward)."""
    from mmengine.registry import MODELS, init_default_scope
    backbone = cfg.model.get('backbone', {})
    init_cfg = backbone.get('init_cfg')
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        return None
    init_default_scope(cfg.default_scope)
    model = MODELS.build(dict(copy.deepcopy(backbone), init_cfg=None))
    model.init_weights()
    generator = torch.Generator().manual_seed(7)
    state = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not key.endswith('act_learn'):
            value = value + 0.01 * torch.randn(value.shape, generator=generator)
        state[init_cfg.get('prefix', '') + key] = value
    torch.save(dict(state_dict=state), path)
    init_cfg.checkpoint = path
    return {k[len(init_cfg.get('prefix', '')):]: v for k, v in state.items()}


def wiring_cfg(config, sample_root, work_dir):
    cfg = Config.fromfile(config)
    own = {k: copy.deepcopy(cfg.get(k)) for k in ('param_scheduler', 'custom_hooks', 'train_cfg')}
    init_cfg = copy.deepcopy(cfg.model.get('backbone', {}).get('init_cfg'))
    apply_sample_data(cfg, root=sample_root, img_size=SIZE, train_steps=STEPS,
                      batch_size=BATCH)
    # keep what the sample-data mode strips: the config's loop, schedules, hooks and init_cfg
    cfg.train_cfg = own['train_cfg']
    cfg.train_cfg['val_interval'] = 10**6  # validation: the smoke suite's job
    cfg.param_scheduler = own['param_scheduler']
    cfg.custom_hooks = own['custom_hooks'] or []
    for hook in cfg.custom_hooks:
        if hook['type'].endswith('SparseRegrowHook') and hook.get('update_frequency'):
            hook['update_frequency'] = STEPS
    if 'backbone' in cfg.model:
        cfg.model.backbone.init_cfg = init_cfg
    cfg.default_hooks.checkpoint.update(save_last=True)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    fall_back_from_amp_on_cpu(cfg)
    return cfg


def _groups_by_param(optimizer, model):
    names = {id(p): n for n, p in model.named_parameters()}
    result = {}
    for group in optimizer.param_groups:
        for param in group['params']:
            result[names[id(param)]] = (group.get('initial_lr', group['lr']),
                                        group.get('weight_decay', 0.))
    return result


def check_param_groups(runner, expect):
    model = _unwrap(runner.model)
    got = _groups_by_param(runner.optim_wrapper.optimizer, model)
    backbone = model.backbone
    wrong = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr, wd = got[name]
        in_backbone = name.startswith('backbone.')
        want_lr = expect['lr']
        if in_backbone:
            want_lr *= expect['backbone_lr']
            if expect['rate'] != 1.0:
                layer, layers = backbone.get_layer_depth(name, 'backbone.')
                want_lr *= expect['rate']**(layers - layer - 1)
        if any(k in name for k in expect['decayed']):
            want_wd = expect['wd']
        elif any(k in name for k in expect['no_wd']):
            want_wd = 0.
        elif expect['flat_no_wd'] and (name.endswith('.bias') or param.ndim <= 1):
            want_wd = 0.
        else:
            want_wd = expect['wd']
        if lr != pytest.approx(want_lr, rel=1e-6) or wd != pytest.approx(want_wd, abs=1e-12):
            wrong.append(f'{name}: lr {lr:.4g} wd {wd:.4g}, promised lr {want_lr:.4g} '
                         f'wd {want_wd:.4g}')
    assert not wrong, f'{len(wrong)} parameters break the promise:\n' + '\n'.join(wrong[:20])


def _assert_same(got: dict, want: dict, what: str, skip=lambda k: False):
    diff = [k for k in want if not skip(k) and not torch.equal(got[k], want[k])]
    assert not diff, f'{what}: {len(diff)} entries differ, e.g. {diff[:5]}'


def _saved_states(ckpt):
    """(model, EMA) weights a checkpoint holds. EMAHook saves the EMA weights as
    'state_dict' (for evaluation) and the model's as 'ema_state_dict'; undo that swap."""
    model = dict(ckpt['state_dict'])
    if 'ema_state_dict' not in ckpt:
        return model, None
    ema = {}
    for key, value in ckpt['ema_state_dict'].items():
        if key.startswith('module.'):
            ema[key[7:]], model[key[7:]] = model[key[7:]], value
    return model, ema


def _train(cfg, stop_at):
    reset_visualizers()
    runner = Runner.from_cfg(cfg)
    probe = Probe(stop_at)
    runner.register_hook(probe)
    with safe_checkpoint_loading():  # resume on torch>=2.6, as tools/train.py enables it
        runner.train()
    return runner, probe


@pytest.fixture
def work_root(tmp_path):
    """The run's folder, removed afterwards: two checkpoints of a full-size detector with its
    optimizer state and EMA take GBs, and pytest keeps tmp_path for the whole session."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow  # every config in the Runner, with resume
@pytest.mark.parametrize('config', FULL, ids=FULL_IDS)
def test_config_wiring(config, sample_root, work_root):
    tmp_path = work_root
    expect = promise_for(config)
    cfg = wiring_cfg(config, sample_root, str(tmp_path / 'work'))
    pretrained = _local_pretrained(cfg, str(tmp_path / 'pretrained.pth'))

    runner, probe = _train(copy.deepcopy(cfg), STEPS)
    check_param_groups(runner, expect)
    assert probe.losses and all(map(torch.isfinite, torch.tensor(probe.losses))), probe.losses
    if pretrained is not None:  # the run starts from the pretrained file, not random weights
        start = {k[len('backbone.'):]: v for k, v in probe.start_state.items()
                 if k.startswith('backbone.')}
        params = {n for n, _ in _unwrap(runner.model).backbone.named_parameters()}
        _assert_same(start, pretrained, 'weights at the start vs the pretrained file',
                     skip=lambda k: k not in params)
    sparse = _hook(runner, 'SparseRegrowHook')
    if sparse is not None and sparse.engine.update_frequency:
        assert sparse.engine.steps == STEPS
        changed = [k for k, m in probe.start_masks.items()
                   if not torch.equal(m, sparse.engine.masks[k])]
        assert changed, 'no prune/regrow event changed any mask'
        for k, m in probe.start_masks.items():  # prune + regrow keeps the counts
            assert int(m.sum()) == int(sparse.engine.masks[k].sum()), k
    final_masks = None if sparse is None else {
        k: m.clone() for k, m in sparse.engine.masks.items()}
    ckpt_path = osp.join(cfg.work_dir, open(osp.join(cfg.work_dir, 'last_checkpoint')).read()
                         .strip().split('/')[-1])
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)

    resumed = copy.deepcopy(cfg)
    resumed.resume, resumed.load_from = True, ckpt_path
    runner2, probe2 = _train(resumed, 2 * STEPS)
    model_state, ema_state = _saved_states(ckpt)
    is_lambda = lambda k: k.endswith('act_learn')  # noqa: E731  (checked below)
    _assert_same(probe2.start_state, model_state, 'weights after resume', is_lambda)
    if ema_state is not None:
        _assert_same(probe2.start_ema, ema_state, 'EMA weights after resume', is_lambda)
    if final_masks is not None:
        sparse2 = _hook(runner2, 'SparseRegrowHook')
        _assert_same(probe2.start_masks, final_masks, 'sparsity masks after resume')
        if sparse2.engine.update_frequency:
            assert sparse2.engine.steps == 2 * STEPS  # a second event after the resume
    if expect['act_learn'] is not None:
        for epoch, values in probe.act_learn + probe2.act_learn:
            assert values and all(v == pytest.approx(expect['act_learn'](epoch))
                                  for v in values.values()), (epoch, values)
    assert probe2.losses and all(map(torch.isfinite, torch.tensor(probe2.losses)))
    check_param_groups(runner2, expect)


def test_variant_param_groups_keep_their_promise():
    """Each variant's full-size model, built on the meta device, with the optimizer its own
    optim_wrapper builds (AMP falls back to fp32 as above): per-parameter lr and weight decay
    as its PROMISES line says, over the real arch's layer ids. One test for all: each takes
    about a second."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    wrong = []
    for variant, config in zip(VARIANT_IDS, VARIANT_CONFIGS):
        cfg = Config(resolved(variant))
        init_default_scope(cfg.default_scope)
        if cfg.get('data_preprocessor'):  # as Runner does (mmpretrain configs)
            cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
        with on_meta():
            model = MODELS.build(cfg.model)
        fall_back_from_amp_on_cpu(cfg)
        runner = SimpleNamespace(model=model,
                                 optim_wrapper=build_optim_wrapper(model, cfg.optim_wrapper))
        try:
            check_param_groups(runner, promise_for(config))
        except AssertionError as e:
            wrong.append(f'{variant}: {e}')
    assert not wrong, '\n'.join(wrong)
