"""One prepared GPU check (issue #16): five timed sections, one report.

    python tools/analysis/gpu_check.py [--dry-run] [--out REPORT.json]
        [--sections amp revcol slak vanillanet ddp] [--isolate | --no-isolate]
        [--budget SECONDS] [--threads N] [--fp32-peak-tflops 66.9]

Usually run through ``tools/analysis/gpu_check.sh``, which also installs the
OpenMMLab wheels on a machine that lacks them. Sections:

1. amp: each family's ImageNet config in the real mmengine Runner, with the
   config's own optimizer wrapper (AmpOptimWrapper, fp16, dynamic loss scale)
   and hooks (SparseRegrowHook with prune/regrow events, ActivationAnnealHook,
   EMA), on the sample ImageNet folder set: losses finite, masked weights
   exactly zero after every step (a skipped fp16 step is forced once and must
   leave the weights as they were), λ as scheduled, img/s.
2. revcol: reversible vs plain backward: gradients (fp32, and fp16/bf16
   against plain), peak memory at 4/8/16 columns, step-time ratio
   (``benchmark_revcol_memory.py``'s measurement).
3. slak: SLaK-T throughput, NCHW vs channels_last, decomposed vs dense vs the
   merged deploy form, against the published A100 figure and the roofline of
   the stage-1 large-kernel conv (``benchmark_slak.py``'s timer).
4. vanillanet: batch-1 latency of VanillaNet-5/-13 train and deploy forms,
   fp32/fp16, NCHW/channels_last, with ResNet-50 as the paper's yardstick
   (``benchmark_vanillanet.py``'s model and paired timer).
5. ddp: a 1-process NCCL group: SyncBN conversion, DDP forward/backward equal
   to plain BN, the SyncBN kernels through the group.

``--dry-run`` runs the same five sections on the CPU at tiny shapes (gloo,
fp32 OptimWrapper because mmengine's AMP needs a GPU, SyncBN only converted).
Each section is timed and catches its own failure; on a GPU each runs in its
own process (``--isolate``, the default there) with a time limit, so a CUDA
error or a hang costs one section, not the report. The report is printed and
written as JSON (``--out``) and Markdown (same name, ``.md``), after every
section. Exit status 0 when every section passed.
"""
import argparse
import copy
import datetime
import gc
import importlib.util
import json
import math
import os
import os.path as osp
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from types import SimpleNamespace

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')  # mmengine's import

SECTIONS = ('amp', 'revcol', 'slak', 'vanillanet', 'ddp')
# seconds per section on a GPU (isolated: the child is killed after this); the sum stays
# inside the 8 minutes the whole check may take, with room for the install
TIME_LIMITS = dict(amp=150, revcol=90, slak=100, vanillanet=50, ddp=40)
DEFAULT_BUDGET = 430  # all sections together, GPU
DRY_BUDGET = 600

AMP_CONFIGS = ('configs/revcol/revcol_t_in1k.py', 'configs/convnextv2/convnextv2_t_in1k.py',
               'configs/slak/slak_t_in1k.py', 'configs/vanillanet/vanillanet_5_in1k.py')
# dry run: narrow archs of the same families (the configs' own everything else)
TINY_ARCH = {
    'revcol_t_in1k': (dict(channels=[16, 32, 64, 128], layers=[1, 1, 1, 1], num_columns=4),
                      128),
    'convnextv2_t_in1k': (dict(depths=[1, 1, 1, 1], channels=[16, 32, 64, 128]), 128),
    'slak_t_in1k': (dict(depths=[1, 1, 1, 1], channels=[16, 32, 64, 128]), 166),  # x1.3
    'vanillanet_5_in1k': (dict(dims=[32, 64, 128, 256], strides=[2, 2, 2]), 256),
}
SAMPLE_TRAIN_IMAGES = 8  # mmconvarch.utils.sample_data.SPLITS['train']

# published figures the sections are set against
SLAK_PUBLISHED = dict(official_cuda_ext=530., nn_conv2d=367.)  # SLaK-T, A100, inference bs 64
VANILLANET_PAPER_MS = {'5': 1.61, '13': 4.26, 'resnet50': 7.64}  # batch 1

# the shapes of each mode: GPU (the real check) and dry run (CPU, tiny)
SCALES = dict(
    gpu=dict(
        amp=dict(size=128, batch=64, iters_per_epoch=5, epochs=4, update_every=10,
                 anneal_epochs=3, force_skip_iter=2, warmup_iters=3, workers=4),
        revcol=dict(grad_arch='tiny', grad_columns=(4, 16), grad_batch=4, grad_size=128,
                    mem_arch='tiny', mem_columns=(4, 8, 16), mem_batches=(64, 32, 16, 8),
                    mem_size=224, mem_amp=True, repeat=3),
        slak=dict(arch='tiny', batch=64, size=224, repeat=3, layer=(64, 124, 56),
                  layer_repeat=10),
        vanillanet=dict(archs=('5', '13'), size=224, warmup=10, repeats=50,
                        dtypes=('float32', 'float16'), graphs=True),
        ddp=dict(batch=8, size=64),
    ),
    dry=dict(
        amp=dict(size=32, batch=2, iters_per_epoch=2, epochs=2, update_every=2,
                 anneal_epochs=2, force_skip_iter=None, warmup_iters=1, workers=0),
        revcol=dict(grad_arch=dict(channels=[8, 16, 32, 64], layers=[1, 1, 1, 1]),
                    grad_columns=(2, 4), grad_batch=1, grad_size=32,
                    mem_arch=dict(channels=[8, 16, 32, 64], layers=[1, 1, 1, 1]),
                    mem_columns=(2, 4), mem_batches=(1, ), mem_size=64, mem_amp=False,
                    repeat=1),
        slak=dict(arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]), batch=2, size=32,
                  repeat=1, layer=(1, 16, 14), layer_repeat=1),
        vanillanet=dict(archs=(dict(dims=[16, 32, 64, 128], strides=[2, 2, 2]),
                               dict(dims=[16, 16, 32] + [64] * 2 + [128] * 2,
                                    strides=[1, 2, 2, 1, 2, 1])),
                        size=32, warmup=1, repeats=2, dtypes=('float32', ), graphs=False),
        ddp=dict(batch=2, size=32),
    ),
)

_TOOLS = {}


def ensure_distutils() -> None:
    """mmengine's collect_env (run by every Runner) imports distutils, which Python 3.12 no
    longer has; setuptools provides it once imported (the GPU image's python is 3.12)."""
    try:
        import distutils  # noqa: F401
    except ImportError:
        try:
            import setuptools  # noqa: F401
        except ImportError:
            pass


def load_tool(rel_path: str):
    """Import a file under tools/ (not a package) once, by path: the sections are built on
    the repository's own benchmark scripts."""
    if rel_path not in _TOOLS:
        name = 'gpu_check_' + osp.splitext(osp.basename(rel_path))[0]
        spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel_path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[rel_path] = module
    return _TOOLS[rel_path]


# ---------------------------------------------------------------- helpers


class Context(SimpleNamespace):
    """What a section gets: the mode, its shapes, the device, a scratch folder, a clock."""

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def sync(self) -> None:
        if self.cuda:
            import torch
            torch.cuda.synchronize()


