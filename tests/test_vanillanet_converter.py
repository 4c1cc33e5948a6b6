"""Official VanillaNet checkpoints (train and deploy form, model/model_ema)
-> mmconvarch keys: loads strictly and computes the official function."""

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS, init_default_scope

from conftest import load_tool
from mmconvarch.checkpoint.converters import convert_checkpoint
from mmconvarch.checkpoint.converters.vanillanet import find_arch

DIMS, STRIDES = [512, 1024, 2048, 4096], [2, 2, 2]  # VanillaNet-5
NUM_CLASSES = 1000
BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')


def official_state_dict(deploy=False, act_num=3, seed=0):
    """Random weights laid out with the documented official key template
    (reference §4.2), not produced by our modules."""
    g = torch.Generator().manual_seed(seed)
    k = 2 * act_num + 1

    def t(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    def bn(prefix, c):
        return {prefix + 'weight': 1 + t(c, scale=0.2),
                prefix + 'bias': t(c, scale=0.2),
                prefix + 'running_mean': t(c, scale=0.2),
                prefix + 'running_var': 0.5 + torch.rand(c, generator=g),
                prefix + 'num_batches_tracked': torch.tensor(100)}

    c0, sd = DIMS[0], {}
    if deploy:
        sd.update({'stem.0.weight': t(c0, 3, 4, 4), 'stem.0.bias': t(c0),
                   'stem.1.weight': t(c0, 1, k, k, scale=0.2),
                   'stem.1.bias': t(c0)})
    else:
        sd.update({'stem1.0.weight': t(c0, 3, 4, 4), 'stem1.0.bias': t(c0),
                   'stem2.0.weight': t(c0, c0, 1, 1), 'stem2.0.bias': t(c0),
                   'stem2.2.weight': t(c0, 1, k, k, scale=0.2)})
        sd.update(bn('stem1.1.', c0))
        sd.update(bn('stem2.1.', c0))
        sd.update(bn('stem2.2.bn.', c0))
    for i, (d, o) in enumerate(zip(DIMS[:-1], DIMS[1:])):
        p = f'stages.{i}.'
        sd[p + 'act.weight'] = t(o, 1, k, k, scale=0.2)
        if deploy:
            sd.update({p + 'conv.weight': t(o, d, 1, 1, scale=0.03),
                       p + 'conv.bias': t(o), p + 'act.bias': t(o)})
        else:
            sd.update({p + 'conv1.0.weight': t(d, d, 1, 1, scale=0.03),
                       p + 'conv1.0.bias': t(d),
                       p + 'conv2.0.weight': t(o, d, 1, 1, scale=0.03),
                       p + 'conv2.0.bias': t(o)})
            sd.update(bn(p + 'conv1.1.', d))
            sd.update(bn(p + 'conv2.1.', o))
            sd.update(bn(p + 'act.bn.', o))
    n, c = NUM_CLASSES, DIMS[-1]
    if deploy:
        sd.update({'cls.2.weight': t(n, c, 1, 1), 'cls.2.bias': t(n)})
    else:
        sd.update({'cls1.2.weight': t(n, c, 1, 1), 'cls1.2.bias': t(n),
                   'cls2.0.weight': t(n, n, 1, 1), 'cls2.0.bias': t(n)})
        sd.update(bn('cls1.3.', n))
    return sd


def official_forward(sd, x, deploy=False, act_num=3):
    """The official network (λ = 1), written from reference §4.2/§4.4."""
    def conv(x, p, **kw):
        return F.conv2d(x, sd[p + 'weight'], sd[p + 'bias'], **kw)

    def bn(x, p):
        return F.batch_norm(x, sd[p + 'running_mean'], sd[p + 'running_var'],
                            sd[p + 'weight'], sd[p + 'bias'], False, 0., 1e-6)

    def act(x, p):
        w = sd[p + 'weight']
        y = F.conv2d(F.relu(x), w, sd.get(p + 'bias') if deploy else None,
                     padding=act_num, groups=w.shape[0])
        return y if deploy else bn(y, p + 'bn.')

    if deploy:
        x = act(conv(x, 'stem.0.', stride=4), 'stem.1.')
    else:
        x = bn(conv(x, 'stem1.0.', stride=4), 'stem1.1.')
        x = act(bn(conv(x, 'stem2.0.'), 'stem2.1.'), 'stem2.2.')
    for i, s in enumerate(STRIDES):
        p = f'stages.{i}.'
        if deploy:
            x = conv(x, p + 'conv.')
        else:
            x = bn(conv(x, p + 'conv1.0.'), p + 'conv1.1.')
            x = bn(conv(x, p + 'conv2.0.'), p + 'conv2.1.')
        x = F.max_pool2d(x, s)
        x = act(x, p + 'act.')
    x = x.mean((2, 3), keepdim=True)
    if deploy:
        x = conv(x, 'cls.2.')
    else:
        x = conv(bn(conv(x, 'cls1.2.'), 'cls1.3.'), 'cls2.0.')
    return x.flatten(1)


def classifier(backbone_cfg):
    init_default_scope('mmpretrain')
    backbone = dict(backbone_cfg, type='mmconvarch.VanillaNet')
    return MODELS.build(dict(
        type='ImageClassifier', backbone=backbone,
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='mmconvarch.VanillaNetClsHead',
                  num_classes=NUM_CLASSES, in_channels=DIMS[-1],
                  deploy=backbone_cfg['deploy']))).eval()


