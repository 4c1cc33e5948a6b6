"""--resume (tools/train.py, mmconvarch/launch.py): a broken newest checkpoint is skipped, a
copied work_dir resumes from itself, checkpoints are written crash-consistently, and a resumed
run with the shipped SLaK ImageNet config (Mixup/CutMix on) equals the uninterrupted one."""
import errno
import os
import os.path as osp
import random
import shutil
import warnings

import numpy as np
import pytest
import torch

from conftest import REPO, load_tool
from mmconvarch.launch import (CheckpointWriteError, checkpoint_problem,
                               make_checkpoint_saves_atomic, resolve_resume_checkpoint)


def _save(path, value=0):
    torch.save({'meta': {'epoch': value}, 'state_dict': {'w': torch.full((4,), float(value))}},
               path)


def _point(work_dir, target):
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(target)


@pytest.fixture
def run_dir(tmp_path):
    """A work_dir as mmengine leaves it after 3 epochs: epoch_1..3.pth, pointer to epoch_3."""
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    for epoch in (1, 2, 3):
        _save(work_dir / f'epoch_{epoch}.pth', epoch)
    _point(work_dir, str(work_dir / 'epoch_3.pth'))
    return str(work_dir)


def _resolve_quietly(work_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        path = resolve_resume_checkpoint(work_dir)
    return path, [str(w.message) for w in caught]


def test_intact_pointer_is_followed_without_warning(run_dir):
    path, caught = _resolve_quietly(run_dir)
    assert path == osp.join(run_dir, 'epoch_3.pth') and caught == []


@pytest.mark.parametrize('damage', ['truncate', 'empty', 'delete', 'empty_pointer', 'garbage'])
def test_broken_newest_falls_back_to_newest_intact(run_dir, damage):
    newest = osp.join(run_dir, 'epoch_3.pth')
    if damage == 'truncate':
        with open(newest, 'rb') as f:
            data = f.read()
        with open(newest, 'wb') as f:
            f.write(data[:len(data) // 2])
    elif damage == 'empty':
        open(newest, 'wb').close()
    elif damage == 'delete':
        os.remove(newest)
    elif damage == 'garbage':
        with open(newest, 'wb') as f:
            f.write(os.urandom(3000))
    else:
        _point(run_dir, '')
    path, caught = _resolve_quietly(run_dir)
    if damage == 'empty_pointer':  # epoch_3 itself is intact: the newest intact one
        assert path == newest
        assert len(caught) == 1 and 'last_checkpoint is empty' in caught[0]
        return
    assert path == osp.join(run_dir, 'epoch_2.pth')
    assert len(caught) == 1 and newest in caught[0] and 'epoch_2.pth' in caught[0]
    assert checkpoint_problem(newest) is not None
    assert torch.load(path)['meta']['epoch'] == 2


def test_no_intact_checkpoint_is_one_clear_error(run_dir):
    for epoch in (1, 2, 3):
        open(osp.join(run_dir, f'epoch_{epoch}.pth'), 'wb').close()
    with pytest.raises(SystemExit) as e:
        resolve_resume_checkpoint(run_dir)
    message = str(e.value)
    assert run_dir in message and 'epoch_1.pth: empty (0 bytes)' in message
    assert 'epoch_3.pth is empty' in message


def test_nothing_saved_yet_starts_afresh(tmp_path):
    assert resolve_resume_checkpoint(str(tmp_path)) is None


def test_copied_work_dir_resumes_from_itself(run_dir, tmp_path, capsys):
    copy = str(tmp_path / 'copy')
    shutil.copytree(run_dir, copy)
    _save(osp.join(copy, 'epoch_3.pth'), 33)  # tell the copy's file from the original's
    with open(osp.join(copy, 'last_checkpoint')) as f:
        assert f.read() == osp.join(run_dir, 'epoch_3.pth')  # mmengine's absolute pointer
    path, caught = _resolve_quietly(copy)
    assert path == osp.join(copy, 'epoch_3.pth') and caught == []
    assert 'outside this work_dir' in capsys.readouterr().out
    # the original is moved away: the copy still resumes from itself
    shutil.rmtree(run_dir)
    assert _resolve_quietly(copy)[0] == osp.join(copy, 'epoch_3.pth')


def test_pointer_outside_without_a_copy_inside_is_followed(tmp_path):
    """CheckpointHook(out_dir=...) keeps checkpoints outside the work_dir: that stays."""
    work_dir, out_dir = tmp_path / 'work', tmp_path / 'out'
    work_dir.mkdir()
    out_dir.mkdir()
    _save(out_dir / 'iter_8.pth', 8)
    _point(str(work_dir), str(out_dir / 'iter_8.pth'))
    assert _resolve_quietly(str(work_dir)) == (str(out_dir / 'iter_8.pth'), [])


def _files(folder):
    return sorted(n for n in os.listdir(folder) if 'pth' in n or n.endswith('.part'))


def _toy_runner(work_dir):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 8)

        def forward(self, x, mode='tensor'):
            return self.linear(x)

    runner = Runner(model=Toy(), work_dir=str(work_dir), experiment_name='toy',
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                  train_dataloader=dict(dataset=[torch.zeros(8)] * 2, batch_size=1,
                                        sampler=dict(type='DefaultSampler', shuffle=False),
                                        collate_fn=dict(type='default_collate')),
                  train_cfg=dict(by_epoch=True, max_epochs=1),
                  default_hooks=dict(checkpoint=None, logger=None), default_scope='mmengine')
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    return runner


def test_checkpoint_is_renamed_into_place_when_complete(tmp_path):
    runner = _toy_runner(tmp_path / 'work')
    make_checkpoint_saves_atomic(runner)
    runner.save_checkpoint(runner.work_dir, 'epoch_1.pth')
    assert _files(runner.work_dir) == ['epoch_1.pth']
    assert checkpoint_problem(osp.join(runner.work_dir, 'epoch_1.pth')) is None
    saved = torch.load(osp.join(runner.work_dir, 'epoch_1.pth'), weights_only=False)
    assert torch.equal(saved['state_dict']['linear.weight'], runner.model.linear.weight)


def test_full_disk_leaves_no_partial_file_and_names_the_path(tmp_path, monkeypatch):
    from mmengine.fileio.backends import LocalBackend
    runner = _toy_runner(tmp_path / 'work')
    make_checkpoint_saves_atomic(runner)

    def put_until_full(self, obj, filepath):  # half the bytes land, then ENOSPC
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(LocalBackend, 'put', put_until_full)
    with pytest.raises(CheckpointWriteError) as e:
        runner.save_checkpoint(runner.work_dir, 'epoch_1.pth')
    final = osp.join(runner.work_dir, 'epoch_1.pth')
    assert e.value.errno == errno.ENOSPC and final in str(e.value)
    assert 'needs about 2' in str(e.value)  # 8x8 + 8 fp32 weights, twice (SGD has no state)
    assert _files(runner.work_dir) == []  # nothing partial left behind


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_unwritable_work_dir_is_one_error(tmp_path):
    runner = _toy_runner(tmp_path / 'work')
    make_checkpoint_saves_atomic(runner)
    os.chmod(runner.work_dir, 0o555)
    try:
        with pytest.raises(CheckpointWriteError, match=osp.join(runner.work_dir, 'epoch_1.pth')):
            runner.save_checkpoint(runner.work_dir, 'epoch_1.pth')
    finally:
        os.chmod(runner.work_dir, 0o755)


def test_step_seed_depends_on_position_only():
    from mmconvarch.engine.hooks import step_seed
    assert step_seed(7, 'iter', 3) == step_seed(7, 'iter', 3)
    seeds = {step_seed(s, t, p) for s in (0, 7) for t in ('epoch', 'iter', 'workers')
             for p in range(5)}
    assert len(seeds) == 30 and max(seeds) < 2**31


# --- exact resume with the shipped SLaK ImageNet config ---------------------------------------

TINY_SLAK = f"""_base_ = ['{REPO}/configs/slak/slak_t_in1k.py']
model = dict(backbone=dict(arch=dict(_delete_=True, depths=[1, 1, 1, 1],
                                     channels=[8, 8, 16, 16]),
                           kernel_size=[13, 11, 9, 7, 5], width_factor=1.0,
                           drop_path_rate=0.5, norm_cfg=dict(type='BN')),
             head=dict(in_channels=16))
# as shipped but prune/regrow (random growth) every 3 steps, so it happens in both halves, and
# ERK: snip at density 0.6 would leave some layers of a model this small without a weight
custom_hooks = [dict(type='mmconvarch.SparseRegrowHook', density=0.6, sparse_init='ERK',
                     prune_rate=0.5, update_frequency=3, growth_mode='random',
                     prune_mode='magnitude')]
"""


class Killed(Exception):
    """Stands for kill -9: the process state after the checkpoint is lost."""


def _train(train_tool, argv, kill_after_epoch=None, monkeypatch=None):
    if kill_after_epoch is not None:
        from mmengine.hooks import Hook

        class KillAfter(Hook):
            def after_train_epoch(self, runner):
                if runner.epoch + 1 == kill_after_epoch:
                    raise Killed

        build = train_tool.build_runner

        def build_and_arm(cfg):
            runner = build(cfg)
            runner.register_hook(KillAfter(), priority='LOWEST')  # after the checkpoint
            return runner

        monkeypatch.setattr(train_tool, 'build_runner', build_and_arm)
        with pytest.raises(Killed):
            train_tool.main(argv)
        monkeypatch.setattr(train_tool, 'build_runner', build)
    else:
        train_tool.main(argv)


def _assert_same_checkpoint(a, b):
    assert a['meta']['epoch'] == b['meta']['epoch'] and a['meta']['iter'] == b['meta']['iter']
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key in a['state_dict']:  # every parameter and buffer (the masks are buffers too)
        assert torch.equal(a['state_dict'][key], b['state_dict'][key]), key
    sa, sb = a['optimizer']['state'], b['optimizer']['state']
    assert sa.keys() == sb.keys()
    for index in sa:
        for name in sa[index]:
            assert torch.equal(torch.as_tensor(sa[index][name]),
                               torch.as_tensor(sb[index][name])), (index, name)
    ra, rb = a['sparse_regrow'], b['sparse_regrow']
    flat_a, flat_b = [], []

    def flatten(node, out):
        if isinstance(node, dict):
            for k in sorted(node, key=str):
                out.append(k)
                flatten(node[k], out)
        elif isinstance(node, (list, tuple)):
            for v in node:
                flatten(v, out)
        else:
            out.append(node)
    flatten(ra, flat_a)
    flatten(rb, flat_b)
    assert len(flat_a) == len(flat_b)
    for x, y in zip(flat_a, flat_b):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y)
        else:
            assert x == y


def _with_shipped_pipeline_and_workers(load_config):
    """load_config, then the shipped config's random train pipeline (RandomResizedCrop,
    RandAugment, RandomErasing; 64 px) on the sample images, in 2 data loader workers."""
    from mmengine.config import Config

    def load(*args, **kwargs):
        cfg = load_config(*args, **kwargs)
        shipped = Config.fromfile(osp.join(REPO, 'configs/slak/slak_t_in1k.py'))
        pipeline = shipped.train_dataloader.dataset.pipeline
        for t in pipeline:
            if t['type'] == 'RandomResizedCrop':
                t['scale'] = 64
        cfg.train_dataloader.dataset.pipeline = pipeline
        cfg.train_dataloader.num_workers = 2
        cfg.train_dataloader.persistent_workers = False  # as shipped (unset: False)
        return cfg
    return load


@pytest.mark.slow  # three short training runs of the SLaK config
@pytest.mark.parametrize('workers', [0, 2])
def test_resumed_slak_run_equals_the_uninterrupted_one(tmp_path, sample_root, monkeypatch,
                                                       workers):
    """4 epochs straight vs 2 epochs, killed, --resume to 4: Mixup/CutMix as shipped,
    validation after every epoch (it draws from the torch generator), no fixed seed (the
    shipped randomness: the resumed run takes the checkpoint's), drop path, random mask
    growth; with workers=2 also the shipped random data pipeline in 2 worker processes:
    every tensor is equal."""
    config = tmp_path / 'slak_tiny.py'
    config.write_text(TINY_SLAK)
    train = load_tool('tools/train.py')
    if workers:
        monkeypatch.setattr(train, 'load_config',
                            _with_shipped_pipeline_and_workers(train.load_config))
    common = [str(config), '--sample-data', sample_root, '--cfg-options',
              'train_cfg.max_epochs=4', 'train_cfg.val_interval=1',
              'default_hooks.checkpoint.interval=1']
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    _train(train, common + ['--work-dir', resumed], kill_after_epoch=2, monkeypatch=monkeypatch)
    assert not osp.exists(osp.join(resumed, 'epoch_3.pth'))
    # the killed run drew its seed (randomness.seed is unset as shipped): the uninterrupted
    # run gets the same one
    seed = torch.load(osp.join(resumed, 'epoch_2.pth'), weights_only=False)['meta']['seed']
    _train(train, common + [f'randomness.seed={seed}', '--work-dir', straight])
    random.seed(1)  # the resumed process's global state must not matter
    np.random.seed(1)
    torch.manual_seed(1)
    _train(train, common + ['--work-dir', resumed, '--resume'])
    a = torch.load(osp.join(straight, 'epoch_4.pth'), weights_only=False)
    b = torch.load(osp.join(resumed, 'epoch_4.pth'), weights_only=False)
    assert a['meta']['seed'] == b['meta']['seed']
    _assert_same_checkpoint(a, b)


@pytest.mark.slow
def test_train_tool_resumes_past_a_truncated_checkpoint(tmp_path, sample_root):
    """tools/train.py --resume after the newest checkpoint was cut short (full disk before
    crash-consistent saves): resumes from the one before, trains on, one warning."""
    config = tmp_path / 'slak_tiny.py'
    config.write_text(TINY_SLAK)
    train = load_tool('tools/train.py')
    work_dir = str(tmp_path / 'work')
    common = [str(config), '--sample-data', sample_root, '--work-dir', work_dir,
              '--cfg-options', 'default_hooks.checkpoint.interval=1']
    train.main(common + ['train_cfg.max_epochs=2'])
    assert not [n for n in os.listdir(work_dir) if n.endswith('.part')]
    newest = osp.join(work_dir, 'epoch_2.pth')
    with open(newest, 'r+b') as f:
        f.truncate(os.path.getsize(newest) // 3)
    with pytest.warns(UserWarning, match='epoch_2.pth is truncated') as caught:
        train.main(common + ['train_cfg.max_epochs=3', '--resume'])
    assert len([w for w in caught if '--resume' in str(w.message)]) == 1
    done = torch.load(osp.join(work_dir, 'epoch_3.pth'), weights_only=False)
    assert done['meta']['epoch'] == 3


KILLER = """# imported by the config in a subprocess: kill -9 halfway through writing epoch_2.pth
import os
import signal

from mmengine.fileio.backends import LocalBackend

_put = LocalBackend.put


def put_then_die(self, obj, filepath):
    if 'epoch_2' in str(filepath):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return _put(self, obj, filepath)


LocalBackend.put = put_then_die
"""


@pytest.mark.slow  # a training subprocess and two in-process runs
def test_kill_9_while_writing_a_checkpoint(tmp_path, sample_root):
    """tools/train.py killed (SIGKILL) halfway through writing epoch_2.pth: no epoch_2.pth
    exists (only the .part), the pointer still names epoch_1, --resume continues from it
    without a warning and ends equal to an uninterrupted run."""
    import subprocess
    import sys
    (tmp_path / 'killer.py').write_text(KILLER)
    config = tmp_path / 'slak_tiny.py'
    config.write_text(TINY_SLAK)
    killed_config = tmp_path / 'slak_tiny_killed.py'
    killed_config.write_text(
        "_base_ = ['./slak_tiny.py']\n"
        "custom_imports = dict(imports=['mmconvarch', 'killer'], allow_failed_imports=False)\n")
    work_dir, straight = str(tmp_path / 'work'), str(tmp_path / 'straight')
    options = ['--sample-data', sample_root, '--cfg-options', 'train_cfg.max_epochs=2',
               'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
               'randomness.seed=3']
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), REPO, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), str(killed_config),
                           *options, '--work-dir', work_dir], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert _files(work_dir) == ['.epoch_2.pth.part', 'epoch_1.pth']
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().endswith('epoch_1.pth')
    train = load_tool('tools/train.py')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        train.main([str(config), *options, '--work-dir', work_dir, '--resume'])
    assert not [w for w in caught if '--resume' in str(w.message)]  # nothing was broken
    assert _files(work_dir) == ['epoch_1.pth', 'epoch_2.pth']  # the .part was replaced
    train.main([str(config), *options, '--work-dir', straight])
    _assert_same_checkpoint(torch.load(osp.join(straight, 'epoch_2.pth'), weights_only=False),
                            torch.load(osp.join(work_dir, 'epoch_2.pth'), weights_only=False))


