"""Our models by name, in mmpretrain's model hub and for mmdet/mmseg.

``model-index.yml`` (mmpretrain's metafile schema) imports one
``configs/<family>/metafile.yml`` per family; each entry names a config
(``configs/...``, relative to the folder that holds the index) and weights.
That folder is the source checkout, or ``mmconvarch/.mim`` in a non-editable
install (OpenMMLab's layout; setup.py copies configs, tools and the index
there).

:func:`register_models` puts the entries mmpretrain can build in its
``ModelHub`` (then ``mmpretrain.list_models``, ``get_model`` and
``ImageClassificationInferencer`` know our names), through its public
``ModelHub.register_model_index`` only. It is an explicit call:
``import mmconvarch`` leaves the hub alone, and nothing is parsed at import.

Detection and segmentation entries stay out of that hub (mmpretrain cannot
build them). mmdet's ``DetInferencer`` and mmseg's ``MMSegInferencer`` look
names up only in their own package's index, so :func:`get_model_info` gives
the config and weights to pass them:
``DetInferencer(model=info.config, weights=info.weights)``.
"""
import copy
import difflib
import fnmatch
import functools
import os.path as osp
from typing import Dict, List, Optional, Set

MODEL_INDEX = 'model-index.yml'
# Tasks of entries mmpretrain's hub cannot build (mmdet's and mmseg's).
DOWNSTREAM_TASKS = frozenset({'Object Detection', 'Instance Segmentation',
                              'Panoptic Segmentation', 'Semantic Segmentation'})

_PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
_registered_roots: Set[str] = set()


def index_root() -> Optional[str]:
    """The folder holding ``model-index.yml`` and ``configs/``: the source
    checkout when the package runs from one (editable install), else the
    installed package's ``.mim``; None when neither has the index."""
    checkout = osp.dirname(_PACKAGE_DIR)
    if osp.isfile(osp.join(checkout, 'setup.py')) and \
            osp.isfile(osp.join(checkout, MODEL_INDEX)):
        return checkout
    mim = osp.join(_PACKAGE_DIR, '.mim')
    if osp.isfile(osp.join(mim, MODEL_INDEX)):
        return mim
    return None


@functools.lru_cache(maxsize=None)
def _load_index(root: str) -> Dict[str, object]:
    """Every entry of ``root``'s index by lower-case name, with its config
    made absolute (modelindex ``Model`` objects; parsed once per process,
    callers copy before handing one out)."""
    from modelindex.load_model_index import load
    index = load(osp.join(root, MODEL_INDEX))
    index.build_models_with_collections()
    models = {}
    for model in index.models:
        if model.config and not osp.isabs(model.config):
            model.config = osp.join(root, model.config)
        models[model.name.lower()] = model
    return models


def _tasks(model) -> Set[str]:
    return {result.task for result in (model.results or [])}


def in_model_hub(model) -> bool:
    """Whether mmpretrain's hub can build this entry: image classification,
    self-supervised pre-training (no results) and other mmpretrain tasks, but
    not detection or segmentation."""
    return not _tasks(model) & DOWNSTREAM_TASKS


def _hub_index(root: str, folder: str) -> str:
    """Write into ``folder`` a model index of the entries of ``root``'s index
    that mmpretrain's hub can build (:func:`in_model_hub`), configs made
    absolute; return its path. ``ModelHub.register_model_index`` takes a
    file and registers every model in it."""
    import yaml
    with open(osp.join(root, MODEL_INDEX)) as f:
        index = yaml.safe_load(f)

    def absolute(entry: dict) -> dict:  # paths in the index are relative to root
        return dict(entry, **{key: osp.join(root, entry[key]) for key in ('Config', 'README')
                              if isinstance(entry.get(key), str)
                              and not osp.isabs(entry[key])})

    metas = [index]  # the index's own entries, then its imported metafiles
    for metafile in index.get('Import') or []:
        with open(osp.join(root, metafile)) as f:
            metas.append(yaml.safe_load(f) or {})
    collections, models = [], []
    for meta in metas:
        collections += [absolute(c) for c in meta.get('Collections') or []]
        for model in meta.get('Models') or []:
            tasks = {result.get('Task') for result in model.get('Results') or []}
            if not tasks & DOWNSTREAM_TASKS:
                models.append(absolute(model))
    path = osp.join(folder, MODEL_INDEX)
    with open(path, 'w') as f:
        yaml.safe_dump(dict(Collections=collections, Models=models), f, sort_keys=False)
    return path


def register_models(root: Optional[str] = None) -> List[str]:
    """Register our image-classification and pre-training entries (not
    detection or segmentation: mmpretrain cannot build them) of the index in
    ``root`` (default :func:`index_root`) in mmpretrain's ``ModelHub``, so
    ``mmpretrain.get_model(name)``, ``list_models`` and the inferencers know
    them. Once per root; returns the names registered (none when there is
    no index or it was registered already). Uses only the hub's public
    ``register_model_index``; ``import mmconvarch`` does not call this.

    A name that mmpretrain already has raises mmpretrain's ValueError."""
    root = root or index_root()
    if root is None or osp.realpath(root) in _registered_roots:
        return []
    import tempfile

    from mmpretrain.apis.model import ModelHub
    with tempfile.TemporaryDirectory(prefix='mmconvarch-hub-') as folder:
        ModelHub.register_model_index(_hub_index(root, folder), config_prefix=root)
    _registered_roots.add(osp.realpath(root))
    return sorted(name for name, model in _load_index(root).items()
                  if in_model_hub(model))


def list_models(pattern: str = '*', task: Optional[str] = None) -> List[str]:
    """Our model names (every task) matching the wildcard ``pattern`` (any
    suffix matches, as in ``mmpretrain.list_models``), optionally only those
    with a result for ``task`` (e.g. ``'Object Detection'``)."""
    root = index_root()
    models = _load_index(root) if root else {}
    names = fnmatch.filter(models, pattern.lower() + '*')
    if task is not None:
        names = [n for n in names if task in _tasks(models[n])]
    return sorted(names)


def get_model_info(name: str):
    """The index entry ``name`` (a modelindex ``Model``): ``.config`` is the
    absolute config path, ``.weights`` the checkpoint URL, ``.results`` the
    metrics with their task."""
    root = index_root()
    if root is None:
        raise FileNotFoundError(
            f'No {MODEL_INDEX} beside the mmconvarch package nor in its .mim '
            'folder: install mmconvarch with pip (its wheel ships the index) '
            'or run from a source checkout.')
    models = _load_index(root)
    model = models.get(name.lower())
    if model is None:
        close = difflib.get_close_matches(name.lower(), models, n=5)
        hint = f' Close names: {", ".join(close)}.' if close else ''
        raise ValueError(
            f'No model named {name!r} in {osp.join(root, MODEL_INDEX)}.{hint}'
            ' mmconvarch.model_zoo.list_models() lists all names.')
    return copy.deepcopy(model)
