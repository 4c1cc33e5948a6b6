"""``import mmconvarch`` registers modules and changes nothing else in the
process: mmengine's checkpoint loaders, mmpretrain's ModelHub and torch's
global module hooks are the very same objects before and after the import
(run in a fresh interpreter). The same probe sees the changes that the
explicit calls make, so it can tell."""
import json
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent('''
    import json, sys
    import torch
    import torch._dynamo  # noqa: F401  (torch's own: allow-lists a class of its own on import)
    import torch.nn.modules.module as torch_module
    import torch.serialization
    from mmengine.registry import MODELS
    from mmengine.runner import checkpoint as mmengine_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmpretrain.apis.model import ModelHub

    def snapshot():
        """id() of everything import mmconvarch must leave alone."""
        state = {
            'torch.load': id(torch.load),
            'torch.hub.load_state_dict_from_url': id(torch.hub.load_state_dict_from_url),
            'mmengine load_url': id(mmengine_checkpoint.load_url),
            'safe globals': [repr(g) for g in torch.serialization.get_safe_globals()],
            'ModelHub models': sorted(ModelHub._models_dict),
        }
        for prefix, loader in CheckpointLoader._schemes.items():
            state[f'CheckpointLoader scheme {prefix!r}'] = id(loader)
        for name, value in vars(ModelHub).items():
            state[f'ModelHub.{name}'] = id(value)
        for name, value in vars(torch_module).items():
            if name.startswith('_global_'):  # torch's process-wide hook dicts
                state[f'torch {name}'] = [(k, id(v)) for k, v in value.items()] \\
                    if isinstance(value, dict) else id(value)
        return state

    before = snapshot()
    import mmconvarch
    for call in sys.argv[1:]:
        exec(call)
    after = snapshot()
    changed = sorted(k for k in before.keys() | after.keys()
                     if before.get(k) != after.get(k))
    print(json.dumps(dict(changed=changed, revcol_in_root=MODELS.get('RevCol') is not None)))
''')


def probe(*calls: str) -> dict:
    res = subprocess.run([sys.executable, '-W', 'ignore', '-c', PROBE, *calls],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_import_changes_nothing_but_the_registries():
    result = probe()
    assert result == dict(changed=[], revcol_in_root=True)


@pytest.mark.parametrize('call,expected', [
    ('mmconvarch.enable_safe_checkpoint_loading()',
     ["CheckpointLoader scheme ''", 'mmengine load_url']),
    ('from mmconvarch import model_zoo; model_zoo.register_models()', ['ModelHub models']),
])
def test_the_explicit_calls_are_what_changes_the_process(call, expected):
    """The probe sees each change: the safe loader replaces exactly mmengine's
    local loader and load_url; registering our models adds hub entries
    through its public API (no ModelHub attribute is replaced)."""
    assert probe(call)['changed'] == expected
