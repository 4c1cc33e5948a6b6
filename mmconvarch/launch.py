"""Helpers for scripts that run mmconvarch configs (tools/train.py, tools/test.py, the analysis
tools, your own scripts): config loading with the scope check (mmdet / mmseg / mmpretrain),
the CPU fall-backs (fp32 instead of AMP, gloo and per-process BN
instead of NCCL and SyncBN without a GPU) and clear messages for missing data or downloads.
Command lines stay in the scripts: these functions take plain values.

Nothing here runs at import; each function changes only the config or runner it is given."""
import functools
import importlib
import os
import os.path as osp
import re
import shutil
import socket
import warnings
from contextlib import contextmanager
from copy import deepcopy
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple
from urllib.error import URLError

from mmengine.config import Config, ConfigDict

if TYPE_CHECKING:
    from mmengine.runner import Runner
    from torch import nn

SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def load_config(config: str, cfg_options: Optional[dict] = None, *, launcher: str = 'none',
                sample_data: Optional[str] = None, work_dir: Optional[str] = None) -> Config:
    """Load a config as the tools run it.

    Args:
        config: path of the config file; its ``default_scope`` must be one of :data:`SCOPES`.
        cfg_options: overrides merged last (``--cfg-options``).
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'`` (stored as ``cfg.launcher``).
        sample_data: a folder: point the config at the generated sample set there (created when
            missing), with a short schedule and no pretrained download (``--sample-data``).
        work_dir: where logs and checkpoints go; default the config's own, else
            ``./work_dirs/<config name>``.

    Without a GPU, AMP becomes fp32 and a distributed launcher gets gloo and per-process BN (each
    change is printed). Raises SystemExit with one message for another scope or a scope package
    that does not import.
    """
    import mmconvarch  # noqa: F401  (registers our modules)
    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise SystemExit(
            f'{config}: default_scope is {scope!r}; mmconvarch tools '
            f'run configs whose default_scope is one of {SCOPES} (inherit '
            "e.g. 'mmdet::_base_/default_runtime.py').")
    try:
        importlib.import_module(f'{scope}.registry')
    except Exception as e:
        raise SystemExit(f'{config} needs {scope}, which does not '
                         f'import: {e!r}. Run tools/setup_env.sh.')
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    cfg.launcher = launcher
    if sample_data:
        from mmconvarch.utils.sample_data import apply_sample_data
        apply_sample_data(cfg, root=sample_data, cfg_options=cfg_options)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    fall_back_from_amp_on_cpu(cfg)
    adapt_dist_to_cpu(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


# What each dataset type expects on disk, for the one message a user without the data gets.
_DATASET_LAYOUTS = {
    'CocoDataset': 'COCO 2017 in mmdet\'s layout: <data_root>/annotations/instances_{train,val}'
                   '2017.json and <data_root>/{train,val}2017/ (https://cocodataset.org)',
    'ADE20KDataset': 'ADE20K in mmseg\'s layout: <data_root>/images/{training,validation}/*.jpg '
                     'and <data_root>/annotations/{training,validation}/*.png '
                     '(ADEChallengeData2016.zip, http://sceneparsing.csail.mit.edu)',
    'ImageNet': 'ImageNet-1k in mmpretrain\'s layout: <data_root>/{train,val}/ image folders '
                'and <data_root>/meta/{train,val}.txt (https://image-net.org)',
}


def _leaf_datasets(node):
    """Dataset configs under a (possibly wrapped: Repeat/Concat/ClassBalanced) dataset."""
    if not isinstance(node, dict):
        return
    if isinstance(node.get('dataset'), dict):
        yield from _leaf_datasets(node['dataset'])
    elif isinstance(node.get('datasets'), (list, tuple)):
        for sub in node['datasets']:
            yield from _leaf_datasets(sub)
    else:
        yield node


def _missing_paths(dataset: dict) -> List[str]:
    root = dataset.get('data_root') or ''
    prefix = dataset.get('data_prefix') or {}
    prefixes = list(prefix.values()) if isinstance(prefix, dict) else [prefix]
    paths = [dataset.get('ann_file')] + prefixes
    paths = [osp.join(root, p) for p in paths if isinstance(p, str) and p]
    if not paths and root:  # mmpretrain's ImageNet: data_root + split
        paths = [osp.join(root, dataset.get('split') or '')]
    return [p for p in paths if '://' not in p and not osp.exists(p)]


def check_datasets_exist(cfg: Config, config_path: str, splits: Sequence[str]) -> None:
    """Raise one clear SystemExit when a dataset the run reads is not on disk."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset in _leaf_datasets(loader.get('dataset')):
            missing = _missing_paths(dataset)
            if not missing:
                continue
            kind = dataset.get('type', '?')
            layout = _DATASET_LAYOUTS.get(str(kind).split('.')[-1],
                                          f'the layout of {kind}')
            raise SystemExit(
                f'{config_path}: the {split} data is missing: {", ".join(missing)} does not '
                f'exist.\nExpected {layout}, with data_root={dataset.get("data_root")!r}.\n'
                'Put the data there (or symlink it), point the config at it with --cfg-options '
                f'{split}_dataloader.dataset.data_root=/path/..., or try the config on a '
                'generated sample set with --sample-data.')


def _dicts_in(node):
    """Every dict in a config tree (dicts, lists, tuples), outermost first."""
    if isinstance(node, dict):
        yield node
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return
    for child in children:
        yield from _dicts_in(child)


def _pretrained_urls(node) -> List[str]:
    return [d['checkpoint'] for d in _dicts_in(node)
            if isinstance(d.get('checkpoint'), str) and '://' in d['checkpoint']]


@contextmanager
def explain_download_errors(cfg: Config):
    """Turn a failed pretrained-checkpoint download (offline machine) into one message that
    names the URL and how to use a local file instead."""
    try:
        yield
    except (URLError, ConnectionError, TimeoutError, socket.error) as e:
        import torch
        cache = osp.join(torch.hub.get_dir(), 'checkpoints')
        urls = [u for u in dict.fromkeys(_pretrained_urls(cfg.get('model')))
                if not osp.exists(osp.join(cache, osp.basename(u)))]
        if not urls:
            raise
        raise SystemExit(
            f'Could not download the pretrained checkpoint(s) {", ".join(urls)} ({e}).\n'
            f'On an offline machine, fetch the file elsewhere and either put it in {cache}/ '
            '(then it is found there), or point the config at the local file, e.g. '
            '--cfg-options model.backbone.init_cfg.checkpoint=/path/to/file.pth') from e


def _is_amp(optim_wrapper: dict) -> bool:
    return optim_wrapper.get('type') in ('AmpOptimWrapper',
                                         'mmengine.AmpOptimWrapper')


def fall_back_from_amp_on_cpu(cfg: Config) -> None:
    """mmengine's AmpOptimWrapper refuses to run on a CPU; our recipes use
    it (as the official ones do), so CPU runs train in fp32, and say so."""
    import torch
    optim_wrapper = cfg.get('optim_wrapper')
    if torch.cuda.is_available() or not optim_wrapper or \
            not _is_amp(optim_wrapper):
        return
    optim_wrapper.type = 'OptimWrapper'
    optim_wrapper.pop('loss_scale', None)
    optim_wrapper.pop('dtype', None)
    print('mmconvarch: no GPU, so optim_wrapper AmpOptimWrapper -> '
          'OptimWrapper (fp32); mmengine AMP needs a GPU.', flush=True)


_SYNC_BN = ('SyncBN', 'MMSyncBN', 'mmcv.SyncBN', 'mmcv.MMSyncBN')


def _sync_bn_to_bn(node) -> int:
    """Turn every norm config of type SyncBN/MMSyncBN under node into BN."""
    count = 0
    for d in _dicts_in(node):
        if d.get('type') in _SYNC_BN:
            d['type'] = 'BN'
            count += 1
    return count


def adapt_dist_to_cpu(cfg: Config) -> None:
    """Let --launcher pytorch/slurm/mpi train on machines without a GPU.

    mmengine 0.10.7 assumes one GPU per process: its default backend is nccl
    and Runner.wrap_model gives DDP ``device_ids=[LOCAL_RANK]``, which DDP
    refuses for a CPU module. Without a GPU we use gloo and
    ``device_ids=None``; SyncBN (torch's and mmcv's kernels are CUDA-only)
    becomes per-process BN. Each change is printed. (init_dist's
    torch.cuda.set_device is handled in build_runner.)
    """
    import torch
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    notes = []
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        notes.append('dist backend nccl -> gloo')
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = ConfigDict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper_cls = MODEL_WRAPPERS.get(
            wrapper.get('type', 'MMDistributedDataParallel'))
        if isinstance(wrapper_cls, type) and issubclass(
                wrapper_cls, DistributedDataParallel):
            wrapper.setdefault('device_ids', None)
    if cfg.get('sync_bn') is not None:
        cfg.sync_bn = None
        notes.append('sync_bn -> off')
    converted = _sync_bn_to_bn(cfg.get('model'))
    if converted:
        notes.append(f'{converted} SyncBN norm config(s) -> BN (per process)')
    if notes:
        print(f'mmconvarch: no GPU, so {"; ".join(notes)}; torch and mmcv '
              'run NCCL and SyncBN on CUDA only.', flush=True)


def _init_dist_without_gpu(cfg: Config) -> None:
    """mmengine's init_dist, minus its torch.cuda.set_device (no GPU to
    pick). The Runner then finds the process group initialised and keeps
    it; MASTER_ADDR/MASTER_PORT/RANK derivation is mmengine's own."""
    from unittest import mock

    from mmengine.dist import init_dist, is_distributed
    from mmengine.utils.dl_utils import set_multi_processing
    if is_distributed():
        return
    env_cfg = cfg.get('env_cfg', {})
    # the Runner's order: multi-processing settings first, then the group
    set_multi_processing(**env_cfg.get('mp_cfg', {}), distributed=True)
    with mock.patch('torch.cuda.set_device'):
        init_dist(cfg.launcher, **env_cfg.get('dist_cfg', {}))


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to AMP (no-op when already on AMP)."""
    import torch
    if not torch.cuda.is_available():
        raise SystemExit('--amp needs a GPU (mmengine AmpOptimWrapper).')
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if _is_amp(cfg.optim_wrapper):
        return
    if optim_wrapper not in ('OptimWrapper', 'mmengine.OptimWrapper'):
        raise SystemExit(f'--amp needs optim_wrapper.type OptimWrapper, got '
                         f'{optim_wrapper!r}.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def build_runner(cfg: Config) -> 'Runner':
    """The config's Runner (``runner_type`` honoured); without a GPU a distributed launcher's
    process group is set up first (gloo, no ``torch.cuda.set_device``). Its checkpoints are
    written crash-consistently (:func:`make_checkpoint_saves_atomic`)."""
    import torch
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if cfg.get('launcher', 'none') != 'none' and \
            not torch.cuda.is_available():
        _init_dist_without_gpu(cfg)
    strict = cfg.pop(LOAD_FROM_STRICT, True)
    if not isinstance(strict, bool):
        raise SystemExit(f'{LOAD_FROM_STRICT} must be True or False, got {strict!r}.')
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    make_checkpoint_saves_atomic(runner)
    if strict:
        make_load_from_strict(runner)
    return runner


# --- load_from: strict, one error with the keys that do not fit -----------------------------

LOAD_FROM_STRICT = 'load_from_strict'


class CheckpointMismatchError(RuntimeError):
    """``load_from`` names a checkpoint whose weights do not fit the model."""


def _key_list(keys: List[str], what: str, limit: int = 10) -> str:
    shown = ', '.join(keys[:limit]) + (f', ... ({len(keys) - limit} more)'
                                       if len(keys) > limit else '')
    return f'{len(keys)} {what}: {shown}'


def mismatch_message(filename: str, error_text: str) -> Optional[str]:
    """The one error for mmengine's strict ``load_state_dict`` failure ``error_text`` of the
    checkpoint ``filename``: the missing and unexpected keys (a count and the first 10) and
    the shape mismatches, the file, and the opt-out. None when ``error_text`` is not that."""
    unexpected: List[str] = []
    missing: List[str] = []
    shapes: List[str] = []
    for line in error_text.splitlines():
        line = line.strip()
        if line.startswith('unexpected key in source state_dict:'):
            unexpected = [k for k in line.split(':', 1)[1].split(', ') if k.strip()]
        elif line.startswith('missing keys in source state_dict:'):
            missing = [k for k in line.split(':', 1)[1].split(', ') if k.strip()]
        elif line.startswith('size mismatch for '):
            shapes.append(line)
    if not (unexpected or missing or shapes):
        return None
    parts = [_key_list([k.strip() for k in missing], 'model keys missing from the checkpoint'),
             _key_list([k.strip() for k in unexpected], 'checkpoint keys the model does not have')]
    if shapes:
        parts.append(_key_list(shapes, 'shape mismatches', limit=3))
    return (f'The checkpoint {filename} does not fit the model (load_from is strict; evaluating '
            f'or fine-tuning weights that did not load would give meaningless results). '
            + '. '.join(parts) + '. Is it a checkpoint of another config, or backbone weights '
            "(load those with model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...) "
            "or prefix their keys with 'backbone.')? To load what fits anyway: "
            f'--cfg-options {LOAD_FROM_STRICT}=False (tools/test.py: --non-strict).')


def make_load_from_strict(runner: 'Runner') -> None:
    """Make ``runner``'s ``load_from`` (not ``resume``) load strictly: mmengine's
    ``load_or_resume`` loads it with ``strict=False``, so a checkpoint that does not fit left
    random weights with one warning line. A mismatch raises :class:`CheckpointMismatchError`
    (:func:`mismatch_message`). Checkpoints our models convert on load (official layouts,
    through their load-state-dict pre-hooks) and EMA checkpoints (EMAHook swaps the weights in
    before the load) load as before."""
    original = runner.load_checkpoint

    @functools.wraps(original)
    def load_checkpoint(filename, map_location='cpu', strict=False, **kwargs):
        if strict or getattr(runner, '_resume', False):
            return original(filename, map_location=map_location, strict=strict, **kwargs)
        try:
            return original(filename, map_location=map_location, strict=True, **kwargs)
        except RuntimeError as e:
            message = mismatch_message(filename, str(e))
            if message is None:
                raise
            raise CheckpointMismatchError(message) from None

    runner.load_checkpoint = load_checkpoint


def enable_visualization(cfg: Config, show: bool = False, show_dir: Optional[str] = None,
                         wait_time: float = 2) -> None:
    """Turn on the visualization hook of any of the three scopes (``--show``/``--show-dir``).

    Args:
        cfg: the config, changed in place.
        show: show each prediction in a window.
        show_dir: save the painted images under this folder.
        wait_time: seconds each shown image stays.
    """
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise SystemExit('--show/--show-dir need default_hooks.visualization '
                         'in the config.')
    vis = hooks.visualization
    if cfg.default_scope == 'mmpretrain':
        vis.update(enable=True, show=show, wait_time=wait_time, out_dir=show_dir)
    else:
        vis.update(draw=True, show=show, wait_time=wait_time)
        if show_dir and cfg.default_scope == 'mmdet':
            vis['test_out_dir'] = show_dir
        elif show_dir:  # mmseg saves under the visualizer's save_dir
            cfg.visualizer['save_dir'] = show_dir


def enable_tta(cfg: Config) -> None:
    """Wrap the model in the config's tta_model and use its tta_pipeline."""
    if cfg.default_scope == 'mmpretrain':
        raise SystemExit('--tta is not supported for mmpretrain configs.')
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise SystemExit('--tta needs tta_model and tta_pipeline in the '
                         'config (mmdet/mmseg base configs define them).')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    test_ds = cfg.test_dataloader.dataset
    while 'dataset' in test_ds:
        test_ds = test_ds['dataset']
    test_ds.pipeline = deepcopy(cfg.tta_pipeline)


