"""What must hold on a CUDA device (issue 26; these replace tools/analysis/gpu_check.py).

Marked ``cuda``: where torch sees no GPU they are collected and skipped with the reason
(tests/conftest.py); ``pytest -m cuda`` selects them, and ``.dev_scripts/gpu/run.sh`` runs them
with the GPU benchmarks on a machine without OpenMMLab packages. Speed figures are not asserted
here: they are the benchmark scripts' (tools/analysis/benchmark*.py).

- AMP in the real Runner: the four ImageNet configs (tiny archs, their own hooks: EMA,
  SparseRegrowHook, ActivationAnnealHook) with mmengine's AmpOptimWrapper in fp16; one step is
  forced to overflow and must be skipped (parameters unchanged, loss scale halved); SLaK's masked
  weights (and their EMA copies) stay exactly zero after every step, skipped ones included.
  Its body also runs on the CPU (``slow``), with the same wrapper on torch's CPU GradScaler.
- RevCol: reversible vs plain gradients in fp32 (TF32 off), fp16 (loss-scaled) and bf16
  autocast; peak memory of the reversible step below the plain one and flat in the columns.
- SLaK: the merged deploy form and channels_last equal the decomposed NCHW form on the GPU.
- VanillaNet: deploy logits equal train logits on the GPU.
- SyncBN under a 1-process NCCL group: every BN of SLaK/VanillaNet built as SyncBN, DDP
  forward/backward equal to plain BN, and the SyncBN kernels with NCCL's all_gather equal to
  ``F.batch_norm``.

Only torch, mmengine, mmcv-lite (no ``mmcv.ops``), mmpretrain and mmconvarch are imported: what
the GPU wheelhouse installs. Nothing here needs mmdet or mmseg.
"""
import copy
import datetime
import functools
import math
import os.path as osp
import socket
from contextlib import contextmanager

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import REPO, load_tool, reset_visualizers

cuda = pytest.mark.cuda


@functools.lru_cache(None)
def bench(name: str):
    """tools/analysis/benchmark_{name}.py, loaded when a test uses it: trained-like RevCol
    parameters (revcol_memory) and VanillaNet classifiers (vanillanet)."""
    return load_tool(f'tools/analysis/benchmark_{name}.py')


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


@pytest.fixture
def no_tf32():
    """fp32 references in true fp32: TF32 rounds conv/matmul inputs to 10 mantissa bits (the
    default for cuDNN convs), which would dominate the differences these tests bound."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ------------------------------------------------------------------ AMP in the Runner

# the ImageNet configs with narrow archs (the configs' own everything else); head input width
AMP_CONFIGS = {
    'revcol/revcol_t_in1k.py': (
        dict(channels=[16, 32, 64, 128], layers=[1, 1, 1, 1], num_columns=4), 128),
    'convnextv2/convnextv2_t_in1k.py': (dict(depths=[1, 1, 1, 1], channels=[16, 32, 64, 128]),
                                        128),
    'slak/slak_t_in1k.py': (dict(depths=[1, 1, 1, 1], channels=[16, 32, 64, 128]),
                            166),  # x width_factor 1.3
    'vanillanet/vanillanet_5_in1k.py': (dict(dims=[32, 64, 128, 256], strides=[2, 2, 2]), 256),
}
# 8 sample images, batch 4: 2 iterations per epoch, 3 epochs
BATCH, EPOCHS, ITERS = 4, 3, 6
FORCED_ITER = 2  # this iteration runs at loss scale 2^40: fp16 gradients overflow
FORCED_SCALE = 2.0**40
# dynamic loss scaling from 2^4, not the default 2^16: in the first steps fp16 gradients also
# overflow by themselves at 2^16 and even 2^8 (VanillaNet's BCE loss sums over 1000 classes:
# ~700, weight gradients up to ~200), and each such step is skipped too
INIT_SCALE = 2.0**4
SPARSE_EVERY = 2  # prune/regrow after optimizer steps 2, 4, ... (odd iterations): not FORCED_ITER
ANNEAL_EPOCHS = 2  # VanillaNet's λ: 0, 0.5, 1 at epochs 0, 1, 2
assert (FORCED_ITER + 1) % SPARSE_EVERY, 'a prune/regrow event would change the weights'


def _cpu_amp_wrapper() -> str:
    """The CPU run only: mmengine's AmpOptimWrapper (its backward, step and dynamic loss
    scaling, unchanged) on torch's CPU GradScaler and fp16 CPU autocast, in place of the CUDA
    ones that its ``__init__`` insists on. The cuda test uses mmengine's class itself."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    from mmengine.registry import OPTIM_WRAPPERS
    name = 'TestCudaCPUFp16AmpOptimWrapper'
    if name in OPTIM_WRAPPERS.module_dict:
        return name

    class CPUFp16AmpOptimWrapper(AmpOptimWrapper):
        def __init__(self, loss_scale: dict, **kwargs):
            OptimWrapper.__init__(self, **kwargs)  # AmpOptimWrapper.__init__ refuses a CPU
            self._scale_update_param = None  # dynamic: backoff 0.5 on inf/nan, growth x2
            self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
            self.cast_dtype = torch.float16

        @contextmanager
        def optim_context(self, model):
            with OptimWrapper.optim_context(self, model), \
                    torch.autocast('cpu', dtype=torch.float16):
                yield

    OPTIM_WRAPPERS.register_module(name=name, module=CPUFp16AmpOptimWrapper)
    return name


