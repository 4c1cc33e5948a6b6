"""FCMAE for real: tools/train.py on the sample set lowers the reconstruction
loss, the checkpoint fine-tunes as a ConvNeXtV2 backbone, and
tools/analysis/visualize_fcmae.py draws its reconstructions."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from test_tools import load_tool, scalars

pytestmark = pytest.mark.slow  # whole training runs through tools/train.py

CONFIG = osp.join(REPO, 'configs/convnextv2/fcmae_convnextv2_atto_in1k.py')


def test_train_lowers_loss_then_finetune_and_visualize(tmp_path, sample_root):
    train = load_tool('tools/train.py')
    work_dir = str(tmp_path / 'work')
    # 8 images, batch 4, 128px (4x4 patches, 6 visible): 30 iterations
    train.main([CONFIG, '--sample-data', sample_root, '--work-dir', work_dir,
                '--cfg-options', 'train_dataloader.batch_size=4',
                'train_cfg.max_epochs=15'])
    losses = [r['loss'] for r in scalars(work_dir) if 'loss' in r]
    assert len(losses) == 30 and all(np.isfinite(losses))
    # logged losses are 10-iteration running means (mmengine LogProcessor)
    assert losses[-1] < 0.9 * losses[0], losses

    ckpt = osp.join(work_dir, 'epoch_15.pth')
    from mmconvarch.models.backbones import ConvNeXtV2
    backbone = ConvNeXtV2('atto', init_cfg=dict(
        type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    backbone.init_weights()
    saved = torch.load(ckpt, weights_only=False)['state_dict']
    for key, value in backbone.state_dict().items():
        if not key.startswith('norm3'):
            assert torch.equal(value, saved['backbone.' + key]), key

    images = sorted(glob.glob(osp.join(sample_root, 'coco', 'val2017',
                                       '*.jpg')))[:3]
    out = str(tmp_path / 'grid.png')
    load_tool('tools/analysis/visualize_fcmae.py').main(
        [CONFIG, ckpt, '--images', *images, '--out', out, '--size', '128'])
    grid = np.asarray(Image.open(out))
    assert grid.shape == (16 + 3 * 128, 4 * 128, 3)
    first = grid[16:144]
    masked, pasted = first[:, 128:256], first[:, 384:]
    gray = (masked == 128).all(-1)
    assert 0.3 < gray.mean() < 0.9  # 10 of 16 patches masked
    # visible patches of the pasted column are the input's
    assert (pasted[~gray] == first[:, :128][~gray]).all()
