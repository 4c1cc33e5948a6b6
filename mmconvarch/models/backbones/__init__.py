"""Backbones, one file per family; each module lists its classes in
``__all__``.

A family whose optional dependency cannot be imported (mmpretrain for
ConvNeXt V2) is skipped with a warning rather than breaking
``import mmconvarch``; errors in our own modules still raise.
"""
import importlib
import warnings

# module -> third-party packages it needs
_FAMILIES = {
    'convnextv2': ('mmpretrain.models', ),
    'revcol': ('mmpretrain.models', ),
}

__all__ = []


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except Exception as e:  # mmdet/mmseg raise AssertionError on mmcv mismatch
        warnings.warn(f'mmconvarch: cannot import {package} ({e!r})')
        return False
    return True


for _module, _needs in _FAMILIES.items():
    if not all(_importable(p) for p in _needs):
        warnings.warn(f'mmconvarch: backbones of {_module} not registered.')
        continue
    _mod = importlib.import_module(f'{__name__}.{_module}')
    for _name in _mod.__all__:
        globals()[_name] = getattr(_mod, _name)
        __all__.append(_name)
