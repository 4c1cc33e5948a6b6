"""mmconvarch: RevCol, ConvNeXt V2, SLaK and VanillaNet for OpenMMLab 2.x.

``import mmconvarch`` registers every module (see :mod:`mmconvarch.registry`)
and every official checkpoint layout (see :mod:`mmconvarch.checkpoint_layouts`),
puts our named models in mmpretrain's model hub (see :mod:`mmconvarch.model_zoo`),
fixes checkpoint loading on torch>=2.6 (see :mod:`mmconvarch.compat`), and lets
whole models with our backbones load official checkpoints
(:func:`~mmconvarch.models.backbones._utils.load_official_checkpoints_into_models`).
"""
from . import converters, engine, models  # noqa: F401  (registers everything)
from .compat import patch_checkpoint_loading
from .model_zoo import hook_into_model_hub
from .models.backbones._utils import load_official_checkpoints_into_models
from .registry import export_to_root

__version__ = '0.1.0'

patch_checkpoint_loading()
export_to_root()
hook_into_model_hub()
load_official_checkpoints_into_models()
