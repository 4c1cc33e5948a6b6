"""Official SLaK checkpoints (key template of the reference, §3.2) ->
mmconvarch: no missing/unexpected keys, kernel sizes inferred, same
outputs as the official forward, other families refused."""
import pytest
import torch
import torch.nn.functional as F

from conftest import load_tool, official_downsample, official_downsample_state_dict
from mmconvarch.checkpoint.converters import convert_checkpoint, save_converted
from mmconvarch.models.backbones import SLaK

DEPTHS, DIMS = [1, 1, 2, 1], [8, 16, 24, 32]
KERNELS, N = [13, 11, 9, 7], 3
pytestmark = pytest.mark.usefixtures('single_thread')


def official_slak_state_dict(depths=DEPTHS, dims=DIMS, kernels=KERNELS, n=N,
                             num_classes=10, dense_norms=False, init=None):
    """Weights laid out with the official key template (Decom=True, bn)."""
    g = torch.Generator().manual_seed(0)

    def t(*shape, scale=0.1):
        if init is not None:
            return init(shape)
        return torch.randn(*shape, generator=g) * scale

    def bn(prefix, c):
        return {prefix + 'weight': 1 + t(c), prefix + 'bias': t(c),
                prefix + 'running_mean': t(c),
                prefix + 'running_var': 1 + t(c).abs(),
                prefix + 'num_batches_tracked': torch.tensor(7)}

    sd = official_downsample_state_dict(t, dims)
    for s, (depth, c, k) in enumerate(zip(depths, dims, kernels)):
        for b in range(depth):
            p = f'stages.{s}.{b}.'
            lk = p + 'large_kernel.'
            sd[lk + 'LoRA1.conv.weight'] = t(c, 1, k, n)
            sd.update(bn(lk + 'LoRA1.bn.', c))
            sd[lk + 'LoRA2.conv.weight'] = t(c, 1, n, k)
            sd.update(bn(lk + 'LoRA2.bn.', c))
            sd[lk + 'small_conv.conv.weight'] = t(c, 1, n, n)
            sd.update(bn(lk + 'small_conv.bn.', c))
            sd.update({
                p + 'norm.weight': 1 + t(c), p + 'norm.bias': t(c),
                p + 'pwconv1.weight': t(4 * c, c), p + 'pwconv1.bias': t(4 * c),
                p + 'pwconv2.weight': t(c, 4 * c), p + 'pwconv2.bias': t(c),
                p + 'gamma': 0.5 + t(c)})
    if dense_norms:
        for i in range(4):
            sd[f'norm{i}.weight'] = 1 + t(dims[i])
            sd[f'norm{i}.bias'] = t(dims[i])
    else:
        sd.update({'norm.weight': 1 + t(dims[3]), 'norm.bias': t(dims[3]),
                   'head.weight': t(num_classes, dims[3]),
                   'head.bias': t(num_classes)})
    return sd


