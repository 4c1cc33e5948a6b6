"""Turn a trained checkpoint into its deploy (re-parameterised) form.

    python tools/deploy/convert_to_deploy.py CONFIG CHECKPOINT OUT [--force]

Build the deploy model later with the backbone's ``deploy=True`` (see the
printed hint) and load OUT as usual.
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Convert to deploy form')
    parser.add_argument('config', help='config file the checkpoint came from')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('out', help='where to save the deploy checkpoint')
    parser.add_argument('--force', action='store_true',
                        help='convert even where fusion changes outputs')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import mmconvarch
    mmconvarch.enable_safe_checkpoint_loading()  # runner checkpoints on torch>=2.6, safely
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint

    from mmconvarch.deploy import switch_to_deploy

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    if 'backbone' in cfg.model:
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.eval()
    names = switch_to_deploy(model, force=args.force)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(deploy=True, converted=names,
                              source=args.checkpoint)), args.out)
    print(f'converted {names} -> {args.out}\nBuild it with '
          '--cfg-options model.backbone.deploy=True')


if __name__ == '__main__':
    main()
