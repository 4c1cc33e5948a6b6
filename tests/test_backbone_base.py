"""models/backbones/base.py: every family freezes its first ``frozen_stages``
stages the same way (FrozenStagesMixin: the parts listed by frozen_parts()
lose their gradients and stay in eval mode through ``train()``), takes
``norm_eval`` only where it has batch norms, and loads Pretrained strictly
through OfficialCheckpointMixin."""
import inspect

import pytest
import torch.nn as nn
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmconvarch.models.backbones.base import FrozenStagesMixin, OfficialCheckpointMixin
from test_pretrained_strict import BACKBONES

HAS_BN = {'slak': True, 'vanillanet': True, 'revcol': False, 'convnextv2': False}


@pytest.mark.parametrize('family', list(BACKBONES))
def test_every_family_uses_the_base(family):
    cls = type(BACKBONES[family]())
    bases = cls.__mro__
    assert bases.index(OfficialCheckpointMixin) < bases.index(FrozenStagesMixin)
    # frozen stages come from the mixin alone (no family re-implements train())
    assert 'train' not in vars(cls) and '_freeze_stages' not in vars(cls)
    assert ('norm_eval' in inspect.signature(cls.__init__).parameters) == HAS_BN[family]


@pytest.mark.parametrize('family', list(BACKBONES))
def test_frozen_parts_stay_frozen_through_train(family):
    model = BACKBONES[family](frozen_stages=2)
    parts = model.frozen_parts()
    assert parts and BACKBONES[family](frozen_stages=0).frozen_parts() == []
    frozen = {id(p) for part in parts for p in (
        [part] if isinstance(part, nn.Parameter) else part.parameters())}
    model.train()
    trainable = {name: p.requires_grad for name, p in BACKBONES[family]().named_parameters()}
    for name, param in model.named_parameters():
        assert param.requires_grad == (trainable[name] and id(param) not in frozen), name
    assert all(not part.training for part in parts if isinstance(part, nn.Module))
    assert any(p.requires_grad for p in model.parameters())  # the rest trains
    if family == 'revcol':  # the fusion weights of the frozen levels too
        assert all(not c.alpha(level).requires_grad for c in model.columns for level in (0, 1))


@pytest.mark.parametrize('family', [f for f, bn in HAS_BN.items() if bn])
def test_norm_eval_keeps_every_batch_norm_in_eval(family):
    model = BACKBONES[family](norm_eval=True).train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    model = BACKBONES[family]().train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))
