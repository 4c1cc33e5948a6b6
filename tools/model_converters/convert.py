"""Convert an official checkpoint to mmconvarch keys (one CLI, all families).

    python tools/model_converters/convert.py FAMILY SRC DST [--ema]

DST holds ``{'state_dict': {'backbone.*': ..., 'head.fc.*': ...}}`` and loads
with ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
A checkpoint of another family is refused with its missing/unexpected keys.
"""
import argparse
import os.path as osp
import sys


sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def main(argv=None) -> None:
    from mmconvarch.checkpoint.converters import CONVERTERS, convert_checkpoint, save_converted
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('family', choices=sorted(CONVERTERS))
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='output path')
    parser.add_argument('--ema', action='store_true',
                        help='take the EMA weights (state_dict_ema/model_ema)')
    args = parser.parse_args(argv)
    from mmconvarch.checkpoint import load_checkpoint_file  # safe: allow-list only
    checkpoint = load_checkpoint_file(args.src, map_location='cpu')
    try:
        state_dict, backbone_cfg = convert_checkpoint(
            checkpoint, args.family, ema=args.ema)
    except (KeyError, ValueError) as e:
        raise SystemExit(f'{args.src}: {e}')
    save_converted(state_dict, backbone_cfg, args.dst, source=args.src)
    print(f'{len(state_dict)} tensors -> {args.dst}; backbone: '
          f'{backbone_cfg}')


if __name__ == '__main__':
    main()
