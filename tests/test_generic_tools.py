"""The generic OpenMMLab tools, run for real: tools/misc/print_config.py,
tools/model_converters/publish_model.py, tools/analysis/benchmark.py and
tools/analysis/browse_dataset.py."""
import hashlib
import json
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import REPO, load_tool
from test_inferencers import tiny_cascade_revcol

pytestmark = pytest.mark.usefixtures('single_thread')

CASCADE_S = osp.join(REPO, 'configs/revcol/cascade_revcol_s_coco.py')
UPERNET_T = osp.join(REPO, 'configs/revcol/upernet_revcol_t_ade20k.py')
CLS_T = osp.join(REPO, 'configs/convnextv2/convnextv2_t_in1k.py')
ATTO = ['model.backbone.arch=atto', 'model.head.in_channels=320']


# --- print_config

def test_print_config_merges_bases_and_options(tmp_path, capsys):
    from mmengine.config import Config
    tool = load_tool('tools/misc/print_config.py')
    saved = str(tmp_path / 'whole' / 'cascade.py')
    tool.main([CASCADE_S, '--cfg-options', 'model.backbone.drop_path_rate=0.123',
               '--save-path', saved])
    printed = capsys.readouterr().out
    assert "type='CascadeRCNN'" in printed  # from mmdet's base config
    assert "type='mmconvarch.RevCol'" in printed and '0.123' in printed
    whole = Config.fromfile(saved)
    assert '_base_' not in whole.filename and whole.model.backbone.arch == 'small'
    assert whole.model.backbone.drop_path_rate == 0.123
    assert whole.model.roi_head.type == 'CascadeRoIHead'


def test_print_config_refuses_an_unknown_suffix(tmp_path, capsys):
    tool = load_tool('tools/misc/print_config.py')
    with pytest.raises(SystemExit):
        tool.main([CASCADE_S, '--save-path', str(tmp_path / 'cfg.txt')])
    assert '--save-path must end in one of' in capsys.readouterr().err


# --- publish_model

