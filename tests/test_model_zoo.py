"""Our models by name: mmpretrain's hub lists and builds them after
``mmconvarch.model_zoo.register_models()`` (never colliding with mmpretrain's
own names), detection/segmentation entries stay out of that hub and are found
through mmconvarch.model_zoo. That ``import mmconvarch`` alone leaves the hub
alone is tests/test_import_side_effects.py's."""
import os.path as osp
import re

import pytest
import torch

from conftest import REPO
from test_inferencers import (FAMILIES, assert_weights_equal, classification_name,  # noqa: F401
                             entry_for_config, models_in_hub, save_weights)

pytestmark = pytest.mark.usefixtures('single_thread', 'models_in_hub')

# the family's name as it appears in model names (mmpretrain's scheme)
NAME_PATTERNS = dict(revcol='*revcol*', slak='*slak*', vanillanet='*vanillanet*',
                     convnextv2='*convnext-v2*')


def our_entries():
    from mmconvarch import model_zoo
    return {name: model_zoo.get_model_info(name) for name in model_zoo.list_models()}


def test_index_found_in_checkout():
    from mmconvarch import model_zoo
    assert model_zoo.index_root() == REPO
    entries = our_entries()
    assert entries
    for name, info in entries.items():
        assert osp.isfile(info.config), (name, info.config)


@pytest.mark.parametrize('family', FAMILIES)
def test_mmpretrain_lists_each_family(family):
    """mmpretrain.list_models('*<family>*') lists every classification and
    pre-training entry of ours whose config is in configs/<family>/."""
    import mmpretrain

    from mmconvarch import model_zoo
    ours = {n for n, info in our_entries().items()
            if f'{osp.sep}configs{osp.sep}{family}{osp.sep}' in info.config
            and model_zoo.in_model_hub(info)}
    assert ours, f'no model hub entry for configs/{family}/'
    assert ours <= set(mmpretrain.list_models(NAME_PATTERNS[family]))


def test_detection_and_segmentation_stay_out_of_mmpretrain():
    import mmpretrain

    from mmconvarch import model_zoo
    downstream = {n for n, info in our_entries().items() if not model_zoo.in_model_hub(info)}
    assert not downstream & set(mmpretrain.list_models())


def test_names_never_collide_with_mmpretrain():
    """Ours and mmpretrain's own model-index share no name (its ConvNeXt V2
    ones included), and ours follow its lower-case naming scheme."""
    import mmpretrain
    from modelindex.load_model_index import load
    root = osp.join(osp.dirname(mmpretrain.__file__), '.mim')
    theirs = {m.name.lower() for m in load(osp.join(root, 'model-index.yml')).models}
    assert any(n.startswith('convnext-v2') for n in theirs)
    ours = set(our_entries())
    assert not ours & theirs
    assert all(n == n.lower() and ' ' not in n and '_' in n for n in ours), ours


@pytest.mark.parametrize('family', FAMILIES)
def test_get_model_builds_ours_and_loads_converted_file(family, tmp_path):
    from mmpretrain import get_model
    name = classification_name(family)
    model = get_model(name)
    assert type(model.backbone).__module__ == f'mmconvarch.models.backbones.{family}'
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # differs from any initialisation
    weights = save_weights(model, tmp_path / 'converted.pth')
    loaded = get_model(name, pretrained=str(tmp_path / 'converted.pth'))
    assert_weights_equal(loaded, weights)


def test_get_model_loads_the_converters_output(tmp_path):
    """The documented route for official weights: tools/model_converters/convert.py,
    then ``get_model(name, pretrained=<converted file>)`` (VanillaNet-5, random weights
    in the official key layout)."""
    from mmpretrain import get_model

    from conftest import load_tool
    from test_vanillanet_converter import official_state_dict
    official, converted = str(tmp_path / 'vanillanet_5.pth'), str(tmp_path / 'converted.pth')
    torch.save({'model': official_state_dict()}, official)
    load_tool('tools/model_converters/convert.py').main(['vanillanet', official, converted])
    model = get_model(entry_for_config('configs/vanillanet/vanillanet_5_in1k.py'),
                      pretrained=converted)
    expected = torch.load(converted, weights_only=True)['state_dict']
    assert_weights_equal(model, expected)


