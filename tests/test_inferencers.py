"""The OpenMMLab inferencers run end to end on a real photo with our models:
mmpretrain's ImageClassificationInferencer by model name (after
``mmconvarch.model_zoo.register_models()``; weights from a
converted file); mmdet's DetInferencer and mmseg's MMSegInferencer on the
config our model name gives (mmconvarch.model_zoo.get_model_info; they read
names only from their own package's index), shrunk, with weights from a
saved file. The photos are
scikit-image's ``skimage.data`` ones (BSD-licensed)."""
import os.path as osp

import pytest
import torch

from conftest import REPO

pytestmark = pytest.mark.usefixtures('single_thread', 'models_in_hub')


@pytest.fixture(scope='session')
def models_in_hub():
    """What the README says to do before mmpretrain.get_model(our name)."""
    from mmconvarch import model_zoo
    model_zoo.register_models()

FAMILIES = ('revcol', 'slak', 'vanillanet', 'convnextv2')
# RevCol small enough for a CPU test: 2 columns, one block per level
TINY_REVCOL = dict(channels=[16, 32, 64, 128], layers=[1, 1, 1, 1], num_columns=2)


def photo(tmp_path, name: str = 'astronaut') -> str:
    """A real photo from skimage.data written as a JPEG file."""
    from PIL import Image
    from skimage import data
    path = str(tmp_path / f'{name}.jpg')
    Image.fromarray(getattr(data, name)()).save(path, quality=95)
    return path


def classification_name(family: str) -> str:
    """The smallest image-classification model of ``family`` in our index
    (by its metafile's parameter count)."""
    from mmconvarch import model_zoo
    names = [n for n in model_zoo.list_models(task='Image Classification')
             if f'{osp.sep}configs{osp.sep}{family}{osp.sep}'
             in model_zoo.get_model_info(n).config]
    assert names, f'no Image Classification entry with a configs/{family}/ config'

    def params(name):
        metadata = model_zoo.get_model_info(name).metadata
        return getattr(metadata, 'parameters', None) or float('inf')
    return min(names, key=params)


def entry_for_config(config: str) -> str:
    """Our model name whose config is ``config`` (relative to the repository)."""
    from mmconvarch import model_zoo
    (name, ) = [n for n in model_zoo.list_models()
                if model_zoo.get_model_info(n).config == osp.join(REPO, config)]
    return name


def save_weights(model: torch.nn.Module, path) -> dict:
    """Save the model's weights as a converted file does (tensors under
    ``state_dict``); return them."""
    state_dict = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state_dict, meta=dict()), str(path))
    return state_dict


def assert_weights_equal(model: torch.nn.Module, state_dict: dict) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == state_dict.keys()
    for key, value in state_dict.items():
        assert torch.equal(loaded[key], value), key


def tiny_config(tmp_path, config: str, overrides: str) -> str:
    """A config file inheriting ``config`` (a path) with ``overrides``."""
    path = tmp_path / ('tiny_' + osp.basename(config))
    path.write_text(f'_base_ = [{config!r}]\n{overrides}')
    return str(path)


def tiny_cascade_revcol(tmp_path, config=None) -> str:
    """configs/revcol/cascade_revcol_s_coco.py with a tiny RevCol, 256 px
    test images and few proposals; every detection kept (random weights
    score low)."""
    config = config or osp.join(REPO, 'configs/revcol/cascade_revcol_s_coco.py')
    return tiny_config(tmp_path, config, f'''
model = dict(
    backbone=dict(arch=dict(_delete_=True, **{TINY_REVCOL!r}), init_cfg=None),
    neck=dict(in_channels={TINY_REVCOL['channels']!r}),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=50),
                  rcnn=dict(score_thr=0.0, max_per_img=5)))
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))]))
''')


def tiny_upernet_revcol(tmp_path, config=None) -> str:
    """configs/revcol/upernet_revcol_t_ade20k.py with a tiny RevCol and
    heads, whole-image inference at 256 px."""
    config = config or osp.join(REPO, 'configs/revcol/upernet_revcol_t_ade20k.py')
    return tiny_config(tmp_path, config, f'''
model = dict(
    backbone=dict(arch=dict(_delete_=True, **{TINY_REVCOL!r}), init_cfg=None),
    decode_head=dict(in_channels={TINY_REVCOL['channels']!r}, channels=32),
    auxiliary_head=dict(in_channels={TINY_REVCOL['channels'][2]}, channels=32),
    test_cfg=dict(_delete_=True, mode='whole'))
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]))
''')