def build_model_from_config(config: str, checkpoint: Optional[str] = None,
                            cfg_options: Optional[dict] = None) -> Tuple[Config, 'nn.Module']:
    """Build the model of a config file in eval mode, for export and analysis.

    Args:
        config: path of the config file.
        checkpoint: weights loaded with ``strict=True``; None keeps random weights and never
            downloads (every ``init_cfg`` of the model and its backbone is dropped).
        cfg_options: overrides merged into the config first (as ``--cfg-options``).

    Returns:
        The merged config and the model (SyncBN reverted to BN, on the CPU, ``eval()``).
    """
    import mmconvarch  # noqa: F401  (registers our modules)
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    if checkpoint is None:  # random weights: never download
        cfg.model.init_cfg = None
        if 'backbone' in cfg.model:
            cfg.model.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if checkpoint is not None:
        from mmconvarch.checkpoint import safe_checkpoint_loading
        with safe_checkpoint_loading():  # runner checkpoints on torch>=2.6, allow-list only
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    else:
        _quiet_init(model)
    return cfg, model.eval()


def _quiet_init(model) -> None:
    """``init_weights()`` without mmengine's per-parameter INFO log."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


# --- checkpoints: crash-consistent saves, and a --resume that finds an intact one -------------

_CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def checkpoint_problem(path: str) -> Optional[str]:
    """What is wrong with the checkpoint file ``path`` (missing, empty, truncated, a text file,
    not a checkpoint), or None: :func:`mmconvarch.checkpoint.checkpoint_problem`, the one
    diagnosis of every path that loads a checkpoint."""
    from mmconvarch.checkpoint.safe_load import checkpoint_problem as problem
    return problem(path)


def _checkpoints_in(folder: str) -> List[str]:
    """``epoch_N.pth``/``iter_N.pth`` in folder, newest (highest N) first."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = [(int(m.group(2)), osp.getmtime(osp.join(folder, n)), n)
             for n in names if (m := _CHECKPOINT_NAME.match(n))]
    return [osp.join(folder, n) for _, _, n in sorted(found, reverse=True)]


