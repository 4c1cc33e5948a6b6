"""Test (and evaluate) any mmconvarch config (mmdet, mmseg or mmpretrain).

Arguments follow mmdet's tools/test.py; see README for examples.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # launch_utils
from launch_utils import (add_common_args, build_runner,  # noqa
                                     check_datasets_exist, enable_tta,
                                     enable_visualization, load_config,
                                     set_local_rank)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to a .pkl file')
    parser.add_argument('--show', action='store_true',
                        help='show prediction results')
    parser.add_argument('--show-dir', help='save painted images here')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (mmdet/mmseg)')
    add_common_args(parser)
    args = parser.parse_args(argv)
    set_local_rank(args)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import mmconvarch
    # load_from/resume on torch>=2.6 (weights_only + allow-list); a process-wide
    # change, so the tool asks for it (import mmconvarch does not)
    mmconvarch.enable_safe_checkpoint_loading()
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        enable_tta(cfg)
    check_datasets_exist(cfg, args.config, ('test', ))
    runner = build_runner(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit(f'--out must be a .pkl file, got {args.out!r}.')
        if cfg.default_scope == 'mmdet':
            from mmdet.evaluation import DumpDetResults as Dump
        else:
            from mmengine.evaluator import DumpResults as Dump
        runner.test_evaluator.metrics.append(Dump(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
