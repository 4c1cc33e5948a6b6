"""Official VanillaNet checkpoints (train and deploy form, model/model_ema)
-> mmconvarch keys: loads strictly and computes the official function."""

import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from conftest import REPO, load_tool, num_params, on_meta
from mmconvarch.checkpoint.converters import convert_checkpoint
from mmconvarch.checkpoint.converters.vanillanet import find_arch

DIMS, STRIDES = [512, 1024, 2048, 4096], [2, 2, 2]  # VanillaNet-5
NUM_CLASSES = 1000
BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')


def official_template(dims=DIMS, deploy=False, act_num=3,
                      num_classes=NUM_CLASSES):
    """``{key: (shape, kind)}`` of an official checkpoint, written from the
    official models/vanillanet.py (reference §4.2), not from our modules:
    train form ``stem1``/``stem2``/``stages.{i}.conv1|conv2|act``/``cls1``/
    ``cls2``, deploy form ``stem``/``stages.{i}.conv|act``/``cls``."""
    k = 2 * act_num + 1
    tpl = {}

    def add(prefix, **entries):
        for name, (shape, kind) in entries.items():
            tpl[prefix + name] = (tuple(shape), kind)

    def bn(prefix, c):
        add(prefix, weight=((c, ), 'bn_weight'), bias=((c, ), 'bn_bias'),
            running_mean=((c, ), 'mean'), running_var=((c, ), 'var'),
            num_batches_tracked=((), 'count'))

    c0 = dims[0]
    if deploy:
        add('stem.0.', weight=((c0, 3, 4, 4), 'conv'), bias=((c0, ), 'bias'))
        add('stem.1.', weight=((c0, 1, k, k), 'act'), bias=((c0, ), 'bias'))
    else:
        add('stem1.0.', weight=((c0, 3, 4, 4), 'conv'), bias=((c0, ), 'bias'))
        bn('stem1.1.', c0)
        add('stem2.0.', weight=((c0, c0, 1, 1), 'conv'), bias=((c0, ), 'bias'))
        bn('stem2.1.', c0)
        add('stem2.2.', weight=((c0, 1, k, k), 'act'))
        bn('stem2.2.bn.', c0)
    for i, (d, o) in enumerate(zip(dims[:-1], dims[1:])):
        p = f'stages.{i}.'
        if deploy:
            add(p + 'conv.', weight=((o, d, 1, 1), 'small'), bias=((o, ), 'bias'))
            add(p + 'act.', weight=((o, 1, k, k), 'act'), bias=((o, ), 'bias'))
        else:
            add(p + 'conv1.0.', weight=((d, d, 1, 1), 'small'), bias=((d, ), 'bias'))
            bn(p + 'conv1.1.', d)
            add(p + 'conv2.0.', weight=((o, d, 1, 1), 'small'), bias=((o, ), 'bias'))
            bn(p + 'conv2.1.', o)
            add(p + 'act.', weight=((o, 1, k, k), 'act'))
            bn(p + 'act.bn.', o)
    n, c = num_classes, dims[-1]
    if deploy:
        add('cls.2.', weight=((n, c, 1, 1), 'conv'), bias=((n, ), 'bias'))
    else:
        add('cls1.2.', weight=((n, c, 1, 1), 'conv'), bias=((n, ), 'bias'))
        bn('cls1.3.', n)
        add('cls2.0.', weight=((n, n, 1, 1), 'conv'), bias=((n, ), 'bias'))
    return tpl


BUFFER_KINDS = ('mean', 'var', 'count')


def official_state_dict(deploy=False, act_num=3, seed=0, dims=DIMS):
    """Random weights in the official key template."""
    g = torch.Generator().manual_seed(seed)

    def value(shape, kind):
        if kind == 'count':
            return torch.tensor(100)
        if kind == 'var':
            return 0.5 + torch.rand(*shape, generator=g)
        scale = dict(act=0.2, small=0.03, bn_bias=0.2, mean=0.2).get(kind, 0.05)
        x = torch.randn(*shape, generator=g) * (0.2 if kind == 'bn_weight' else scale)
        return 1 + x if kind == 'bn_weight' else x

    return {key: value(shape, kind) for key, (shape, kind)
            in official_template(dims, deploy, act_num).items()}


def official_meta_state_dict(dims, deploy=False, act_num=3):
    """The official template's shapes on the meta device (no memory)."""
    return {key: torch.empty(shape, device='meta',
                             dtype=torch.long if kind == 'count' else torch.float)
            for key, (shape, kind) in official_template(dims, deploy, act_num).items()}


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