def amp_cfg(config: str, device: str, sample_root: str, work_dir: str):
    """The config, tiny, on the sample set, with its own custom hooks (EMA included) and
    AmpOptimWrapper (fp16, dynamic loss scale from INIT_SCALE) whatever its own wrapper is."""
    from mmengine.config import Config

    from mmconvarch.utils.sample_data import apply_sample_data
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    hooks = copy.deepcopy(cfg.get('custom_hooks') or [])
    size = 64 if device == 'cuda' else 32
    apply_sample_data(cfg, root=sample_root, img_size=size, train_steps=ITERS, batch_size=BATCH)
    assert cfg.train_cfg.max_epochs == EPOCHS
    cfg.custom_hooks = hooks  # apply_sample_data drops EMAHook; the check keeps it
    for hook in cfg.custom_hooks:
        kind = hook['type'].split('.')[-1]
        if kind == 'SparseRegrowHook':
            hook['update_frequency'] = SPARSE_EVERY
        elif kind == 'ActivationAnnealHook':
            hook.update(decay_epochs=ANNEAL_EPOCHS, decay_iters=None)
    arch, head_in = AMP_CONFIGS[config]
    cfg.model.backbone.arch = arch
    cfg.model.head.in_channels = head_in
    # SLaK trains in fp32 as the official recipe; its masks are what most needs checking in fp16
    cfg.optim_wrapper.update(type='AmpOptimWrapper', loss_scale=dict(init_scale=INIT_SCALE))
    if device == 'cpu':
        cfg.optim_wrapper.type = _cpu_amp_wrapper()
    for split in ('val', 'test'):
        for part in ('dataloader', 'evaluator', 'cfg'):
            cfg[f'{split}_{part}'] = None
    cfg.train_cfg.val_interval = 10**6
    cfg.default_hooks.checkpoint = None
    cfg.log_level = 'WARNING'
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    return cfg


def _unwrap(model):
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def _amp_probe():
    from mmengine.hooks import Hook

    from mmconvarch.models.backbones.vanillanet import get_act_learn

    class AmpProbe(Hook):
        """Runs after every other hook of each iteration: records the loss, the loss scale
        before and after, which parameters moved, λ, masked weights that are not zero and
        mask changes; forces iteration FORCED_ITER's fp16 gradients to overflow."""

        priority = 'LOWEST'

        def __init__(self):
            self.losses, self.steps, self.act_learn = [], [], []
            self.violations, self.ema_violations, self.masked = [], [], []
            self.events, self.counts_kept = [], True
            self._params0 = self._masks0 = self._used = self._restore = None

        @staticmethod
        def _hook(runner, name):
            return next((h for h in runner.hooks if type(h).__name__ == name), None)

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            model = _unwrap(runner.model)
            values = get_act_learn(model)
            if values:
                self.act_learn.append((runner.epoch, sorted({round(v, 6)
                                                             for v in values.values()})))
            scaler = runner.optim_wrapper.loss_scaler
            self._params0 = {n: p.detach().clone() for n, p in model.named_parameters()}
            self._used = scaler.get_scale()
            if runner.iter == FORCED_ITER:
                self._restore, self._used = self._used, FORCED_SCALE
                scaler.update(new_scale=FORCED_SCALE)  # fp16 gradients overflow: a skipped step
            sparse = self._hook(runner, 'SparseRegrowHook')
            self._masks0 = None if sparse is None else {
                k: m.clone() for k, m in sparse.engine.masks.items()}

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.losses.append(float(outputs['loss'].detach()))
            model = _unwrap(runner.model)
            scaler = runner.optim_wrapper.loss_scaler
            changed = [n for n, p in model.named_parameters()
                       if not torch.equal(p.detach(), self._params0[n])]
            self.steps.append(dict(iter=runner.iter, used=self._used, after=scaler.get_scale(),
                                   changed=changed))
            if runner.iter == FORCED_ITER:
                scaler.update(new_scale=self._restore)  # back to where it was
            sparse = self._hook(runner, 'SparseRegrowHook')
            if sparse is None:
                return
            engine = sparse.engine
            self.masked.append(sum(int((~m).sum()) for m in engine.masks.values()))
            self.violations.append(sum(
                int((engine.model.get_parameter(n).detach()[~m] != 0).sum())
                for n, m in engine.masks.items()))
            ema = self._hook(runner, 'EMAHook')
            if ema is not None:
                prefix = f'{sparse.module}.' if sparse.module else ''
                params = dict(ema.ema_model.module.named_parameters())
                self.ema_violations.append(sum(
                    int((params[prefix + n].detach()[~m] != 0).sum())
                    for n, m in engine.masks.items()))
            masks = engine.masks
            if any(not torch.equal(masks[k], m) for k, m in self._masks0.items()):
                self.events.append(runner.iter)
                self.counts_kept &= all(int(masks[k].sum()) == int(m.sum())
                                        for k, m in self._masks0.items())

    return AmpProbe()