def build_from_config(config: str) -> torch.nn.Module:
    import mmconvarch  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.mark.parametrize('family', FAMILIES)
def test_classification_inferencer_by_name(family, tmp_path):
    """ImageClassificationInferencer(name, pretrained=file) on a photo of a
    cat: the converted file's head bias decides the class (the weights came
    from the file), and the name maps to ImageNet's class list."""
    from mmpretrain import ImageClassificationInferencer, get_model
    from mmpretrain.datasets import ImageNet
    name = classification_name(family)
    model = get_model(name)
    cat = ImageNet.METAINFO['classes'].index('Egyptian cat')
    head_biases = [m.bias for m in model.head.modules() if getattr(
        m, 'bias', None) is not None and m.bias.shape == (len(ImageNet.METAINFO['classes']), )]
    with torch.no_grad():
        head_biases[-1][cat] += 1e4
    weights = save_weights(model, tmp_path / 'converted.pth')
    del model

    inferencer = ImageClassificationInferencer(name, pretrained=str(tmp_path / 'converted.pth'))
    assert_weights_equal(inferencer.model, weights)
    assert type(inferencer.model.backbone).__module__.startswith('mmconvarch.')
    (result, ) = inferencer(photo(tmp_path, 'chelsea'))
    assert result['pred_label'] == cat
    assert result['pred_class'] == 'Egyptian cat'
    assert len(result['pred_scores']) == 1000
    assert result['pred_score'] == pytest.approx(1.0)


def test_det_inferencer_from_our_model_name(tmp_path):
    """DetInferencer(model=<the config of our cascade model's name>,
    weights=file) on a photo: one prediction per image with boxes inside the
    image, masks of its size, COCO labels, and a drawn visualization."""
    from mmdet.apis import DetInferencer

    from mmconvarch import model_zoo
    info = model_zoo.get_model_info(entry_for_config('configs/revcol/cascade_revcol_s_coco.py'))
    assert {r.task for r in info.results} == {'Object Detection', 'Instance Segmentation'}
    config = tiny_cascade_revcol(tmp_path, info.config)
    weights = save_weights(build_from_config(config), tmp_path / 'det.pth')

    inferencer = DetInferencer(model=config, weights=str(tmp_path / 'det.pth'),
                               device='cpu', show_progress=False)
    assert_weights_equal(inferencer.model, weights)
    assert type(inferencer.model.backbone).__module__ == 'mmconvarch.models.backbones.revcol'
    image = photo(tmp_path)
    result = inferencer(image, return_vis=True, return_datasamples=True)
    (sample, ) = result['predictions']
    pred = sample.pred_instances
    assert 0 < len(pred) <= 5
    h, w = sample.ori_shape
    assert (h, w) == (512, 512)
    boxes = pred.bboxes
    assert boxes.shape == (len(pred), 4)
    assert bool((boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all())
    assert bool((boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all())
    assert pred.masks.shape == (len(pred), h, w)
    assert bool(((pred.labels >= 0) & (pred.labels < 80)).all())
    assert result['visualization'][0].shape == (h, w, 3)


def test_seg_inferencer_from_our_model_name(tmp_path):
    """MMSegInferencer(model=<the config of our UperNet model's name>,
    weights=file) on a photo: a label map of the photo's size with ADE20K
    class indices, and a drawn visualization."""
    from mmseg.apis import MMSegInferencer

    from mmconvarch import model_zoo
    info = model_zoo.get_model_info(entry_for_config('configs/revcol/upernet_revcol_t_ade20k.py'))
    assert {r.task for r in info.results} == {'Semantic Segmentation'}
    config = tiny_upernet_revcol(tmp_path, info.config)
    weights = save_weights(build_from_config(config), tmp_path / 'seg.pth')

    inferencer = MMSegInferencer(model=config, weights=str(tmp_path / 'seg.pth'),
                                 device='cpu')
    assert_weights_equal(inferencer.model, weights)
    result = inferencer(photo(tmp_path), return_vis=True)
    labels = result['predictions']
    assert labels.shape == (512, 512)
    assert labels.dtype.kind in 'iu' and labels.min() >= 0 and labels.max() < 150
    assert result['visualization'].shape == (512, 512, 3)