def test_get_model_loads_official_file_as_the_converter_does(tmp_path):
    """``get_model(name, pretrained=True)`` fetches the metafile's official file:
    given an official-layout file, every tensor equals the converter's output
    (VanillaNet-5, random weights in the official key layout)."""
    from mmpretrain import get_model

    from conftest import load_tool
    from test_vanillanet_converter import official_state_dict
    official, converted = str(tmp_path / 'vanillanet_5.pth'), str(tmp_path / 'converted.pth')
    torch.save({'model': official_state_dict(), 'epoch': 300}, official)
    load_tool('tools/model_converters/convert.py').main(['vanillanet', official, converted])
    model = get_model(entry_for_config('configs/vanillanet/vanillanet_5_in1k.py'),
                      pretrained=official)
    assert_weights_equal(model, torch.load(converted, weights_only=True)['state_dict'])


def test_get_model_refuses_official_file_of_another_family(tmp_path):
    from mmpretrain import get_model

    from test_slak_converter import official_slak_state_dict
    path = str(tmp_path / 'slak.pth')
    torch.save({'model': official_slak_state_dict()}, path)
    with pytest.raises(ValueError, match=r"looks like a SLaK \(official layout\) checkpoint, "
                                         r"but the model's backbone is VanillaNet"):
        get_model(entry_for_config('configs/vanillanet/vanillanet_5_in1k.py'), pretrained=path)


def test_unknown_name_says_what_exists():
    from mmconvarch import model_zoo
    name = model_zoo.list_models()[0]
    with pytest.raises(ValueError, match='Close names: .*' + re.escape(name)):
        model_zoo.get_model_info(name.replace('_', '-', 1) + 'x')


def test_pretraining_entries_build_fcmae():
    """Entries without results (FCMAE pre-training) are in the hub and build our FCMAE."""
    import mmpretrain

    from mmconvarch import model_zoo
    names = [n for n, info in our_entries().items()
             if model_zoo.in_model_hub(info) and not info.results]
    assert names
    smallest = min(names, key=lambda n: our_entries()[n].metadata.parameters)
    model = mmpretrain.get_model(smallest)
    assert type(model).__module__ == 'mmconvarch.models.selfsup.fcmae'


# --- the mechanics on a metafile of our own (independent of the shipped one)

METAFILE = '''
Collections:
  - Name: Probe
    Metadata:
      Training Data: ImageNet-1k
Models:
  - Name: probe-revcol-tiny_3rdparty_in1k
    In Collection: Probe
    Results:
      - Task: Image Classification
        Dataset: ImageNet-1k
        Metrics:
          Top 1 Accuracy: 82.2
    Weights: https://example.invalid/revcol_tiny.pth
    Config: configs/revcol/revcol_t_in1k.py
  - Name: probe-cascade-mask-rcnn_revcol-s_coco
    In Collection: Probe
    Results:
      - Task: Object Detection
        Dataset: COCO
        Metrics:
          box AP: 52.6
    Weights: https://example.invalid/cascade.pth
    Config: configs/revcol/cascade_revcol_s_coco.py
'''


@pytest.fixture
def probe_index(tmp_path):
    """A model-index root: our configs (linked) and a two-entry metafile."""
    (tmp_path / 'configs').symlink_to(osp.join(REPO, 'configs'))
    (tmp_path / 'probe.yml').write_text(METAFILE)
    (tmp_path / 'model-index.yml').write_text('Import:\n  - probe.yml\n')
    from mmpretrain.apis.model import ModelHub
    yield str(tmp_path)
    for name in ('probe-revcol-tiny_3rdparty_in1k', 'probe-cascade-mask-rcnn_revcol-s_coco'):
        ModelHub._models_dict.pop(name, None)


def test_register_models_splits_by_task_once(probe_index):
    import mmpretrain

    from mmconvarch import model_zoo
    assert model_zoo.register_models(probe_index) == ['probe-revcol-tiny_3rdparty_in1k']
    assert model_zoo.register_models(probe_index) == []  # once per root
    assert mmpretrain.list_models('probe-*') == ['probe-revcol-tiny_3rdparty_in1k']
    info = mmpretrain.apis.model.ModelHub.get('probe-revcol-tiny_3rdparty_in1k')
    assert info.config.model.backbone.type == 'mmconvarch.RevCol'  # config resolved


def test_register_models_refuses_an_mmpretrain_name(tmp_path):
    import mmpretrain

    from mmconvarch import model_zoo
    mmpretrain.list_models()  # mmpretrain's own are registered
    (tmp_path / 'configs').symlink_to(osp.join(REPO, 'configs'))
    (tmp_path / 'model-index.yml').write_text(
        'Models:\n  - Name: convnext-v2-tiny_3rdparty-fcmae_in1k\n'
        '    Config: configs/convnextv2/convnextv2_t_in1k.py\n')
    with pytest.raises(ValueError, match='conflict'):
        model_zoo.register_models(str(tmp_path))
