"""Config smoke suite: every file under configs/ (except _base_) is covered automatically: a loss
and a predict step at full size, or, for a variant (config_variants.py), its exact difference
from its reference config, its official parameter counts on the meta device and the loss and
predict step with one block per stage (real channels)."""
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from config_variants import (FULL, FULL_IDS, VARIANT_CONFIGS, VARIANT_IDS, VARIANTS,
                             classifier_params, config_diff, expected_config,
                             reference_chain, resolved, shrunk_options,
                             task_model_params)
from conftest import CONFIG_IDS, CONFIGS
from smoke import run_smoke


def test_configs_found():
    assert len(CONFIGS) >= 4


@pytest.mark.slow  # every config at full size
@pytest.mark.parametrize('config', FULL, ids=FULL_IDS)
def test_config_loss_and_predict(config, sample_root):
    cfg, model, _, _ = run_smoke(config, sample_root)
    assert cfg.model.backbone.type.startswith('mmconvarch.')
    assert model.backbone.__class__.__module__.startswith('mmconvarch.')


def test_every_variant_ends_at_a_config_run_in_full():
    assert set(VARIANTS) <= set(CONFIG_IDS), set(VARIANTS) - set(CONFIG_IDS)
    for variant in VARIANTS:
        assert reference_chain(variant)[-1] in FULL_IDS, reference_chain(variant)


def test_variants_differ_from_their_references_only_as_declared():
    """Every variant, resolved, equals its reference resolved plus the changes declared in
    config_variants.py (one test for all: each is a second of config parsing)."""
    wrong = {}
    for variant in VARIANT_IDS:
        diff = config_diff(resolved(variant), expected_config(variant))
        if diff:
            wrong[variant] = diff
    assert not wrong, '\n'.join(
        f'{v} vs {VARIANTS[v].reference} + its declared changes: ' + '; '.join(d)
        for v, d in wrong.items())


def test_variant_diff_catches_an_undeclared_change():
    variant = 'configs/convnextv2/cascade_convnextv2_b_coco.py'
    got = resolved(variant)
    got['model']['backbone']['drop_path_rate'] = 0.75
    got['optim_wrapper']['optimizer']['lr'] = 1e-4
    assert config_diff(got, expected_config(variant)) == [
        'model.backbone.drop_path_rate: 0.7 -> 0.75',
        'optim_wrapper.optimizer.lr: 0.0002 -> 0.0001']
    del got['model']['backbone']['layer_decay_type']
    assert "model.backbone.layer_decay_type: 'group' -> '<absent>'" in config_diff(
        got, expected_config(variant))


def test_variant_parameter_counts_are_official():
    """Full arch on the meta device: each variant's backbone (classification form) + a 1000-way
    classifier against the official classification count and, where reported, the whole model
    against the official count of its task."""
    wrong = []
    for variant, config in zip(VARIANT_IDS, VARIANT_CONFIGS):
        official = VARIANTS[variant]
        cfg = Config(resolved(variant))  # the parse the diff test cached
        init_default_scope(cfg.default_scope)
        params = classifier_params(cfg.model.backbone)
        assert official.cls_params or official.task_params, f'{variant}: no official count'
        if official.cls_params is not None and not official.cls_params.matches(params):
            wrong.append(f'{variant}: classifier form {params}, official {official.cls_params}')
        if official.task_params is not None:
            total = task_model_params(cfg.model)
            if not official.task_params.matches(total):
                wrong.append(f'{variant}: whole model {total}, official {official.task_params}')
    assert not wrong, '\n'.join(wrong)


@pytest.mark.slow  # every variant config
@pytest.mark.parametrize('config', VARIANT_CONFIGS, ids=VARIANT_IDS)
def test_variant_loss_and_predict_shrunk(config, sample_root):
    full = Config.fromfile(config)
    cfg, model, _, _ = run_smoke(config, sample_root, **shrunk_options(full))
    assert cfg.model.backbone.arch != full.model.backbone.arch  # shrunk, not the full size
    assert model.backbone.__class__.__module__.startswith('mmconvarch.')