@pytest.mark.parametrize('deploy,act_num', [(False, 3), (True, 4)])
def test_official_checkpoint_loads_and_matches(deploy, act_num):
    torch.manual_seed(0)
    ema = official_state_dict(deploy, act_num, seed=1)
    checkpoint = {'model': official_state_dict(deploy, act_num, seed=0),
                  'model_ema': ema, 'epoch': 299}
    state_dict, cfg = convert_checkpoint(checkpoint, 'vanillanet', ema=True)
    assert cfg == dict(type='VanillaNet', arch='5', act_num=act_num,
                       deploy=deploy)
    model = classifier(cfg)
    result = model.load_state_dict(state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    if not deploy:
        assert state_dict['backbone.act_learn'] == 1.
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = model(x, mode='tensor')
    torch.testing.assert_close(ours, official_forward(ema, x, deploy,
                                                      act_num),
                               atol=1e-4, rtol=1e-4)


def test_other_families_are_refused():
    convnext = {'downsample_layers.0.0.weight': torch.zeros(40, 3, 4, 4),
                'stages.0.0.dwconv.weight': torch.zeros(40, 1, 7, 7)}
    with pytest.raises(ValueError, match='Not an official VanillaNet'):
        convert_checkpoint({'model': convnext}, 'vanillanet')
    revcol = {'stem.0.weight': torch.zeros(64, 3, 4, 4),
              'stem.1.weight': torch.zeros(64),
              'subnet0.level0.blocks.0.dwconv.weight': torch.zeros(64, 1, 3,
                                                                   3)}
    with pytest.raises(ValueError, match='Not an official VanillaNet'):
        convert_checkpoint({'model': revcol}, 'vanillanet')


def test_variant_lookup():
    dims_15 = [768, 768, 1536] + [3072] * 7 + [6144] * 2
    with pytest.warns(UserWarning, match='13_x1_5_ada_pool'):
        assert find_arch(dims_15) == '13_x1_5'
    assert find_arch(dims_15, '13_x1_5_ada_pool') == '13_x1_5_ada_pool'
    with pytest.raises(ValueError, match='does not fit'):
        find_arch(dims_15, '13')
    with pytest.raises(ValueError, match='No VanillaNet variant'):
        find_arch([64, 128])


def test_cli_output_loads_with_pretrained_init_cfg(tmp_path):
    tool = load_tool('tools/model_converters/convert.py')
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'ours.pth')
    sd = official_state_dict(deploy=True)
    torch.save({'model': sd}, src)
    tool.main(['vanillanet', src, dst])
    model = classifier(dict(arch='5', deploy=True))
    model.backbone.init_cfg = dict(type='Pretrained', checkpoint=dst,
                                   prefix='backbone.')
    model.backbone.init_weights()
    torch.testing.assert_close(model.backbone.stages[2].conv.weight,
                               sd['stages.2.conv.weight'])
