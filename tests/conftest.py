import gc
import glob
import importlib.util
import os
import os.path as osp
import sys
from contextlib import contextmanager
from functools import partial
from typing import Optional
from unittest import mock

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(rel_path: str, name: Optional[str] = None):
    """Import a file under tools/ (not a package) as a module; with ``name``, register it in
    sys.modules so tests can ``from NAME import ...``."""
    spec = importlib.util.spec_from_file_location(name or osp.basename(rel_path)[:-3],
                                                  osp.join(REPO, rel_path))
    module = importlib.util.module_from_spec(spec)
    if name:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# every config users run: the smoke and wiring suites cover new ones automatically
# (a `_base_` folder holds parts; a name may contain '_base_': fcmae_convnextv2_base_in1k.py)
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in osp.relpath(p, REPO).split(osp.sep)[:-1])
CONFIG_IDS = [osp.relpath(p, REPO) for p in CONFIGS]


@pytest.fixture(scope='session')
def sample_root(tmp_path_factory):
    """The generated sample set (COCO / ADE20K / ImageNet-folder layouts)."""
    from mmconvarch.utils.sample_data import make_sample_data
    return make_sample_data(str(tmp_path_factory.mktemp('sample')))


@pytest.fixture
def in_repo():
    """Run with the repository root as cwd (configs use relative paths)."""
    old = os.getcwd()
    os.chdir(REPO)
    yield REPO
    os.chdir(old)


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def reset_visualizers():
    """mmdet/mmseg configs name their visualizer 'visualizer', and mmengine
    hands an existing instance of that name to the next Runner in the same
    process (with the old save_dir). One Runner per process is the real use;
    tests build many, so they forget visualizers in between."""
    from mmengine.visualization import Visualizer
    for cls in (Visualizer, *_all_subclasses(Visualizer)):
        cls._instance_dict.clear()


@pytest.fixture(scope='module', autouse=True)
def module_garbage():
    """Frees, after each test module, what ``fresh_globals`` froze during it (module-scoped
    fixtures, caches filled by its tests), with one full collection."""
    yield
    gc.unfreeze()
    gc.collect()


@pytest.fixture(autouse=True)
def fresh_globals():
    """Each test starts with the default scope the one before it found:
    init_default_scope('mmdet') in one test must not make the next one's
    mmpretrain pipeline look up transforms in mmdet's registry. The garbage a
    test leaves is collected after it; what was alive before it (imports, the
    parsed configs, module fixtures) is frozen first, so that collection scans
    only the test's own objects (a full scan after every test cost ~0.2 s each)
    and ``module_garbage`` collects the rest once per module."""
    from mmengine.registry import DefaultScope
    scopes = DefaultScope._instance_dict.copy()
    gc.freeze()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(scopes)
    reset_visualizers()
    gc.collect()  # Runners hold whole models in reference cycles: free them before the next test


# --- shared helpers (they import torch when used: lint/packaging tests need none)

@pytest.fixture(scope='module')
def single_thread():
    """Tiny tensors: intra-op threads only add sync cost (and on a shared
    2-core machine, oversubscription makes BN ~10x slower). A module asks for
    it with ``pytestmark = pytest.mark.usefixtures('single_thread')``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def log_lines():
    """The messages the current MMLogger emits during the test."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


@contextmanager
def on_meta():
    """Build modules on the meta device: real widths, shapes and parameter
    counts, no memory and no init time. ``torch.linspace`` stays on the CPU:
    RevCol and SLaK read their drop-path schedule back with ``.tolist()``."""
    import torch
    with torch.device('meta'), mock.patch.object(
            torch, 'linspace', partial(torch.linspace, device='cpu')):
        yield


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def assert_frozen_stages(model, frozen_stages):
    """After ``model.train()``, stages ``< frozen_stages`` and their
    downsample layers have no trainable parameters and stay in eval mode;
    the others train."""
    model.train()
    for i, stage in enumerate(model.stages):
        params = list(stage.parameters()) + list(
            model.downsample_layers[i].parameters())
        assert all(p.requires_grad == (i >= frozen_stages) for p in params), i
        assert stage.training == (i >= frozen_stages), i


# --- the official ConvNeXt-family layout (ConvNeXt V2 and SLaK share it) ----

def official_downsample_state_dict(t, dims):
    """Stem (conv 4x4/4 + LN) and downsample layers (LN + conv 2x2/2) with
    the official keys; ``t(*shape)`` makes each random tensor."""
    sd = {'downsample_layers.0.0.weight': t(dims[0], 3, 4, 4),
          'downsample_layers.0.0.bias': t(dims[0]),
          'downsample_layers.0.1.weight': 1 + t(dims[0]),
          'downsample_layers.0.1.bias': t(dims[0])}
    for i in range(1, 4):
        sd[f'downsample_layers.{i}.0.weight'] = 1 + t(dims[i - 1])
        sd[f'downsample_layers.{i}.0.bias'] = t(dims[i - 1])
        sd[f'downsample_layers.{i}.1.weight'] = t(dims[i], dims[i - 1], 2, 2)
        sd[f'downsample_layers.{i}.1.bias'] = t(dims[i])
    return sd


def official_ln_cf(sd, x, p):
    """The official channels-first LayerNorm (eps 1e-6), by hand."""
    import torch
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + 1e-6)
    return sd[p + 'weight'][:, None, None] * x + sd[p + 'bias'][:, None, None]


def official_downsample(sd, x, i):
    """Downsample layer ``i`` of the official forward (0: the stem)."""
    import torch.nn.functional as F
    if i == 0:
        x = F.conv2d(x, sd['downsample_layers.0.0.weight'],
                     sd['downsample_layers.0.0.bias'], stride=4)
        return official_ln_cf(sd, x, 'downsample_layers.0.1.')
    x = official_ln_cf(sd, x, f'downsample_layers.{i}.0.')
    return F.conv2d(x, sd[f'downsample_layers.{i}.1.weight'],
                    sd[f'downsample_layers.{i}.1.bias'], stride=2)


def pytest_collection_modifyitems(config, items):
    """``cuda``-marked tests skip, with the reason, where torch sees no CUDA device."""
    cuda_items = [item for item in items if item.get_closest_marker('cuda')]
    if not cuda_items:
        return
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (torch.cuda.is_available() is False)')
    for item in cuda_items:
        item.add_marker(skip)
