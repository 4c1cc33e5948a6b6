"""Training-mechanics hooks, one module per family; each lists its hooks in
``__all__``."""
import importlib

__all__ = []

for _module in ('activation_anneal', 'rng', 'sparse_regrow'):
    _mod = importlib.import_module(f'{__name__}.{_module}')
    for _name in _mod.__all__:
        globals()[_name] = getattr(_mod, _name)
        __all__.append(_name)
