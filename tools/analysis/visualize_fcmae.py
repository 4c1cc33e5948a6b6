"""Show what an FCMAE model reconstructs: one row per image with the input,
the masked input, the reconstruction, and the reconstruction pasted into the
masked patches of the input.

    python tools/analysis/visualize_fcmae.py CONFIG [CHECKPOINT] \\
        --images a.jpg b.jpg --out grid.png [--size 224] [--seed 0]

With ``norm_pix`` (the FCMAE default) the model predicts each patch
normalised; for display each predicted patch is mapped back with the mean
and std of the true patch (as the MAE/FCMAE demos do).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

COLUMNS = ('input', 'masked', 'reconstruction', 'recon. + visible')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='FCMAE config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='FCMAE checkpoint (random weights without)')
    parser.add_argument('--images', nargs='+', required=True,
                        help='image files')
    parser.add_argument('--out', default='fcmae_grid.png', help='PNG path')
    parser.add_argument('--size', type=int, default=224,
                        help='images are resized to size x size (a multiple '
                        'of the 32-pixel patch)')
    parser.add_argument('--mask-ratio', type=float, default=None,
                        help='override the model mask ratio')
    parser.add_argument('--seed', type=int, default=0, help='mask seed')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def build_model(config: str, checkpoint: Optional[str], device: str = 'cpu'):
    import mmconvarch
    mmconvarch.enable_safe_checkpoint_loading()  # runner checkpoints on torch>=2.6, safely
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if cfg.get('data_preprocessor'):
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'reconstruct'):
        raise SystemExit(f'{config}: {type(model).__name__} has no '
                         'reconstruct(); this tool is for FCMAE configs.')
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    else:
        model.init_weights()
    return model.to(device).eval()


def load_images(paths: Sequence[str], size: int) -> torch.Tensor:
    """(N, 3, size, size) uint8 BGR, as LoadImageFromFile + Resize give."""
    import mmcv
    images = []
    for path in paths:
        img = mmcv.imread(path)
        if img is None:
            raise SystemExit(f'cannot read image {path!r}')
        img = mmcv.imresize(img, (size, size), interpolation='bicubic')
        images.append(torch.from_numpy(img).permute(2, 0, 1))
    return torch.stack(images)


def make_grid(model, images: torch.Tensor, seed: int = 0) -> np.ndarray:
    """RGB uint8 grid: rows = images, columns = :data:`COLUMNS`."""
    pre = model.data_preprocessor
    inputs = pre(dict(inputs=images, data_samples=None))['inputs']
    generator = torch.Generator(device=inputs.device).manual_seed(seed)
    mask = model.gen_random_mask(inputs, generator)
    recon, pixel_mask = model.reconstruct(inputs, mask)

    def to_rgb_uint8(x: torch.Tensor) -> torch.Tensor:
        if getattr(pre, '_enable_normalize', False):
            x = x * pre.std + pre.mean
        if getattr(pre, '_channel_conversion', False):  # model saw RGB
            return x.clamp(0, 255).round().byte()
        return x.flip(1).clamp(0, 255).round().byte()  # BGR -> RGB

    original = to_rgb_uint8(inputs)
    gray = torch.full_like(original, 128)
    masked = torch.where(pixel_mask.bool(), gray, original)
    recon = to_rgb_uint8(recon)
    pasted = torch.where(pixel_mask.bool(), recon, original)
    rows = [torch.cat(list(cols), dim=2)  # (3, H, 4W)
            for cols in zip(original, masked, recon, pasted)]
    return torch.cat(rows, dim=1).permute(1, 2, 0).cpu().numpy()


def save_grid(grid: np.ndarray, path: str, size: int,
              titles: Sequence[str] = COLUMNS) -> None:
    from PIL import Image, ImageDraw
    header = 16
    canvas = Image.new('RGB', (grid.shape[1], grid.shape[0] + header),
                       'white')
    canvas.paste(Image.fromarray(grid), (0, header))
    draw = ImageDraw.Draw(canvas)
    for i, title in enumerate(titles):
        draw.text((i * size + 3, 2), title, fill='black')
    canvas.save(path)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    if args.size % 32:
        raise SystemExit(f'--size {args.size} is not a multiple of 32.')
    model = build_model(args.config, args.checkpoint, args.device)
    if args.mask_ratio is not None:
        model.mask_ratio = args.mask_ratio
    images = load_images(args.images, args.size).to(args.device)
    grid = make_grid(model, images, args.seed)
    save_grid(grid, args.out, args.size)
    print(f'{len(args.images)} images -> {args.out}')
    return args.out


if __name__ == '__main__':
    main()
