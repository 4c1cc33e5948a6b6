"""Train any mmconvarch config (mmdet, mmseg or mmpretrain scope).

Arguments follow mmdet's tools/train.py; see README for examples.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from mmconvarch.launch import (  # noqa: E402  (after the sys.path line)
    CheckpointMismatchError, CheckpointWriteError, add_step_seed_hook, build_runner,
    check_datasets_exist, check_work_dir_writable, checkpoint_problem, enable_amp,
    explain_download_errors, load_config, resolve_resume_checkpoint)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from PATH, or from the latest checkpoint in work_dir '
        'when no PATH is given')
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
    from mmconvarch.checkpoint import CorruptCheckpointError
    cfg = load_config(args.config, args.cfg_options, launcher=args.launcher,
                      sample_data=args.sample_data, work_dir=args.work_dir)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('--auto-scale-lr needs auto_scale_lr.'
                             'base_batch_size in the config.')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        # the pointer resolved inside this work_dir, a broken newest checkpoint skipped
        cfg.resume = True
        cfg.load_from = resolve_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        problem = None if '://' in args.resume else checkpoint_problem(args.resume)
        if problem is not None:
            raise SystemExit(f'--resume {args.resume}: the checkpoint is {problem}.')
        cfg.resume = True
        cfg.load_from = args.resume
    elif cfg.get('load_from') and '://' not in str(cfg.load_from):
        problem = checkpoint_problem(cfg.load_from)
        if problem is not None:
            raise SystemExit(f'load_from: the checkpoint {cfg.load_from} is {problem}.')
    # every step's randomness from (seed, position): a resumed run equals the uninterrupted one
    add_step_seed_hook(cfg)
    check_datasets_exist(cfg, args.config, ('train', 'val'))
    check_work_dir_writable(cfg.work_dir)
    with explain_download_errors(cfg):
        try:
            build_runner(cfg).train()
        except (CheckpointWriteError, CheckpointMismatchError, CorruptCheckpointError) as e:
            raise SystemExit(f'tools/train.py: {e}') from e


if __name__ == '__main__':
    main()
