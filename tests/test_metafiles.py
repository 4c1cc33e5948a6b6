"""The model index: configs/<family>/metafile.yml imported by model-index.yml
(mmpretrain / mmdet / mmseg metafile schema). Every Config exists and every
config is listed, every metric cites its source, names are unique (also
against mmpretrain's own), the counting options are get_flops.py's, and a
few measured figures are re-measured."""
import glob
import os.path as osp

import pytest
import yaml

from conftest import REPO, load_tool

FAMILIES = ('revcol', 'convnextv2', 'slak', 'vanillanet')
DOWNSTREAM = {'COCO': {'Object Detection', 'Instance Segmentation'},
              'ADE20K': {'Semantic Segmentation'}}


def _load(rel):
    with open(osp.join(REPO, rel)) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope='module')
def metafiles():
    return {fam: _load(f'configs/{fam}/metafile.yml') for fam in FAMILIES}


@pytest.fixture(scope='module')
def models(metafiles):
    return [(fam, m) for fam, doc in metafiles.items() for m in doc['Models']]


def test_model_index_imports_every_family_and_loads_with_modelindex():
    from modelindex.load_model_index import load
    assert _load('model-index.yml')['Import'] == [
        f'configs/{fam}/metafile.yml' for fam in FAMILIES]
    index = load(osp.join(REPO, 'model-index.yml'))
    index.build_models_with_collections()
    names = {m.name for m in index.models}
    assert len(names) == len(index.models) > 0
    for model in index.models:  # with the collection merged in, as mmpretrain's hub reads it
        full = model.full_model
        assert not model.check_errors, (model.name, model.check_errors)
        assert full.paper['URL'].startswith('https://arxiv.org/abs/'), model.name
        assert full.metadata.parameters > 0 and full.metadata.architecture, model.name


def test_every_config_exists_and_every_config_is_listed(models):
    listed = [m['Config'] for _, m in models]
    for fam, m in models:
        assert m['Config'].startswith(f'configs/{fam}/'), m['Name']
        assert osp.isfile(osp.join(REPO, m['Config'])), f'{m["Name"]}: no {m["Config"]}'
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    configs = {osp.relpath(p, REPO) for fam in FAMILIES
               for p in glob.glob(osp.join(REPO, 'configs', fam, '*.py'))}
    assert configs - set(listed) == set(), 'configs missing from the metafiles'


def test_every_metric_has_a_source(metafiles):
    """Numbers are the official ones: each Results entry with metrics names the
    table it comes from, in the family's official repository (pinned to a
    commit) or its paper."""
    for fam, doc in metafiles.items():
        collection = doc['Collections'][0]
        allowed = (collection['Code']['URL'] + '/blob/', collection['Paper']['URL'])
        for m in doc['Models']:
            for result in m['Results'] or []:
                metrics = result['Metrics']
                assert isinstance(metrics, dict), m['Name']
                if not metrics:
                    continue
                source = result.get('Source', '')
                assert source.startswith(allowed), (
                    f'{m["Name"]} {result["Task"]}: {metrics} has no source in {allowed}, '
                    f'got {source!r}')
                for key, value in metrics.items():
                    assert isinstance(value, (int, float)) and 0 < value < 100, (m['Name'], key)


def test_tasks_match_the_training_data(models):
    """mmconvarch.model_zoo keeps detection/segmentation entries out of
    mmpretrain's hub by their Results tasks: every downstream entry names
    its tasks, even without an official number."""
    for fam, m in models:
        data = m['Metadata']['Training Data']
        data = data if isinstance(data, str) else data[-1]  # pre-training, fine-tuning
        tasks = {r['Task'] for r in m['Results'] or []}
        if data in DOWNSTREAM:
            retinanet = m['Name'].startswith('retinanet_')  # a detector without masks
            assert tasks == ({'Object Detection'} if retinanet else DOWNSTREAM[data]), m['Name']
            prefix = (('cascade-mask-rcnn_', 'mask-rcnn_', 'retinanet_') if data == 'COCO' else
                      ('upernet_', 'mask2former_'))
            assert m['Name'].startswith(prefix), m['Name']
        else:
            assert tasks <= {'Image Classification'}, m['Name']


