"""Heads and classifiers; modules list their classes in ``__all__``."""
from mmconvarch.utils.optional import import_families

__all__ = import_families(__name__, {
    'classifier': ('mmpretrain.models', ),
    'revcol_inter_supv': ('mmpretrain.models', ),
    'vanillanet_head': ('mmpretrain.models', ),
}, globals())