def resolve_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (no PATH) continues from, or None to start afresh.

    mmengine reads ``work_dir/last_checkpoint``, which holds the absolute path of the newest
    checkpoint. Here that pointer is resolved inside ``work_dir``: in a copied or moved work_dir
    it points into the original one, so a file of the same name inside this work_dir is used
    instead (with a note); a pointer outside with no such file (CheckpointHook ``out_dir``) is
    followed. When the pointed-to file is missing, empty, truncated or unreadable, or the
    pointer is empty, the newest intact ``epoch_N.pth``/``iter_N.pth`` next to it is used, with
    one warning naming the broken file. Returns None when there is neither a pointer nor a
    checkpoint (mmengine then starts from scratch); raises SystemExit naming the work_dir and
    what was found when no checkpoint is intact.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    target = folder = None
    broken = None
    if osp.isfile(pointer):
        try:
            with open(pointer) as f:
                target = f.read().strip()
        except OSError as e:
            broken = f'{pointer} is unreadable ({e.strerror or e})'
        if target == '':
            target = None
            broken = f'{pointer} is empty'
    if target:
        if not osp.isabs(target):
            target = osp.join(work_dir, target)
        inside = osp.join(work_dir, osp.basename(target))
        if osp.realpath(osp.dirname(target)) != osp.realpath(work_dir) and osp.lexists(inside):
            print(f'mmconvarch: {pointer} points to {target}, outside this work_dir (a copied or '
                  f'moved work_dir); resuming from {inside} instead.', flush=True)
            target = inside
        folder = osp.dirname(target)
        problem = checkpoint_problem(target)
        if problem is None:
            return target
        broken = f'{target} is {problem}'
    candidates = [c for c in _checkpoints_in(folder or work_dir) if c != target]
    if folder is not None and osp.realpath(folder) != osp.realpath(work_dir):
        candidates += [c for c in _checkpoints_in(work_dir) if c != target]
    if broken is None and not candidates:
        return None  # nothing saved yet: mmengine starts from scratch, as before
    problems = []
    for candidate in candidates:
        problem = checkpoint_problem(candidate)
        if problem is None:
            reason = broken or f'{pointer} does not exist'
            warnings.warn(f'--resume: {reason}; resuming from {candidate}, the newest intact '
                          'checkpoint, instead.', stacklevel=2)
            return candidate
        problems.append(f'{osp.basename(candidate)}: {problem}')
    found = '; '.join(([broken] if broken else []) + problems) or 'no epoch_N.pth/iter_N.pth'
    raise SystemExit(f'--resume: no intact checkpoint to resume from in {work_dir}. Found: '
                     f'{found}. Start afresh without --resume, or pass --resume PATH.')