def test_resume_path_to_a_broken_file_is_one_error(tmp_path, sample_root):
    train = load_tool('tools/train.py')
    broken = tmp_path / 'epoch_7.pth'
    broken.write_bytes(b'')
    config = osp.join(REPO, 'configs/slak/slak_t_in1k.py')
    with pytest.raises(SystemExit, match=f'--resume {broken}: the checkpoint is empty'):
        train.main([config, '--sample-data', sample_root, '--work-dir', str(tmp_path / 'w'),
                    '--resume', str(broken)])
    with pytest.raises(SystemExit, match='the checkpoint is missing'):
        train.main([config, '--sample-data', sample_root, '--work-dir', str(tmp_path / 'w'),
                    '--resume', str(tmp_path / 'nothing.pth')])


def test_unusable_work_dir_is_one_error_before_training(tmp_path, sample_root):
    """A file where the work_dir should be (works as root too, unlike a read-only folder)."""
    train = load_tool('tools/train.py')
    (tmp_path / 'taken').write_text('')
    work_dir = str(tmp_path / 'taken' / 'work')
    with pytest.raises(SystemExit, match=f'work_dir {work_dir} is not writable'):
        train.main([osp.join(REPO, 'configs/slak/slak_t_in1k.py'), '--sample-data', sample_root,
                    '--work-dir', work_dir])
