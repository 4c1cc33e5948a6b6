"""Print the whole config (every ``_base_`` merged), as mmdet's and mmseg's
tools/misc/print_config.py.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...]
        [--sample-data [ROOT]] [--save-path whole_config.py]

--sample-data shows the config as ``tools/train.py --sample-data`` runs it.
--save-path writes the merged config (.py, .json or .yml).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

SAVE_SUFFIXES = ('.py', '.json', '.yml', '.yaml')


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--save-path', help='also write the merged config here '
                        f'(suffix one of {", ".join(SAVE_SUFFIXES)})')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument(
        '--sample-data', nargs='?', const='data/sample', default=None,
        metavar='ROOT', help='apply the sample-set overrides of tools/train.py')
    args = parser.parse_args(argv)
    if args.save_path and osp.splitext(args.save_path)[1] not in SAVE_SUFFIXES:
        parser.error(f'--save-path must end in one of {SAVE_SUFFIXES}, got '
                     f'{args.save_path!r}')
    return args


def main(argv=None):
    args = parse_args(argv)
    import mmconvarch  # noqa: F401  (configs import it; registers our types)
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    if args.sample_data:
        from mmconvarch.utils.sample_data import apply_sample_data
        apply_sample_data(cfg, root=args.sample_data, cfg_options=args.cfg_options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path:
        os.makedirs(osp.dirname(osp.abspath(args.save_path)), exist_ok=True)
        cfg.dump(args.save_path)
        print(f'Config saved to {args.save_path}')
    return cfg


if __name__ == '__main__':
    main()