# -- every released file, at full size on the meta device ---------------------------------------
# The official arch table (models/vanillanet.py, vanillanet_5 ... vanillanet_13_x1_5_ada_pool):
# the channels, stem first (strides and adaptive pools hold no weights).
OFFICIAL_DIMS = {
    '5': [128 * 4, 256 * 4, 512 * 4, 1024 * 4],
    '6': [128 * 4, 256 * 4, 512 * 4, 1024 * 4, 1024 * 4],
    '7': [128 * 4, 128 * 4, 256 * 4, 512 * 4, 1024 * 4, 1024 * 4],
    '8': [128 * 4, 128 * 4, 256 * 4, 512 * 4, 512 * 4, 1024 * 4, 1024 * 4],
    **{str(n): [128 * 4, 128 * 4, 256 * 4] + [512 * 4] * (n - 6) + [1024 * 4] * 2
       for n in range(9, 14)},
    '13_x1_5': [128 * 6, 128 * 6, 256 * 6] + [512 * 6] * 7 + [1024 * 6] * 2,
    '13_x1_5_ada_pool': [128 * 6, 128 * 6, 256 * 6] + [512 * 6] * 7 + [1024 * 6] * 2,
}
# README "ImageNet-1K trained models", #params(M): the deploy form
README_PARAMS = {'5': 15.5, '6': 32.5, '7': 32.8, '8': 37.1, '9': 41.4, '10': 45.7,
                 '11': 50.0, '12': 54.3, '13': 58.6, '13_x1_5': 127.8,
                 '13_x1_5_ada_pool': 127.8}


