"""Look at a config's dataset after its pipeline, with the ground truth drawn
by the config's own library (mmdet, mmseg or mmpretrain visualizer), as their
tools/analysis_tools/browse_dataset.py.

    python tools/analysis/browse_dataset.py CONFIG [--phase train]
        [--output-dir DIR] [--not-show] [--show-interval 2]
        [--max-items N] [--sample-data [ROOT]] [--cfg-options k=v ...]

Each image is written as DIR/<image file name> (with --output-dir) and/or
shown in a window (unless --not-show).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Browse a dataset')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--phase', default='train', choices=['train', 'val', 'test'],
                        help='which dataloader\'s dataset to browse')
    parser.add_argument('--output-dir', default=None,
                        help='write the drawn images here')
    parser.add_argument('--not-show', action='store_true',
                        help='do not open a window')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='seconds each image is shown')
    parser.add_argument('--max-items', type=int, default=None,
                        help='stop after this many images')
    parser.add_argument(
        '--sample-data', nargs='?', const='data/sample', default=None,
        metavar='ROOT', help='browse the generated sample set')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if args.not_show and args.output_dir is None:
        parser.error('--not-show without --output-dir would produce nothing')
    if args.max_items is not None and args.max_items < 1:
        parser.error('--max-items must be >= 1')
    return args


def _image(inputs) -> 'np.ndarray':  # noqa: F821
    """The packed CHW BGR tensor (the first view of multi-view pipelines) as
    an HWC RGB array."""
    if isinstance(inputs, (list, tuple)):
        inputs = inputs[0]
    return inputs.permute(1, 2, 0).numpy()[..., ::-1].copy()


def _draw_det(visualizer, name: str, image, data_sample, **kwargs) -> None:
    from mmdet.models.utils import mask2ndarray
    from mmdet.structures.bbox import BaseBoxes
    data_sample = data_sample.numpy()
    gt = data_sample.gt_instances
    if isinstance(gt.get('bboxes', None), BaseBoxes):
        gt.bboxes = gt.bboxes.tensor
    if gt.get('masks', None) is not None:  # polygons/bitmaps -> bool arrays
        gt.masks = mask2ndarray(gt.masks).astype(bool)
    data_sample.gt_instances = gt
    visualizer.add_datasample(name, image, data_sample, draw_pred=False, **kwargs)


def _draw_seg(visualizer, name: str, image, data_sample, **kwargs) -> None:
    visualizer.add_datasample(name, image, data_sample, draw_pred=False, **kwargs)


def _draw_cls(visualizer, name: str, image, data_sample, **kwargs) -> None:
    visualizer.visualize_cls(image, data_sample, draw_pred=False, name=name,
                             **kwargs)


_DRAW = dict(mmdet=_draw_det, mmseg=_draw_seg, mmpretrain=_draw_cls)


def main(argv=None) -> list:
    args = parse_args(argv)
    from mmconvarch.launch import load_config
    from mmengine.registry import DATASETS, VISUALIZERS, init_default_scope
    from mmengine.utils import ProgressBar
    # scope check, --sample-data, --cfg-options
    cfg = load_config(args.config, args.cfg_options, sample_data=args.sample_data)
    init_default_scope(cfg.default_scope)
    loader = cfg.get(f'{args.phase}_dataloader')
    if not loader:
        raise SystemExit(f'{args.config} has no {args.phase}_dataloader; try '
                         '--phase train.')
    dataset = DATASETS.build(loader.dataset)
    # mmpretrain's configs leave the (ManagerMixin) visualizer unnamed
    visualizer = VISUALIZERS.build(dict(dict(name='browse_dataset'), **cfg.visualizer))
    visualizer.dataset_meta = dataset.metainfo
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    total = len(dataset) if args.max_items is None else min(args.max_items, len(dataset))
    progress, written = ProgressBar(total, file=sys.stdout), []
    for index in range(total):
        item = dataset[index]
        data_sample = item['data_samples']
        name = osp.basename(data_sample.get('img_path') or f'{index:06d}.jpg')
        out_file = osp.join(args.output_dir, name) if args.output_dir else None
        _DRAW[cfg.default_scope](
            visualizer, name, _image(item['inputs']), data_sample,
            show=not args.not_show, wait_time=args.show_interval, out_file=out_file)
        if out_file:
            written.append(out_file)
        progress.update()
    return written


if __name__ == '__main__':
    main()
