import pytest
import torch
import torch.nn.functional as F

from conftest import official_downsample, official_downsample_state_dict
from mmconvarch.checkpoint.converters import convert_checkpoint, save_converted
from mmconvarch.models.backbones import ConvNeXtV2

DEPTHS, DIMS = [2, 2, 6, 2], [40, 80, 160, 320]  # atto


def official_convnextv2_state_dict(num_classes=10):
    """Random weights laid out with the official key template (§2.2)."""
    g = torch.Generator().manual_seed(0)

    def t(*shape, scale=0.1):
        return torch.randn(*shape, generator=g) * scale

    sd = official_downsample_state_dict(t, DIMS)
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
    for i in range(4):
        x = official_downsample(sd, x, i)
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


# --- official FCMAE (sparse MinkowskiEngine) pre-training layout ------------

SMALL_DEPTHS, SMALL_DIMS = [1, 1, 2, 1], [8, 16, 24, 32]


def official_fcmae_state_dict(depths=SMALL_DEPTHS, dims=SMALL_DIMS,
                              decoder_dim=16):
    """Random weights in the official sparse FCMAE layout (§2.3): encoder.*,
    ME kernels (kv, C) / (kv, in, out), (1, C) conv biases and GRN, ln/linear
    sub-modules, plus the decoder that conversion drops."""
    g = torch.Generator().manual_seed(1)

    def t(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    e = 'encoder.'
    sd = {e + 'downsample_layers.0.0.weight': t(dims[0], 3, 4, 4),
          e + 'downsample_layers.0.0.bias': t(dims[0]),
          e + 'downsample_layers.0.1.weight': 1 + t(dims[0]),
          e + 'downsample_layers.0.1.bias': t(dims[0])}
    for i in range(1, 4):
        p = f'{e}downsample_layers.{i}.'
        sd[p + '0.ln.weight'] = 1 + t(dims[i - 1])
        sd[p + '0.ln.bias'] = t(dims[i - 1])
        sd[p + '1.kernel'] = t(4, dims[i - 1], dims[i])
        sd[p + '1.bias'] = t(1, dims[i])
    for s, (depth, c) in enumerate(zip(depths, dims)):
        for b in range(depth):
            p = f'{e}stages.{s}.{b}.'
            sd.update({
                p + 'dwconv.kernel': t(49, c), p + 'dwconv.bias': t(1, c),
                p + 'norm.ln.weight': 1 + t(c), p + 'norm.ln.bias': t(c),
                p + 'pwconv1.linear.weight': t(4 * c, c),
                p + 'pwconv1.linear.bias': t(4 * c),
                p + 'grn.gamma': t(1, 4 * c), p + 'grn.beta': t(1, 4 * c),
                p + 'pwconv2.linear.weight': t(c, 4 * c),
                p + 'pwconv2.linear.bias': t(c)})
    d = decoder_dim
    sd.update({'proj.weight': t(d, dims[3], 1, 1), 'proj.bias': t(d),
               'mask_token': t(1, d, 1, 1), 'pred.weight': t(3072, d, 1, 1),
               'pred.bias': t(3072), 'decoder.0.dwconv.weight': t(d, 1, 7, 7),
               'decoder.0.dwconv.bias': t(d), 'decoder.0.norm.weight': t(d),
               'decoder.0.norm.bias': t(d),
               'decoder.0.pwconv1.weight': t(4 * d, d),
               'decoder.0.pwconv1.bias': t(4 * d),
               'decoder.0.grn.gamma': t(1, 1, 1, 4 * d),
               'decoder.0.grn.beta': t(1, 1, 1, 4 * d),
               'decoder.0.pwconv2.weight': t(d, 4 * d),
               'decoder.0.pwconv2.bias': t(d)})
    return sd


def _index_map(coords, shape):
    index = torch.full(shape, -1, dtype=torch.long)
    index[coords[:, 0], coords[:, 1], coords[:, 2]] = torch.arange(len(coords))
    return index


def _lookup(index, b, h, w):
    n, height, width = index.shape
    ok = (h >= 0) & (h < height) & (w >= 0) & (w < width)
    found = torch.full_like(h, -1)
    found[ok] = index[b[ok], h[ok], w[ok]]
    return found


def me_conv(coords, feats, shape, kernel, bias, stride):
    """MinkowskiEngine convolution on a coordinate list, written from its
    kernel_region.hpp: kernel offsets enumerate the first spatial axis (h)
    fastest; odd kernels are centred on the output site, even ones start at
    it; out[o] = bias + sum_kv in[o*stride + off_kv] @ K[kv]. A (kv, C)
    kernel is depthwise."""
    k = int(round(kernel.shape[0]**.5))
    index = _index_map(coords, shape)
    if stride == 1:
        out_coords, out_shape = coords, shape
    else:
        out_coords = torch.unique(torch.cat(
            [coords[:, :1], coords[:, 1:] // stride], 1), dim=0)
        out_shape = (shape[0], shape[1] // stride, shape[2] // stride)
    out = bias.reshape(1, -1).repeat(len(out_coords), 1)
    r = k // 2 if k % 2 else 0
    for kv in range(k * k):
        dh, dw = kv % k - r, kv // k - r
        nbr = _lookup(index, out_coords[:, 0], out_coords[:, 1] * stride + dh,
                      out_coords[:, 2] * stride + dw)
        ok = nbr >= 0
        src = feats[nbr[ok]]
        out[ok] += src * kernel[kv] if kernel.dim() == 2 else src @ kernel[kv]
    return out_coords, out, out_shape


def sparse_fcmae_encoder(sd, imgs, mask, depths, reduction='batch'):
    """The official SparseConvNeXtV2 forward on coordinate lists (§2.3):
    dense stem, mask, to_sparse, sparse blocks and downsamples, dense()."""
    e = 'encoder.'
    x = F.conv2d(imgs, sd[e + 'downsample_layers.0.0.weight'],
                 sd[e + 'downsample_layers.0.0.bias'], stride=4)
    x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2],
                     sd[e + 'downsample_layers.0.1.weight'],
                     sd[e + 'downsample_layers.0.1.bias'], 1e-6)
    keep = (1 - mask).repeat_interleave(8, 1).repeat_interleave(8, 2)
    coords = keep.nonzero()
    feats = x[coords[:, 0], coords[:, 1], coords[:, 2]]
    shape, outs = tuple(keep.shape), []
    for i, depth in enumerate(depths):
        if i:
            p = f'{e}downsample_layers.{i}.'
            feats = F.layer_norm(feats, feats.shape[1:], sd[p + '0.ln.weight'],
                                 sd[p + '0.ln.bias'], 1e-6)
            coords, feats, shape = me_conv(coords, feats, shape,
                                           sd[p + '1.kernel'],
                                           sd[p + '1.bias'], stride=2)
        for b in range(depth):
            p = f'{e}stages.{i}.{b}.'
            _, y, _ = me_conv(coords, feats, shape, sd[p + 'dwconv.kernel'],
                              sd[p + 'dwconv.bias'], stride=1)
            y = F.layer_norm(y, y.shape[1:], sd[p + 'norm.ln.weight'],
                             sd[p + 'norm.ln.bias'], 1e-6)
            y = F.gelu(F.linear(y, sd[p + 'pwconv1.linear.weight'],
                                sd[p + 'pwconv1.linear.bias']))
            if reduction == 'batch':  # MinkowskiGRN: all active rows
                gx = torch.norm(y, p=2, dim=0, keepdim=True)
                nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
            else:  # per sample
                sq = torch.zeros(shape[0], y.shape[1]).index_add_(
                    0, coords[:, 0], y**2)
                gx = sq.sqrt()
                nx = (gx / (gx.mean(dim=-1, keepdim=True) + 1e-6))[coords[:, 0]]
            y = sd[p + 'grn.gamma'] * (y * nx) + sd[p + 'grn.beta'] + y
            y = F.linear(y, sd[p + 'pwconv2.linear.weight'],
                         sd[p + 'pwconv2.linear.bias'])
            feats = feats + y
        dense = torch.zeros(*shape, feats.shape[1])
        dense[coords[:, 0], coords[:, 1], coords[:, 2]] = feats
        outs.append(dense.permute(0, 3, 1, 2))
    return outs


def test_sparse_kernel_remap_matches_me_convolution():
    """Depthwise 7x7 and dense 2x2/s2 kernels: conv2d with the converted
    weight equals the ME formula on a fully active small input."""
    from mmconvarch.checkpoint.converters.convnextv2 import sparse_kernel_to_dense
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 5, 6, 8, generator=g)
    coords = torch.ones(1, 6, 8).nonzero()
    feats = x.permute(0, 2, 3, 1)[0].reshape(-1, 5)
    dw, bias = torch.randn(49, 5, generator=g), torch.randn(1, 5, generator=g)
    _, out, _ = me_conv(coords, feats, (1, 6, 8), dw, bias, stride=1)
    ref = F.conv2d(x, sparse_kernel_to_dense(dw), bias.reshape(-1), padding=3,
                   groups=5)
    torch.testing.assert_close(out, ref.permute(0, 2, 3, 1).reshape(-1, 5))
    k2 = torch.randn(4, 5, 7, generator=g)
    out_coords, out, _ = me_conv(coords, feats, (1, 6, 8), k2,
                                 torch.zeros(1, 7), stride=2)
    ref = F.conv2d(x, sparse_kernel_to_dense(k2), stride=2)[0]
    torch.testing.assert_close(out, ref[:, out_coords[:, 1],
                                        out_coords[:, 2]].T)
    # a plain reshape (no transpose) would be wrong
    assert not torch.allclose(sparse_kernel_to_dense(dw),
                              dw.T.reshape(5, 1, 7, 7))


@pytest.mark.parametrize('reduction', ['batch', 'sample'])
def test_official_fcmae_converts_and_matches_sparse_encoder(reduction):
    """Official FCMAE checkpoint -> MaskedConvNeXtV2 with no missing or
    unexpected keys, and its masked forward equals the sparse computation
    at every stage."""
    from mmconvarch.models.selfsup import MaskedConvNeXtV2
    sd = official_fcmae_state_dict()
    new, cfg = convert_checkpoint({'model': sd}, 'convnextv2')
    assert cfg == dict(type='MaskedConvNeXtV2',
                       arch=dict(depths=SMALL_DEPTHS, channels=SMALL_DIMS))
    assert all(k.startswith('backbone.') for k in new)  # decoder dropped
    enc = MaskedConvNeXtV2(cfg['arch'], grn_reduction=reduction,
                           out_indices=(0, 1, 2, 3)).eval()
    enc.load_state_dict({k[9:]: v for k, v in new.items()}, strict=True)
    imgs = torch.randn(2, 3, 64, 96)
    mask = torch.tensor([[[0., 1., 1.], [1., 0., 0.]],
                         [[1., 1., 0.], [0., 1., 1.]]])
    with torch.no_grad():
        ours = enc(imgs, mask)
    ref = sparse_fcmae_encoder(sd, imgs, mask, SMALL_DEPTHS, reduction)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # fine-tuning: ConvNeXtV2 takes it all, only its output norm is new
    missing, unexpected = ConvNeXtV2(cfg['arch']).load_state_dict(
        {k[9:]: v for k, v in new.items()}, strict=False)
    assert sorted(missing) == ['norm3.bias', 'norm3.weight'] and \
        not unexpected


def test_convert_cli_detects_both_layouts(tmp_path):
    """tools/model_converters/convert.py convnextv2: the sparse FCMAE and
    the dense fine-tuned layout, auto-detected; a broken one is refused
    with its key lists."""
    import importlib.util
    import os.path as osp
    from conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'convert', osp.join(REPO, 'tools/model_converters/convert.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    for name, sd, backbone in (
            ('fcmae', official_fcmae_state_dict(DEPTHS, DIMS), 'Masked'),
            ('ft', official_convnextv2_state_dict(), 'ConvNeXtV2')):
        src, dst = str(tmp_path / f'{name}.pt'), str(tmp_path / f'{name}.pth')
        torch.save({'model': sd}, src)
        cli.main(['convnextv2', src, dst])
        out = torch.load(dst)
        assert out['meta']['backbone']['type'].startswith(backbone)
        model = ConvNeXtV2('atto', init_cfg=dict(
            type='Pretrained', checkpoint=dst, prefix='backbone.'))
        model.init_weights()
        key = 'stages.2.5.depthwise_conv.weight'
        assert torch.equal(model.state_dict()[key],
                           out['state_dict']['backbone.' + key])
    sd = official_fcmae_state_dict(DEPTHS, DIMS)
    del sd['encoder.stages.1.0.grn.gamma']
    sd['encoder.stages.0.0.gamma'] = torch.ones(40)
    torch.save({'model': sd}, str(tmp_path / 'bad.pt'))
    with pytest.raises(SystemExit, match=r"missing keys 1 \['stages.1.0.grn."
                       r"gamma'\], unexpected keys 1 \['stages.0.0.gamma'\]"):
        cli.main(['convnextv2', str(tmp_path / 'bad.pt'),
                  str(tmp_path / 'bad.pth')])


def test_official_checkpoint_loads_directly_through_init_cfg(tmp_path):
    sd = official_convnextv2_state_dict()
    path = str(tmp_path / 'convnextv2_atto_official.pt')
    torch.save({'model': sd}, path)
    model = ConvNeXtV2('atto', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    torch.testing.assert_close(model.stages[2][3].pointwise_conv1.weight,
                               sd['stages.2.3.pwconv1.weight'])
    torch.testing.assert_close(model.stages[1][0].grn.gamma, sd['stages.1.0.grn.gamma'].flatten())
