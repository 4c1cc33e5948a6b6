"""Distributed correctness on 2 CPU processes (gloo): RevCol's reversible
backward under DDP, and what can be checked of SyncBN without a GPU.

SLaK's masks across ranks are tested in tests/test_sparsity_ddp.py."""
import os.path as osp
from unittest import mock

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import REPO
from mmconvarch.models.backbones import RevCol
from test_revcol import SMALL, rel, trained_like

WORLD, LOCAL_BATCH = 2, 2
SLAK_DENSE = 'configs/slak/upernet_slak_t_ade20k.py'
VANILLA_DENSE = 'configs/vanillanet/upernet_vanillanet_13_ade20k.py'
# the dense configs' backbones at test width (norm_cfg etc. as configured)
SMALL_BACKBONES = {
    SLAK_DENSE: dict(arch=dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
                     kernel_size=[9, 7, 7, 5, 3], width_factor=1.0),
    VANILLA_DENSE: dict(arch=dict(dims=[16, 16, 32] + [64] * 7 + [128] * 2,
                                  strides=[1, 2, 2] + [1] * 6 + [2, 1])),
}


def global_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(WORLD * LOCAL_BATCH, 3, 32, 32, generator=g)


def revcol(drop_path_rate: float, save_memory: bool) -> nn.Module:
    torch.manual_seed(0)  # the same weights on every rank and in the reference
    return trained_like(RevCol(arch=SMALL, drop_path_rate=drop_path_rate,
                               save_memory=save_memory))


def loss_of(outs, batch: int) -> torch.Tensor:
    """A fixed projection of every level, averaged over the batch (so the DDP
    average of the rank losses is the loss of the global batch)."""
    g = torch.Generator().manual_seed(1)
    return sum((o * torch.randn(o.shape[1:], generator=g)).sum() for o in outs) / batch


