"""Config smoke suite: every file under configs/ (except _base_) is covered
automatically."""
import pytest

from conftest import CONFIG_IDS, CONFIGS
from smoke import run_smoke


def test_configs_found():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize('config', CONFIGS, ids=CONFIG_IDS)
def test_config_loss_and_predict(config, sample_root):
    cfg, model, _, _ = run_smoke(config, sample_root)
    assert cfg.model.backbone.type.startswith('mmconvarch.')
    assert model.backbone.__class__.__module__.startswith('mmconvarch.')
