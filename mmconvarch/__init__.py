"""mmconvarch: RevCol, ConvNeXt V2, SLaK and VanillaNet for OpenMMLab 2.x.

``import mmconvarch`` registers every module (see :mod:`mmconvarch.registry`)
and every official checkpoint layout (see :mod:`mmconvarch.checkpoint`), and
changes nothing else in the process. What does change the process is an
explicit call:

* :func:`enable_safe_checkpoint_loading` makes mmengine load checkpoints with
  ``weights_only=True`` and an allow-list (resume works on torch>=2.6; a
  pickle that would run code is refused). Our tools call it.
* :func:`mmconvarch.model_zoo.register_models` puts our named models in
  mmpretrain's model hub (``mmpretrain.get_model(name)``).
"""
from . import engine, models  # noqa: F401  (registers everything)
from .checkpoint import converters  # noqa: F401  (registers every official layout)
from .checkpoint.safe_load import enable_safe_checkpoint_loading

__version__ = '0.1.0'

__all__ = ['enable_safe_checkpoint_loading', '__version__']
