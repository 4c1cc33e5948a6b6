import pytest
import torch
from mmpretrain.models.utils import GRN

from conftest import assert_frozen_stages, num_params, on_meta
from mmconvarch.models.backbones import ConvNeXtV2, FP32GRN


def test_dense_outputs_and_keys_match_mmpretrain():
    from mmpretrain.models.backbones import ConvNeXt
    ours = ConvNeXtV2('atto', out_indices=(0, 1, 2, 3),
                      gap_before_final_norm=False)
    ref = ConvNeXt('atto', out_indices=[0, 1, 2, 3], use_grn=True,
                   layer_scale_init_value=0., gap_before_final_norm=False)
    assert ours.state_dict().keys() == ref.state_dict().keys()
    # GRN params start at zero: give them values so the check is not vacuous
    for p in ours.parameters():
        torch.nn.init.normal_(p, std=0.2)
    ref.load_state_dict(ours.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 64, 96)
    outs, ref_outs = ours(x), ref(x)
    assert [tuple(o.shape) for o in outs] == [
        (2, 40, 16, 24), (2, 80, 8, 12), (2, 160, 4, 6), (2, 320, 2, 3)]
    for a, b in zip(outs, ref_outs):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('arch,total', [('atto', 3708400),
                                        ('tiny', 28635496)])
def test_param_counts_equal_official(arch, total):
    # official classifier totals (mmpretrain metafile) = backbone + 1000-way fc
    with on_meta():  # real widths, no memory, no init time
        model = ConvNeXtV2(arch)
    head = model.channels[-1] * 1000 + 1000
    assert num_params(model) + head == total


def test_classification_output():
    model = ConvNeXtV2('atto').eval()
    (out, ) = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 320)


def test_grn_fp32_under_fp16():
    torch.manual_seed(0)
    grn = GRN(8)
    grn.gamma.data.fill_(0.5)
    ours = FP32GRN(8)
    ours.load_state_dict(grn.state_dict())
    # per-channel L2 over 32x32 sites ~ 3000 * 32 > 65504: inf in fp16
    x = (torch.rand(1, 8, 32, 32) * 2000 + 2000).half()
    assert not torch.isfinite(grn(x)).all()  # plain fp16 GRN overflows
    out = ours(x)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), grn(x.float()), rtol=2e-3,
                               atol=0)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch.isfinite(ours(x.bfloat16())).all()


def test_frozen_stages():
    model = ConvNeXtV2('atto', frozen_stages=2, out_indices=(0, 1, 2, 3),
                       gap_before_final_norm=False)
    assert_frozen_stages(model, 2)


def test_single_layer_decay_ids_follow_official_rule():
    with on_meta():  # only the depths matter
        model = ConvNeXtV2('tiny', layer_decay_type='single')
    # official optim_factory: downsample k -> sum(depths[:k]) + 1,
    # stages.k.b -> sum(depths[:k]) + b + 1, rest -> sum(depths) + 1
    assert model.get_layer_depth('backbone.downsample_layers.0.0.weight',
                                 'backbone.') == (1, 20)
    assert model.get_layer_depth('backbone.downsample_layers.2.1.weight',
                                 'backbone.') == (7, 20)
    assert model.get_layer_depth('backbone.stages.2.4.grn.gamma',
                                 'backbone.') == (11, 20)
    assert model.get_layer_depth('backbone.norm3.weight',
                                 'backbone.') == (19, 20)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (19, 20)


def test_bad_arch_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown ConvNeXtV2 arch 'tinyy'.*"
                       r"'atto'.*'huge'"):
        ConvNeXtV2('tinyy')
    with pytest.raises(ValueError, match='lacks keys'):
        ConvNeXtV2(dict(depths=[1, 1, 1, 1]))


@pytest.mark.parametrize('bad', [4, -5, (0, 7)])
def test_bad_out_indices_give_valid_range(bad):
    with pytest.raises(ValueError, match=r'valid indices are 0\.\.3'):
        ConvNeXtV2('atto', out_indices=bad)


def test_bad_frozen_stages_and_fixed_args():
    with pytest.raises(ValueError, match=r'valid values are -1\.\.4'):
        ConvNeXtV2('atto', frozen_stages=5)
    with pytest.raises(ValueError, match='use_grn'):
        ConvNeXtV2('atto', use_grn=False)


def test_too_small_input():
    with pytest.raises(ValueError, match='at least 32x32'):
        ConvNeXtV2('atto')(torch.randn(1, 3, 16, 64))