def grads(model: nn.Module) -> dict:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def backbone_from_config(path: str, **override) -> nn.Module:
    from mmengine.config import Config

    from mmconvarch.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, path)).model.backbone
    cfg.update(SMALL_BACKBONES[path], init_cfg=None, **override)
    return MODELS.build(cfg)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    from torch.nn.parallel import DistributedDataParallel as DDP
    x = global_batch()[rank * LOCAL_BATCH:(rank + 1) * LOCAL_BATCH]
    results = dict(revcol={}, syncbn={})
    # (drop path rate, save_memory, DDP find_unused_parameters)
    for key in ((0., False, False), (0., True, False), (.3, False, False),
                (.3, True, False), (.3, True, True)):
        model = revcol(*key[:2])
        ddp = DDP(model, find_unused_parameters=key[2])  # held past backward
        torch.manual_seed(100 + rank)  # drop-path masks differ per rank
        loss_of(ddp(x), LOCAL_BATCH).backward()
        results['revcol'][key] = grads(model)
    # DDP's gradient-as-bucket-view, and post-accumulate hooks under DDP
    model = revcol(0., save_memory=True)
    calls = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(
                lambda p, name=name: calls.update({name: calls.get(name, 0) + 1}))
    ddp = DDP(model, gradient_as_bucket_view=True)
    loss_of(ddp(x), LOCAL_BATCH).backward()
    results['bucket_view'] = dict(grads=grads(model), calls=calls)

    for path in SMALL_BACKBONES:
        model = backbone_from_config(path)
        plain = backbone_from_config(path, norm_cfg=dict(type='BN'))
        facts = dict(
            types={type(m).__name__ for m in model.modules() if isinstance(m, _BatchNorm)},
            count=sum(isinstance(m, _BatchNorm) for m in model.modules()),
            plain_count=sum(isinstance(m, _BatchNorm) for m in plain.modules()))
        try:  # training forward: SyncBN would all-gather batch statistics
            model.train()(x)
            facts['train_error'] = None
        except ValueError as e:
            facts['train_error'] = str(e)
        plain.load_state_dict(model.state_dict())
        with torch.no_grad():  # eval: running statistics, nothing to sync
            same = [torch.equal(a, b) for a, b in zip(model.eval()(x), plain.eval()(x))]
        facts['eval_equal'] = all(same)
        results['syncbn'][path] = facts
    torch.save(results, osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    """Spawn the two gloo ranks once; their results, rank by rank."""
    tmp = tmp_path_factory.mktemp('dist')
    mp.spawn(_worker, args=(str(tmp / 'init'), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f'rank{r}.pth') for r in range(WORLD)]


def single_process_grads() -> dict:
    reference = revcol(0., save_memory=False)
    loss_of(reference(global_batch()), WORLD * LOCAL_BATCH).backward()
    return grads(reference)


def test_revcol_reversible_ddp_matches_single_process(ranks):
    """save_memory=True under DDP (2 ranks x 2 images, drop path 0) gives the
    gradients of one process on the 4-image batch, plain backward. Drop path
    is off here because its per-sample masks come from each rank's RNG and
    cannot be reproduced by one process on the concatenated batch."""
    expected = single_process_grads()
    for r in ranks:
        got = r['revcol'][0., True, False]
        assert got.keys() == expected.keys()
        for name in expected:
            assert rel(got[name], expected[name]) <= 1e-5, name


def test_revcol_reversible_ddp_bucket_view_and_hooks(ranks):
    """The same with gradient_as_bucket_view=True (.grad are views into DDP's
    buckets); every parameter's post-accumulate-grad hook fired once."""
    expected = single_process_grads()
    for r in ranks:
        got = r['bucket_view']
        assert got['calls'] == {name: 1 for name in expected}
        assert got['grads'].keys() == expected.keys()
        for name in expected:
            assert rel(got['grads'][name], expected[name]) <= 1e-5, name


@pytest.mark.parametrize('find_unused', [False, True])
def test_revcol_reversible_ddp_with_drop_path(ranks, find_unused):
    """Drop path on (0.3, rank-local masks): the reversible backward under DDP
    replays each rank's masks, so it equals plain DDP on the same seeds, and
    the all-reduce leaves both ranks with the same gradients; also with
    find_unused_parameters=True (DDP then searches the autograd graph)."""
    for r in ranks:
        rev, plain = r['revcol'][.3, True, find_unused], r['revcol'][.3, False, False]
        assert rev.keys() == plain.keys()
        for name in plain:
            assert rel(rev[name], plain[name]) <= 1e-5, name
        # the masks really dropped something
        assert any(rel(plain[n], r['revcol'][0., False, False][n]) > 1e-3 for n in plain)
    for name, grad in ranks[0]['revcol'][.3, True, find_unused].items():
        assert torch.equal(grad, ranks[1]['revcol'][.3, True, find_unused][name]), name


def test_syncbn_in_dense_backbones_on_cpu(ranks):
    """The dense configs' SyncBN reaches every BN of SLaK and VanillaNet (as
    many SyncBatchNorm layers as BN layers with norm_cfg BN). Whether they
    synchronise cannot be run without a GPU: torch's SyncBatchNorm refuses
    CPU input in distributed training (its batch_norm_stats/gather kernels
    are CUDA-only; mmcv's MMSyncBN asserts CUDA tensors), which this pins. In
    eval mode it is plain BN on the running statistics."""
    for r in ranks:
        for path, facts in r['syncbn'].items():
            assert facts['types'] == {'SyncBatchNorm'}, path
            assert facts['count'] == facts['plain_count'] > 0, path
            assert 'SyncBatchNorm expected input tensor to be on GPU' in \
                facts['train_error'], path
            assert facts['eval_equal'], path


@pytest.mark.parametrize('path', [SLAK_DENSE, VANILLA_DENSE,
                                  'configs/slak/cascade_slak_t_coco.py'])
def test_cpu_launch_turns_syncbn_and_nccl_into_bn_and_gloo(path):
    """tools/train.py --launcher pytorch|slurm without a GPU: SyncBN becomes
    per-process BN, nccl becomes gloo and DDP gets device_ids=None (a GPU
    machine, or --launcher none, keeps the config as it is)."""
    from mmconvarch.launch import load_config

    def load(launcher):
        with mock.patch('torch.cuda.is_available', return_value=False):
            return load_config(osp.join(REPO, path), launcher=launcher)

    single = load('none')
    assert 'SyncBN' in str(single.model)
    assert single.get('model_wrapper_cfg') is None
    cfg = load('pytorch')
    assert 'SyncBN' not in str(cfg.model)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert single.model.backbone.norm_cfg.type == 'SyncBN'
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    with mock.patch('torch.cuda.is_available', return_value=True):
        gpu = load_config(osp.join(REPO, path), launcher='slurm')
    assert 'SyncBN' in str(gpu.model) and gpu.get('model_wrapper_cfg') is None
