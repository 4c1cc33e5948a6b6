"""Compatibility fixes for the pinned stack on recent torch.

torch>=2.6 defaults ``torch.load(weights_only=True)``; mmengine 0.10.7 loads
local checkpoints without the argument, so resuming fails on the
``HistoryBuffer``/numpy objects its own checkpoints hold. mmengine fixed this
after 0.10.7 (#1670, unreleased); we re-register the local loader the same
way. Checkpoints are trusted input here, as they were before torch 2.6.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def _load_from_local(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def patch_checkpoint_loading() -> None:
    """Make mmengine's local checkpoint loader pass ``weights_only=False``."""
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local,
                                     force=True)