def check_amp_runner(config: str, device: str, sample_root: str, work_dir: str) -> None:
    from mmengine.optim import AmpOptimWrapper
    from mmengine.runner import Runner
    try:  # the Runner's collect_env imports distutils, which Python 3.12 no longer has
        import distutils  # noqa: F401
    except ImportError:
        import setuptools  # noqa: F401  (provides distutils once imported)
    reset_visualizers()
    runner = Runner.from_cfg(amp_cfg(config, device, sample_root, work_dir))
    probe = _amp_probe()
    runner.register_hook(probe)
    runner.train()
    wrapper = runner.optim_wrapper
    assert isinstance(wrapper, AmpOptimWrapper)
    if device == 'cuda':
        assert type(wrapper) is AmpOptimWrapper
        assert all(p.is_cuda for p in runner.model.parameters())
    assert len(probe.losses) == ITERS
    assert all(map(math.isfinite, probe.losses)), probe.losses
    steps = {s['iter']: s for s in probe.steps}
    assert sorted(steps) == list(range(ITERS)) and steps[0]['used'] == INIT_SCALE
    # the forced overflow: the scaler skipped the step (no parameter moved) and halved the scale
    forced = steps.pop(FORCED_ITER)
    assert forced['used'] == FORCED_SCALE
    assert forced['after'] == FORCED_SCALE / 2, forced
    assert forced['changed'] == [], forced['changed'][:5]
    # any other skipped step (fp16 gradients that overflow by themselves) halved the scale and
    # moved nothing (but a prune/regrow event of SLaK, which zeroes weights itself); every
    # real step (the scale kept: it grows only after 2000 good steps) moved parameters
    for step in steps.values():
        if step['after'] < step['used']:
            assert step['after'] == step['used'] / 2, step
            assert step['changed'] == [] or step['iter'] in probe.events, step
        else:
            assert step['after'] == step['used'] and step['changed'], step
    assert steps[FORCED_ITER + 1]['used'] == steps[FORCED_ITER - 1]['after']  # restored
    real = [i for i, step in steps.items() if step['after'] == step['used']]
    assert len(real) >= 3, probe.steps
    if probe.masked:  # SLaK: SparseRegrowHook
        assert min(probe.masked) > 0
        assert probe.violations == [0] * ITERS, probe.violations
        assert probe.ema_violations == [0] * ITERS, probe.ema_violations
        assert probe.events and probe.counts_kept, (probe.events, probe.counts_kept)
        assert FORCED_ITER not in probe.events
    if probe.act_learn:  # VanillaNet: ActivationAnnealHook, λ = epoch / ANNEAL_EPOCHS
        for epoch, values in probe.act_learn:
            assert values == [min(epoch / ANNEAL_EPOCHS, 1.)], (epoch, values)
        assert {e for e, _ in probe.act_learn} == set(range(EPOCHS))
    for family, what in dict(slak='masked', vanillanet='act_learn').items():
        assert bool(getattr(probe, what)) == config.startswith(family), (config, what)


