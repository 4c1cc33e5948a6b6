"""The memory layout a backbone's feature maps run in, chosen per device.

VanillaNet, SLaK and RevCol take ``memory_format``:

- ``'auto'`` (the default): the layout in :data:`MEMORY_FORMAT_POLICY` for
  the family and the device type of the input, looked up on the first
  forward on that device type and cached;
- ``'channels_last'`` or ``'contiguous'`` (NCHW): that layout everywhere.

Whatever the layout, outputs and gradients are the same (tested); VanillaNet
and RevCol return NCHW-contiguous outputs. ``docs/gpu.md`` gives the
measurement behind each entry of the table and the command that repeats it.
"""
from typing import Dict

import torch

__all__ = ['MEMORY_FORMAT_POLICY', 'MEMORY_FORMATS', 'MemoryFormatPolicy']

LAYOUTS = {'channels_last': torch.channels_last,
           'contiguous': torch.contiguous_format}
MEMORY_FORMATS = ('auto', *LAYOUTS)

# family -> device type -> the layout that measured fastest there (docs/gpu.md).
# A device type not listed runs NCHW, torch's default layout.
MEMORY_FORMAT_POLICY: Dict[str, Dict[str, str]] = {
    'VanillaNet': {'cpu': 'channels_last', 'cuda': 'channels_last'},
    'SLaK': {'cpu': 'channels_last', 'cuda': 'contiguous'},
    'RevCol': {'cpu': 'channels_last', 'cuda': 'contiguous'},
}


class MemoryFormatPolicy:
    """A backbone's ``memory_format`` argument, resolved per device type.

    Args:
        memory_format (str): ``'auto'``, ``'channels_last'`` or
            ``'contiguous'``.
        family (str): The backbone family, a key of
            :data:`MEMORY_FORMAT_POLICY` (and the name in error messages).

    Calling it with a device returns the ``torch.memory_format`` to run in;
    the choice is made once per device type and cached.
    """

    def __init__(self, memory_format: str, family: str) -> None:
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(f'{family} memory_format must be one of '
                             f'{list(MEMORY_FORMATS)}, got {memory_format!r}.')
        if family not in MEMORY_FORMAT_POLICY:
            raise KeyError(f'No memory-format policy for {family!r}; known: '
                           f'{sorted(MEMORY_FORMAT_POLICY)}.')
        self.name = memory_format
        self.family = family
        self._chosen: Dict[str, torch.memory_format] = {}

    def layout_name(self, device_type: str) -> str:
        """``'channels_last'`` or ``'contiguous'`` on ``device_type``."""
        if self.name != 'auto':
            return self.name
        return MEMORY_FORMAT_POLICY[self.family].get(device_type, 'contiguous')

    def __call__(self, device: torch.device) -> torch.memory_format:
        chosen = self._chosen.get(device.type)
        if chosen is None:
            chosen = self._chosen[device.type] = LAYOUTS[self.layout_name(device.type)]
        return chosen

    def __repr__(self) -> str:
        return f'MemoryFormatPolicy({self.name!r}, {self.family!r})'
