"""A tiny generated dataset in COCO, ADE20K and ImageNet-folder layouts.

Images are coloured shapes (disc, square, triangle) on a textured background,
so the quickstart and the smoke tests run on real files and real datasets
with no download. :func:`apply_sample_data` points any mmdet/mmseg/mmpretrain
config at them with small images and a short schedule.
"""
import json
import math
import os
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw

# (shape, COCO class name, ADE20K label in the png, RGB colour)
SHAPES = (
    ('disc', 'sports ball', 2, (220, 60, 40)),
    ('square', 'tv', 3, (40, 180, 60)),
    ('triangle', 'kite', 4, (50, 80, 220)),
)
ADE_BACKGROUND = 1  # "wall"; 0 stays the ignore value of reduce_zero_label
SPLITS = dict(train=8, val=4)


def _polygon(shape: str, cx: float, cy: float, r: float) -> List[float]:
    if shape == 'disc':
        pts = [(cx + r * math.cos(a), cy + r * math.sin(a))
               for a in np.linspace(0, 2 * math.pi, 24, endpoint=False)]
    elif shape == 'square':
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r),
               (cx - r, cy + r)]
    else:
        pts = [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    return [round(float(v), 2) for p in pts for v in p]


def _draw_image(rng: np.random.Generator, size: int):
    """Return (RGB image, ADE label map, [(shape index, polygon)])."""
    yy, xx = np.mgrid[0:size, 0:size]
    base = rng.integers(90, 170, size=3)
    img = (base[None, None] + 30 * np.sin(xx / rng.uniform(5, 15))[..., None]
           + rng.normal(0, 8, (size, size, 3))).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(img)
    label = Image.new('L', (size, size), ADE_BACKGROUND)
    draw, draw_label = ImageDraw.Draw(image), ImageDraw.Draw(label)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(len(SHAPES)))
        r = float(rng.uniform(size * 0.1, size * 0.22))
        cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
        poly = _polygon(SHAPES[k][0], cx, cy, r)
        xy = list(zip(poly[0::2], poly[1::2]))
        draw.polygon(xy, fill=SHAPES[k][3])
        draw_label.polygon(xy, fill=SHAPES[k][2])
        objects.append((k, poly))
    return image, label, objects


