"""The package's import structure, read from the source with ``ast`` (nothing
is imported): the subpackages and top-level modules of ``mmconvarch`` import
each other along a DAG (function-level imports included; the converters,
``mmconvarch.checkpoint.converters``, count as a node of their own, above
``models``, while the rest of ``mmconvarch.checkpoint`` is below it), models
never import the converters or the tools' code, and no library module parses
command lines."""
import ast
import functools
import os.path as osp
from pathlib import Path
from typing import Dict, Iterator, Set, Tuple

from conftest import REPO

PACKAGE = Path(REPO) / 'mmconvarch'
# safe_load lists argparse.Namespace (the official checkpoints' ``args``) among the
# classes a weights_only load may rebuild; it parses no command line
ARGPARSE_NAMESPACE_ONLY = {PACKAGE / 'checkpoint' / 'safe_load.py'}
CONVERTERS = 'mmconvarch.checkpoint.converters'


@functools.lru_cache()
def _modules() -> Tuple[Tuple[Path, str], ...]:
    """``(path, module name)`` of every module of the package."""
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
        found.append((path, '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)))
    return tuple(found)


def _imports(path: Path, module: str) -> Iterator[Tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file, at any
    depth; ``from X import a`` yields ``X.a`` if that is one of our modules,
    else ``X``."""
    ours = {name for _, name in _modules()} | {'mmconvarch.launch'}
    package = module if path.name == '__init__.py' else module.rpartition('.')[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                source = '.'.join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                name = f'{source}.{alias.name}'
                yield node.lineno, name if name in ours else source


def _node(module: str) -> str:
    """The graph node of a module: ``mmconvarch`` (the package's
    ``__init__``), the converters (:data:`CONVERTERS`), or
    ``mmconvarch.<subpackage or top-level module>``."""
    if module == CONVERTERS or module.startswith(CONVERTERS + '.'):
        return CONVERTERS
    return '.'.join(module.split('.')[:2])


def _edges() -> Dict[Tuple[str, str], Set[str]]:
    edges: Dict[Tuple[str, str], Set[str]] = {}
    for path, module in _modules():
        src = _node(module)
        for line, target in _imports(path, module):
            if target.split('.')[0] != 'mmconvarch':
                continue
            dst = _node(target)
            if dst != src:
                where = f'{osp.relpath(path, REPO)}:{line} imports {target}'
                edges.setdefault((src, dst), set()).add(where)
    return edges


def test_relative_imports_are_resolved():
    """The graph sees relative imports (else it would miss edges)."""
    edges = _edges()
    assert ('mmconvarch', 'mmconvarch.models') in edges  # `from . import models`
    assert ('mmconvarch.models', 'mmconvarch.checkpoint') in edges
    assert (CONVERTERS, 'mmconvarch.checkpoint') in edges  # `from ..layouts import`


def test_subpackages_form_a_dag():
    edges = _edges()
    graph: Dict[str, Set[str]] = {}
    for src, dst in edges:
        graph.setdefault(src, set()).add(dst)
    state: Dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                why = [sorted(edges[a, b])[0] for a, b in zip(cycle, cycle[1:])]
                raise AssertionError(f'import cycle {" -> ".join(cycle)}: {why}')
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_models_import_neither_converters_nor_launch():
    bad = {('mmconvarch.models', dst): where for (src, dst), where in _edges().items()
           if src == 'mmconvarch.models' and dst == CONVERTERS}
    launch = [f'{osp.relpath(path, REPO)}:{line}'
              for path, module in _modules() if module.startswith('mmconvarch.models')
              for line, target in _imports(path, module)
              if target == 'mmconvarch.launch'
              or target.startswith('mmconvarch.launch.')]
    assert not bad and not launch, (bad, launch)


def test_no_argparse_in_the_library():
    """Command lines are the tools' business (``tools/``)."""
    found = []
    for path, module in _modules():
        tree = ast.parse(path.read_text(), str(path))
        uses = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name) and node.value.id == 'argparse'}
        for line, target in _imports(path, module):
            if target.split('.')[0] != 'argparse':
                continue
            if path in ARGPARSE_NAMESPACE_ONLY and target == 'argparse' \
                    and uses <= {'Namespace'}:
                continue
            found.append(f'{osp.relpath(path, REPO)}:{line} imports {target}')
    assert not found, found
