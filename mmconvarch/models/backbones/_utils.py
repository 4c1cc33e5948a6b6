"""Deprecated private alias of :mod:`mmconvarch.models.backbones.base` (the
backbones' shared pieces); import from ``base``."""
from .base import (FrozenStagesMixin, OfficialCheckpointMixin,  # noqa: F401
                   check_frozen_stages, check_input_size, convnext_layer_depth,
                   freeze_modules, normalize_out_indices, resolve_arch,
                   resolve_gap_before_final_norm)
