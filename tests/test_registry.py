import subprocess
import sys
import textwrap

import pytest
from mmengine.registry import MODELS, init_default_scope

import mmconvarch  # noqa: F401
from mmconvarch.models.backbones import ConvNeXtV2


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('name', ['mmconvarch.ConvNeXtV2', 'ConvNeXtV2'])
def test_backbone_resolves_from_every_scope(scope, name):
    init_default_scope(scope)
    model = MODELS.build(dict(type=name, arch='atto'))
    assert type(model) is ConvNeXtV2


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_prefixed_type_needs_no_import():
    # mmengine imports mmconvarch.registry on seeing the prefix
    res = _run("""
        from mmengine.registry import init_default_scope
        init_default_scope('mmdet')
        from mmdet.registry import MODELS
        m = MODELS.build(dict(type='mmconvarch.ConvNeXtV2', arch='atto'))
        print(type(m).__name__)
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == 'ConvNeXtV2'


@pytest.mark.parametrize('missing', [['mmdet', 'mmseg'], ['mmpretrain']])
def test_import_survives_missing_downstream_packages(missing):
    # a None entry in sys.modules makes `import x` raise ImportError
    res = _run(f"""
        import sys
        for name in {missing!r}:
            sys.modules[name] = None
        import mmconvarch
        from mmconvarch.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
        print(sorted(MODELS.module_dict))
        print(sorted(OPTIM_WRAPPER_CONSTRUCTORS.module_dict))
    """)
    assert res.returncode == 0, res.stderr
    models, constructors = res.stdout.strip().splitlines()
    assert 'LayerDecayOptimWrapperConstructor' in constructors
    assert ('ConvNeXtV2' in models) == ('mmpretrain' not in missing)
    if 'mmpretrain' in missing:
        assert 'backbones.convnextv2 not registered' in res.stderr  # warned


def test_import_survives_mmdet_assertion_error():
    # mmdet asserts on an mmcv version mismatch instead of raising ImportError;
    # mmpretrain.models imports mmdet and so fails too: we warn with the cause
    res = _run("""
        import sys, types, importlib.abc
        class Boom(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == 'mmdet':
                    raise AssertionError('MMCV==9.9 is used but incompatible')
        sys.meta_path.insert(0, Boom())
        import mmconvarch
        from mmconvarch.registry import OPTIM_WRAPPER_CONSTRUCTORS
        print(sorted(OPTIM_WRAPPER_CONSTRUCTORS.module_dict))
    """)
    assert res.returncode == 0, res.stderr
    assert 'LayerDecayOptimWrapperConstructor' in res.stdout
    assert 'MMCV==9.9 is used but incompatible' in res.stderr
