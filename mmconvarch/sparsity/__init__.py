"""SLaK's dynamic sparsity, plain torch (no runner): layer densities (ERK,
SNIP, uniform), masks, magnitude prune + random/gradient/momentum regrow
with the official cosine prune-rate schedule, and compact sparse export.
:class:`mmconvarch.engine.hooks.SparseRegrowHook` drives it from a runner."""
from .density import (erk_densities, erk_raw_probabilities, snip_densities,
                      snip_scores, uniform_densities)
from .export import (compress_state_dict, compress_tensor,
                     decompress_state_dict, decompress_tensor, sparse_export,
                     sparse_load)
from .masking import SparseMasking, check_masking_args, cosine_prune_rate

__all__ = [
    'erk_densities', 'erk_raw_probabilities', 'snip_densities', 'snip_scores',
    'uniform_densities', 'compress_state_dict', 'compress_tensor',
    'decompress_state_dict', 'decompress_tensor', 'sparse_export',
    'sparse_load', 'SparseMasking', 'check_masking_args', 'cosine_prune_rate'
]