def official_forward(sd, x, kernels=KERNELS, n=N):
    """The official classification forward, written from the reference
    (LN-cf by hand, iGEMM padding (kh//2, kw//2), eval-mode BN)."""
    def conv_bn(x, p, kh, kw):
        w = sd[p + 'conv.weight']
        y = F.conv2d(x, w, padding=(kh // 2, kw // 2), groups=w.shape[0])
        return F.batch_norm(y, sd[p + 'bn.running_mean'],
                            sd[p + 'bn.running_var'], sd[p + 'bn.weight'],
                            sd[p + 'bn.bias'], False, 0., 1e-5)

    for i in range(4):
        x = official_downsample(sd, x, i)
        k = kernels[i]
        b = 0
        while f'stages.{i}.{b}.gamma' in sd:
            p = f'stages.{i}.{b}.'
            lk = p + 'large_kernel.'
            y = (conv_bn(x, lk + 'LoRA1.', k, n) +
                 conv_bn(x, lk + 'LoRA2.', n, k) +
                 conv_bn(x, lk + 'small_conv.', n, n))
            y = y.permute(0, 2, 3, 1)
            y = F.layer_norm(y, y.shape[-1:], sd[p + 'norm.weight'],
                             sd[p + 'norm.bias'], 1e-6)
            y = F.linear(y, sd[p + 'pwconv1.weight'], sd[p + 'pwconv1.bias'])
            y = F.linear(F.gelu(y), sd[p + 'pwconv2.weight'],
                         sd[p + 'pwconv2.bias'])
            x = x + (sd[p + 'gamma'] * y).permute(0, 3, 1, 2)
            b += 1
    x = F.layer_norm(x.mean([-2, -1]), x.shape[1:2], sd['norm.weight'],
                     sd['norm.bias'], 1e-6)
    return F.linear(x, sd['head.weight'], sd['head.bias'])


def test_classification_checkpoint_converts_and_matches_official(tmp_path):
    sd = official_slak_state_dict()
    # official files: {'model', 'model_ema', 'optimizer', 'epoch', ...}
    ckpt = dict(model=sd, model_ema=sd, epoch=299)
    new, cfg = convert_checkpoint(ckpt, 'slak')  # checks keys and shapes
    assert cfg['kernel_size'] == KERNELS + [N]
    assert cfg['arch'] == dict(depths=DEPTHS, channels=DIMS)
    assert cfg['width_factor'] == 1.0 and cfg['decompose'] is True
    assert cfg['out_indices'] == [3] and cfg['gap_before_final_norm']
    model = SLaK(**{k: v for k, v in cfg.items() if k != 'type'}).eval()
    missing, unexpected = model.load_state_dict(
        {k[len('backbone.'):]: v for k, v in new.items()
         if k.startswith('backbone.')}, strict=True)
    assert not missing and not unexpected
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feat = model(x)[0]
        ours = F.linear(feat, new['head.fc.weight'], new['head.fc.bias'])
    torch.testing.assert_close(ours, official_forward(sd, x), rtol=1e-4,
                               atol=1e-4)

    # the converted file loads with init_cfg Pretrained(prefix='backbone.')
    path = str(tmp_path / 'slak.pth')
    save_converted(new, cfg, path, source='official.pth')
    built = SLaK(**{k: v for k, v in cfg.items() if k != 'type'},
                 init_cfg=dict(type='Pretrained', checkpoint=path,
                               prefix='backbone.'))
    built.init_weights()
    built.eval()
    with torch.no_grad():
        torch.testing.assert_close(built(x)[0], feat)


def test_detection_checkpoint_with_prefix_and_dense_norms():
    sd = official_slak_state_dict(dense_norms=True)
    sd = {'backbone.' + k: v for k, v in sd.items()}  # mmdet 2.x file
    new, cfg = convert_checkpoint(dict(state_dict=sd), 'slak')
    assert cfg['out_indices'] == [0, 1, 2, 3]
    assert cfg['gap_before_final_norm'] is False
    assert 'backbone.norm2.weight' in new


def test_tiny_31_kernel_checkpoint_metadata():
    """Full SLaK-T shapes with the 31/29/27/13 kernels (SLaK #16): the
    converter infers arch 'tiny', width 1.3 and the 31-kernel sizes."""
    dims = [int(c * 1.3) for c in (96, 192, 384, 768)]
    sd = official_slak_state_dict(
        depths=[3, 3, 9, 3], dims=dims, kernels=[31, 29, 27, 13], n=5,
        init=lambda shape: torch.zeros(shape))
    new, cfg = convert_checkpoint(dict(model=sd), 'slak')
    assert cfg['arch'] == 'tiny' and cfg['width_factor'] == 1.3
    assert cfg['kernel_size'] == [31, 29, 27, 13, 5]
    # (convert_checkpoint already built SLaK-T(31) and matched every key)
    assert new['backbone.stages.2.8.large_kernel.LoRA2.conv.weight'].shape \
        == (499, 1, 5, 27)


# every SLaK with published weights (official README tables): arch (official models/SLaK.py
# SLaK_tiny / small / base, before --width_factor 1.3), stage kernels, our config
PUBLISHED = {
    'slak_t_in1k': ([3, 3, 9, 3], [96, 192, 384, 768], [51, 49, 47, 13]),
    'slak_s_in1k': ([3, 3, 27, 3], [96, 192, 384, 768], [51, 49, 47, 13]),
    'slak_b_in1k': ([3, 3, 27, 3], [128, 256, 512, 1024], [51, 49, 47, 13]),
    'slak_t_120e_in1k': ([3, 3, 9, 3], [96, 192, 384, 768], [51, 49, 47, 13]),
    'slak_t_k31_120e_in1k': ([3, 3, 9, 3], [96, 192, 384, 768], [31, 29, 27, 13]),
    'slak_t_k61_120e_in1k': ([3, 3, 9, 3], [96, 192, 384, 768], [61, 59, 57, 13]),
}


@pytest.mark.parametrize('config', sorted(PUBLISHED))
def test_every_published_checkpoint_loads_strictly_into_its_config(config):
    """A full-size official checkpoint (shapes only, on the meta device) of each published
    arch converts and loads with strict=True into the whole model of the config that names it
    (backbone and head), and the converter infers that config's kernel sizes."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from conftest import REPO, on_meta
    depths, dims, kernels = PUBLISHED[config]
    sd = official_slak_state_dict(
        depths=depths, dims=[int(c * 1.3) for c in dims], kernels=kernels, n=5,
        num_classes=1000, init=lambda shape: torch.empty(shape, device='meta'))
    new, meta = convert_checkpoint(dict(model=sd), 'slak')
    cfg = Config.fromfile(f'{REPO}/configs/slak/{config}.py')
    assert meta['kernel_size'] == list(cfg.model.backbone.kernel_size)
    assert meta['width_factor'] == cfg.model.backbone.width_factor
    init_default_scope(cfg.default_scope)
    with on_meta():
        model = MODELS.build(cfg.model)
    missing, unexpected = model.load_state_dict(new, strict=True, assign=True)
    assert not missing and not unexpected
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in new.items()}


def test_other_families_are_refused():
    convnext_v2 = {'downsample_layers.0.0.weight': torch.zeros(8, 3, 4, 4),
                   'stages.0.0.dwconv.weight': torch.zeros(8, 1, 7, 7),
                   'stages.0.0.grn.gamma': torch.zeros(1, 1, 1, 32),
                   'norm.weight': torch.zeros(8), 'head.weight':
                   torch.zeros(10, 8)}
    for s in range(1, 4):
        convnext_v2[f'stages.{s}.0.dwconv.weight'] = torch.zeros(8, 1, 7, 7)
    with pytest.raises(ValueError, match='Not an official SLaK checkpoint'):
        convert_checkpoint(dict(model=convnext_v2), 'slak')
    revcol = {'stem.0.weight': torch.zeros(8, 3, 4, 4),
              'subnet0.alpha0': torch.ones(1, 8, 1, 1)}
    with pytest.raises(ValueError, match='Not an official SLaK checkpoint'):
        convert_checkpoint(dict(model=revcol), 'slak')
    # a SLaK checkpoint with a foreign key is refused by the family check
    sd = official_slak_state_dict()
    sd['stages.0.0.grn.gamma'] = torch.zeros(1, 1, 1, 32)
    with pytest.raises(ValueError, match='unexpected keys 1'):
        convert_checkpoint(dict(model=sd), 'slak')


def test_convert_cli(tmp_path):
    src, dst = tmp_path / 'SLaK_tiny.pth', tmp_path / 'converted.pth'
    torch.save(dict(model=official_slak_state_dict()), src)
    load_tool('tools/model_converters/convert.py').main(
        ['slak', str(src), str(dst)])
    saved = torch.load(dst)
    assert saved['meta']['backbone']['kernel_size'] == KERNELS + [N]
    assert 'backbone.stages.0.0.large_kernel.LoRA1.conv.weight' in \
        saved['state_dict']
