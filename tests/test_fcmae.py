"""FCMAE: the masked encoder behaves like the official sparse one, the loss
only sees masked patches, mask ratio 0 is refused, and the pre-trained
encoder is a ConvNeXtV2."""
import pytest
import torch
from mmengine.registry import init_default_scope

from mmconvarch.models.backbones import ConvNeXtV2
from mmconvarch.models.selfsup import (FCMAE, FCMAEDecoder, FCMAEPretrainHead,
                                       MaskedConvNeXtV2)

ARCH = dict(depths=[1, 1, 2, 1], channels=[8, 16, 24, 32])


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    init_default_scope('mmpretrain')


def randomize(module, seed=0):
    """Non-trivial values everywhere (GRN gamma/beta start at 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            is_norm_weight = 'norm' in name and name.endswith('weight')
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + is_norm_weight)
    return module


def pixel_mask(mask, patch=32):
    return mask.repeat_interleave(patch, 1).repeat_interleave(patch, 2)[:, None]


MASK = torch.tensor([[[0., 1., 1.], [1., 0., 1.]],
                     [[1., 1., 0.], [0., 1., 1.]]])  # (N=2, 2x3 patches)


@pytest.mark.parametrize('reduction', ['batch', 'sample'])
def test_visible_outputs_ignore_masked_pixels(reduction):
    """The sparse encoder's guarantee: outputs at visible sites do not depend
    on masked pixels (values and gradients), masked sites are 0."""
    enc = randomize(MaskedConvNeXtV2(ARCH, grn_reduction=reduction,
                                     out_indices=(0, 1, 2, 3))).eval()
    x = torch.randn(2, 3, 64, 96)
    noisy = x + 50 * torch.randn_like(x) * pixel_mask(MASK)
    outs, outs_noisy = enc(x, MASK), enc(noisy, MASK)
    for i, (a, b) in enumerate(zip(outs, outs_noisy)):
        keep = 1 - pixel_mask(MASK, 8 >> i)
        assert torch.equal(a, b), i
        assert a.abs().sum() > 0 and torch.equal(a * (1 - keep), 0 * a)
    x.requires_grad_(True)
    sum(o.sum() for o in enc(x, MASK)).backward()
    assert torch.equal(x.grad * pixel_mask(MASK), torch.zeros_like(x))
    assert x.grad.abs().sum() > 0
    # the check can fail: the dense ConvNeXtV2 computation leaks
    dense = enc(x.detach())[3] * (1 - pixel_mask(MASK, 1))
    assert not torch.allclose(dense, enc(noisy)[3] * (1 - pixel_mask(MASK, 1)))


def test_nothing_masked_equals_dense_convnextv2():
    """With every patch visible the masked path is the ConvNeXtV2
    computation (per-sample GRN), and mask=None is exactly ConvNeXtV2."""
    enc = randomize(MaskedConvNeXtV2(ARCH, grn_reduction='sample',
                                     out_indices=(0, 1, 2, 3))).eval()
    dense = ConvNeXtV2(ARCH, out_indices=(0, 1, 2, 3),
                       gap_before_final_norm=False).eval()
    missing, unexpected = dense.load_state_dict(enc.state_dict(), strict=False)
    assert not unexpected and all(k.startswith('norm') for k in missing)
    x = torch.randn(2, 3, 64, 96)
    for a, b in zip(enc(x, torch.zeros(2, 2, 3)), enc(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # ConvNeXtV2 = our stages + its output norms
    for i, (a, b) in enumerate(zip(enc(x), dense(x))):
        torch.testing.assert_close(getattr(dense, f'norm{i}')(a), b)


def test_mask_shape_is_checked():
    enc = MaskedConvNeXtV2(ARCH)
    x = torch.randn(2, 3, 64, 96)
    with pytest.raises(ValueError, match='does not fit input'):
        enc(x, torch.zeros(2, 4, 6))  # 16-pixel patches would leak
    with pytest.raises(ValueError, match='grn_reduction'):
        MaskedConvNeXtV2(ARCH, grn_reduction='global')


def build_fcmae(mask_ratio=0.6, arch=ARCH):
    return FCMAE(
        backbone=dict(type='mmconvarch.MaskedConvNeXtV2', arch=arch),
        neck=dict(type='mmconvarch.FCMAEDecoder',
                  in_channels=arch['channels'][-1], embed_dim=16),
        head=dict(type='mmconvarch.FCMAEPretrainHead'),
        mask_ratio=mask_ratio)


def official_loss(imgs, pred, mask):
    """forward_loss of the official fcmae.py (norm_pix_loss=True), from the
    reference text."""
    n, c, _, _ = pred.shape
    pred = torch.einsum('ncl->nlc', pred.reshape(n, c, -1))
    p = 32
    h, w = imgs.shape[2] // p, imgs.shape[3] // p
    x = imgs.reshape(imgs.shape[0], 3, h, p, w, p)
    target = torch.einsum('nchpwq->nhwpqc', x).reshape(n, h * w, p * p * 3)
    target = (target - target.mean(-1, keepdim=True)) / (
        target.var(-1, keepdim=True) + 1e-6)**.5
    loss = ((pred - target)**2).mean(-1)
    mask = mask.reshape(n, -1)
    return (loss * mask).sum() / mask.sum()


def test_loss_matches_official_and_ignores_visible_patches():
    head = FCMAEPretrainHead()
    imgs = torch.randn(2, 3, 64, 96)
    pred = torch.randn(2, 32 * 32 * 3, 2, 3)
    loss = head.loss(pred, imgs, MASK)
    torch.testing.assert_close(loss, official_loss(imgs, pred, MASK))
    visible = (1 - MASK)[:, None]
    assert torch.equal(head.loss(pred + 100 * visible, imgs, MASK), loss)
    assert not torch.equal(head.loss(pred + 0.1 * MASK[:, None], imgs, MASK),
                           loss)
    with pytest.raises(ValueError, match='no patch is masked'):
        head.loss(pred, imgs, torch.zeros_like(MASK))


def test_gen_random_mask_is_the_official_one():
    model = build_fcmae()
    x = torch.zeros(3, 3, 224, 224)
    mask = model.gen_random_mask(x, torch.Generator().manual_seed(1))
    noise = torch.randn(3, 49, generator=torch.Generator().manual_seed(1))
    ids_restore = torch.argsort(torch.argsort(noise, dim=1), dim=1)
    official = torch.ones(3, 49)
    official[:, :int(49 * 0.4)] = 0
    official = torch.gather(official, 1, ids_restore)
    assert torch.equal(mask.reshape(3, 49), official)
    assert (mask.reshape(3, -1).sum(1) == 30).all()  # 19 of 49 kept


def test_fcmae_loss_step_and_mask_ratio_errors():
    model = build_fcmae()
    x = torch.randn(2, 3, 64, 96)
    losses = model(x, mode='loss')
    losses['loss'].backward()
    assert torch.isfinite(losses['loss'])
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    feats = model(x, mode='tensor')
    assert tuple(feats[-1].shape) == (2, 32, 2, 3)

    with pytest.raises(ValueError, match=r'mask_ratio=0.0 masks no patch'):
        build_fcmae(mask_ratio=0.)(x, mode='loss')
    with pytest.raises(ValueError, match='keeps no patch'):
        model(torch.randn(2, 3, 32, 32), mode='loss')  # 1 patch, 0 kept
    with pytest.raises(ValueError, match=r'mask_ratio must be in \[0, 1\)'):
        build_fcmae(mask_ratio=1.)
    with pytest.raises(ValueError, match='multiple of patch_size'):
        model(torch.randn(2, 3, 64, 80), mode='loss')


def test_decoder_fills_masked_sites_with_the_mask_token():
    dec = FCMAEDecoder(in_channels=32, embed_dim=16).eval()
    feat = torch.randn(2, 32, 2, 3)
    out = dec(feat, MASK)
    assert tuple(out.shape) == (2, 32 * 32 * 3, 2, 3)
    torch.testing.assert_close(dec(feat + 9 * MASK[:, None], MASK), out)


def test_pretrained_encoder_loads_into_convnextv2(tmp_path):
    """Our FCMAE checkpoint -> ConvNeXtV2 with init_cfg Pretrained
    prefix='backbone.': every stage weight loads, only norm3 is new."""
    model = randomize(build_fcmae())
    path = str(tmp_path / 'fcmae.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    finetune = ConvNeXtV2(ARCH, init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.'))
    finetune.init_weights()
    ours = finetune.state_dict()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(ours[key], value), key
    assert set(ours) - set(model.backbone.state_dict()) == {'norm3.weight',
                                                            'norm3.bias'}
    x = torch.randn(2, 3, 64, 64)
    finetune.eval(), model.eval()
    torch.testing.assert_close(
        finetune(x)[0],
        finetune.norm3(model.backbone(x)[0].mean((2, 3), True)).flatten(1))
