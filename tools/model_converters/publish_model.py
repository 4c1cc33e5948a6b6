"""Make a trained checkpoint publishable, as mmdet's and mmseg's
tools/model_converters/publish_model.py: keep only the weights and meta
(drops the optimizer, schedulers and message hub), save, and add the first 8
hex digits of the file's sha256 to its name (OpenMMLab's
``name-1a2b3c4d.pth`` convention, which ``torch.hub`` checks on download).

    python tools/model_converters/publish_model.py IN_FILE OUT_FILE
        [--save-keys meta state_dict]

Writes ``OUT_FILE`` minus ``.pth`` plus ``-<sha256[:8]>.pth`` and prints it.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Process a checkpoint to be '
                                     'published')
    parser.add_argument('in_file', help='trained checkpoint')
    parser.add_argument('out_file', help='output name (the hash is added)')
    parser.add_argument('--save-keys', nargs='+', default=['meta', 'state_dict'],
                        help='top-level keys to keep (default: meta state_dict)')
    return parser.parse_args(argv)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def publish(in_file: str, out_file: str, save_keys=('meta', 'state_dict')) -> str:
    """Write the stripped checkpoint; return its final (hashed) path."""
    import torch

    from mmconvarch.checkpoint import load_checkpoint_file  # weights_only + allow-list
    checkpoint = load_checkpoint_file(in_file, map_location='cpu')
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint)
        raise SystemExit(f'{in_file}: expected an mmengine checkpoint (a dict with '
                         f'state_dict), found {found}.')
    for key in save_keys:
        if key not in checkpoint:
            print(f'{key!r} (in --save-keys) is not in {in_file}')
    for key in sorted(set(checkpoint) - set(save_keys)):
        print(f'removing {key!r} (not in --save-keys)')
    kept = {k: v for k, v in checkpoint.items() if k in save_keys}
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    tmp = stem + '.publishing.pth'
    torch.save(kept, tmp)
    final = f'{stem}-{sha256_of(tmp)[:8]}.pth'
    os.replace(tmp, final)
    return final


def main(argv=None) -> str:
    args = parse_args(argv)
    final = publish(args.in_file, args.out_file, args.save_keys)
    print(f'published checkpoint: {final}')
    return final


if __name__ == '__main__':
    main()