def make_sample_data(root: str = 'data/sample', size: int = 128,
                     seed: int = 0) -> str:
    """Write the sample set under ``root`` (skipped when already complete)."""
    done = osp.join(root, '.complete')
    if osp.exists(done):
        return root
    rng = np.random.default_rng(seed)
    coco_cats = _coco_categories()
    cat_id = {c['name']: c['id'] for c in coco_cats}
    for split, num in SPLITS.items():
        ade_split = 'training' if split == 'train' else 'validation'
        dirs = dict(
            coco=osp.join(root, 'coco', f'{split}2017'),
            ade_img=osp.join(root, 'ade', 'ADEChallengeData2016', 'images',
                             ade_split),
            ade_ann=osp.join(root, 'ade', 'ADEChallengeData2016',
                             'annotations', ade_split),
            coco_ann=osp.join(root, 'coco', 'annotations'))
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
        images, annotations = [], []
        for i in range(num):
            image, label, objects = _draw_image(rng, size)
            stem = f'{split}_{i:04d}'
            image.save(osp.join(dirs['coco'], stem + '.jpg'), quality=95)
            image.save(osp.join(dirs['ade_img'], stem + '.jpg'), quality=95)
            label.save(osp.join(dirs['ade_ann'], stem + '.png'))
            img_id = len(images) + 1
            images.append(dict(id=img_id, file_name=stem + '.jpg',
                               width=size, height=size))
            for k, poly in objects:
                xs, ys = poly[0::2], poly[1::2]
                x0, y0 = min(xs), min(ys)
                w, h = max(xs) - x0, max(ys) - y0
                # Shoelace area; overlaps are rare and harmless here.
                area = 0.5 * abs(sum(xs[j] * ys[j - 1] - xs[j - 1] * ys[j]
                                     for j in range(len(xs))))
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=img_id,
                    category_id=cat_id[SHAPES[k][1]], segmentation=[poly],
                    area=round(area, 2), bbox=[x0, y0, w, h], iscrowd=0))
            cls_dir = osp.join(root, 'imagenet', split, SHAPES[i % 3][0])
            os.makedirs(cls_dir, exist_ok=True)
            _single_shape_image(rng, size, i % 3).save(
                osp.join(cls_dir, f'{stem}.jpg'), quality=95)
        with open(osp.join(dirs['coco_ann'], f'instances_{split}2017.json'),
                  'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=coco_cats), f)
    open(done, 'w').close()
    return root


def _coco_categories() -> List[dict]:
    """All 80 COCO classes (so 80-class detectors' labels map to ids), or
    just ours when mmdet is not installed."""
    try:
        from mmdet.datasets import CocoDataset
        names = CocoDataset.METAINFO['classes']
    except Exception:
        names = [shape[1] for shape in SHAPES]
    return [dict(id=i + 1, name=n, supercategory='object') for i, n in enumerate(names)]


def _single_shape_image(rng: np.random.Generator, size: int,
                        k: int) -> Image.Image:
    image, _, _ = _draw_image(rng, size)
    draw = ImageDraw.Draw(image)
    r = size * 0.25
    poly = _polygon(SHAPES[k][0], size / 2, size / 2, r)
    draw.polygon(list(zip(poly[0::2], poly[1::2])), fill=SHAPES[k][3])
    return image


def apply_sample_data(cfg, root: str = 'data/sample', img_size: int = 128,
                      train_steps: int = 40, batch_size: int = 2,
                      cfg_options: Optional[dict] = None) -> None:
    """Point ``cfg`` (mmdet, mmseg or mmpretrain) at the sample set in place.

    Train for ``train_steps`` iterations (epoch-based loops get the matching
    number of epochs), validate at the end, no pretrained download, log every
    iteration. Everything else in the config (model, optimizer) is kept.

    ``cfg_options``: the ``--cfg-options`` the caller merges next. If one sets
    a key of the backbone's ``init_cfg`` (``model.backbone.init_cfg.
    checkpoint=...``), the explicit option wins: the backbone keeps its
    config's ``init_cfg`` (a ``Pretrained`` dict if it had none or a list)
    for the option to merge into, instead of None (into which mmengine cannot
    merge a key).
    """
    make_sample_data(root)
    scope = cfg.get('default_scope')
    if scope not in _SAMPLE_OVERRIDES:
        raise ValueError(f'--sample-data supports default_scope in '
                         f'{sorted(_SAMPLE_OVERRIDES)}, got {scope!r}.')
    backbone = cfg.model.get('backbone')
    if backbone is None and 'module' in cfg.model:  # e.g. a wrapped model
        backbone = cfg.model.module.get('backbone')
    if backbone is not None:
        path = 'model.backbone.' if cfg.model.get('backbone') is not None \
            else 'model.module.backbone.'
        if any(str(key).startswith(path + 'init_cfg.') for key in cfg_options or {}):
            if not isinstance(backbone.get('init_cfg'), dict):
                backbone['init_cfg'] = dict(type='Pretrained')
        else:
            backbone['init_cfg'] = None  # offline: no pretrained download
    train_ds, val_ds, evaluator = _SAMPLE_OVERRIDES[scope](root, img_size, cfg)
    loader = dict(num_workers=0, persistent_workers=False)
    # keep the config's collate_fn: mmpretrain's self-supervised configs
    # batch with default_collate (SelfSupDataPreprocessor needs it)
    collate = (cfg.get('train_dataloader') or {}).get('collate_fn')
    cfg.train_dataloader = dict(
        batch_size=batch_size, dataset=train_ds, **loader,
        sampler=dict(type='InfiniteSampler' if _iter_based(cfg) else
                     'DefaultSampler', shuffle=True),
        **(dict(collate_fn=collate) if collate else {}))
    # self-supervised configs have no val/test loop (no predict step)
    has_eval = cfg.get('val_cfg') is not None
    for name in ('val', 'test'):
        if not has_eval:
            for part in ('dataloader', 'evaluator', 'cfg'):
                cfg[f'{name}_{part}'] = None
            continue
        cfg[f'{name}_dataloader'] = dict(
            batch_size=1, dataset=val_ds, **loader,
            sampler=dict(type='DefaultSampler', shuffle=False))
        cfg[f'{name}_evaluator'] = evaluator
        cfg[f'{name}_cfg'] = dict(type=f'{name.capitalize()}Loop')
    if _iter_based(cfg):
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=train_steps,
                             val_interval=train_steps)
        by_epoch = False
        ckpt_interval = train_steps
    else:
        epochs = max(1, math.ceil(train_steps * batch_size / SPLITS['train']))
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs,
                             val_interval=epochs)
        by_epoch = True
        ckpt_interval = epochs
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1,
                                by_epoch=False, begin=0,
                                end=max(1, train_steps // 4))]
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=batch_size)
    hooks = cfg.get('default_hooks', {})
    hooks.setdefault('logger', {})['interval'] = 1
    hooks.setdefault('checkpoint', {}).update(
        interval=ckpt_interval, by_epoch=by_epoch, save_best=None)
    cfg.default_hooks = hooks
    cfg.log_processor = dict(by_epoch=by_epoch)
    if cfg.get('custom_hooks'):
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if h.get('type') != 'EMAHook']
    cfg.pop('tta_model', None)