def test_names_are_unique_and_do_not_collide_with_mmpretrain(models):
    from modelindex.load_model_index import load
    from mmpretrain.apis.model import ModelHub  # noqa: F401  (the package must import)
    import mmpretrain
    index = load(osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'model-index.yml'))
    theirs = {m.name.lower() for m in index.models}
    ours = [m['Name'].lower() for _, m in models]
    assert len(ours) == len(set(ours))
    assert set(ours) & theirs == set()
    # the ConvNeXt V2 rule (stated in its metafile): "mmconvarch" after the architecture
    for fam, m in models:
        if fam == 'convnextv2' and m['Name'].startswith('convnext-v2-'):  # the ImageNet ones
            assert m['Name'].split('_')[1].startswith('mmconvarch'), m['Name']


def test_weights_and_conversions(models):
    for fam, m in models:
        for url in (m.get('Weights'), m.get('Converted From', {}).get('Weights')):
            assert url is None or url.startswith('https://'), m['Name']
        if 'Converted From' in m:
            assert m['Converted From']['Code'].startswith('https://github.com/'), m['Name']
        if not m.get('Weights') and m.get('Converted From'):  # not downloadable: say how
            assert m['Conversion'].startswith('python tools/model_converters/convert.py'), \
                m['Name']


def test_counted_with_are_get_flops_options(models):
    flops = load_tool('tools/analysis/get_flops.py')
    for fam, m in models:
        md = m['Metadata']
        counted = md['Counted With']
        if isinstance(counted, str):  # ImageNet: params and FLOPs of one run
            counted = {'Parameters': counted, 'FLOPs': counted}
        for key, opts in counted.items():
            assert isinstance(md[key], int) and md[key] > 0, (m['Name'], key)
            args = flops.parse_args([m['Config'], *opts.split()])
            assert args.params_only == (key == 'Parameters' and 'params-only' in opts)
            if key == 'Backbone FLOPs':
                assert args.backbone_only and tuple(args.shape) in ((800, 1280), (512, 2048))


def test_readmes_list_every_entry(metafiles):
    for fam, doc in metafiles.items():
        with open(osp.join(REPO, doc['Collections'][0]['README'])) as f:
            text = f.read()
        for m in doc['Models']:
            assert f'`{m["Name"]}`' in text, (fam, m['Name'])
        assert '## Citation' in text and '```bibtex' in text


@pytest.mark.parametrize('name', ['vanillanet-5_3rdparty_in1k',
                                  'cascade-mask-rcnn_revcol-t_fpn_3x_coco'])
def test_measured_figures_reproduce(name, models, in_repo):
    """Re-run get_flops.py with an entry's own options: the same numbers."""
    flops = load_tool('tools/analysis/get_flops.py')
    m = next(m for _, m in models if m['Name'] == name)
    md = m['Metadata']
    counted = md['Counted With']
    opts = counted if isinstance(counted, str) else counted['Parameters']
    args = flops.parse_args([m['Config'], *opts.split()])
    result = flops.count(args.config, args.shape, args.backbone_only,
                         inference_only=args.inference_only, deploy=args.deploy,
                         density=args.density, params_only=args.params_only)
    assert result['params'] == md['Parameters']
    if isinstance(counted, str):
        assert result['flops'] == md['FLOPs']


def test_model_tables_are_current():
    """docs/model_zoo.md's table of every entry and README.md's counts are the ones the metafiles
    give now."""
    table = load_tool('.dev_scripts/model_table.py')
    assert table.main(['--check']) == 0, 'run python .dev_scripts/model_table.py'


def test_model_table_check_catches_a_stale_table(tmp_path, monkeypatch):
    table = load_tool('.dev_scripts/model_table.py')
    for name in ('DOC', 'README'):
        path = tmp_path / f'{name}.md'
        path.write_text(f'intro\n{table.BEGIN}\n| an old row |\n{table.END}\noutro\n')
        monkeypatch.setattr(table, name, str(path))
    assert table.main(['--check']) == 1
    assert table.main([]) == 0 and table.main(['--check']) == 0
    doc, readme = (tmp_path / 'DOC.md').read_text(), (tmp_path / 'README.md').read_text()
    for text in (doc, readme):
        assert text.startswith('intro\n') and text.endswith('outro\n')
        assert 'an old row' not in text
    assert '`revcol-tiny_3rdparty_in1k`' in doc and '| RevCol |' in readme
