"""2-rank DDP (gloo, CPU): masks stay identical on both ranks across several
prune/regrow events, with SNIP on rank-local batches."""
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

pytestmark = pytest.mark.slow  # spawns a 2-process gloo group

WORLD = 2
STEPS, FREQ = 6, 2  # three regrow events


class First(nn.Module):
    def forward(self, outs):
        return outs[0]


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    from torch.nn.parallel import DistributedDataParallel as DDP

    from mmconvarch.models.backbones import SLaK
    from mmconvarch.sparsity import SparseMasking, snip_scores

    results = {}
    for mode in ('broadcast', 'same_seed'):
        torch.manual_seed(0)  # identical initial weights on both ranks
        net = nn.Sequential(
            SLaK(dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
                 width_factor=1.0, kernel_size=(9, 7, 7, 5, 3),
                 norm_cfg=None), First(), nn.Linear(16, 3))
        model = DDP(net)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
        if mode == 'broadcast':
            # different generators per rank: only the broadcast from rank 0
            # can keep the ranks equal
            engine = SparseMasking(net, density=0.5, sparse_init='snip',
                                   update_frequency=FREQ, total_steps=STEPS,
                                   growth_mode='random', optimizer=opt,
                                   seed=rank)
        else:
            # no broadcast at all: same seed + all-reduced gradients suffice
            engine = SparseMasking(net, density=0.5, sparse_init='ERK',
                                   update_frequency=FREQ, total_steps=STEPS,
                                   growth_mode='gradient', optimizer=opt,
                                   seed=0, sync=False)
        g = torch.Generator().manual_seed(100 + rank)  # rank-local data

        def data():
            return (torch.randn(2, 3, 32, 32, generator=g),
                    torch.randint(0, 3, (2, ), generator=g))

        def loss_fn(m):
            x, y = data()
            return nn.functional.cross_entropy(m(x), y)

        scores = snip_scores(net, engine.candidates, loss_fn) \
            if engine.sparse_init == 'snip' else None
        engine.init_masks(scores)
        events = 0
        for _ in range(STEPS):
            x, y = data()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            events += engine.step() is not None
            opt.zero_grad()
        results[mode] = dict(
            events=events,
            masks={k: v.clone() for k, v in engine.masks.items()},
            active=engine.num_active())
    torch.save(results, osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def test_masks_identical_on_two_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / 'init'), str(tmp_path)),
             nprocs=WORLD, join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    for mode in ('broadcast', 'same_seed'):
        assert r0[mode]['events'] == r1[mode]['events'] == STEPS // FREQ
        assert r0[mode]['masks'].keys() == r1[mode]['masks'].keys()
        assert r0[mode]['masks']
        for name, mask in r0[mode]['masks'].items():
            assert torch.equal(mask, r1[mode]['masks'][name]), (mode, name)
        assert r0[mode]['active'] == r1[mode]['active']
