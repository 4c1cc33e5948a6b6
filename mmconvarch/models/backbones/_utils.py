"""Argument checks shared by every mmconvarch backbone: one clear error each."""
from typing import Dict, Sequence, Tuple, Union


def resolve_arch(arch: Union[str, dict], arch_zoo: Dict[str, dict],
                 required_keys: Sequence[str], family: str) -> dict:
    """Return the arch dict for ``arch`` (a zoo name or a dict)."""
    if isinstance(arch, str):
        key = arch.lower()
        if key not in arch_zoo:
            raise ValueError(
                f'Unknown {family} arch {arch!r}; valid archs are '
                f'{sorted(arch_zoo)} (or pass a dict with keys '
                f'{list(required_keys)}).')
        return dict(arch_zoo[key])
    if isinstance(arch, dict):
        missing = [k for k in required_keys if k not in arch]
        if missing:
            raise ValueError(f'{family} arch dict lacks keys {missing}; it '
                             f'needs {list(required_keys)}, got {list(arch)}.')
        return dict(arch)
    raise TypeError(f'{family} arch must be a str or a dict, '
                    f'got {type(arch).__name__}.')


def normalize_out_indices(out_indices: Union[int, Sequence[int]],
                          num_stages: int, family: str) -> Tuple[int, ...]:
    """Turn ``out_indices`` into sorted non-negative stage indices.

    Negative indices count from the end, as in mmpretrain.
    """
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    if not isinstance(out_indices, Sequence) or not out_indices:
        raise TypeError(f'{family} out_indices must be an int or a non-empty '
                        f'sequence of ints, got {out_indices!r}.')
    result = []
    for index in out_indices:
        if not isinstance(index, int) or not -num_stages <= index < num_stages:
            raise ValueError(
                f'{family} out_indices {list(out_indices)} has {index!r}; '
                f'valid indices are 0..{num_stages - 1} (or '
                f'-{num_stages}..-1 counted from the end).')
        result.append(index % num_stages)
    if len(set(result)) != len(result):
        raise ValueError(f'{family} out_indices {list(out_indices)} repeats '
                         'a stage.')
    return tuple(sorted(result))


def check_frozen_stages(frozen_stages: int, num_stages: int,
                        family: str) -> int:
    if not isinstance(frozen_stages, int) or not \
            -1 <= frozen_stages <= num_stages:
        raise ValueError(f'{family} frozen_stages={frozen_stages!r} is out of '
                         f'range; valid values are -1..{num_stages} '
                         '(-1 or 0 freezes nothing).')
    return frozen_stages


class OfficialCheckpointMixin:
    """Lets ``init_cfg=dict(type='Pretrained', checkpoint=...)`` take an
    official checkpoint of the family (converted on the fly at load time).
    Set ``official_family`` to the converter's name."""

    official_family: str = ''

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix == '':
            from mmconvarch.converters import convert_official_in_place
            convert_official_in_place(state_dict, self.official_family)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
