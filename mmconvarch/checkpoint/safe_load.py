"""Safe checkpoint loading for the pinned stack on recent torch.

torch>=2.6 defaults ``torch.load(weights_only=True)``; mmengine 0.10.7 loads
local checkpoints without the argument, so resuming fails on the
``HistoryBuffer``/numpy objects its own checkpoints hold, and it downloads
URLs with ``torch.hub.load_state_dict_from_url``, whose default is
``weights_only=False`` (any pickle runs).

:func:`enable_safe_checkpoint_loading` (also ``mmconvarch.
enable_safe_checkpoint_loading``) makes mmengine load both through
:func:`load_checkpoint_file` / :func:`load_url`: ``weights_only=True`` plus an
allow-list of exactly the classes mmengine's own checkpoints and the official
repos' ones hold (:func:`allowed_globals`). Resume works; a pickle that would
run code is refused with :class:`UntrustedCheckpointError`. It changes
mmengine for the whole process (its local-file loader and
``mmengine.runner.checkpoint.load_url``), so nothing does it on import: our
tools (``tools/train.py``, ``tools/test.py`` and the other tools that load
checkpoints) call it first thing, and so can any script;
:func:`disable_safe_checkpoint_loading` puts mmengine's own loaders back and
:func:`safe_checkpoint_loading` does it for one ``with`` block.

A checkpoint you trust may load unrestricted (``weights_only=False``, with
one log line saying so): list the file, a directory above it or a URL
(prefix ending in ``/``) in the environment variable
``MMCONVARCH_TRUSTED_CHECKPOINTS`` (``os.pathsep``-separated, ``:`` on
Linux; works from any CLI), or call :func:`trust_checkpoint` in-process.
"""
import argparse
import contextlib
import logging
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union

