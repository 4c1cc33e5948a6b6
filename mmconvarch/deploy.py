"""One deploy protocol: any module with ``switch_to_deploy()`` is converted
(re-parameterised) in place by :func:`switch_to_deploy`."""
import inspect
from typing import List

import torch.nn as nn


def switch_to_deploy(model: nn.Module, force: bool = False) -> List[str]:
    """Call ``switch_to_deploy()`` on the outermost modules that have it.

    Args:
        model: The model (or backbone) to convert in place.
        force: Passed to implementations that refuse to fuse when fusion
            would change outputs (e.g. VanillaNet before its activation
            annealing finished).

    Returns:
        The names of the converted modules (``''`` is ``model`` itself).
    """
    converted = []

    def visit(name: str, module: nn.Module) -> None:
        fn = getattr(module, 'switch_to_deploy', None)
        if callable(fn):
            if 'force' in inspect.signature(fn).parameters:
                fn(force=force)
            else:
                fn()
            converted.append(name)
            return
        for child_name, child in module.named_children():
            visit(f'{name}.{child_name}' if name else child_name, child)

    visit('', model)
    if not converted:
        raise ValueError(f'{type(model).__name__} has no module with '
                         'switch_to_deploy(); nothing to convert.')
    return converted
