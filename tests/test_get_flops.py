"""tools/analysis/get_flops.py counting as the papers count: the inference
graph (RevCol without its intermediate-supervision heads), the deploy form
(VanillaNet) and non-zero weights (SLaK, sparse checkpoints). Real configs,
tiny inputs (parameter counts do not depend on the input size)."""
import os.path as osp
import re

import pytest
import torch

from conftest import REPO, load_tool

pytestmark = pytest.mark.usefixtures('single_thread')

flops_tool = load_tool('tools/analysis/get_flops.py')


def cfg(rel: str) -> str:
    return osp.join(REPO, 'configs', rel)


REVCOL_T = cfg('revcol/revcol_t_in1k.py')
VANILLANET_5 = cfg('vanillanet/vanillanet_5_in1k.py')
SLAK_T = cfg('slak/slak_t_in1k.py')
CONVNEXTV2_T = cfg('convnextv2/convnextv2_t_in1k.py')
ATTO = ['model.backbone.arch=atto', 'model.head.in_channels=320']


def test_revcol_inference_graph_excludes_intermediate_supervision():
    """The aux heads and decoders (intermediate supervision) and the first
    column's alphas (they scale a zero column) never reach the logits."""
    train = flops_tool.count(REVCOL_T, [32])
    infer = flops_tool.count(REVCOL_T, [32], inference_only=True)
    assert train['params'] == 33063984  # what get_flops reported before
    assert infer['params'] == 30455208  # paper: 30 M
    assert infer['excluded'] == {
        'model.aux_heads': 1542072, 'model.decoders': 1065744,
        'model.backbone.subnet0.alpha0': 64, 'model.backbone.subnet0.alpha1': 128,
        'model.backbone.subnet0.alpha2': 256, 'model.backbone.subnet0.alpha3': 512}
    assert train['params'] - infer['params'] == sum(infer['excluded'].values())
    assert infer['flops'] == train['flops']  # the forward never ran them


def test_vanillanet_deploy_form_is_what_the_paper_counts():
    train = flops_tool.count(VANILLANET_5, [32])
    deploy = flops_tool.count(VANILLANET_5, [224], deploy=True)
    assert train['params'] == 22328800 and not train['deployed']
    assert deploy['deployed'] == ['backbone', 'head']
    # paper / official README: 15.5 M params, 5.2 GFLOPs
    assert deploy['params'] == 15523304
    assert deploy['flops'] == 5161385984


def test_slak_density_counts_the_non_zeros():
    """--density 0.6 masks what the config's SparseRegrowHook masks (the
    whole classifier, head included) and counts its non-zeros; uniform
    layers give the paper's "dense x 0.6" FLOPs, ERK more."""
    dense = flops_tool.count(SLAK_T, [32])
    uniform = flops_tool.count(SLAK_T, [32], density=0.6)
    erk = flops_tool.count(SLAK_T, [32], density=0.6, sparse_init='ERK')
    assert dense['params'] == 50703838 and dense['masked'] is None
    assert uniform['masked'] == '' and uniform["params"] == 30473218  # paper 30 M
    assert 0.6 * dense['flops'] < uniform['flops'] < 0.61 * dense['flops']
    assert erk['flops'] > 1.3 * uniform['flops']
    assert abs(erk['params'] - uniform['params']) < 100


def test_dense_configs_mask_the_backbone():
    """Without a SparseRegrowHook (downstream configs) --density masks the
    backbone; --params-only counts a whole segmentor without a forward."""
    cfg_file = cfg('slak/upernet_slak_t_ade20k.py')
    dense = flops_tool.count(cfg_file, [32], params_only=True)
    sparse = flops_tool.count(cfg_file, [32], params_only=True, density=0.6)
    assert dense['flops'] is None and dense['params'] == 84025986
    assert sparse['masked'] == 'backbone'
    assert dense['params'] - sparse['params'] == 50703838 - 30473218 - (
        998 * 1000 - round(0.6 * 998 * 1000))  # the backbone part (no head)


