"""FLOPs and parameters of a config's model (or its backbone) via
``mmengine.analysis``, on a dummy input of the given shape.

    python tools/analysis/get_flops.py CONFIG [--shape H W] [--backbone-only]
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Count FLOPs and params')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=[224, 224],
                        help='input H W (one value means square)')
    parser.add_argument('--backbone-only', action='store_true',
                        help='count the backbone alone')
    parser.add_argument('--cfg-options', nargs='+', default=None,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def count(config: str, shape, backbone_only: bool = False,
          cfg_options=None) -> dict:
    """Return ``dict(flops=, params=, table=)`` for the config's model."""
    import mmconvarch  # noqa: F401
    from mmengine.analysis import get_model_complexity_info
    from mmengine.config import Config, DictAction
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope

    cfg = Config.fromfile(config)
    if cfg_options:
        action = DictAction(option_strings=[], dest='cfg_options')
        ns = argparse.Namespace()
        action(None, ns, cfg_options)
        cfg.merge_from_dict(ns.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    if 'backbone' in cfg.model:
        cfg.model.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    if len(shape) == 1:
        shape = [shape[0], shape[0]]
    inputs = torch.randn(1, 3, *shape)
    if backbone_only:
        target = model.backbone
    else:  # the model's tensor path (no pre/post-processing)
        target = _TensorForward(model)
    with torch.no_grad():
        info = get_model_complexity_info(target, inputs=(inputs, ),
                                         show_table=True, show_arch=False)
    return dict(flops=info['flops'], params=info['params'],
                table=info['out_table'], shape=tuple(shape))


class _TensorForward(torch.nn.Module):

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def main(argv=None) -> None:
    args = parse_args(argv)
    result = count(args.config, args.shape, args.backbone_only,
                   args.cfg_options)
    print(result['table'])
    what = 'Backbone' if args.backbone_only else 'Model'
    print(f'{what} of {args.config}\nInput shape: {result["shape"]}\n'
          f'FLOPs: {result["flops"] / 1e9:.3f} G\n'
          f'Params: {result["params"] / 1e6:.3f} M')


if __name__ == '__main__':
    main()
