"""The one registration point of mmconvarch.

Our registries are children of mmengine's roots with scope ``mmconvarch``, so
``type='mmconvarch.X'`` resolves from the mmdet, mmseg and mmpretrain scopes
(mmengine imports ``mmconvarch.registry`` on seeing the prefix).
:func:`export_to_root` also puts every class into mmengine's root registries,
so a plain ``type='X'`` resolves from any scope once ``mmconvarch`` has been
imported (e.g. through ``custom_imports=dict(imports=['mmconvarch'])``).
"""
import warnings

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmconvarch',
    locations=['mmconvarch.models'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmconvarch',
    locations=['mmconvarch.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope='mmconvarch',
    locations=['mmconvarch.engine'])

_CHILD_TO_ROOT = (
    (MODELS, MMENGINE_MODELS),
    (HOOKS, MMENGINE_HOOKS),
    (OPTIM_WRAPPER_CONSTRUCTORS, MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS),
)


def export_to_root() -> None:
    """Register every mmconvarch class in mmengine's root registries too.

    Idempotent. A name the root already holds for another class is left alone
    (with a warning): the prefixed ``mmconvarch.X`` still reaches ours.
    """
    for child, root in _CHILD_TO_ROOT:
        for name, cls in child.module_dict.items():
            existing = root.module_dict.get(name)
            if existing is cls:
                continue
            if existing is not None:
                warnings.warn(
                    f'{root.name} registry of mmengine already has {name!r} '
                    f'({existing.__module__}); use type="mmconvarch.{name}" '
                    'to get the mmconvarch one.')
                continue
            root.register_module(name=name, module=cls)