class Section:
    """Collects one section's checks, numbers and notes."""

    def __init__(self) -> None:
        self.checks, self.numbers, self.notes, self.summary = [], {}, [], []

    def check(self, name: str, ok: bool, detail: str = '') -> bool:
        self.checks.append(dict(name=name, ok=bool(ok), detail=detail))
        return bool(ok)


def rel_err(a, b) -> float:
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f'{value:.{digits}g}'
        return f'{value:.2e}'
    return str(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def env_info() -> dict:
    import torch
    info = dict(python=sys.version.split()[0], torch=torch.__version__,
                cuda=torch.version.cuda, device='cpu', threads=torch.get_num_threads())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    sms=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
    for pkg in ('mmengine', 'mmcv', 'mmpretrain'):
        try:
            info[pkg] = __import__(pkg).__version__
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            info[pkg] = f'not importable: {e!r}'[:120]
    return info


def free_cuda() -> None:
    gc.collect()
    import torch
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_oom(error: BaseException) -> bool:
    return 'out of memory' in str(error).lower()


def timed_sync(ctx, fn, repeat: int, warmup: int = 1, max_s: float = 6.) -> float:
    """benchmark_slak.timed (best of ``repeat``), with the GPU synchronised inside; fewer
    repeats when one call is slow (at most about ``max_s`` seconds of timed calls)."""
    bench = load_tool('tools/analysis/benchmark_slak.py')

    def step():
        fn()
        ctx.sync()

    first = time.perf_counter()
    for _ in range(max(warmup, 1)):
        step()
    once = (time.perf_counter() - first) / max(warmup, 1)
    repeat = max(1, min(repeat, int(max_s / max(once, 1e-9))))
    return bench.timed(step, repeat, warmup=0)


# ---------------------------------------------------------------- 1. amp


def _forget_visualizers() -> None:
    """mmengine hands an existing visualizer of the same name to the next Runner of the
    process; each config gets its own Runner here."""
    from mmengine.visualization import Visualizer
    todo = [Visualizer]
    while todo:
        cls = todo.pop()
        cls._instance_dict.clear()
        todo.extend(cls.__subclasses__())


def amp_cfg(ctx, config: str, work_dir: str, emulate_fp16: bool = False):
    from mmengine.config import Config

    from mmconvarch.utils.sample_data import apply_sample_data
    S = ctx.scale
    name = osp.splitext(osp.basename(config))[0]
    cfg = Config.fromfile(osp.join(ROOT, config))
    hooks = copy.deepcopy(cfg.get('custom_hooks') or [])
    apply_sample_data(cfg, root=ctx.sample_root, img_size=S['size'],
                      train_steps=S['iters_per_epoch'] * S['epochs'], batch_size=S['batch'])
    cfg.custom_hooks = hooks  # the config's own: EMA, SparseRegrowHook, ActivationAnnealHook
    for hook in cfg.custom_hooks:
        kind = hook['type'].split('.')[-1]
        if kind == 'SparseRegrowHook' and hook.get('update_frequency'):
            hook['update_frequency'] = S['update_every']  # prune/regrow events in this run
        elif kind == 'ActivationAnnealHook':
            hook.update(decay_epochs=S['anneal_epochs'], decay_iters=None)
    images = S['batch'] * S['iters_per_epoch']
    dataset = cfg.train_dataloader.dataset
    if images <= SAMPLE_TRAIN_IMAGES:
        dataset['indices'] = images
    else:
        assert images % SAMPLE_TRAIN_IMAGES == 0, images
        cfg.train_dataloader.dataset = dict(type='RepeatDataset', dataset=dataset,
                                            times=images // SAMPLE_TRAIN_IMAGES)
    cfg.train_dataloader.update(num_workers=S['workers'], persistent_workers=S['workers'] > 0)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=S['epochs'],
                         val_interval=10**6)
    for split in ('val', 'test'):
        for part in ('dataloader', 'evaluator', 'cfg'):
            cfg[f'{split}_{part}'] = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.log_level = 'WARNING'
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    wrapper = cfg.optim_wrapper
    cfg.config_optim_wrapper = wrapper.get('type', 'OptimWrapper')
    if cfg.config_optim_wrapper not in ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper'):
        # e.g. SLaK trains in fp32, as the official recipe (no --use_amp); its masks are
        # what most needs checking under fp16, so this check runs it with AMP
        wrapper.type, wrapper.loss_scale = 'AmpOptimWrapper', 'dynamic'
    if ctx.dry_run:
        arch, head_in = TINY_ARCH[name]
        cfg.model.backbone.arch = arch
        cfg.model.head.in_channels = head_in
        if emulate_fp16:
            wrapper.pop('loss_scale', None)
            wrapper.type = _cpu_fp16_wrapper()
        else:
            launch = load_tool('tools/launch_utils.py')
            launch.fall_back_from_amp_on_cpu(cfg)  # prints that it does
    return cfg


def _cpu_fp16_wrapper() -> str:
    """Dry run only: mmengine's AmpOptimWrapper (its backward, step and dynamic loss scaling,
    unchanged) on the CPU, with torch's CPU GradScaler and fp16 CPU autocast in place of the
    CUDA ones, which mmengine insists on. So the GPU-only checks of the amp section (the
    forced skipped step, masks after skipped steps) run in the test suite too."""
    import contextlib

    import torch
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    from mmengine.registry import OPTIM_WRAPPERS
    name = 'GpuCheckCpuFp16AmpOptimWrapper'
    if name in OPTIM_WRAPPERS.module_dict:
        return name

    class CpuFp16AmpOptimWrapper(AmpOptimWrapper):
        def __init__(self, **kwargs):
            OptimWrapper.__init__(self, **kwargs)  # AmpOptimWrapper.__init__ refuses a CPU
            self._scale_update_param = None  # dynamic
            self.loss_scaler = torch.amp.GradScaler('cpu')
            self.cast_dtype = torch.float16

        @contextlib.contextmanager
        def optim_context(self, model):
            with OptimWrapper.optim_context(self, model), \
                    torch.autocast('cpu', dtype=torch.float16):
                yield

    OPTIM_WRAPPERS.register_module(name=name, module=CpuFp16AmpOptimWrapper)
    return name


def _amp_probe_cls():
    import torch
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper

    from mmconvarch.models.backbones.vanillanet import get_act_learn

    def unwrap(model):
        return model.module if is_model_wrapper(model) else model

    class AmpProbe(Hook):
        """Runs after every other hook of each iteration: times the step (data loading
        excluded), records losses, loss scale, λ and mask violations, forces one skipped
        fp16 step and checks it left the weights alone."""

        priority = 'LOWEST'

        def __init__(self, ctx, force_skip_iter):
            self.ctx, self.force_skip_iter = ctx, force_skip_iter
            self.times, self.losses, self.scales, self.skipped = [], [], [], []
            self.violations, self.ema_violations, self.events, self.counts_kept = [], [], 0, True
            self.act_learn, self.forced = [], None
            self._t0 = self._scale0 = self._params0 = self._masks0 = None

        @staticmethod
        def _hook(runner, name):
            return next((h for h in runner.hooks if type(h).__name__ == name), None)

        def _engine(self, runner):
            hook = self._hook(runner, 'SparseRegrowHook')
            return None if hook is None else hook.engine

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            model = unwrap(runner.model)
            values = get_act_learn(model)
            if values:
                self.act_learn.append((runner.epoch, sorted({round(v, 6)
                                                             for v in values.values()})))
            scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
            self._scale0 = None if scaler is None else float(scaler.get_scale())
            engine = self._engine(runner)
            self._masks0 = None if engine is None else {
                k: m.clone() for k, m in engine.masks.items()}
            self._params0 = None
            if scaler is not None and runner.iter == self.force_skip_iter:
                self._params0 = {n: p.detach().clone() for n, p in model.named_parameters()}
                scaler.update(new_scale=2.0**40)  # fp16 gradients overflow: a skipped step
            self.ctx.sync()
            self._t0 = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.ctx.sync()
            self.times.append(time.perf_counter() - self._t0)
            loss = outputs['loss']
            self.losses.append(float(loss.detach() if hasattr(loss, 'detach') else loss))
            model = unwrap(runner.model)
            scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
            if scaler is not None:
                used = 2.0**40 if self._params0 is not None else self._scale0
                after = float(scaler.get_scale())
                self.scales.append(after)
                self.skipped.append(after < used)
                if self._params0 is not None:
                    changed = [n for n, p in model.named_parameters()
                               if not torch.equal(p.detach(), self._params0[n])]
                    self.forced = dict(iter=runner.iter, skipped=after < used,
                                       params_changed=len(changed), examples=changed[:3])
                    scaler.update(new_scale=self._scale0)  # back to where it was
                    self._params0 = None
            engine = self._engine(runner)
            if engine is not None:
                bad = 0
                for name, mask in engine.masks.items():
                    bad += int((engine.model.get_parameter(name).detach()[~mask] != 0).sum())
                self.violations.append(bad)
                ema = self._hook(runner, 'EMAHook')
                if ema is not None and hasattr(ema, 'ema_model'):
                    sparse = self._hook(runner, 'SparseRegrowHook')
                    prefix = f'{sparse.module}.' if sparse.module else ''
                    params = dict(ema.ema_model.module.named_parameters())
                    self.ema_violations.append(sum(
                        int((params[prefix + n].detach()[~m] != 0).sum())
                        for n, m in engine.masks.items() if prefix + n in params))
                masks = engine.masks
                if any(not torch.equal(masks[k], m) for k, m in self._masks0.items()):
                    self.events += 1
                    self.counts_kept &= all(int(masks[k].sum()) == int(m.sum())
                                            for k, m in self._masks0.items())

    return AmpProbe


def _amp_one(ctx, sec, config: str, emulate_fp16: bool = False) -> None:
    import torch
    from mmengine.optim import AmpOptimWrapper
    from mmengine.runner import Runner
    S = ctx.scale
    base = osp.splitext(osp.basename(config))[0]
    name = base + (' [fp16 emulated]' if emulate_fp16 else '')
    fp16 = ctx.cuda or emulate_fp16
    force_skip_iter = S['force_skip_iter'] if ctx.cuda else (2 if emulate_fp16 else None)
    work_dir = osp.join(ctx.tmp, 'amp', base + ('_fp16' if emulate_fp16 else ''))
    t0 = time.perf_counter()
    cfg = amp_cfg(ctx, config, work_dir, emulate_fp16)
    own_wrapper = cfg.pop('config_optim_wrapper')
    if own_wrapper != 'AmpOptimWrapper' and not emulate_fp16:
        sec.notes.append(f'{name}: the config trains with {own_wrapper} (fp32); this check '
                         'runs it with AmpOptimWrapper (fp16, dynamic loss scale)')
    _forget_visualizers()
    runner = Runner.from_cfg(cfg)
    probe = _amp_probe_cls()(ctx, force_skip_iter)
    runner.register_hook(probe)
    build_s = time.perf_counter() - t0
    runner.train()
    run_s = time.perf_counter() - t0 - build_s
    ow = runner.optim_wrapper
    scaler = getattr(ow, 'loss_scaler', None)
    iters = S['iters_per_epoch'] * S['epochs']
    row = dict(optim_wrapper=type(ow).__name__, config_optim_wrapper=own_wrapper,
               iters=len(probe.losses), batch=S['batch'], size=S['size'],
               build_s=round(build_s, 2), run_s=round(run_s, 2))
    if scaler is not None:
        row['amp_dtype'] = str(getattr(ow, 'cast_dtype', None) or torch.float16)
        row['loss_scale_final'] = probe.scales[-1] if probe.scales else None
        row['skipped_steps'] = int(sum(probe.skipped))
    timed = [t for i, t in enumerate(probe.times)
             if i >= S['warmup_iters'] and i != force_skip_iter] or probe.times
    step = statistics.median(timed)
    row.update(step_ms=round(step * 1e3, 2), img_per_s=round(S['batch'] / step, 1),
               loss_first=probe.losses[0] if probe.losses else None,
               loss_last=probe.losses[-1] if probe.losses else None)
    sec.check(f'{name}: ran {iters} iterations', len(probe.losses) == iters,
              f'{len(probe.losses)} iterations')
    sec.check(f'{name}: losses finite', bool(probe.losses) and all(map(math.isfinite,
                                                                       probe.losses)),
              f'{fmt(row["loss_first"])} -> {fmt(row["loss_last"])}')
    if fp16:
        sec.check(f'{name}: AmpOptimWrapper in use', isinstance(ow, AmpOptimWrapper),
                  row['optim_wrapper'])
        forced = probe.forced or {}
        sec.check(f'{name}: forced fp16 overflow skipped the step, weights unchanged',
                  forced.get('skipped') and forced.get('params_changed') == 0, str(forced))
    if probe.violations:
        row.update(mask_violations=max(probe.violations), mask_events=probe.events,
                   masks_checked_iters=len(probe.violations))
        sec.check(f'{name}: masked weights exactly 0 after every step'
                  + (' (skipped steps included)' if fp16 else ''),
                  max(probe.violations) == 0, f'max {max(probe.violations)} non-zero')
        if probe.ema_violations:
            row['ema_mask_violations'] = max(probe.ema_violations)
            sec.check(f'{name}: EMA weights 0 at the masks', max(probe.ema_violations) == 0,
                      f'max {max(probe.ema_violations)} non-zero')
        sec.check(f'{name}: a prune/regrow event changed the masks, counts kept',
                  probe.events >= 1 and probe.counts_kept, f'{probe.events} event(s)')
    if probe.act_learn:
        want = {e: round(min(e / S['anneal_epochs'], 1.), 6) for e, _ in probe.act_learn}
        wrong = [(e, v) for e, v in probe.act_learn if v != [want[e]]]
        seen = sorted({v[0] for _, v in probe.act_learn if len(v) == 1})
        row['act_learn_seen'] = seen
        sec.check(f'{name}: λ annealed as scheduled (e/{S["anneal_epochs"]})',
                  not wrong and len(seen) >= 2, f'seen {seen}; wrong {wrong[:3]}')
    sec.numbers[name] = row
    line = f'{name}: {row["img_per_s"]} img/s ({row["step_ms"]} ms/step, bs {S["batch"]}, ' \
           f'{S["size"]}px, {row["optim_wrapper"]}'
    if scaler is not None:
        line += f', scale {fmt(row["loss_scale_final"])}, {row["skipped_steps"]} skipped'
    sec.summary.append(line + ')')
    del runner, probe
    free_cuda()


def section_amp(ctx, sec) -> None:
    from mmconvarch.utils.sample_data import make_sample_data
    ctx.sample_root = make_sample_data(osp.join(ctx.tmp, 'sample'))
    if ctx.dry_run:
        sec.notes.append('dry run: mmengine AmpOptimWrapper refuses a CPU, so the configs '
                         'train with OptimWrapper in fp32 (tools/launch_utils.py '
                         'fall_back_from_amp_on_cpu); no loss scaler, no skipped steps; tiny '
                         'archs of the same families')
        sec.notes.append('dry run, "[fp16 emulated]": the same runs with mmengine\'s '
                         'AmpOptimWrapper on torch\'s CPU GradScaler and fp16 CPU autocast, so '
                         'the fp16-only checks (a forced skipped step at iteration 2, masks '
                         'after skipped steps) run here too')
    else:
        sec.notes.append('step time excludes data loading (between before/after_train_iter, '
                         'CUDA synchronised); iteration '
                         f'{ctx.scale["force_skip_iter"]} runs with loss scale 2^40 so that '
                         'its fp16 gradients overflow and the step is skipped')
    runs = [(c, False) for c in AMP_CONFIGS]
    if ctx.dry_run:
        runs += [(c, True) for c in AMP_CONFIGS]
    for config, emulate in runs:
        name = osp.splitext(osp.basename(config))[0] + (' [fp16 emulated]' if emulate else '')
        if ctx.left() < 15:
            sec.check(f'{name}: ran', False, 'skipped: section time limit')
            continue
        try:
            _amp_one(ctx, sec, config, emulate)
        except Exception as e:  # noqa: BLE001 - one config's failure, reported
            sec.check(f'{name}: ran', False, f'{type(e).__name__}: {e}'[:400])
            sec.notes.append(f'{name}: ' + traceback.format_exc(limit=-6)[-1500:])
            free_cuda()


# ---------------------------------------------------------------- 2. revcol


def _revcol_run(model, x, amp_dtype=None, scale: float = 1.):
    import torch
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # drop path: the same masks on both paths (CPU and CUDA RNG)
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


def _revcol_pair(arch, columns, device):
    import torch

    from mmconvarch.models.backbones import RevCol
    torch.manual_seed(0)
    layout = dict(RevCol.arch_zoo[arch]) if isinstance(arch, str) else dict(arch)
    layout['num_columns'] = columns
    trained_like = load_tool('tools/analysis/benchmark_revcol_memory.py').trained_like
    plain = trained_like(RevCol(layout, drop_path_rate=0.3)).to(device).train()
    rev = copy.deepcopy(plain)
    rev.save_memory = True
    return plain, rev


def section_revcol(ctx, sec) -> None:
    import torch
    bench = load_tool('tools/analysis/benchmark_revcol_memory.py')
    S, dev = ctx.scale, ctx.device
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    grads = sec.numbers.setdefault('grad_rel_err', {})
    # TF32 off for the fp32 references: it rounds conv/matmul inputs to 10 mantissa bits
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        x = torch.randn(S['grad_batch'], 3, S['grad_size'], S['grad_size'], device=dev)
        # 1. fp32: reversible = plain (drop path on: the RNG replay is exercised)
        for columns in S['grad_columns']:
            plain, rev = _revcol_pair(S['grad_arch'], columns, dev)
            outs_p, gx_p, gp = _revcol_run(plain, x)
            outs_r, gx_r, gr = _revcol_run(rev, x)
            worst = max([rel_err(a, b) for a, b in zip(outs_r, outs_p)]
                        + [rel_err(gx_r, gx_p)] + [rel_err(gr[n], gp[n]) for n in gp])
            same_keys = gp.keys() == gr.keys()
            grads[f'fp32_{columns}col'] = worst
            sec.check(f'fp32 reversible = plain, {columns} columns (<= 1e-5 relative)',
                      same_keys and worst <= 1e-5, f'worst {worst:.2e}')
            plain = rev = None
            free_cuda()
        # 1b. fp16 / bf16 autocast: as close to the fp32 gradients as the plain path is
        dtypes = [torch.float16, torch.bfloat16] if ctx.cuda else [torch.bfloat16]
        columns = S['grad_columns'][0]
        plain, rev = _revcol_pair(S['grad_arch'], columns, dev)
        _, _, ref = _revcol_run(plain, x)
        for dtype in dtypes:
            scale = 2.0**12 if dtype == torch.float16 else 1.  # as a loss scaler would
            _, _, g_plain = _revcol_run(plain, x, dtype, scale)
            _, _, g_rev = _revcol_run(rev, x, dtype, scale)
            names = [n for n in ref if n in g_plain and n in g_rev]
            finite = all(bool(torch.isfinite(g_rev[n]).all()) for n in names)
            err_plain = max(rel_err(g_plain[n], ref[n]) for n in names)
            err_rev = max(rel_err(g_rev[n], ref[n]) for n in names)
            short = str(dtype).split('.')[-1]
            grads[f'{short}_plain_vs_fp32'] = err_plain
            grads[f'{short}_rev_vs_fp32'] = err_rev
            sec.check(f'{short} reversible as close to fp32 as plain {short} '
                      f'({columns} columns; <= 1.5x plain, < 0.1)',
                      finite and err_rev <= 1.5 * err_plain + 1e-6 and err_rev < 0.1,
                      f'rev {err_rev:.2e} vs plain {err_plain:.2e}')
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    sec.summary.append('grads: ' + ', '.join(f'{k} {v:.1e}' for k, v in grads.items()))
    plain = rev = ref = g_plain = g_rev = x = None
    free_cuda()
    # 2. peak memory and step time, 4/8/16 columns
    rows = []
    for batch in S['mem_batches']:
        rows = []
        try:
            x = torch.randn(batch, 3, S['mem_size'], S['mem_size'], device=dev)
            for columns in sorted(S['mem_columns'], reverse=True):  # the largest first
                plain, rev = _revcol_pair(S['mem_arch'], columns, dev)
                mem_p, t_p = bench.measure(plain, x, S['mem_amp'], S['repeat'])
                mem_r, t_r = bench.measure(rev, x, S['mem_amp'], S['repeat'])
                rows.append(dict(columns=columns, plain_mb=round(mem_p / 2**20, 1),
                                 rev_mb=round(mem_r / 2**20, 1),
                                 plain_over_rev=round(mem_p / max(mem_r, 1), 2),
                                 plain_s=round(t_p, 4), rev_s=round(t_r, 4),
                                 time_ratio=round(t_r / t_p, 2)))
                del plain, rev
                free_cuda()
            break
        except RuntimeError as e:
            if not is_oom(e):
                raise
            sec.notes.append(f'batch {batch} did not fit ({str(e)[:80]}); halving')
            plain = rev = x = None  # noqa: F841  (drop the references: frees GPU memory)
            free_cuda()
    rows.sort(key=lambda r: r['columns'])
    amp = ('fp16' if ctx.cuda else 'bf16') if S['mem_amp'] else 'fp32'
    if not S['mem_amp']:
        sec.notes.append('dry run: memory in fp32; under CPU bf16 autocast the cached bf16 '
                         'weight copies (growing with the columns) outweigh the activations '
                         'of tiny inputs')
    sec.numbers['memory'] = dict(batch=batch, size=S['mem_size'], amp=amp,
                                 measure='torch.cuda.max_memory_allocated' if ctx.cuda else
                                 'profiler-replayed live bytes (CPU)', rows=rows)
    sec.check('memory measured at every column count', len(rows) == len(S['mem_columns']),
              f'{len(rows)} of {len(S["mem_columns"])}')
    if rows:
        sec.check('reversible peak below plain at every column count',
                  all(r['rev_mb'] < r['plain_mb'] for r in rows),
                  ', '.join(f'{r["columns"]}: {r["rev_mb"]} vs {r["plain_mb"]} MB' for r in rows))
        growth = rows[-1]['rev_mb'] / max(rows[0]['rev_mb'], 1e-9)
        sec.numbers['memory']['rev_growth_first_to_last'] = round(growth, 2)
        sec.check(f'reversible peak ~constant in columns ({rows[0]["columns"]} -> '
                  f'{rows[-1]["columns"]}: <= 1.5x)', growth <= 1.5, f'{growth:.2f}x')
        for r in rows:
            sec.summary.append(f'{r["columns"]:>2} columns, bs {batch} {S["mem_size"]}px {amp}: '
                               f'plain {r["plain_mb"]} MB, rev {r["rev_mb"]} MB '
                               f'({r["plain_over_rev"]}x less), step time rev/plain '
                               f'{r["time_ratio"]}')


# ---------------------------------------------------------------- 3. slak


def _slak_classifier(arch, decompose: bool, device):
    import torch
    import torch.nn as nn

    from mmconvarch.models.backbones import SLaK

    class SLaKClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = SLaK(arch, decompose=decompose)
            self.head = nn.Linear(self.backbone.channels[-1], 1000)

        def forward(self, x):
            return self.head(self.backbone(x)[-1])

    torch.manual_seed(0)
    model = SLaKClassifier()
    g = torch.Generator().manual_seed(0)
    for m in model.modules():  # BN statistics that make the deploy fusion non-trivial
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.to(device)


def _top_kernel(ctx, fn) -> str:
    """The CUDA kernel that takes most of one call of fn: which path the conv took (PyTorch's
    native depthwise kernel or cuDNN's)."""
    if not ctx.cuda:
        return ''
    try:
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            ctx.sync()
        kernels = {}
        for e in prof.events():
            if e.device_type == DeviceType.CUDA:
                kernels[e.name] = kernels.get(e.name, 0) + e.time_range.elapsed_us()
        if not kernels:
            return ''
        total = sum(kernels.values())
        name, us = max(kernels.items(), key=lambda kv: kv[1])
        return f'{name[:80]} ({us / max(total, 1e-9):.0%})'
    except Exception as e:  # noqa: BLE001 - diagnostic only
        return f'(profiler: {type(e).__name__}: {str(e)[:60]})'


def section_slak(ctx, sec) -> None:
    import torch

    from mmconvarch.models.backbones.slak import DecomposedLargeKernelConv
    S, dev = ctx.scale, ctx.device
    amp = torch.float16 if ctx.cuda else None
    amp_name = 'fp16 autocast' if ctx.cuda else 'fp32'
    layouts = dict(nchw=torch.contiguous_format, channels_last=torch.channels_last)
    dtypes = [('fp32', None), ('fp16', torch.float16)] if ctx.cuda else [('fp32', None)]
    # 1. roofline: the stage-1 large-kernel conv alone (first: the fastest, the most asked)
    batch, channels, hw = S['layer']
    k, n = 51, 5
    flops = 2 * (2 * k * n + n * n) * channels * hw * hw * batch
    peak = ctx.args.fp32_peak_tflops * 1e12
    roof_ms = flops / peak * 1e3
    layer_rows = []
    torch.manual_seed(0)
    layer = DecomposedLargeKernelConv(channels, k, n).to(dev).eval()
    merged = copy.deepcopy(layer)
    merged.switch_to_deploy()
    x0 = torch.randn(batch, channels, hw, hw, device=dev)
    for lname, mod, lflops in (('decomposed 51x5+5x51+5x5', layer, flops),
                               ('merged 51x51', merged, 2 * k * k * channels * hw * hw * batch)):
        for dname, dtype in dtypes:
            for layout, mf in layouts.items():
                m = copy.deepcopy(mod).to(dtype=dtype or torch.float32, memory_format=mf)
                xl = x0.to(dtype or torch.float32).contiguous(memory_format=mf)

                def fwd():
                    with torch.no_grad():
                        m(xl)

                sec_ = timed_sync(ctx, fwd, S['layer_repeat'], warmup=2)
                row = dict(layer=lname, dtype=dname, layout=layout, ms=round(sec_ * 1e3, 3),
                           tflops=round(lflops / sec_ / 1e12, 2))
                if lflops == flops and ctx.cuda:  # the roofline is the GPU's
                    row['x_roofline'] = round(sec_ * 1e3 / roof_ms, 1)
                kernel = _top_kernel(ctx, fwd)
                if kernel:
                    row['top_kernel'] = kernel
                layer_rows.append(row)
                m = None
    layer = merged = x0 = None
    sec.numbers['stage1_layer'] = dict(
        shape=[batch, channels, hw, hw], gflop=round(flops / 1e9, 2),
        roofline_ms=round(roof_ms, 3), fp32_peak_tflops=ctx.args.fp32_peak_tflops,
        rows=layer_rows)
    dec = [r for r in layer_rows if r['layer'].startswith('decomposed') and r['dtype'] == 'fp32'
           and 'x_roofline' in r]
    if dec:
        sec.summary.append(
            f'stage-1 LK conv {batch}x{channels}x{hw}x{hw} fp32 ({flops / 1e9:.1f} GFLOP, '
            f'roofline {roof_ms:.2f} ms): ' + ', '.join(
                f'{r["layout"]} {r["ms"]} ms = {r["x_roofline"]}x roofline' for r in dec))
    free_cuda()
    # 2. whole SLaK-T: equivalence of the forms and layouts
    x = torch.randn(S['batch'], 3, S['size'], S['size'], device=dev)
    decomposed = _slak_classifier(S['arch'], True, dev).eval()
    deploy = copy.deepcopy(decomposed)
    deploy.backbone.switch_to_deploy()
    with torch.no_grad():
        xs = x[:2]
        ref = decomposed(xs)
        err_deploy = rel_err(deploy(xs), ref)
        err_cl = rel_err(copy.deepcopy(decomposed).to(memory_format=torch.channels_last)(
            xs.contiguous(memory_format=torch.channels_last)), ref)
    sec.numbers['equivalence'] = dict(deploy_vs_decomposed=err_deploy, cl_vs_nchw=err_cl)
    sec.check('merged deploy form = decomposed form (eval, rel <= 1e-3)', err_deploy <= 1e-3,
              f'{err_deploy:.1e}')
    sec.check('channels_last = NCHW (rel <= 1e-3)', err_cl <= 1e-3, f'{err_cl:.1e}')
    models = dict(decomposed=decomposed, deploy=deploy, dense=None)
    # 3. inference throughput: the published figure's setting (batch 64, forward only)
    infer_rows = []
    for form in ('decomposed', 'deploy'):
        for dname, dtype in dtypes:
            for layout, mf in layouts.items():
                if ctx.left() < 15:
                    sec.notes.append(f'inference {form}/{dname}/{layout}: skipped (time limit)')
                    continue
                model = copy.deepcopy(models[form]).to(memory_format=mf).eval()
                xl = x.contiguous(memory_format=mf)

                def forward():
                    with torch.no_grad(), torch.autocast(dev.type, dtype=dtype or torch.bfloat16,
                                                         enabled=dtype is not None):
                        model(xl)

                sec_ = timed_sync(ctx, forward, S['repeat'])
                infer_rows.append(dict(form=form, dtype=dname, layout=layout,
                                       ms=round(sec_ * 1e3, 2),
                                       img_per_s=round(S['batch'] / sec_, 1)))
                model = None
                free_cuda()
    # 4. training step throughput (fwd+bwd, autocast): decomposed, merged deploy, dense KxK
    train_rows = []
    for form in ('decomposed', 'deploy', 'dense'):
        if models[form] is None:
            models[form] = _slak_classifier(S['arch'], False, dev)
        for layout, mf in layouts.items():
            if ctx.left() < 15:
                sec.notes.append(f'train {form}/{layout}: skipped (time limit)')
                continue
            model = copy.deepcopy(models[form]).to(memory_format=mf).train()
            xl = x.contiguous(memory_format=mf)

            def step():
                model.zero_grad(set_to_none=True)
                with torch.autocast(dev.type, dtype=amp or torch.bfloat16,
                                    enabled=amp is not None):
                    out = model(xl)
                out.float().logsumexp(1).mean().backward()

            try:
                sec_ = timed_sync(ctx, step, S['repeat'])
                train_rows.append(dict(form=form, layout=layout, ms=round(sec_ * 1e3, 2),
                                       img_per_s=round(S['batch'] / sec_, 1)))
            except RuntimeError as e:
                if not is_oom(e):
                    raise
                train_rows.append(dict(form=form, layout=layout, error='out of memory'))
            model = None
            free_cuda()
    models = decomposed = deploy = x = None
    free_cuda()
    sec.numbers.update(batch=S['batch'], size=S['size'], amp=amp_name, train=train_rows,
                       inference=infer_rows, published_a100_inference_bs64=SLAK_PUBLISHED)
    ok_rows = [r for r in train_rows if 'img_per_s' in r]
    sec.check('every inference variant ran', len(infer_rows) == 4 * len(dtypes),
              f'{len(infer_rows)} of {4 * len(dtypes)}')
    sec.check('every training variant ran', len(ok_rows) == 6, f'{len(ok_rows)} of 6')
    sec.summary.append(f'inference bs {S["batch"]} {S["size"]}px img/s: ' + ', '.join(
        f'{r["form"]}/{r["dtype"]}/{r["layout"]} {r["img_per_s"]}' for r in infer_rows)
        + f' (published, A100, decomposed: {SLAK_PUBLISHED["official_cuda_ext"]:.0f} with the '
        f'official CUDA ext, {SLAK_PUBLISHED["nn_conv2d"]:.0f} with nn.Conv2d)')
    sec.summary.append(f'train bs {S["batch"]} {S["size"]}px {amp_name} img/s: ' + ', '.join(
        f'{r["form"]}/{r["layout"]} {r.get("img_per_s", r.get("error"))}' for r in train_rows))
    best = [r['img_per_s'] for r in infer_rows if r['form'] == 'decomposed']
    sec.numbers['best_decomposed_inference_img_per_s'] = max(best) if best else None


# ---------------------------------------------------------------- 4. vanillanet


def _graph_latency(model, x, repeats: int) -> float:
    """Batch-1 latency without launch overhead: one CUDA graph replayed."""
    import torch
    static = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(stream):
        for _ in range(3):
            model(static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        model(static)
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        graph.replay()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def _resnet50():
    try:
        import torchvision
        return torchvision.models.resnet50(), 'torchvision resnet50'
    except Exception:  # noqa: BLE001 - fall back to mmpretrain's
        import torch.nn as nn
        from mmpretrain.models import ResNet

        class R50(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone, self.fc = ResNet(50), nn.Linear(2048, 1000)

            def forward(self, x):
                return self.fc(self.backbone(x)[-1].mean((2, 3)))

        return R50(), 'mmpretrain ResNet-50'


def section_vanillanet(ctx, sec) -> None:
    import torch

    from mmconvarch.deploy import switch_to_deploy
    bench = load_tool('tools/analysis/benchmark_vanillanet.py')
    S, dev = ctx.scale, ctx.device
    bench_mode = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = ctx.cuda
    layouts = dict(nchw=torch.contiguous_format, channels_last=torch.channels_last)
    rows = []
    try:
        resnet, resnet_name = _resnet50()
        resnet = resnet.to(dev).eval()
        resnet_ms = {}
        for dname in S['dtypes']:
            dtype = getattr(torch, dname)
            for layout, mf in layouts.items():
                m = copy.deepcopy(resnet).to(dtype=dtype, memory_format=mf)
                x = torch.randn(1, 3, S['size'], S['size'], device=dev, dtype=dtype
                                ).contiguous(memory_format=mf)
                t = bench.interleaved_latency(dict(m=m), x, S['warmup'], S['repeats'])['m']
                resnet_ms[(dname, layout)] = t * 1e3
        del resnet
        for i, arch in enumerate(S['archs']):
            label = arch if isinstance(arch, str) else f'tiny{i}'
            train = bench.build(arch).to(dev)
            deploy = copy.deepcopy(train)
            switch_to_deploy(deploy)
            tf32 = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False
            with torch.no_grad():
                x1 = torch.randn(1, 3, S['size'], S['size'], device=dev)
                ref = train(x1)
                err = ((deploy(x1) - ref).abs().max() / ref.abs().max()).item()
            torch.backends.cudnn.allow_tf32 = tf32
            sec.check(f'vanillanet_{label}: deploy logits = train logits (fp32, <= 1e-4 of max)',
                      err <= 1e-4, f'{err:.1e}')
            for dname in S['dtypes']:
                dtype = getattr(torch, dname)
                for layout, mf in layouts.items():
                    tm = copy.deepcopy(train).to(dtype=dtype, memory_format=mf)
                    dm = copy.deepcopy(deploy).to(dtype=dtype, memory_format=mf)
                    tm.backbone.memory_format = dm.backbone.memory_format = mf  # the layout run
                    x = torch.randn(1, 3, S['size'], S['size'], device=dev, dtype=dtype
                                    ).contiguous(memory_format=mf)
                    fastest = bench.interleaved_latency(dict(train=tm, deploy=dm), x,
                                                        S['warmup'], S['repeats'])
                    t, d = fastest['train'], fastest['deploy']
                    ratio = t / d
                    row = dict(arch=label, dtype=dname, layout=layout,
                               train_ms=round(t * 1e3, 3), deploy_ms=round(d * 1e3, 3),
                               train_over_deploy=round(ratio, 2),
                               resnet50_ms=round(resnet_ms[(dname, layout)], 3),
                               deploy_over_resnet50=round(d * 1e3 / resnet_ms[(dname, layout)],
                                                          3))
                    if S['graphs'] and ctx.cuda and ctx.left() > 10:
                        try:
                            row['deploy_graph_ms'] = round(
                                _graph_latency(dm, x, S['repeats']) * 1e3, 3)
                        except Exception as e:  # noqa: BLE001 - optional
                            row['deploy_graph_ms'] = f'failed: {type(e).__name__}'
                    rows.append(row)
                    del tm, dm
            del train, deploy
            free_cuda()
    finally:
        torch.backends.cudnn.benchmark = bench_mode
    paper = VANILLANET_PAPER_MS
    sec.numbers.update(size=S['size'], rows=rows, resnet50=resnet_name,
                       cudnn_benchmark=ctx.cuda, paper_ms=paper,
                       paper_over_resnet50={a: round(paper[a] / paper['resnet50'], 3)
                                            for a in ('5', '13')})
    want = len(S['archs']) * len(S['dtypes']) * 2
    sec.check('every latency variant ran', len(rows) == want, f'{len(rows)} of {want}')
    sec.check('latencies positive and finite', all(
        0 < r['deploy_ms'] < 1e6 and 0 < r['train_ms'] < 1e6 for r in rows))
    for arch in dict.fromkeys(r['arch'] for r in rows):
        mine = [r for r in rows if r['arch'] == arch]
        fast = min(mine, key=lambda r: r['deploy_ms'])
        ref = f' (paper {paper[arch]} ms, {paper[arch] / paper["resnet50"]:.2f}x ResNet-50)' \
            if arch in paper else ''
        sec.summary.append(
            f'vanillanet_{arch} bs1 deploy: best {fast["deploy_ms"]} ms ({fast["dtype"]}, '
            f'{fast["layout"]}) = {fast["deploy_over_resnet50"]}x ResNet-50{ref}; ' + ', '.join(
                f'{r["dtype"]}/{r["layout"]} {r["deploy_ms"]}' for r in mine))


# ---------------------------------------------------------------- 5. ddp


def _small_models(dev):
    import torch
    import torch.nn as nn

    from mmconvarch.models.backbones import SLaK, VanillaNet

    class Net(nn.Module):
        def __init__(self, backbone, channels):
            super().__init__()
            self.backbone, self.head = backbone, nn.Linear(channels, 10)

        def forward(self, x):
            out = self.backbone(x)[-1]
            return self.head(out.mean((2, 3)) if out.dim() == 4 else out)

    torch.manual_seed(0)
    van = VanillaNet(dict(dims=[16, 32, 64, 128], strides=[2, 2, 2]))
    slak = SLaK(dict(depths=[1, 1, 1, 1], channels=[8, 16, 32, 64]),
                kernel_size=(13, 11, 9, 7, 3))
    return dict(vanillanet=Net(van, van.channels[-1]).to(dev),
                slak=Net(slak, slak.channels[-1]).to(dev))


def section_ddp(ctx, sec) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    S, dev = ctx.scale, ctx.device
    backend = 'nccl' if ctx.cuda else 'gloo'
    port = free_port()
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK='0',
                      WORLD_SIZE='1', LOCAL_RANK='0')
    if dist.is_initialized():
        dist.destroy_process_group()
    t0 = time.perf_counter()
    kwargs = dict(device_id=dev) if ctx.cuda else {}
    try:
        dist.init_process_group(backend, init_method='env://', rank=0, world_size=1,
                                timeout=datetime.timedelta(seconds=60), **kwargs)
    except TypeError:  # older torch: no device_id
        dist.init_process_group(backend, init_method='env://', rank=0, world_size=1,
                                timeout=datetime.timedelta(seconds=60))
    sec.numbers.update(backend=backend, init_s=round(time.perf_counter() - t0, 2),
                       master=f'127.0.0.1:{port}')
    try:
        t = torch.arange(4., device=dev)
        dist.all_reduce(t)
        sec.check(f'{backend} all_reduce', torch.equal(t.cpu(), torch.arange(4.)), str(t.tolist()))
        x = torch.randn(S['batch'], 3, S['size'], S['size'], device=dev)
        for name, model in _small_models(dev).items():
            ref = copy.deepcopy(model).train()
            synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(model))
            n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
            n_sync = sum(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
            sec.numbers[f'{name}_bn_layers'] = n_bn
            sec.check(f'{name}: every BN converted to SyncBatchNorm', n_sync == n_bn > 0,
                      f'{n_sync} of {n_bn}')
            if ctx.cuda:
                wrapped = DDP(synced.train(), device_ids=[dev.index or 0])
                what = 'SyncBN under DDP'
            else:
                wrapped = DDP(copy.deepcopy(model).train(), device_ids=None)
                what = 'BN under DDP (SyncBN kernels are CUDA-only)'
            out = wrapped(x)
            out.float().square().mean().backward()
            out_ref = ref(x)
            out_ref.float().square().mean().backward()
            err_out = rel_err(out, out_ref)
            params = dict(wrapped.module.named_parameters())
            err_grad = max(rel_err(params[n].grad, p.grad) for n, p in ref.named_parameters()
                           if p.grad is not None)
            sec.numbers[f'{name}_rel_err'] = dict(out=err_out, grad=err_grad)
            sec.check(f'{name}: {what} forward/backward = plain BN (rel <= 1e-4)',
                      err_out <= 1e-4 and err_grad <= 1e-4,
                      f'out {err_out:.1e}, grads {err_grad:.1e}')
        if ctx.cuda:
            # world size 1 makes nn.SyncBatchNorm take the plain path; call its autograd
            # function directly so the sync kernels and the NCCL all_gather run
            from torch.nn.modules._functions import SyncBatchNorm as SyncBNFunction
            c = 16
            inp = torch.randn(8, c, 8, 8, device=dev)
            w = torch.rand(c, device=dev) + 0.5
            b = torch.randn(c, device=dev)
            stats = [(torch.zeros(c, device=dev), torch.ones(c, device=dev)) for _ in range(2)]
            xs = [inp.clone().requires_grad_(True) for _ in range(2)]
            y_sync = SyncBNFunction.apply(xs[0], w, b, *stats[0], 1e-5, 0.1, dist.group.WORLD, 1)
            y_ref = F.batch_norm(xs[1], *stats[1], w, b, True, 0.1, 1e-5)
            g = torch.randn_like(y_ref)
            y_sync.backward(g)
            y_ref.backward(g)
            errs = dict(out=rel_err(y_sync, y_ref), grad=rel_err(xs[0].grad, xs[1].grad),
                        running_mean=rel_err(stats[0][0], stats[1][0]))
            sec.numbers['syncbn_function_rel_err'] = errs
            sec.check('SyncBN kernels + NCCL all_gather = F.batch_norm (rel <= 1e-4)',
                      max(errs.values()) <= 1e-4, str({k: f'{v:.1e}' for k, v in errs.items()}))
        else:
            sec.notes.append('dry run: gloo; SyncBN converted and checked by type, the '
                             'forward/backward runs with plain BN (torch SyncBN needs CUDA)')
    finally:
        dist.destroy_process_group()
    sec.summary.append(f'{backend} group of 1 in {sec.numbers["init_s"]} s; ' + ', '.join(
        f'{k}: out {v["out"]:.1e} grad {v["grad"]:.1e}' for k, v in sec.numbers.items()
        if k.endswith('_rel_err') and 'out' in v))


SECTION_FUNCS = dict(amp=section_amp, revcol=section_revcol, slak=section_slak,
                     vanillanet=section_vanillanet, ddp=section_ddp)


# ---------------------------------------------------------------- running


def run_section(name: str, args, limit: float) -> dict:
    """Run one section in this process; never raises."""
    start = time.perf_counter()
    sec = Section()
    result = dict(status='fail', seconds=None, error=None)
    try:
        ensure_distutils()
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        cuda = torch.cuda.is_available() and not args.dry_run
        if not args.dry_run and not cuda:
            raise RuntimeError('no CUDA device: run with --dry-run on a CPU')
        result['env'] = env_info()
        import mmconvarch  # noqa: F401  (registers everything)
        with tempfile.TemporaryDirectory(prefix=f'gpu_check_{name}_') as tmp:
            ctx = Context(name=name, args=args, dry_run=args.dry_run, cuda=cuda,
                          device=torch.device('cuda', 0) if cuda else torch.device('cpu'),
                          scale=SCALES['dry' if args.dry_run else 'gpu'][name], tmp=tmp,
                          deadline=start + limit)
            SECTION_FUNCS[name](ctx, sec)
            if cuda:
                result['max_memory_allocated_gib'] = round(
                    torch.cuda.max_memory_allocated() / 2**30, 2)
    except Exception as e:  # noqa: BLE001 - the report says what broke
        result['error'] = f'{type(e).__name__}: {e}'[:600]
        result['traceback'] = traceback.format_exc()[-3000:]
    result.update(seconds=round(time.perf_counter() - start, 2), checks=sec.checks,
                  numbers=sec.numbers, notes=sec.notes, summary=sec.summary)
    ok = result['error'] is None and bool(sec.checks) and all(c['ok'] for c in sec.checks)
    result['status'] = 'pass' if ok else 'fail'
    return result


def run_isolated(name: str, args, limit: float) -> dict:
    """Run one section in a child process, killed (with its data workers) after limit."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='gpu_check_child_') as tmp:
        out = osp.join(tmp, 'result.json')
        cmd = [sys.executable, osp.abspath(__file__), '--child', name, '--child-out', out,
               '--child-limit', str(limit), '--fp32-peak-tflops', str(args.fp32_peak_tflops)]
        if args.dry_run:
            cmd.append('--dry-run')
        if args.threads:
            cmd += ['--threads', str(args.threads)]
        proc = subprocess.Popen(cmd, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit + 15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
        if osp.exists(out):
            with open(out) as f:
                return json.load(f)
    why = f'killed after its time limit ({limit:.0f} s)' if rc is None else \
        f'child process exited with status {rc} and no result (crash)'
    return dict(status='fail', seconds=round(time.perf_counter() - start, 2), error=why,
                checks=[], numbers={}, notes=[], summary=[])


def markdown(report: dict) -> str:
    env = report.get('env') or {}
    lines = [f'# GPU check ({"dry run on the CPU, tiny shapes" if report["dry_run"] else "GPU"})',
             '', f'{report["started"]}; total {report.get("total_s")} s; '
             + ', '.join(f'{k} {v}' for k, v in env.items()), '',
             '| section | status | seconds | summary |', '|---|---|---|---|']
    for name, sec in report['sections'].items():
        summary = '<br>'.join(sec.get('summary') or []) or (sec.get('error') or '')
        lines.append(f'| {name} | {sec["status"].upper()} | {sec.get("seconds")} | '
                     f'{summary.replace("|", "/")} |')
    for name, sec in report['sections'].items():
        lines += ['', f'## {name}: {sec["status"]}', '']
        for c in sec.get('checks', []):
            lines.append(f'- [{"x" if c["ok"] else " "}] {c["name"]}'
                         + (f' — {c["detail"]}' if c.get('detail') else ''))
        for note in sec.get('notes', []):
            lines.append(f'- note: {note}')
        if sec.get('error'):
            lines += [f'- error: `{sec["error"]}`']
        lines += ['', '```json', json.dumps(sec.get('numbers', {}), indent=1,
                                           ensure_ascii=False)[:6000], '```']
    return '\n'.join(lines) + '\n'


def write_report(report: dict, out: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    with open(osp.splitext(out)[0] + '.md', 'w') as f:
        f.write(markdown(report))


def print_compact(report: dict, out: str) -> None:
    env = report.get('env') or {}
    mode = 'dry run (CPU, tiny shapes)' if report['dry_run'] else 'GPU'
    print(f'\n== GPU check, {mode}: torch {env.get("torch")}, {env.get("device")}, '
          f'mmengine {env.get("mmengine")}, mmcv {env.get("mmcv")}, '
          f'mmpretrain {env.get("mmpretrain")}', flush=True)
    for name, sec in report['sections'].items():
        print(f'{name:<11} {sec["status"].upper():<4} {sec.get("seconds") or 0:7.1f} s')
        for line in sec.get('summary') or []:
            print(f'    {line}')
        for c in sec.get('checks', []):
            if not c['ok']:
                print(f'    FAILED: {c["name"]}: {c.get("detail", "")}')
        if sec.get('error'):
            print(f'    ERROR: {sec["error"]}')
    verdict = 'all sections passed' if report['passed'] else 'SOME SECTIONS FAILED'
    print(f'== {verdict} in {report["total_s"]} s; report: {out} and '
          f'{osp.splitext(out)[0]}.md', flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dry-run', action='store_true',
                        help='the same sections on the CPU at tiny shapes')
    parser.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'gpu_check', 'report.json'),
                        help='JSON report (Markdown beside it, .md)')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument('--isolate', action=argparse.BooleanOptionalAction, default=None,
                        help='each section in its own process with a time limit (default: on '
                        'a GPU yes, in the dry run no)')
    parser.add_argument('--budget', type=float, default=None,
                        help=f'seconds for all sections (default {DEFAULT_BUDGET} on a GPU)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (dry run default 1)')
    parser.add_argument('--fp32-peak-tflops', type=float, default=66.9,
                        help='fp32 CUDA-core peak for the SLaK roofline (H100/H200 SXM 66.9, '
                        'A100 19.5)')
    parser.add_argument('--child', choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument('--child-out', help=argparse.SUPPRESS)
    parser.add_argument('--child-limit', type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dry_run and args.threads is None:
        args.threads = 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        result = run_section(args.child, args, args.child_limit)
        with open(args.child_out, 'w') as f:
            json.dump(result, f)
        return 0
    start = time.perf_counter()
    budget = args.budget or (DRY_BUDGET if args.dry_run else DEFAULT_BUDGET)
    isolate = (not args.dry_run) if args.isolate is None else args.isolate
    report = dict(tool='tools/analysis/gpu_check.py', dry_run=args.dry_run,
                  started=datetime.datetime.now().isoformat(timespec='seconds'),
                  isolate=isolate, budget_s=budget, sections={}, passed=False)
    for name in args.sections:
        left = budget - (time.perf_counter() - start)
        limit = min(TIME_LIMITS[name] if not args.dry_run else left, left)
        print(f'[gpu_check] section {name} (limit {limit:.0f} s, '
              f'{"own process" if isolate else "this process"})', flush=True)
        if limit < 10:
            result = dict(status='fail', seconds=0, error='skipped: the time budget is spent',
                          checks=[], numbers={}, notes=[], summary=[])
        elif isolate:
            result = run_isolated(name, args, limit)
        else:
            result = run_section(name, args, limit)
        if result.get('env') and not report.get('env'):
            report['env'] = result['env']
        result.pop('env', None)
        report['sections'][name] = result
        report['total_s'] = round(time.perf_counter() - start, 1)
        report['passed'] = all(s['status'] == 'pass' for s in report['sections'].values())
        write_report(report, args.out)  # after every section: a killed run keeps its part
        print(f'[gpu_check] {name}: {result["status"]} in {result.get("seconds")} s', flush=True)
    report['passed'] = len(report['sections']) == len(args.sections) and report['passed']
    write_report(report, args.out)
    print_compact(report, args.out)
    return 0 if report['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
