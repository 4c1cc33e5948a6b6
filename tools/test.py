"""Test (and evaluate) any mmconvarch config (mmdet, mmseg or mmpretrain).

Arguments follow mmdet's tools/test.py; see README for examples.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from mmconvarch.launch import (  # noqa: E402  (after the sys.path line)
    LOAD_FROM_STRICT, CheckpointMismatchError, build_runner, check_datasets_exist,
    checkpoint_problem, enable_tta, enable_visualization, load_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--non-strict', action='store_true',
        help='load the checkpoint even if its keys do not fit the model (what fits loads, the '
        'rest keeps random weights); by default a mismatch is an error listing the keys')
    parser.add_argument('--out', help='dump predictions to a .pkl file')
    parser.add_argument('--show', action='store_true',
                        help='show prediction results')
    parser.add_argument('--show-dir', help='save painted images here')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (mmdet/mmseg)')
    parser.add_argument('--work-dir', help='directory for logs and outputs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (as in mmdet)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument(
        '--sample-data', nargs='?', const='data/sample', default=None, metavar='ROOT',
        help='run on the generated sample set (created under ROOT, default data/sample): small '
        'images, a short schedule, no pretrained download. --cfg-options still apply on top.')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import mmconvarch
    # load_from/resume on torch>=2.6 (weights_only + allow-list); a process-wide
    # change, so the tool asks for it (import mmconvarch does not)
    mmconvarch.enable_safe_checkpoint_loading()
    cfg = load_config(args.config, args.cfg_options, launcher=args.launcher,
                      sample_data=args.sample_data, work_dir=args.work_dir)
    if '://' not in args.checkpoint:
        problem = checkpoint_problem(args.checkpoint)
        if problem is not None:
            raise SystemExit(f'tools/test.py: the checkpoint {args.checkpoint} is {problem}.')
    cfg.load_from = args.checkpoint
    if args.non_strict:
        cfg[LOAD_FROM_STRICT] = False
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show, args.show_dir, args.wait_time)
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
    from mmconvarch.checkpoint import CorruptCheckpointError
    try:
        runner.test()
    except (CheckpointMismatchError, CorruptCheckpointError) as e:
        raise SystemExit(f'tools/test.py: {e}') from e


if __name__ == '__main__':
    main()
