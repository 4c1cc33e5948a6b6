"""Store a sparse checkpoint compactly: only non-zero weights + indices.

    python tools/deploy/sparse_export.py CHECKPOINT OUT      # compress
    python tools/deploy/sparse_export.py --to-dense OUT DENSE  # restore

Compress reads ``state_dict`` (mmengine), ``model`` (official SLaK) or the
dict itself, writes every tensor in its smallest exact form (dense, COO
values + int32 indices, or values + 1-bit map), loads the file back to check
it is bit-exact and prints the size ratio. ``--to-dense`` writes
``{'state_dict': ...}`` loadable by mmengine / ``init_cfg`` Pretrained.
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Sparse checkpoint export')
    parser.add_argument('src', help='checkpoint (or sparse file with '
                        '--to-dense)')
    parser.add_argument('out', help='output path')
    parser.add_argument('--to-dense', action='store_true',
                        help='turn a sparse file back into a dense '
                        'checkpoint')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmconvarch.sparsity import sparse_export, sparse_load
    if args.to_dense:
        state_dict = sparse_load(args.src)
        torch.save(dict(state_dict=state_dict), args.out)
        print(f'{len(state_dict)} tensors -> {args.out}')
        return
    from mmconvarch.checkpoint import find_weights, load_checkpoint_file
    checkpoint = load_checkpoint_file(args.src, map_location='cpu')  # safe: allow-list only
    state_dict = {k: v for k, v in find_weights(checkpoint).items() if torch.is_tensor(v)}
    if not state_dict:
        raise SystemExit(f'{args.src}: no tensors found.')
    dense_bytes, sparse_bytes = sparse_export(state_dict, args.out)
    back = sparse_load(args.out)
    bad = [k for k, v in state_dict.items()
           if k not in back or not torch.equal(back[k].to(v.device), v)]
    if bad:
        raise SystemExit(f'round trip differs for {bad[:5]}')
    floats = [v for v in state_dict.values() if v.is_floating_point()]
    nnz = sum(int((v != 0).sum()) for v in floats)
    total = sum(v.numel() for v in floats)
    print(f'{len(state_dict)} tensors, non-zero {nnz}/{total} '
          f'({nnz / max(total, 1):.1%}); dense {dense_bytes / 2**20:.2f} MiB'
          f' -> sparse {os.path.getsize(args.out) / 2**20:.2f} MiB; size '
          f'ratio {sparse_bytes / dense_bytes:.3f} (round trip exact)')


if __name__ == '__main__':
    main()