def config_model(config, deploy=False):
    """The model of one of our configs, full size, on the meta device."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'vanillanet', config + '.py'))
    init_default_scope(cfg.default_scope)
    if deploy:
        cfg.model.backbone.deploy = True
        if 'head' in cfg.model:
            cfg.model.head.deploy = True
    with on_meta():
        return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('deploy', [False, True], ids=['train', 'deploy'])
@pytest.mark.parametrize('arch', sorted(README_PARAMS))
def test_every_released_classifier_loads_into_its_config(arch, deploy):
    """vanillanet_{arch}.pth (train form; deploy: after the official --switch_to_deploy),
    converted, loads strictly into vanillanet_{arch}_in1k.py's model; the deploy form has the
    README's parameter count, the train form exactly the official train-form parameters."""
    official = official_meta_state_dict(OFFICIAL_DIMS[arch], deploy)
    opts = {'arch': arch} if arch.endswith('ada_pool') else {}  # channels as the plain 1.5x
    with on_meta():
        state_dict, backbone = convert_checkpoint({'model': official}, 'vanillanet', **opts)
    assert backbone == dict(type='VanillaNet', arch=arch, act_num=3, deploy=deploy)
    cfg, model = config_model(f'vanillanet_{arch}_in1k', deploy)
    assert (cfg.model.backbone.arch, cfg.model.backbone.act_num) == (arch, 3)
    result = model.load_state_dict(state_dict, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    params = num_params(model)
    if deploy:
        assert round(params / 1e6, 1) == README_PARAMS[arch], params
    else:
        tpl = official_template(OFFICIAL_DIMS[arch])
        assert params == sum(math.prod(shape) for shape, kind in tpl.values()
                             if kind not in BUFFER_KINDS)


DENSE_13 = ('mask_rcnn_vanillanet_13_coco', 'retinanet_vanillanet_13_coco',
            'cascade_vanillanet_13_coco', 'upernet_vanillanet_13_ade20k',
            'mask2former_vanillanet_13_ade20k')


@pytest.mark.parametrize('config', DENSE_13)
def test_act_num_4_release_loads_into_the_dense_configs(config):
    """vanillanet_13_act_num_4_kd_pretrain.pth (object_detection/README.md: a VanillaNet-13
    classifier with act_num 4; the official detectors take its model_ema backbone keys and
    drop the classifier) loads strictly into the backbone of each VanillaNet-13 dense config."""
    official = official_meta_state_dict(OFFICIAL_DIMS['13'], act_num=4)
    with on_meta():
        state_dict, backbone = convert_checkpoint({'model_ema': official}, 'vanillanet',
                                                  ema=True)
    assert backbone == dict(type='VanillaNet', arch='13', act_num=4, deploy=False)
    cfg, model = config_model(config)
    assert (cfg.model.backbone.arch, cfg.model.backbone.act_num) == ('13', 4)
    ours = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    assert {k.split('.')[0] for k in state_dict if not k.startswith('backbone.')} == {'head'}
    result = model.backbone.load_state_dict(ours, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    tpl = official_template(OFFICIAL_DIMS['13'], act_num=4)
    assert num_params(model.backbone) == sum(
        math.prod(shape) for key, (shape, kind) in tpl.items()
        if kind not in BUFFER_KINDS and not key.startswith('cls'))


def mmdet2_detector_template(detector):
    """``{key: shape}`` of the official detectors' heads (object_detection/configs/vanillanet,
    mmdet 2.x FPN / RetinaHead / RPNHead / Shared2FCBBoxHead / FCNMaskHead, COCO's 80
    classes); the backbone is the official train form without the classifier."""
    tpl = {}

    def conv(prefix, out, inp, k, bias=True):
        tpl[prefix + 'weight'] = (out, inp, k, k)
        if bias:
            tpl[prefix + 'bias'] = (out, )

    if detector == 'retinanet':  # outputs 1/8/10, start_level 0, P6/P7 on the input
        inputs = [256 * 4, 512 * 4, 1024 * 4]
        for i, c in enumerate(inputs):
            conv(f'neck.lateral_convs.{i}.conv.', 256, c, 1)
            conv(f'neck.fpn_convs.{i}.conv.', 256, 256, 3)
        conv('neck.fpn_convs.3.conv.', 256, 1024 * 4, 3)
        conv('neck.fpn_convs.4.conv.', 256, 256, 3)
        for i in range(4):
            conv(f'bbox_head.cls_convs.{i}.conv.', 256, 256, 3)
            conv(f'bbox_head.reg_convs.{i}.conv.', 256, 256, 3)
        conv('bbox_head.retina_cls.', 9 * 80, 256, 3)
        conv('bbox_head.retina_reg.', 9 * 4, 256, 3)
    else:  # Mask R-CNN: outputs 0/1/8/10
        inputs = [128 * 4, 256 * 4, 512 * 4, 1024 * 4]
        for i, c in enumerate(inputs):
            conv(f'neck.lateral_convs.{i}.conv.', 256, c, 1)
            conv(f'neck.fpn_convs.{i}.conv.', 256, 256, 3)
        conv('rpn_head.rpn_conv.', 256, 256, 3)
        conv('rpn_head.rpn_cls.', 3, 256, 1)
        conv('rpn_head.rpn_reg.', 12, 256, 1)
        for name, shape in (('shared_fcs.0', (1024, 256 * 7 * 7)), ('shared_fcs.1', (1024, 1024)),
                            ('fc_cls', (81, 1024)), ('fc_reg', (80 * 4, 1024))):
            tpl[f'roi_head.bbox_head.{name}.weight'] = shape
            tpl[f'roi_head.bbox_head.{name}.bias'] = shape[:1]
        for i in range(4):
            conv(f'roi_head.mask_head.convs.{i}.conv.', 256, 256, 3)
        tpl['roi_head.mask_head.upsample.weight'] = (256, 256, 2, 2)  # ConvTranspose2d: in, out
        tpl['roi_head.mask_head.upsample.bias'] = (256, )
        conv('roi_head.mask_head.conv_logits.', 80, 256, 1)
    return tpl


@pytest.mark.parametrize('detector', ['retinanet', 'mask_rcnn'])
def test_official_detector_releases_load_into_their_configs(detector):
    """{retinanet,mask_rcnn}_vanillanet_13.pth (mmdet 2.x 'state_dict': the train-form
    act_num 4 backbone, no λ, and the heads) load strictly, as a whole, into our mmdet 3.x
    config's detector; λ becomes 1 (the official detection backbone has no λ: identity)."""
    backbone = {'backbone.' + k: v for k, v in official_meta_state_dict(
        OFFICIAL_DIMS['13'], act_num=4).items() if not k.startswith('cls')}
    heads = {k: torch.empty(shape, device='meta')
             for k, shape in mmdet2_detector_template(detector).items()}
    checkpoint = {'meta': {'mmdet_version': '2.25.0'}, 'state_dict': {**backbone, **heads}}
    _, model = config_model(f'{detector}_vanillanet_13_coco')
    result = model.load_state_dict(dict(checkpoint['state_dict']), strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert model.backbone.act_learn.device.type == 'cpu' and model.backbone.act_learn == 1
    ours = {**checkpoint['state_dict'], 'backbone.act_learn': torch.tensor(0.5)}  # kept
    model.load_state_dict(ours, strict=True, assign=True)
    assert model.backbone.act_learn == 0.5


def test_ada_pool_release_loads_in_place_without_the_ambiguity_warning():
    """13-1.5x and 13-1.5x† share every weight shape: the converter's metadata names one and says
    so (AmbiguousArchWarning); loading the official file in place into the † config's model uses
    only the keys, loads strictly and warns nothing."""
    import warnings

    from mmconvarch.checkpoint.converters import AmbiguousArchWarning
    official = official_meta_state_dict(OFFICIAL_DIMS['13_x1_5_ada_pool'])
    with pytest.warns(AmbiguousArchWarning, match="converting as '13_x1_5'"), on_meta():
        convert_checkpoint({'model': dict(official)}, 'vanillanet')
    _, model = config_model('vanillanet_13_x1_5_ada_pool_in1k')
    with warnings.catch_warnings():
        warnings.simplefilter('error', AmbiguousArchWarning)
        result = model.load_state_dict(dict(official), strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert model.backbone.stages[0].conv1[0].weight.shape == (768, 768, 1, 1)
