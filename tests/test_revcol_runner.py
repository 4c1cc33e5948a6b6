"""A real mmdet runner iteration of the headline config with the reversible
backward (save_memory=True), through the same code path as tools/train.py."""
import os.path as osp

import pytest
import torch

from conftest import REPO
from mmconvarch.launch import build_runner, load_config

pytestmark = pytest.mark.slow  # a whole cascade config in the Runner


def test_cascade_revcol_runner_iteration_with_save_memory(tmp_path, sample_root):
    cfg = load_config(
        osp.join(REPO, 'configs/revcol/cascade_revcol_t_coco.py'),
        {'train_dataloader.batch_size': 2, 'train_dataloader.dataset.indices': 2,
         'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1},
        sample_data=sample_root, work_dir=str(tmp_path))
    assert cfg.model.backbone.save_memory
    runner = build_runner(cfg)
    backbone = runner.model.backbone
    before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    calls = []
    fn = type(backbone).forward_columns

    def spy(self, x, returned=(-1, )):
        calls.append(torch.is_grad_enabled())
        return fn(self, x, returned)

    type(backbone).forward_columns = spy
    try:
        runner.train()
    finally:
        type(backbone).forward_columns = fn
    assert calls[0] is True  # the training step ran the reversible path
    changed = [n for n, p in backbone.named_parameters() if p.requires_grad
               and not torch.equal(p.detach(), before[n])]
    assert 'subnet0.level0.blocks.0.depthwise_conv.weight' in changed
    assert 'subnet3.alpha1' in changed and 'stem.0.weight' in changed
    assert osp.exists(osp.join(str(tmp_path), 'epoch_1.pth'))
