"""Everything about checkpoint files, in one place.

* :mod:`.safe_load`: loading files and URLs with ``weights_only=True`` and an
  allow-list; :func:`enable_safe_checkpoint_loading` makes mmengine use it
  (an explicit opt-in, called by our tools, never by ``import mmconvarch``).
* :mod:`.layouts`: the registry of official key layouts and
  :func:`find_weights`, the one way to find the weights in a checkpoint.
* :mod:`.converters`: official checkpoint -> our keys, one module per family
  (``tools/model_converters/convert.py``); imported by ``import mmconvarch``
  so every family is registered in :mod:`.layouts`.
* :mod:`.pretrained`: the strict Pretrained load of our backbones
  (:class:`OfficialCheckpointMixin`) and whole models loading official
  checkpoints (:func:`load_official_checkpoints`).

``models`` imports :mod:`.layouts` and :mod:`.pretrained`, never
:mod:`.converters` (``tests/test_structure.py``), so this package's
``__init__`` does not import the converters either.
"""
from .layouts import find_weights, guess_family, known_families, register_converter
from .pretrained import (OfficialCheckpointMixin, check_pretrained_keys,
                         load_official_checkpoints)
from .safe_load import (TRUST_ENV, CorruptCheckpointError, UntrustedCheckpointError,
                        allowed_globals, checkpoint_problem,
                        disable_safe_checkpoint_loading, enable_safe_checkpoint_loading,
                        load_checkpoint_file, load_url, safe_checkpoint_loading,
                        safe_checkpoint_loading_enabled, trust_checkpoint, trusted_by)

__all__ = [
    'TRUST_ENV', 'CorruptCheckpointError', 'OfficialCheckpointMixin',
    'UntrustedCheckpointError', 'allowed_globals',
    'check_pretrained_keys', 'checkpoint_problem', 'disable_safe_checkpoint_loading',
    'enable_safe_checkpoint_loading', 'find_weights', 'guess_family', 'known_families',
    'load_checkpoint_file', 'load_official_checkpoints', 'load_url', 'register_converter',
    'safe_checkpoint_loading', 'safe_checkpoint_loading_enabled', 'trust_checkpoint',
    'trusted_by'
]
