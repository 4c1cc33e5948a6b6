"""Config smoke suite: every file under configs/ (except _base_) is covered
automatically."""
import glob
import os.path as osp

import pytest

from smoke import run_smoke

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


def test_configs_found():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize('config', CONFIGS,
                         ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_loss_and_predict(config, sample_root):
    cfg, model, _, _ = run_smoke(config, sample_root)
    assert cfg.model.backbone.type.startswith('mmconvarch.')
    assert model.backbone.__class__.__module__.startswith('mmconvarch.')
