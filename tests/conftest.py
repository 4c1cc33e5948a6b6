import glob
import importlib.util
import os
import os.path as osp
import sys
from typing import Optional

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


load_tool('tools/launch_utils.py', 'launch_utils')  # the tools' shared helpers
# every config users run: the smoke and wiring suites cover new ones automatically
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
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


@pytest.fixture(autouse=True)
def fresh_visualizers():
    yield
    reset_visualizers()