@cuda
@pytest.mark.slow
@pytest.mark.parametrize('config', list(AMP_CONFIGS))
def test_amp_runner_skips_overflow_cuda(config, sample_root, tmp_path):
    check_amp_runner(config, 'cuda', sample_root, str(tmp_path))


@pytest.mark.slow
@pytest.mark.usefixtures('single_thread')
@pytest.mark.parametrize('config', list(AMP_CONFIGS))
def test_amp_runner_skips_overflow_cpu_fp16(config, sample_root, tmp_path):
    """The same body on the CPU, so that it cannot rot before a GPU runs it: mmengine's
    AmpOptimWrapper logic on torch's CPU GradScaler with fp16 CPU autocast."""
    check_amp_runner(config, 'cpu', sample_root, str(tmp_path))


# ------------------------------------------------------------------ RevCol


def _revcol_pair(arch, columns: int, device: str):
    """A RevCol with trained-like alphas/layer scales (the levels contribute, so the inversion
    is really exercised) and drop path on (the reversible backward must replay the CUDA RNG);
    plain and reversible copies with the same weights."""
    from mmconvarch.models.backbones import RevCol
    torch.manual_seed(0)
    layout = dict(RevCol.arch_zoo[arch]) if isinstance(arch, str) else dict(arch)
    layout['num_columns'] = columns
    plain = bench('revcol_memory').trained_like(RevCol(layout, drop_path_rate=0.3))
    plain = plain.to(device).train()
    rev = copy.deepcopy(plain)
    rev.save_memory = True
    return plain, rev


def _revcol_run(model, x, amp_dtype=None, scale: float = 1.):
    """Outputs, input gradient and parameter gradients (unscaled, fp32) of one step."""
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # drop path: the same draws on both paths
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.bfloat16,
                        enabled=amp_dtype is not None):
        outs = model(x)
    g = torch.Generator().manual_seed(2)
    loss = sum((o.float() * torch.randn(o.shape, generator=g).to(o.device)).mean()
               for o in outs)
    (loss * scale).backward()
    grads = {n: p.grad.float() / scale for n, p in model.named_parameters()
             if p.grad is not None}
    return [o.detach().float() for o in outs], x.grad.float() / scale, grads


@cuda
@pytest.mark.parametrize('columns', [4, 16])
def test_revcol_reversible_grads_equal_plain_fp32(columns, no_tf32):
    """fp32 (TF32 off): the reversible backward reconstructs each level's input from its
    output and recomputes it with the RNG state replayed; outputs and gradients equal the
    plain backward's up to rounding. 1e-5 relative per tensor: fp32 round-off over RevCol-T's
    depth is ~1e-6 (1e-6 on the CPU; the old GPU check passed this bound on an H200), while a
    wrong mask, level or alpha gives O(1)."""
    plain, rev = _revcol_pair('tiny', columns, 'cuda')
    x = torch.randn(4, 3, 128, 128, device='cuda')
    outs_p, gx_p, gp = _revcol_run(plain, x)
    outs_r, gx_r, gr = _revcol_run(rev, x)
    assert gp and gp.keys() == gr.keys()
    for a, b in zip(outs_r, outs_p):
        assert rel_err(a, b) <= 1e-5
    assert rel_err(gx_r, gx_p) <= 1e-5
    errs = {n: rel_err(gr[n], gp[n]) for n in gp}
    worst = max(errs, key=errs.get)
    assert errs[worst] <= 1e-5, (worst, errs[worst])


@cuda
@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_revcol_reversible_grads_under_autocast(dtype, no_tf32):
    """fp16 (loss scale 2^12, as a loss scaler would) and bf16 autocast: low-precision
    gradients differ from the fp32 ones by a few % per tensor whichever path computes them.
    The bound: reversible gradients are finite and no further from the fp32 ones than the
    plain path's are (x1.5, the reconstruction's extra rounding), and under 0.1 relative per
    tensor (fp16's 11 and bf16's 8 mantissa bits over this depth give ~1e-3 / ~1e-2)."""
    dtype = getattr(torch, dtype)
    scale = 2.0**12 if dtype == torch.float16 else 1.
    plain, rev = _revcol_pair('tiny', 4, 'cuda')
    x = torch.randn(4, 3, 128, 128, device='cuda')
    _, _, ref = _revcol_run(plain, x)
    _, _, g_plain = _revcol_run(plain, x, dtype, scale)
    _, _, g_rev = _revcol_run(rev, x, dtype, scale)
    assert g_rev.keys() == g_plain.keys() == ref.keys()
    assert all(bool(torch.isfinite(g).all()) for g in g_rev.values())
    err_plain = max(rel_err(g_plain[n], ref[n]) for n in ref)
    err_rev = max(rel_err(g_rev[n], ref[n]) for n in ref)
    assert err_rev <= 1.5 * err_plain + 1e-6, (err_rev, err_plain)
    assert err_rev < 0.1, err_rev