def check_work_dir_writable(work_dir: str) -> None:
    """Create ``work_dir`` and write a probe file there; raise SystemExit naming it and why
    when that fails (read-only, a file in the way, no permission), before any training."""
    import tempfile
    try:
        os.makedirs(work_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=work_dir, prefix='.write_probe'):
            pass
    except OSError as e:
        raise SystemExit(f'work_dir {work_dir} is not writable ({e.strerror or e}); choose '
                         'another with --work-dir.') from e


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, unwritable folder); nothing is left
    behind under the checkpoint's name."""


def _tensor_bytes(obj) -> int:
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _checkpoint_size_estimate(runner: 'Runner') -> int:
    from mmengine.model import is_model_wrapper
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    total = _tensor_bytes(model.state_dict())
    try:
        total += _tensor_bytes(runner.optim_wrapper.state_dict())
    except Exception:  # an optimizer not built yet: the model alone
        pass
    return total


def make_checkpoint_saves_atomic(runner: 'Runner') -> None:
    """Make ``runner.save_checkpoint`` (what mmengine's CheckpointHook calls) crash-consistent.

    Each local checkpoint is written to ``.<name>.part`` in the same folder and renamed to its
    name when complete, so a kill or a full disk never leaves a partial ``epoch_N.pth``. A failed
    write removes the partial file and raises :class:`CheckpointWriteError` naming the path, the
    estimated size (tensors of the model and optimizer) and the free space there. Checkpoints to
    a remote backend (``backend_args``, ``file_client_args``, ``s3://...``) are left as they are.
    Changes only this runner instance.
    """
    from mmengine.dist import is_main_process
    original = runner.save_checkpoint

    @functools.wraps(original)
    def save_checkpoint(out_dir: str, filename: str, file_client_args: Optional[dict] = None,
                        *args, **kwargs):
        if file_client_args is not None or kwargs.get('backend_args') is not None or \
                '://' in str(out_dir) or not is_main_process():
            return original(out_dir, filename, file_client_args, *args, **kwargs)
        final = osp.join(out_dir, filename)
        part = osp.join(osp.dirname(final), f'.{osp.basename(final)}.part')
        try:
            original(out_dir, osp.relpath(part, out_dir), file_client_args, *args, **kwargs)
            os.replace(part, final)
        except OSError as e:
            if osp.lexists(part):
                os.remove(part)
            try:
                free = f', {shutil.disk_usage(osp.dirname(final)).free} bytes free there'
            except OSError:
                free = ''
            raise CheckpointWriteError(
                e.errno, f'could not write the checkpoint {final} ({e.strerror or e}): it '
                f'needs about {_checkpoint_size_estimate(runner)} bytes{free}; no partial file '
                'was left. Free space or choose another --work-dir.') from e

    runner.save_checkpoint = save_checkpoint


def add_step_seed_hook(cfg: Config) -> None:
    """Add :class:`~mmconvarch.engine.hooks.StepSeedHook` to ``cfg.custom_hooks`` unless the
    config has it: the random state of every training step then depends on (seed, position)
    only, so a resumed run reproduces the uninterrupted one (tools/train.py calls this)."""
    hooks = list(cfg.get('custom_hooks') or [])
    names = ('StepSeedHook', 'mmconvarch.StepSeedHook')
    if not any(isinstance(h, dict) and h.get('type') in names for h in hooks):
        hooks.append(dict(type='mmconvarch.StepSeedHook'))
    cfg.custom_hooks = hooks