def _iter_based(cfg) -> bool:
    train_cfg = cfg.get('train_cfg') or {}
    return 'Iter' in str(train_cfg.get('type', '')) or \
        'max_iters' in train_cfg


def _det(root: str, size: int, cfg) -> Tuple[dict, dict, dict]:
    with_mask = 'mask_head' in str(cfg.model.get('roi_head', ''))
    data_root = osp.join(root, 'coco') + '/'
    load = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask)]
    resize = dict(type='Resize', scale=(size, size), keep_ratio=True)
    train = dict(
        type='CocoDataset', data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=load + [resize, dict(type='RandomFlip', prob=0.5),
                         dict(type='PackDetInputs')])
    val = dict(
        type='CocoDataset', data_root=data_root, test_mode=True,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=[load[0], resize, load[1], dict(
            type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                             'img_shape', 'scale_factor'))])
    _lighten_two_stage(cfg.model)
    evaluator = dict(type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_val2017.json',
                     metric=['bbox', 'segm'] if with_mask else ['bbox'],
                     format_only=False)
    return train, val, evaluator


def _lighten_two_stage(model) -> None:
    """Fewer proposals/RoIs: 128px images with 1-3 objects need no 1000
    proposals, and RoI heads dominate the CPU time of two-stage detectors."""
    train_cfg, test_cfg = model.get('train_cfg') or {}, \
        model.get('test_cfg') or {}
    if 'rpn_proposal' in train_cfg:
        train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    rcnn = train_cfg.get('rcnn')
    for stage in (rcnn if isinstance(rcnn, list) else [rcnn] if rcnn else []):
        if 'sampler' in stage:
            stage.sampler.num = 64
    if 'rpn' in test_cfg:
        test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    if 'rcnn' in test_cfg:  # a few dozen iterations: keep weak detections
        test_cfg.rcnn.score_thr = 0.001


def _seg(root: str, size: int, cfg) -> Tuple[dict, dict, dict]:
    data_root = osp.join(root, 'ade', 'ADEChallengeData2016')
    load = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True)]
    resize = dict(type='Resize', scale=(size, size), keep_ratio=True)
    cfg.model.data_preprocessor['size'] = (size, size)
    cfg.model.test_cfg = dict(mode='whole')
    train = dict(type='ADE20KDataset', data_root=data_root,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training'),
                 pipeline=load + [resize, dict(type='RandomFlip', prob=0.5),
                                  dict(type='PackSegInputs')])
    val = dict(type='ADE20KDataset', data_root=data_root, test_mode=True,
               data_prefix=dict(img_path='images/validation',
                                seg_map_path='annotations/validation'),
               pipeline=[load[0], resize, load[1], dict(type='PackSegInputs')])
    return train, val, dict(type='IoUMetric', iou_metrics=['mIoU'])


def _cls(root: str, size: int, cfg) -> Tuple[dict, dict, dict]:
    data_root = osp.join(root, 'imagenet')
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(size, size)),
                dict(type='PackInputs')]
    train = dict(type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=pipeline)
    val = dict(type='CustomDataset', data_root=data_root, data_prefix='val',
               pipeline=pipeline, test_mode=True)
    return train, val, dict(type='Accuracy', topk=(1, ))


_SAMPLE_OVERRIDES = dict(mmdet=_det, mmseg=_seg, mmpretrain=_cls)