import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'MMCONVARCH_TRUSTED_CHECKPOINTS'
_trusted: Set[str] = set()


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object outside :func:`allowed_globals`."""


class CorruptCheckpointError(RuntimeError):
    """A file that is not a complete checkpoint: empty, truncated, or not a
    checkpoint at all (see :func:`checkpoint_problem`)."""


def checkpoint_problem(path: str) -> Optional[str]:
    """What is wrong with the checkpoint file ``path``, or None when it looks
    like a complete torch checkpoint (a zip archive with ``data.pkl``, or a
    legacy non-zip torch file, which starts with a pickle). Reads only the
    first bytes and the zip directory at the end of the file, not the
    tensors: a truncated file (a crash or a full disk during the write, an
    interrupted copy) has no zip directory. The one diagnosis of every path
    that loads a checkpoint (:func:`load_checkpoint_file`, ``--resume``,
    ``tools/test.py``, ``load_from``)."""
    if not osp.lexists(path):
        return 'missing'
    if not osp.isfile(path):
        return 'not a file'
    try:
        size = os.path.getsize(path)
        if size == 0:
            return 'empty (0 bytes)'
        with open(path, 'rb') as f:
            head = f.read(64)
        if not head.startswith(b'PK'):
            if head[:1] == b'\x80' and 2 <= head[1] <= 5:
                return None  # a legacy (non-zip) torch file: a pickle
            text = None
            for cut in range(4):  # 64 bytes may end inside a UTF-8 character
                try:
                    text = head[:len(head) - cut].decode('utf-8')
                    break
                except UnicodeDecodeError:
                    pass
            if text and all(c.isprintable() or c.isspace() for c in text):
                return (f'a text file, not a torch checkpoint ({size} bytes, starts with '
                        f'{text[:40]!r})')
            return (f'not a torch checkpoint ({size} bytes, neither a zip archive nor a '
                    'pickle: random or foreign data)')
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        return (f'truncated ({size} bytes, a zip archive without its directory at the end: an '
                'interrupted write or copy)')
    except OSError as e:
        return f'unreadable ({e.strerror or e})'
    if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
        return 'a zip archive but not a torch checkpoint (no data.pkl in it)'
    return None


def _damaged_pickle(filename: str) -> Optional[str]:
    """Why the ``data.pkl`` record of the local zip checkpoint ``filename`` fails the zip's
    own integrity checks (header, CRC-32), or None (intact, a URL or not a zip)."""
    if '://' in filename or not zipfile.is_zipfile(filename):
        return None
    try:
        with zipfile.ZipFile(filename) as zf:
            for info in zf.infolist():
                if info.filename == 'data.pkl' or info.filename.endswith('/data.pkl'):
                    zf.read(info)  # checks the local header and the CRC-32
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return f'{type(e).__name__}: {e}'
    return None


def _check_complete(filename: str) -> None:
    problem = checkpoint_problem(filename)
    if problem is not None:
        raise CorruptCheckpointError(
            f'Cannot load the checkpoint {filename}: the file is {problem}.')


def trust_checkpoint(path: str) -> None:
    """Let ``path`` (a checkpoint file, a directory of them, or a URL or URL
    prefix ending in ``/``) load with ``weights_only=False`` in this process.
    Only for files you trust: unpickling them can run any code."""
    _trusted.add(_normalize(path))


def _normalize(entry: str) -> str:
    return entry if '://' in entry else osp.realpath(osp.expanduser(entry))


def trusted_by(filename: str) -> Optional[str]:
    """Why ``filename`` (a path or URL) is trusted, or None."""
    name = _normalize(filename)
    # split at os.pathsep, but not inside a URL's '://'
    listed = re.split(re.escape(os.pathsep) + '(?!//)', os.environ.get(TRUST_ENV, ''))
    env = [_normalize(e) for e in listed if e]
    for source, entries in ((TRUST_ENV, env), ('trust_checkpoint()', _trusted)):
        for entry in entries:
            if name == entry or name.startswith(
                    entry if entry.endswith(('/', os.sep)) else entry + os.sep):
                return source
    return None


_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(owner: type, name: str) -> Callable:
    """``builtins.getattr`` for unpickling, limited to what mmengine pickles
    with it: ``HistoryBuffer``'s statistics methods (its
    ``_statistics_methods`` holds them by reference)."""
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'GLOBAL builtins.getattr({owner!r}, {name!r}) is not allowed')


def allowed_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """What ``weights_only=True`` must also accept to load mmengine's and the
    official repos' checkpoints, found by saving them and loading them back
    (``torch.serialization.get_unsafe_globals_in_checkpoint``, see
    ``tests/test_checkpoint_safety.py``): mmengine's ``HistoryBuffer``
    (message hub scalars) with its statistics methods (``getattr`` limited to
    those), the numpy array/dtype/scalar reconstructors (numpy 1 and 2 names)
    and ``argparse.Namespace`` (the official repos' ``args`` entry). None of
    them runs code when unpickled."""
    import numpy as np
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    allowed: List[Union[Callable, Tuple[Callable, str]]] = [
        HistoryBuffer, (_history_buffer_method, 'builtins.getattr'),
        argparse.Namespace, np.ndarray, np.dtype]
    # dtype instances are rebuilt with __setstate__ on their own class
    # (numpy.dtypes.Float64DType ...)
    allowed += sorted({type(np.dtype(c)) for c in np.typecodes['All']}, key=str)
    # files written with numpy 1.x name numpy.core, with 2.x numpy._core
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    return allowed


def _refusal_reason(error: Exception) -> str:
    """The sentence of torch's weights_only error naming the refused object."""
    text = str(error).split('WeightsUnpickler error:')[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not
             line.strip().startswith(('Weights only load failed', '(1)', '(2)',
                                      'Check the documentation'))]
    reason = lines[0].split(' Please use')[0] if lines else str(error)[:300]
    return reason if reason.endswith('.') else reason + '.'


@contextlib.contextmanager
def _allow_listed(filename: str):
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is None:  # torch 2.4: no context manager
        torch.serialization.add_safe_globals(allowed_globals())
        context = contextlib.nullcontext()
    else:
        context = safe_globals(allowed_globals())
    try:
        with context:
            yield
    except pickle.UnpicklingError as e:
        damaged = _damaged_pickle(filename)
        if damaged is not None:  # not loaded either way: a damaged file, not an untrusted one
            raise CorruptCheckpointError(
                f'Cannot load the checkpoint {filename}: the file is damaged ({damaged}).'
            ) from None
        raise UntrustedCheckpointError(
            f'Refusing to load {filename}: {_refusal_reason(e)} mmconvarch loads '
            'checkpoints with torch.load(weights_only=True) and only the '
            'classes mmengine and official checkpoints hold '
            '(mmconvarch.checkpoint.allowed_globals); unpickling anything else '
            'could run code. If you trust this file, list it (or its '
            f'directory) in {TRUST_ENV}, e.g. {TRUST_ENV}={filename}, or call '
            f'mmconvarch.checkpoint.trust_checkpoint({filename!r}).') from None


def _trusted_log(filename: str, source: str) -> None:
    print_log(f'Loading {filename} with weights_only=False (any code it holds '
              f'runs): trusted by {source}.', logger='current',
              level=logging.WARNING)


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """``torch.load`` a local checkpoint safely (see the module docstring)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    _check_complete(filename)
    source = trusted_by(filename)
    try:
        if source:
            _trusted_log(filename, source)
            return torch.load(filename, map_location=map_location,
                              weights_only=False)
        with _allow_listed(filename):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except (EOFError, RuntimeError) as e:
        # complete-looking, but a record inside is damaged (a CUDA map_location on a machine
        # without one, and other RuntimeErrors, pass unchanged)
        if isinstance(e, RuntimeError) and not any(
                word in str(e) for word in ('PytorchStreamReader', 'miniz', 'zip archive')):
            raise
        raise CorruptCheckpointError(
            f'Cannot load the checkpoint {filename}: the file is damaged '
            f'({type(e).__name__}: {str(e)[:200]}).') from None


def load_url(url: str, model_dir: Optional[str] = None, map_location: Any = None,
             **kwargs) -> Any:
    """``torch.hub.load_state_dict_from_url`` (mmengine's ``load_url``),
    loading the download safely (see the module docstring)."""
    kwargs.pop('weights_only', None)
    source = trusted_by(url)
    if source:
        _trusted_log(url, source)
        return torch.hub.load_state_dict_from_url(
            url, model_dir=model_dir, map_location=map_location,
            weights_only=False, **kwargs)
    with _allow_listed(url):
        return torch.hub.load_state_dict_from_url(
            url, model_dir=model_dir, map_location=map_location,
            weights_only=True, **kwargs)


def _load_from_local(filename: str, map_location: Any = None) -> Any:
    return load_checkpoint_file(filename, map_location)


# mmengine's own loaders, saved by the first enable_safe_checkpoint_loading()
_MMENGINE_LOADERS: Dict[str, Callable] = {}


def safe_checkpoint_loading_enabled() -> bool:
    """Whether mmengine loads checkpoints through this module right now."""
    return (CheckpointLoader._schemes.get('') is _load_from_local
            and mmengine_checkpoint.load_url is load_url)


def enable_safe_checkpoint_loading() -> None:
    """Make mmengine load every local and URL checkpoint of this process
    safely: ``weights_only=True`` plus :func:`allowed_globals`, trusted files
    unrestricted (see the module docstring).

    Replaces mmengine's local-file scheme loader (``CheckpointLoader``'s
    ``''`` prefix, through its public ``register_scheme``) and
    ``mmengine.runner.checkpoint.load_url`` (behind ``http(s)://``,
    ``torchvision://``, ``open-mmlab://``, ``mmcls://``). Idempotent; undone
    by :func:`disable_safe_checkpoint_loading`. ``import mmconvarch`` does not
    call it; our tools do.
    """
    if safe_checkpoint_loading_enabled():
        return
    if not _MMENGINE_LOADERS:
        _MMENGINE_LOADERS.update(local=CheckpointLoader._schemes.get(''),
                                 load_url=mmengine_checkpoint.load_url)
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local,
                                     force=True)
    mmengine_checkpoint.load_url = load_url


@contextlib.contextmanager
def safe_checkpoint_loading():
    """:func:`enable_safe_checkpoint_loading` for a ``with`` block only: what
    mmengine loaded with before is back afterwards. For library code that
    loads a checkpoint and must not change the process."""
    enabled = safe_checkpoint_loading_enabled()
    enable_safe_checkpoint_loading()
    try:
        yield
    finally:
        if not enabled:
            disable_safe_checkpoint_loading()


def disable_safe_checkpoint_loading() -> None:
    """Put back the mmengine loaders :func:`enable_safe_checkpoint_loading`
    replaced (a no-op if it never ran)."""
    if not _MMENGINE_LOADERS:
        return
    if CheckpointLoader._schemes.get('') is _load_from_local:
        CheckpointLoader.register_scheme(prefixes='', loader=_MMENGINE_LOADERS['local'],
                                         force=True)
    if mmengine_checkpoint.load_url is load_url:
        mmengine_checkpoint.load_url = _MMENGINE_LOADERS['load_url']
