"""Compact storage of sparse weights: only the non-zeros and their indices.

Each tensor is stored in the smallest of three forms, and loads back
bit-exactly:

- ``dense``: the tensor itself (when sparse storage would not be smaller);
- ``coo``: non-zero values + their flat indices (int32 when they fit);
- ``bitmap``: non-zero values + a packed 1-bit occupancy map (best between
  about 3% and 97% density for fp32, e.g. SLaK's 60%).
"""
import io
from typing import Dict, Tuple

import torch

FORMAT = 'mmconvarch.sparse.v1'
_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Flat bool -> uint8, 8 entries per byte (big-endian, as numpy)."""
    flat = mask.flatten().to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return (flat.view(-1, 8) * _BIT_WEIGHTS).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, numel: int) -> torch.Tensor:
    bits = packed.view(-1, 1).bitwise_and(_BIT_WEIGHTS).ne(0)
    return bits.flatten()[:numel]


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def compress_tensor(tensor: torch.Tensor) -> dict:
    """The smallest exact encoding of one tensor (see module doc)."""
    tensor = tensor.detach().cpu()
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return dict(kind='dense', data=tensor)
    flat = tensor.flatten()
    nonzero = flat != 0
    values = flat[nonzero].clone()
    nnz = values.numel()
    index_dtype = torch.int32 if flat.numel() < 2**31 else torch.int64
    coo_bytes = _nbytes(values) + nnz * torch.empty(
        0, dtype=index_dtype).element_size()
    bitmap_bytes = _nbytes(values) + (flat.numel() + 7) // 8
    dense_bytes = _nbytes(tensor)
    if min(coo_bytes, bitmap_bytes) >= dense_bytes:
        return dict(kind='dense', data=tensor)
    common = dict(shape=tuple(tensor.shape), dtype=tensor.dtype,
                  values=values)
    if coo_bytes < bitmap_bytes:
        return dict(kind='coo', indices=nonzero.nonzero().flatten().to(
            index_dtype), **common)
    return dict(kind='bitmap', bitmap=pack_bits(nonzero), **common)


def decompress_tensor(entry: dict) -> torch.Tensor:
    kind = entry['kind']
    if kind == 'dense':
        return entry['data']
    numel = 1
    for s in entry['shape']:
        numel *= s
    out = torch.zeros(numel, dtype=entry['dtype'])
    if kind == 'coo':
        out[entry['indices'].long()] = entry['values']
    elif kind == 'bitmap':
        out[unpack_bits(entry['bitmap'], numel)] = entry['values']
    else:
        raise ValueError(f'unknown sparse entry kind {kind!r}')
    return out.view(entry['shape'])


def compress_state_dict(state_dict: Dict[str, torch.Tensor]) -> dict:
    """``{'format', 'tensors': {name: entry}}`` for every tensor."""
    return dict(format=FORMAT, tensors={
        k: compress_tensor(v) for k, v in state_dict.items()
        if torch.is_tensor(v)})


def decompress_state_dict(packed: dict) -> Dict[str, torch.Tensor]:
    if packed.get('format') != FORMAT:
        raise ValueError(f'not a {FORMAT} file (format='
                         f'{packed.get("format")!r}).')
    return {k: decompress_tensor(e) for k, e in packed['tensors'].items()}


def serialized_size(obj) -> int:
    """Bytes of ``torch.save(obj)``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.tell()


def sparse_export(state_dict: Dict[str, torch.Tensor],
                  path: str) -> Tuple[int, int]:
    """Save ``state_dict`` compressed; returns (dense bytes, sparse bytes)
    of the serialized files."""
    packed = compress_state_dict(state_dict)
    torch.save(packed, path)
    dense = serialized_size({k: v.detach().cpu() for k, v in
                             state_dict.items() if torch.is_tensor(v)})
    return dense, serialized_size(packed)


def sparse_load(path: str) -> Dict[str, torch.Tensor]:
    """Load a file written by :func:`sparse_export` (dense tensors)."""
    return decompress_state_dict(torch.load(path, map_location='cpu',
                                            weights_only=True))
