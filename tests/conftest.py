import os
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


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
