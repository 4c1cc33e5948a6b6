"""The one registration point of mmconvarch.

``@MODELS.register_module()`` (and the same on ``HOOKS`` and
``OPTIM_WRAPPER_CONSTRUCTORS``) is the only way our classes are registered,
and it registers each class twice, at class definition:

* in our registry, a child of mmengine's root with scope ``mmconvarch``, so
  ``type='mmconvarch.X'`` resolves from the mmdet, mmseg and mmpretrain
  scopes without any import (mmengine imports ``mmconvarch.registry`` on
  seeing the prefix, whose ``locations`` import our modules);
* in mmengine's root registry, so a plain ``type='X'`` resolves from any
  scope once ``mmconvarch`` is imported (``custom_imports=dict(imports=
  ['mmconvarch'])``): mmengine's ``Registry.get`` looks a plain name up in
  the current scope's registry and then its parents, up to the root, but
  never in sibling scopes. A name the root already holds for another class
  is left to that class (with a warning); ``mmconvarch.X`` still reaches ours.

This is the registration ``import mmconvarch`` does, and all it does.
"""
import warnings
from typing import Optional, Union

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry


class PluginRegistry(Registry):
    """A child registry of scope ``mmconvarch`` whose ``register_module``
    also registers the class in the parent (mmengine's root), see the module
    docstring."""

    def register_module(self, name: Optional[Union[str, list]] = None,
                        force: bool = False, module: Optional[type] = None):
        if module is None:  # used as a decorator
            def register(cls: type) -> type:
                self.register_module(name=name, force=force, module=cls)
                return cls
            return register
        super().register_module(name=name, force=force, module=module)
        names = [module.__name__] if name is None else (
            [name] if isinstance(name, str) else list(name))
        for key in names:
            existing = self.parent.module_dict.get(key)
            if existing is module:
                continue
            if existing is not None:
                warnings.warn(
                    f'{self.parent.name} registry of mmengine already has {key!r} '
                    f'({existing.__module__}); use type="mmconvarch.{key}" '
                    'to get the mmconvarch one.')
                continue
            self.parent.register_module(name=key, module=module)
        return module


MODELS = PluginRegistry(
    'model', parent=MMENGINE_MODELS, scope='mmconvarch',
    locations=['mmconvarch.models'])
HOOKS = PluginRegistry(
    'hook', parent=MMENGINE_HOOKS, scope='mmconvarch',
    locations=['mmconvarch.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = PluginRegistry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope='mmconvarch',
    locations=['mmconvarch.engine'])