def test_publish_model_strips_training_state_and_adds_sha256(tmp_path):
    """An mmengine-style checkpoint (weights, meta, optimizer, schedulers, message hub
    with HistoryBuffers) -> only meta and state_dict, named NAME-<sha256[:8]>.pth as
    torch.hub's hash check reads it; the weights load back unchanged."""
    from mmengine.logging import MessageHub
    from mmengine.runner import load_checkpoint
    tool = load_tool('tools/model_converters/publish_model.py')
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    hub = MessageHub('publish_test')
    hub.update_scalar('train/loss', 0.5)
    trained = dict(meta=dict(epoch=3, dataset_meta=dict(classes=('a', 'b'))),
                   state_dict=model.state_dict(), optimizer=optimizer.state_dict(),
                   param_schedulers=[dict(last_epoch=3)], message_hub=hub.state_dict())
    src = str(tmp_path / 'epoch_3.pth')
    torch.save(trained, src)

    final = tool.main([src, str(tmp_path / 'out' / 'revcol-t_in1k.pth')])
    sha = hashlib.sha256(open(final, 'rb').read()).hexdigest()
    assert osp.basename(final) == f'revcol-t_in1k-{sha[:8]}.pth'
    assert torch.hub.HASH_REGEX.search(osp.basename(final)).group(1) == sha[:8]
    published = torch.load(final, weights_only=True)
    assert set(published) == {'meta', 'state_dict'}
    assert published['meta'] == trained['meta']
    assert osp.getsize(final) < osp.getsize(src)
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    load_checkpoint(fresh, final, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert len(list((tmp_path / 'out').iterdir())) == 1  # no temporary file left


def test_publish_model_refuses_a_bare_tensor_file(tmp_path):
    tool = load_tool('tools/model_converters/publish_model.py')
    src = str(tmp_path / 'weights.pth')
    torch.save({'conv.weight': torch.zeros(1)}, src)
    with pytest.raises(SystemExit, match='expected an mmengine checkpoint'):
        tool.main([src, str(tmp_path / 'out.pth')])


# --- benchmark

def test_benchmark_random_images_and_json(tmp_path, capsys):
    tool = load_tool('tools/analysis/benchmark.py')
    out = str(tmp_path / 'fps.json')
    result = tool.main([CLS_T, '--shape', '32', '--num-iters', '3', '--num-warmup', '1',
                        '--batch-size', '2', '--cfg-options', *ATTO, '--out', out])
    assert result['fps'] > 0 and result['latency_ms'] > 0
    assert result['fps'] == pytest.approx(2 * 1000 / result['latency_ms'])
    assert result['num_iters'] == 3 and result['input'] == 'random 32x32 images'
    with open(out) as f:
        assert json.load(f)['fps'] == result['fps']
    assert 'img/s' in capsys.readouterr().out


def test_benchmark_detection_config_on_sample_data(tmp_path, sample_root):
    """The whole test step of our cascade config (shrunk) on the sample set's test
    dataloader, with a checkpoint loaded."""
    tool = load_tool('tools/analysis/benchmark.py')
    config = tiny_cascade_revcol(tmp_path)
    result = tool.main([config, '--sample-data', sample_root, '--num-iters', '2',
                        '--num-warmup', '1'])
    assert result['input'] == 'test dataloader' and result['fps'] > 0


def test_benchmark_deploy_form_and_checkpoint(tmp_path, capsys):
    """--deploy times the fused VanillaNet; the checkpoint is loaded before fusing."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    tool = load_tool('tools/analysis/benchmark.py')
    config = osp.join(REPO, 'configs/vanillanet/vanillanet_5_in1k.py')
    cfg = Config.fromfile(config)
    init_default_scope('mmpretrain')
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    ckpt = str(tmp_path / 'v5.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), ckpt)
    args = [config, ckpt, '--shape', '32', '--num-iters', '1', '--num-warmup', '0']
    result = tool.main(args + ['--deploy', '--force'])
    assert result['deploy'] and result['checkpoint'] == ckpt
    assert "deploy form: switched ['backbone', 'head']" in capsys.readouterr().out


def test_benchmark_refuses_what_it_cannot_time(capsys):
    tool = load_tool('tools/analysis/benchmark.py')
    with pytest.raises(SystemExit, match='no module with switch_to_deploy'):
        tool.main([CLS_T, '--shape', '32', '--deploy', '--num-iters', '1',
                   '--cfg-options', *ATTO])
    fcmae = osp.join(REPO, 'configs/convnextv2/fcmae_convnextv2_atto_in1k.py')
    with pytest.raises(SystemExit, match='no predict step'):
        tool.main([fcmae, '--shape', '32', '--num-iters', '1'])
    with pytest.raises(SystemExit):
        tool.main([CLS_T, '--shape', '1', '2', '3'])
    assert '--shape takes H W' in capsys.readouterr().err


# --- browse_dataset

@pytest.mark.parametrize('config', [CASCADE_S, UPERNET_T, CLS_T],
                         ids=['mmdet', 'mmseg', 'mmpretrain'])
def test_browse_dataset_draws_ground_truth(config, tmp_path, sample_root):
    """Each scope's own visualizer draws the val set's ground truth (boxes and
    masks, the label map, the class name) onto the images it writes."""
    from PIL import Image
    tool = load_tool('tools/analysis/browse_dataset.py')
    out_dir = str(tmp_path / 'browse')
    written = tool.main([config, '--sample-data', sample_root, '--phase', 'val',
                         '--not-show', '--output-dir', out_dir, '--max-items', '2'])
    assert len(written) == 2 and all(osp.basename(p).startswith('val_') for p in written)
    folder = {CASCADE_S: 'coco/val2017', UPERNET_T: 'ade/ADEChallengeData2016/images/'
              'validation'}.get(config, 'imagenet/val')
    for path in written:
        drawn = np.asarray(Image.open(path).convert('RGB'), dtype=np.int16)
        if config == CLS_T:  # imagenet/val/<class>/<name>
            import glob
            (original, ) = glob.glob(osp.join(sample_root, folder, '*', osp.basename(path)))
        else:
            original = osp.join(sample_root, folder, osp.basename(path))
        plain = np.asarray(Image.open(original).convert('RGB'), dtype=np.int16)
        assert drawn.shape == plain.shape == (128, 128, 3)
        changed = (np.abs(drawn - plain).max(-1) > 40).mean()
        assert changed > 0.01, f'{path}: nothing drawn ({changed:.3%} of pixels changed)'


def test_browse_dataset_needs_an_output(capsys):
    tool = load_tool('tools/analysis/browse_dataset.py')
    with pytest.raises(SystemExit):
        tool.main([CLS_T, '--not-show'])
    assert 'would produce nothing' in capsys.readouterr().err