def _peak_step_bytes(model, x) -> int:
    """Peak bytes allocated by one fp16-autocast forward+backward, above what is allocated
    before it (weights and their already-allocated gradients)."""
    def step():
        with torch.autocast('cuda', dtype=torch.float16):
            loss = sum(o.float().square().mean() for o in model(x))
        loss.backward()

    step()  # allocates .grad
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


@cuda
def test_revcol_reversible_peak_memory_below_plain_and_flat():
    """The reason for the reversible backward: it keeps one column's activations instead of
    all of them. At 4/8/16 columns (RevCol-T widths, batch 16, 224 px, fp16 autocast) its
    peak is below the plain path's and grows at most 1.5x from 4 to 16 columns (measured on an
    H200 at batch 64: 1426 / 1424 / 1424 MiB; batch 16 keeps the activations, not the weights,
    the bulk of it)."""
    x = torch.randn(16, 3, 224, 224, device='cuda')
    peaks = {}
    for columns in (4, 8, 16):
        plain, rev = _revcol_pair('tiny', columns, 'cuda')
        peaks[columns] = _peak_step_bytes(plain, x), _peak_step_bytes(rev, x)
        del plain, rev
        torch.cuda.empty_cache()
    mib = {c: (round(p / 2**20), round(r / 2**20)) for c, (p, r) in peaks.items()}
    assert all(r < p for p, r in peaks.values()), mib
    assert peaks[16][1] <= 1.5 * peaks[4][1], mib


# ------------------------------------------------------------------ SLaK


