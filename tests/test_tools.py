"""tools/train.py, tools/test.py and tools/analysis/get_flops.py, run for
real on the sample set."""
import glob
import json
import os.path as osp
import pickle

import pytest
import torch

from conftest import REPO, load_tool  # noqa: F401  (load_tool: other tests take it here)

CLS_CONFIG = osp.join(REPO, 'configs/convnextv2/convnextv2_t_in1k.py')
# atto keeps the classification runs cheap; the recipe is otherwise as shipped
ATTO = ['model.backbone.arch=atto', 'model.head.in_channels=320']


def scalars(work_dir: str):
    """Logged scalars of the latest run in work_dir."""
    path = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))[-1]
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow  # whole training runs
def test_train_then_resume_continues(tmp_path, sample_root):
    """Save with the runner, resume on torch>=2.6 (weights_only default),
    continue: the resumed run starts at epoch 2 with the saved state."""
    train = load_tool('tools/train.py')
    work_dir = str(tmp_path / 'work')
    common = [CLS_CONFIG, '--sample-data', sample_root, '--work-dir',
              work_dir, '--cfg-options', *ATTO,
              'train_dataloader.batch_size=4', 'default_hooks.checkpoint.'
              'interval=1']
    train.main(common + ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1'])
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), weights_only=False)
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 2
    with pytest.raises(Exception):  # the trap we fix: plain torch.load fails
        torch.load(osp.join(work_dir, 'epoch_1.pth'))

    train.main(common + ['train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
                         '--resume'])
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    resumed = torch.load(osp.join(work_dir, 'epoch_2.pth'),
                         weights_only=False)
    assert resumed['meta']['epoch'] == 2 and resumed['meta']['iter'] == 4
    # the optimizer state went on from the saved one (Adam step counts)
    steps = {int(s['step']) for s in resumed['optimizer']['state'].values()}
    assert steps == {4}
    logged = [r['step'] for r in scalars(work_dir) if 'loss' in r]
    assert logged == [3, 4]  # the resumed run trained only epoch 2


@pytest.mark.slow  # a whole training run
def test_user_mmdet_config_with_custom_imports(tmp_path, sample_root):
    """A user's own mmdet config: plain type='ConvNeXtV2' via custom_imports,
    trains one iteration with the real runner and evaluates."""
    cfg_file = tmp_path / 'my_mask_rcnn.py'
    cfg_file.write_text(
        "_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']\n"
        "custom_imports = dict(imports=['mmconvarch'],\n"
        "                      allow_failed_imports=False)\n"
        "model = dict(\n"
        "    backbone=dict(_delete_=True, type='ConvNeXtV2', arch='atto',\n"
        "                  out_indices=(0, 1, 2, 3),\n"
        "                  gap_before_final_norm=False),\n"
        "    neck=dict(in_channels=[40, 80, 160, 320]))\n")
    train = load_tool('tools/train.py')
    work_dir = str(tmp_path / 'work')
    train.main([str(cfg_file), '--sample-data', sample_root, '--work-dir',
                work_dir, '--cfg-options', 'train_dataloader.batch_size=2',
                'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=1',
                'train_cfg.val_interval=1'])
    records = scalars(work_dir)
    assert [r['iter'] for r in records if 'loss' in r] == [1]
    assert records[-1]['step'] == 1 and 'loss' not in records[-1]  # val ran

    test = load_tool('tools/test.py')
    out = str(tmp_path / 'preds.pkl')
    test.main([str(cfg_file), osp.join(work_dir, 'epoch_1.pth'),
               '--sample-data', sample_root, '--work-dir', work_dir,
               '--out', out])
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 4  # the 4 sample val images
    assert {'bboxes', 'scores', 'labels', 'masks'} <= set(
        predictions[0]['pred_instances'])


def test_non_openmmlab_scope_is_refused(tmp_path):
    cfg_file = tmp_path / 'plain.py'
    cfg_file.write_text("model = dict(type='Foo')\n")
    train = load_tool('tools/train.py')
    with pytest.raises(SystemExit, match='default_scope'):
        train.main([str(cfg_file)])


def test_get_flops_matches_official_tiny():
    flops = load_tool('tools/analysis/get_flops.py')
    result = flops.count(CLS_CONFIG, [224], backbone_only=False)
    # official ConvNeXt V2-T: 4.47 GFLOPs, 28.6 M params at 224
    assert result['flops'] / 1e9 == pytest.approx(4.47, rel=0.01)
    assert result['params'] == 28635496


@pytest.mark.parametrize('config, expected', [
    ('configs/revcol/cascade_revcol_s_coco.py', "COCO 2017 in mmdet's layout"),
    ('configs/slak/upernet_slak_t_ade20k.py', "ADE20K in mmseg's layout"),
    ('configs/vanillanet/vanillanet_5_in1k.py', "ImageNet-1k in mmpretrain's layout")])
def test_train_without_data_says_what_is_expected(config, expected, tmp_path):
    """The headline command on a machine without the data: one message naming the data set,
    where it is expected and --sample-data, instead of a pycocotools traceback."""
    import subprocess
    import sys
    result = subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'),
                             osp.join(REPO, config), '--work-dir', str(tmp_path / 'w')],
                            cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()
    assert expected in result.stderr and '--sample-data' in result.stderr, message
    assert 'does not exist' in result.stderr and 'data/' in result.stderr, message


def test_offline_pretrained_download_names_the_url(tmp_path, sample_root):
    """A pretrained URL that cannot be fetched (here: nothing listens on the port) ends in one
    message with the URL and how to point the config at a local file."""
    from mmengine.config import Config

    from mmconvarch.launch import (build_runner, explain_download_errors,
                                         fall_back_from_amp_on_cpu)
    from mmconvarch.utils.sample_data import apply_sample_data
    cfg = Config.fromfile(CLS_CONFIG)
    apply_sample_data(cfg, root=sample_root, img_size=64, train_steps=1)
    fall_back_from_amp_on_cpu(cfg)
    url = 'http://127.0.0.1:9/convnextv2_atto_unreachable.pth'
    cfg.model.backbone.update(arch='atto', init_cfg=dict(type='Pretrained', checkpoint=url))
    cfg.model.head.in_channels = 320
    cfg.work_dir = str(tmp_path)
    with pytest.raises(SystemExit) as exc:
        with explain_download_errors(cfg):
            build_runner(cfg).train()
    message = str(exc.value)
    assert url in message and 'model.backbone.init_cfg.checkpoint=' in message, message
