"""Backbones, one file per family; each module lists its classes in
``__all__``. A family whose dependency cannot be imported (mmpretrain for
ConvNeXt V2, RevCol and SLaK) is skipped with a warning, not an import error."""
from mmconvarch.utils.optional import import_families

__all__ = import_families(__name__, {
    'convnextv2': ('mmpretrain.models', ),
    'revcol': ('mmpretrain.models', ),
    'slak': ('mmpretrain.models', ),
    'vanillanet': (),
}, globals())