class _SLaKClassifier(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        from mmconvarch.models.backbones import SLaK
        self.backbone = SLaK('tiny', **kwargs)
        self.head = nn.Linear(self.backbone.channels[-1], 1000)

    def forward(self, x):
        return self.head(self.backbone(x)[-1])


def _randomise_bn(model: nn.Module) -> nn.Module:
    """BN statistics away from (0, 1), so the deploy fusion is not trivial."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


@cuda
def test_slak_deploy_and_layouts_equal_decomposed_nchw(no_tf32):
    """SLaK-T (51/49/47/13 kernels) on the GPU, eval: the merged deploy form (one KxK kernel
    per layer) and channels_last equal the decomposed NCHW form. fp32 without TF32: the forms
    differ only in summation order (~1e-6 relative); 1e-4 relative to the logits' norm would
    still catch a misplaced kernel or a BN folded wrongly."""
    torch.manual_seed(0)
    ref_model = _randomise_bn(_SLaKClassifier(memory_format='contiguous')).cuda().eval()
    state = ref_model.state_dict()
    channels_last = _SLaKClassifier(memory_format='channels_last').cuda().eval()
    channels_last.load_state_dict(state)
    deploy = copy.deepcopy(ref_model)
    deploy.backbone.switch_to_deploy()
    x = torch.randn(2, 3, 224, 224, device='cuda')
    with torch.no_grad():
        ref = ref_model(x)
        err_deploy = rel_err(deploy(x), ref)
        err_cl = rel_err(channels_last(x), ref)
    assert err_deploy <= 1e-4, err_deploy
    assert err_cl <= 1e-4, err_cl


# ------------------------------------------------------------------ VanillaNet


@cuda
@pytest.mark.parametrize('arch', ['5', '13'])
def test_vanillanet_deploy_logits_equal_train_logits(arch, no_tf32):
    """The fused deploy form (BN folded, the two 1x1 convs merged at λ = 1) on the GPU gives
    the train form's logits: fp32, no TF32, <= 1e-4 of the largest logit (fusion reorders
    sums over up to 4096 channels: ~1e-6)."""
    from mmconvarch.deploy import switch_to_deploy
    train = bench('vanillanet').build(arch).cuda()
    deploy = copy.deepcopy(train)
    switch_to_deploy(deploy)
    x = torch.randn(1, 3, 224, 224, device='cuda')
    with torch.no_grad():
        ref = train(x)
        err = ((deploy(x) - ref).abs().max() / ref.abs().max()).item()
    assert err <= 1e-4, err


# ------------------------------------------------------------------ SyncBN under NCCL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def nccl_group():
    """A 1-process NCCL group on GPU 0 (as ``torchrun --nproc-per-node 1`` makes), destroyed
    after the test."""
    import torch.distributed as dist
    assert not dist.is_initialized(), 'a process group is already up'
    dist.init_process_group('nccl', init_method=f'tcp://127.0.0.1:{_free_port()}', rank=0,
                            world_size=1, timeout=datetime.timedelta(seconds=60),
                            device_id=torch.device('cuda', 0))
    try:
        assert dist.get_backend() == 'nccl'
        yield dist.group.WORLD
    finally:
        dist.destroy_process_group()


class _Net(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, nn.Linear(backbone.channels[-1], 10)

    def forward(self, x):
        out = self.backbone(x)[-1]
        return self.head(out.mean((2, 3)) if out.dim() == 4 else out)


def _syncbn_nets(norm: str) -> dict:
    """Tiny SLaK and VanillaNet with every norm layer of type ``norm`` (the dense configs use
    ``SyncBN``: torch's nn.SyncBatchNorm, through mmcv's registry), the same weights."""
    from mmconvarch.models.backbones import SLaK, VanillaNet
    torch.manual_seed(0)
    van = VanillaNet(dict(dims=[16, 32, 64, 128], strides=[2, 2, 2]),
                     norm_cfg=dict(type=norm, eps=1e-6))
    torch.manual_seed(0)
    slak = SLaK(dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                kernel_size=(13, 11, 9, 7, 3), norm_cfg=dict(type=norm))
    return dict(vanillanet=_Net(van), slak=_Net(slak))


@cuda
def test_syncbn_ddp_under_nccl_equals_plain_bn(nccl_group, no_tf32):
    """SyncBN-normed SLaK and VanillaNet, wrapped in DDP on a 1-process NCCL group: every BN is
    a SyncBatchNorm, and forward/backward equal the same nets with plain BN (rel <= 1e-4; with
    one process the statistics are the local ones). Then the SyncBN autograd function itself
    (nn.SyncBatchNorm takes the plain path at world size 1), which runs the sync kernels and
    NCCL's all_gather: equal to F.batch_norm in outputs, input grads and running mean."""
    import torch.distributed as dist
    from torch.nn.modules._functions import SyncBatchNorm as SyncBNFunction
    from torch.nn.parallel import DistributedDataParallel as DDP
    t = torch.arange(4., device='cuda')
    dist.all_reduce(t, group=nccl_group)
    assert torch.equal(t.cpu(), torch.arange(4.))

    x = torch.randn(8, 3, 64, 64, device='cuda')
    synced, plain = _syncbn_nets('SyncBN'), _syncbn_nets('BN')
    for name in synced:
        n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for m in plain[name].modules())
        n_sync = sum(isinstance(m, nn.SyncBatchNorm) for m in synced[name].modules())
        assert n_sync == n_bn > 0, (name, n_sync, n_bn)
        plain[name].load_state_dict(synced[name].state_dict())
        wrapped = DDP(synced[name].cuda().train(), device_ids=[0], process_group=nccl_group)
        ref = plain[name].cuda().train()
        out = wrapped(x)
        out.square().mean().backward()
        out_ref = ref(x)
        out_ref.square().mean().backward()
        assert rel_err(out, out_ref) <= 1e-4, name
        params = dict(wrapped.module.named_parameters())
        for n, p in ref.named_parameters():
            assert rel_err(params[n].grad, p.grad) <= 1e-4, (name, n)

    c = 16
    inp = torch.randn(8, c, 8, 8, device='cuda')
    w = torch.rand(c, device='cuda') + 0.5
    b = torch.randn(c, device='cuda')
    stats = [(torch.zeros(c, device='cuda'), torch.ones(c, device='cuda')) for _ in range(2)]
    xs = [inp.clone().requires_grad_(True) for _ in range(2)]
    y_sync = SyncBNFunction.apply(xs[0], w, b, *stats[0], 1e-5, 0.1, nccl_group, 1)
    y_ref = F.batch_norm(xs[1], *stats[1], w, b, True, 0.1, 1e-5)
    g = torch.randn_like(y_ref)
    y_sync.backward(g)
    y_ref.backward(g)
    assert rel_err(y_sync, y_ref) <= 1e-4
    assert rel_err(xs[0].grad, xs[1].grad) <= 1e-4
    assert rel_err(stats[0][0], stats[1][0]) <= 1e-4
    assert rel_err(stats[0][1], stats[1][1]) <= 1e-4