def _atto_with_half_of_one_layer_zeroed(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    config = Config.fromfile(CONVNEXTV2_T)
    config.merge_from_dict(dict(model=dict(backbone=dict(arch='atto', init_cfg=None),
                                           head=dict(in_channels=320))))
    init_default_scope('mmpretrain')
    state = MODELS.build(config.model).state_dict()
    for value in state.values():  # uniform init hits an exact 0.0 now and then (~1 in 2^23)
        if value.is_floating_point():
            value[value == 0] = 1e-3
    weight = state['backbone.stages.3.0.pointwise_conv1.weight']  # Linear 320 -> 1280
    assert weight.shape == (1280, 320)
    weight.view(-1)[::2] = 0
    return state


def test_nonzero_counts_a_sparse_checkpoint(tmp_path):
    """Half of one Linear zeroed: params drop by exactly those weights, FLOPs
    by half that layer's MACs (at 32 px stage 3 is 1x1: 320 x 1280); the
    same for a compact sparse_export file."""
    from mmconvarch.sparsity import sparse_export
    state = _atto_with_half_of_one_layer_zeroed(tmp_path)
    plain = str(tmp_path / 'atto.pth')
    torch.save(dict(state_dict=state), plain)
    compact = str(tmp_path / 'atto_sparse.pth')
    sparse_export(state, compact)
    dense = flops_tool.count(CONVNEXTV2_T, [32], cfg_options=ATTO, checkpoint=plain)
    for path in (plain, compact):
        sparse = flops_tool.count(CONVNEXTV2_T, [32], cfg_options=ATTO,
                                  checkpoint=path, nonzero=True)
        assert dense['params'] - sparse['params'] == 1280 * 320 // 2
        assert dense['flops'] - sparse['flops'] == 1280 * 320 // 2


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={'backbone.foo': torch.zeros(1)}), path)
    with pytest.raises(ValueError, match='does not fit.*convert'):
        flops_tool.count(CONVNEXTV2_T, [32], cfg_options=ATTO, checkpoint=path)


def test_params_only_builds_on_meta():
    result = flops_tool.count(cfg('revcol/cascade_revcol_t_coco.py'), [32],
                              params_only=True)
    assert result['params'] == 87928370 and result['flops'] is None  # paper: 88 M


def test_deploy_without_a_deploy_form_is_refused():
    with pytest.raises(ValueError, match='Only SLaK and VanillaNet'):
        flops_tool.count(REVCOL_T, [32], params_only=True, deploy=True)


@pytest.mark.parametrize('argv, message', [
    (['--shape', '1', '2', '3'], '--shape takes H W'),
    (['--density', '1.5'], r'--density must be in \(0, 1\]'),
    (['--density', '0.6', '--checkpoint', 'x.pth'], 'use --nonzero'),
    (['--params-only', '--inference-only'], 'use one of them'),
    (['--sparse-init', 'snip'], 'invalid choice'),
])
def test_bad_options_say_what_is_valid(argv, message, capsys):
    with pytest.raises(SystemExit):
        flops_tool.parse_args([REVCOL_T, *argv])
    assert re.search(message, capsys.readouterr().err)


def test_cli_prints_what_was_counted(capsys):
    flops_tool.main([REVCOL_T, '--shape', '32', '--inference-only'])
    out = capsys.readouterr().out
    assert '(inference graph only)' in out
    assert 'not in the inference graph: model.aux_heads (1.542 M)' in out
    assert out.rstrip().endswith('Params: 30.455 M')


def test_detector_forward_without_data_samples_says_what_to_count():
    with pytest.raises(ValueError, match='needs data samples.*--backbone-only.*--params-only'):
        flops_tool.count(cfg('convnextv2/cascade_convnextv2_t_coco.py'), [64],
                         cfg_options=['model.backbone.arch=atto',
                                      'model.neck.in_channels=[40,80,160,320]'])
