import pytest
import torch
import torch.nn.functional as F

from mmconvarch.converters import convert_checkpoint, save_converted
from mmconvarch.models.backbones import ConvNeXtV2

DEPTHS, DIMS = [2, 2, 6, 2], [40, 80, 160, 320]  # atto


def official_convnextv2_state_dict(num_classes=10):
    """Random weights laid out with the official key template (§2.2)."""
    g = torch.Generator().manual_seed(0)

    def t(*shape, scale=0.1):
        return torch.randn(*shape, generator=g) * scale

    sd = {'downsample_layers.0.0.weight': t(DIMS[0], 3, 4, 4),
          'downsample_layers.0.0.bias': t(DIMS[0]),
          'downsample_layers.0.1.weight': 1 + t(DIMS[0]),
          'downsample_layers.0.1.bias': t(DIMS[0])}
    for i in range(1, 4):
        sd[f'downsample_layers.{i}.0.weight'] = 1 + t(DIMS[i - 1])
        sd[f'downsample_layers.{i}.0.bias'] = t(DIMS[i - 1])
        sd[f'downsample_layers.{i}.1.weight'] = t(DIMS[i], DIMS[i - 1], 2, 2)
        sd[f'downsample_layers.{i}.1.bias'] = t(DIMS[i])
    for s, (depth, c) in enumerate(zip(DEPTHS, DIMS)):
        for b in range(depth):
            p = f'stages.{s}.{b}.'
            sd.update({
                p + 'dwconv.weight': t(c, 1, 7, 7), p + 'dwconv.bias': t(c),
                p + 'norm.weight': 1 + t(c), p + 'norm.bias': t(c),
                p + 'pwconv1.weight': t(4 * c, c), p + 'pwconv1.bias': t(4 * c),
                p + 'grn.gamma': t(1, 1, 1, 4 * c),
                p + 'grn.beta': t(1, 1, 1, 4 * c),
                p + 'pwconv2.weight': t(c, 4 * c), p + 'pwconv2.bias': t(c)})
    sd.update({'norm.weight': 1 + t(DIMS[3]), 'norm.bias': t(DIMS[3]),
               'head.weight': t(num_classes, DIMS[3]),
               'head.bias': t(num_classes)})
    return sd


def official_forward(sd, x):
    """The official ConvNeXt V2 forward written from the reference text."""
    def ln_cf(x, p):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + 1e-6)
        return sd[p + 'weight'][:, None, None] * x + sd[p + 'bias'][:, None,
                                                                    None]

    for i in range(4):
        if i == 0:
            x = F.conv2d(x, sd['downsample_layers.0.0.weight'],
                         sd['downsample_layers.0.0.bias'], stride=4)
            x = ln_cf(x, 'downsample_layers.0.1.')
        else:
            x = ln_cf(x, f'downsample_layers.{i}.0.')
            x = F.conv2d(x, sd[f'downsample_layers.{i}.1.weight'],
                         sd[f'downsample_layers.{i}.1.bias'], stride=2)
        for b in range(DEPTHS[i]):
            p = f'stages.{i}.{b}.'
            y = F.conv2d(x, sd[p + 'dwconv.weight'], sd[p + 'dwconv.bias'],
                         padding=3, groups=x.shape[1]).permute(0, 2, 3, 1)
            y = F.layer_norm(y, y.shape[-1:], sd[p + 'norm.weight'],
                             sd[p + 'norm.bias'], 1e-6)
            y = F.gelu(F.linear(y, sd[p + 'pwconv1.weight'],
                                sd[p + 'pwconv1.bias']))
            gx = torch.norm(y, p=2, dim=(1, 2), keepdim=True)
            nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
            y = sd[p + 'grn.gamma'] * (y * nx) + sd[p + 'grn.beta'] + y
            y = F.linear(y, sd[p + 'pwconv2.weight'], sd[p + 'pwconv2.bias'])
            x = x + y.permute(0, 3, 1, 2)
    x = F.layer_norm(x.mean([-2, -1]), (DIMS[3], ), sd['norm.weight'],
                     sd['norm.bias'], 1e-6)
    return F.linear(x, sd['head.weight'], sd['head.bias'])


@pytest.mark.parametrize('layout', ['model', 'state_dict_ema'])
def test_official_convnextv2_converts_and_matches(layout, tmp_path):
    sd = official_convnextv2_state_dict()
    checkpoint = {layout: sd, 'epoch': 3}
    new, backbone_cfg = convert_checkpoint(
        checkpoint, 'convnextv2', ema=layout == 'state_dict_ema')
    assert backbone_cfg['arch'] == dict(depths=DEPTHS, channels=DIMS)
    model = ConvNeXtV2(backbone_cfg['arch']).eval()
    missing, unexpected = model.load_state_dict(
        {k[9:]: v for k, v in new.items() if k.startswith('backbone.')},
        strict=True)
    assert not missing and not unexpected
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        (feat, ) = model(x)
        logits = F.linear(feat, new['head.fc.weight'], new['head.fc.bias'])
    torch.testing.assert_close(logits, official_forward(sd, x), rtol=1e-4,
                               atol=1e-4)
    save_converted(new, backbone_cfg, str(tmp_path / 'c.pth'))
    assert torch.load(str(tmp_path / 'c.pth'))['state_dict'].keys() == \
        new.keys()  # pure tensors: loads with weights_only=True


def test_other_family_is_refused_with_key_lists():
    sd = official_convnextv2_state_dict()
    sd['stages.0.0.gamma'] = torch.ones(40)  # a V1 layer scale
    del sd['stages.1.0.grn.gamma']
    with pytest.raises(ValueError, match=r"missing keys 1 \['stages.1.0.grn."
                       r"gamma'\], unexpected keys 1 \['stages.0.0.gamma'\]"):
        convert_checkpoint({'model': sd}, 'convnextv2')
    with pytest.raises(ValueError, match='Not an official ConvNeXt V2'):
        convert_checkpoint({'model': {'column.0.weight': torch.ones(1)}},
                           'convnextv2')
