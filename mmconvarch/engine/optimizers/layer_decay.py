"""One layer-wise lr decay constructor for classifiers, detectors, segmentors."""
from collections import defaultdict
from typing import Callable, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor

from mmconvarch.registry import OPTIM_WRAPPER_CONSTRUCTORS


def find_layer_depth_fn(model: nn.Module) -> Callable[[str], Tuple[int, int]]:
    """Return ``name -> (layer_id, num_layers)`` for every parameter of model.

    Uses ``model.backbone.get_layer_depth(name, 'backbone.')`` (detectors,
    segmentors, mmpretrain classifiers) or ``model.get_layer_depth(name)``.
    """
    backbone = getattr(model, 'backbone', None)
    if backbone is not None and hasattr(backbone, 'get_layer_depth'):
        return lambda name: backbone.get_layer_depth(name, 'backbone.')
    if hasattr(model, 'get_layer_depth'):
        return model.get_layer_depth
    raise TypeError(
        f'LayerDecayOptimWrapperConstructor needs a backbone with '
        f'get_layer_depth(param_name, prefix); {type(model).__name__} has '
        f'backbone {type(backbone).__name__ if backbone is not None else None}'
        ' without it. Every mmconvarch backbone (and mmpretrain ConvNeXt, '
        'ViT...) implements it.')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay driven by the backbone's ``get_layer_depth``.

    A parameter at layer ``i`` of ``n`` gets
    ``lr = base_lr * layer_decay_rate ** (n - i - 1)``; parameters outside the
    backbone (neck, heads) get scale 1. Unlike mmdet/mmseg's
    ``LearningRateDecayOptimizerConstructor`` it works for any backbone, and
    unlike mmpretrain's it works for detectors and segmentors.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float): decay per layer. Defaults to 1 (none).
    - ``bias_decay_mult`` (float): weight-decay multiplier of ``*.bias``.
      Defaults to 0 (the ConvNeXt/RevCol/timm rule).
    - ``flat_decay_mult`` (float): weight-decay multiplier of other 1-D
      parameters (norms, GRN gamma/beta, layer scales). Defaults to 0.
    - ``custom_keys`` (dict): ``{substring: dict(lr_mult=, decay_mult=)}``.
      EVERY key contained in a parameter's name applies, multiplying the
      layer-decay lr scale and the decay multiplier above. (mmengine lets only
      the longest key win, so an inherited ``'backbone'`` key would silently
      hide a family's ``'.alpha'`` key.)

    The defaults apply without any ``paramwise_cfg`` too (mmengine's
    constructor skips ``add_params`` when ``paramwise_cfg`` is empty).
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        paramwise_cfg.setdefault('layer_decay_rate', 1.0)  # never empty
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '', **kwargs) -> None:
        if is_model_wrapper(module):
            module = module.module
        depth_of = find_layer_depth_fn(module)
        cfg = self.paramwise_cfg
        unknown = set(cfg) - {'layer_decay_rate', 'bias_decay_mult',
                              'flat_decay_mult', 'custom_keys'}
        if unknown:
            raise KeyError(
                f'Unknown paramwise_cfg keys {sorted(unknown)} for '
                'LayerDecayOptimWrapperConstructor; valid keys are '
                'layer_decay_rate, bias_decay_mult, flat_decay_mult, '
                'custom_keys.')
        rate = cfg.get('layer_decay_rate', 1.0)
        bias_mult = cfg.get('bias_decay_mult', 0.)
        flat_mult = cfg.get('flat_decay_mult', 0.)
        custom_keys = cfg.get('custom_keys', {})

        groups = defaultdict(list)
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, num_layers = depth_of(name)
            lr_scale = rate**(num_layers - layer_id - 1)
            if name.endswith('.bias'):
                decay_mult = bias_mult
            elif param.ndim <= 1:
                decay_mult = flat_mult
            else:
                decay_mult = 1.
            for key, mults in custom_keys.items():
                if key in name:
                    lr_scale *= mults.get('lr_mult', 1.)
                    decay_mult *= mults.get('decay_mult', 1.)
            groups[(layer_id, lr_scale, decay_mult)].append((name, param))

        logger = MMLogger.get_current_instance()
        for (layer_id, lr_scale, decay_mult), named in sorted(
                groups.items(), key=lambda kv: kv[0][:2]):
            group = dict(params=[p for _, p in named], layer_id=layer_id,
                         lr_scale=lr_scale,
                         param_names=[n for n, _ in named])
            if self.base_lr is not None:
                group['lr'] = self.base_lr * lr_scale
            if self.base_wd is not None:
                group['weight_decay'] = self.base_wd * decay_mult
            params.append(group)
            logger.debug(f'layer {layer_id}: lr_scale={lr_scale:.4g}, '
                         f'decay_mult={decay_mult:g}, {len(named)} params')
