"""Import our modules whose third-party dependency may be missing."""
import importlib
import warnings
from typing import Dict, List, Sequence


def _importable(package: str) -> bool:
    try:
        importlib.import_module(package)
    except Exception as e:  # mmdet/mmseg raise AssertionError on mmcv mismatch
        warnings.warn(f'mmconvarch: cannot import {package} ({e!r})')
        return False
    return True


def import_families(package: str, families: Dict[str, Sequence[str]],
                    namespace: dict) -> List[str]:
    """Import ``package.<module>`` for each module whose needed packages
    import, and put its ``__all__`` into ``namespace``. A module whose
    dependency fails is skipped with a warning (errors in our own code still
    raise). Returns the exported names."""
    exported = []
    for module, needs in families.items():
        if not all(_importable(p) for p in needs):
            warnings.warn(f'mmconvarch: {package}.{module} not registered.')
            continue
        mod = importlib.import_module(f'{package}.{module}')
        for name in mod.__all__:
            namespace[name] = getattr(mod, name)
            exported.append(name)
    return exported
