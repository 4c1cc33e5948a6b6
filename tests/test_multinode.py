"""tools/slurm_train.sh, slurm_test.sh and dist_train.sh run for real with 2
CPU processes (gloo): Slurm on a one-host cluster that .dev_scripts/cluster/local_slurm.sh
installs and starts (needs root + apt-get, else skipped), torchrun on one
"node" and on two node agents; and mmengine's MASTER_ADDR derivation from a
multi-node SLURM_NODELIST.

A probe hook (written into tmp_path, imported by a child config) records on
every rank what the run really was: rank, world size, backend, the launcher
env and the images it trained on."""
import fcntl
import json
import os
import os.path as osp
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest
import torch

from conftest import REPO

pytestmark = pytest.mark.slow  # multi-process launches: Slurm, torchrun

LOCAL_SLURM = osp.join(REPO, '.dev_scripts/cluster/local_slurm.sh')
ATTO = ['model.backbone.arch=atto', 'model.head.in_channels=320']
TRAIN_IMAGES, VAL_IMAGES, BATCH = 8, 4, 2  # the sample set, per-rank batch

PROBE = '''
import argparse
import fcntl
import json
import os
import os.path as osp

import torch.distributed as dist
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT',
       'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST', 'SLURM_LOCALID')


@HOOKS.register_module()
class RankProbeHook(Hook):
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.paths = []

    def _collect(self, data_batch):
        self.paths += [s.metainfo['img_path'] for s in data_batch['data_samples']]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._collect(data_batch)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._collect(data_batch)

    def _dump(self, runner, stage):
        rank, world = get_dist_info()
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        record = dict(
            rank=rank, world=world, backend=dist.get_backend(),
            wrapper=type(runner.model).__name__, iter=runner.iter,
            paths=sorted(self.paths),
            checksum=sum(p.double().sum().item() for p in model.parameters()),
            env={k: os.environ.get(k) for k in ENV})
        with open(osp.join(self.out_dir, f'{stage}_rank{rank}.json'), 'w') as f:
            json.dump(record, f)

    def after_train(self, runner):
        self._dump(runner, 'train')

    def after_test(self, runner):
        self._dump(runner, 'test')
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def probed_config(tmp_path) -> str:
    """convnextv2_t_in1k plus the probe hook; returns the config path."""
    (tmp_path / 'rank_probe.py').write_text(PROBE)
    cfg = tmp_path / 'probed_convnextv2_in1k.py'
    cfg.write_text(
        f"_base_ = [{osp.join(REPO, 'configs/convnextv2/convnextv2_t_in1k.py')!r}]\n"
        "custom_imports = dict(imports=['mmconvarch', 'rank_probe'],\n"
        "                      allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='RankProbeHook', out_dir={str(tmp_path)!r})]\n")
    return str(cfg)


def child_env(tmp_path, **extra) -> dict:
    env = dict(os.environ)
    for key in list(env):  # a test runner inside a Slurm job or torchrun
        if key.startswith(('SLURM_', 'TORCHELASTIC_')) or key in (
                'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
            del env[key]
    env['PYTHONPATH'] = os.pathsep.join(
        [str(tmp_path), REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    env['PYTHON'] = sys.executable
    env.update({k: str(v) for k, v in extra.items()})
    return env


def train_args(sample_root, work_dir):
    return ['--sample-data', sample_root, '--work-dir', work_dir,
            '--cfg-options', *ATTO, 'train_cfg.max_epochs=1',
            'default_hooks.checkpoint.interval=1', 'env_cfg.dist_cfg.backend=gloo']


def run(cmd, env, timeout=420, on_timeout=None):
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired:
        if on_timeout:
            on_timeout()
        raise
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def load_ranks(tmp_path, stage, world=2):
    records = []
    for rank in range(world):
        with open(tmp_path / f'{stage}_rank{rank}.json') as f:
            records.append(json.load(f))
    return records


def check_training(tmp_path, work_dir):
    """Both ranks trained as one world of 2 with gloo and DDP, each on its own
    half of the data, with identical weights at the end; rank 0 saved."""
    records = load_ranks(tmp_path, 'train')
    assert [r['rank'] for r in records] == [0, 1]
    for r in records:
        assert r['world'] == 2 and r['env']['WORLD_SIZE'] == '2'
        assert r['backend'] == 'gloo'
        assert r['wrapper'] == 'MMDistributedDataParallel'
        # the sampler shards: 8 images / (2 ranks x batch 2) = 2 iterations
        assert r['iter'] == TRAIN_IMAGES // (2 * BATCH)
        assert len(r['paths']) == TRAIN_IMAGES // 2
    assert not set(records[0]['paths']) & set(records[1]['paths'])
    # DDP averaged the gradients: both replicas took the same steps
    assert records[0]['checksum'] == pytest.approx(records[1]['checksum'], rel=1e-6)
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), weights_only=False)
    assert ckpt['meta']['epoch'] == 1
    assert ckpt['meta']['iter'] == TRAIN_IMAGES // (2 * BATCH)
    return records


# ----------------------------------------------------------------- slurm


def _slurm_skip_reason():
    if os.environ.get('MMCONVARCH_SKIP_SLURM'):
        return 'MMCONVARCH_SKIP_SLURM is set'
    if os.geteuid() != 0:
        return 'a local Slurm cluster needs root (apt-get, daemons)'
    if not shutil.which('apt-get') and not shutil.which('slurmctld'):
        return 'slurm is not installed and there is no apt-get'
    conf = os.environ.get('SLURM_CONF', '/etc/slurm/slurm.conf')
    if osp.exists(conf):
        with open(conf) as f:
            if 'local_slurm.sh' not in f.readline():
                return f'{conf} belongs to a real Slurm installation'
    return None


@pytest.fixture(scope='module')
def local_slurm():
    """The one-host cluster: installed and started if needed (idempotent),
    stopped again afterwards when this fixture started it. A lock keeps a
    second test session on this machine from stopping it under our jobs."""
    reason = _slurm_skip_reason()
    if reason:
        pytest.skip(reason)
    with open(osp.join(tempfile.gettempdir(), 'mmconvarch-local-slurm.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        was_running = subprocess.run(['bash', LOCAL_SLURM, 'status'],
                                     capture_output=True).returncode == 0
        try:
            start = subprocess.run(['bash', LOCAL_SLURM, 'start'], capture_output=True,
                                   text=True, timeout=600)
            assert start.returncode == 0, start.stdout + start.stderr
            again = subprocess.run(['bash', LOCAL_SLURM, 'start'], capture_output=True,
                                   text=True, timeout=120)
            assert again.returncode == 0 and 'already running' in again.stderr, again.stderr
            yield 'cpu'
        finally:
            if not was_running:
                subprocess.run(['bash', LOCAL_SLURM, 'stop'], capture_output=True,
                               timeout=120)


def test_slurm_train_and_test_two_tasks(local_slurm, tmp_path, sample_root):
    """slurm_train.sh with GPUS=2 GPUS_PER_NODE=0 (CPU tasks), then
    slurm_test.sh on the checkpoint it wrote: mmengine's slurm launcher
    derived rank/world/MASTER_ADDR from the SLURM_* variables."""
    cfg = probed_config(tmp_path)
    work_dir = str(tmp_path / 'work')
    port = free_port()
    job = f'mmca-test-{os.getpid()}'
    env = child_env(tmp_path, GPUS=2, GPUS_PER_NODE=0, CPUS_PER_TASK=1, MASTER_PORT=port)

    def cancel():
        subprocess.run(['scancel', '--name', job], capture_output=True)

    run(['bash', 'tools/slurm_train.sh', local_slurm, job, cfg, work_dir,
         *train_args(sample_root, work_dir)], env, on_timeout=cancel)
    records = check_training(tmp_path, work_dir)
    first_host = subprocess.run(
        ['scontrol', 'show', 'hostnames', records[0]['env']['SLURM_NODELIST']],
        capture_output=True, text=True, check=True).stdout.split()[0]
    for rank, r in enumerate(records):
        assert r['env']['SLURM_PROCID'] == r['env']['RANK'] == str(rank)
        assert r['env']['SLURM_NTASKS'] == '2'
        assert r['env']['LOCAL_RANK'] == r['env']['SLURM_LOCALID'] == str(rank)
        assert r['env']['MASTER_ADDR'] == first_host == 'localhost'
        assert r['env']['MASTER_PORT'] == str(port)

    out = str(tmp_path / 'preds.pkl')
    run(['bash', 'tools/slurm_test.sh', local_slurm, job, cfg,
         osp.join(work_dir, 'epoch_1.pth'), '--sample-data', sample_root,
         '--work-dir', work_dir, '--out', out, '--cfg-options', *ATTO], env, on_timeout=cancel)
    tested = load_ranks(tmp_path, 'test')
    assert [len(r['paths']) for r in tested] == [VAL_IMAGES // 2] * 2
    assert not set(tested[0]['paths']) & set(tested[1]['paths'])
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == VAL_IMAGES  # gathered from both ranks


# --------------------------------------------------------------- torchrun


def test_dist_train_one_node_two_processes(tmp_path, sample_root):
    cfg = probed_config(tmp_path)
    work_dir = str(tmp_path / 'work')
    env = child_env(tmp_path, PORT=free_port())
    run(['bash', 'tools/dist_train.sh', cfg, '2', *train_args(sample_root, work_dir)], env)
    for rank, r in enumerate(check_training(tmp_path, work_dir)):
        assert r['env']['RANK'] == r['env']['LOCAL_RANK'] == str(rank)


def test_dist_train_two_node_agents(tmp_path, sample_root):
    """NNODES=2: two torchrun agents (node ranks 0 and 1, one process each)
    rendezvous at MASTER_ADDR:PORT, as on two machines; here both are on
    localhost."""
    cfg = probed_config(tmp_path)
    work_dir = str(tmp_path / 'work')
    port = free_port()
    cmd = ['bash', 'tools/dist_train.sh', cfg, '1', *train_args(sample_root, work_dir)]
    procs = [subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=child_env(tmp_path, NNODES=2, NODE_RANK=node, MASTER_ADDR='127.0.0.1',
                      PORT=port)) for node in (0, 1)]
    try:
        outs = [p.communicate(timeout=420)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-6000:]
    for rank, r in enumerate(check_training(tmp_path, work_dir)):
        assert r['env']['RANK'] == str(rank)
        assert r['env']['LOCAL_RANK'] == '0'  # one process per node


# ------------------------------------------------- MASTER_ADDR derivation


def _fake_scontrol(bin_dir) -> None:
    """A stand-in for `scontrol show hostname node[1-2]` (no Slurm here)."""
    script = bin_dir / 'scontrol'
    script.write_text('#!/bin/sh\n[ "$3" = "node[1-2]" ] && printf "node1\\nnode2\\n"\n')
    script.chmod(0o755)


@pytest.mark.parametrize('scontrol', ['real', 'stub'])
def test_slurm_master_addr_from_multinode_nodelist(scontrol, request, tmp_path,
                                                   monkeypatch):
    """Rank 5 of 8 on a 2-node job: tools/train.py --launcher slurm goes
    through mmengine's _init_dist_slurm, which takes MASTER_ADDR from the
    first host of SLURM_NODELIST and MASTER_PORT from the env (else 29500)."""
    from unittest import mock

    import mmconvarch.launch as launch
    if scontrol == 'real':
        request.getfixturevalue('local_slurm')  # a readable slurm.conf
    else:
        _fake_scontrol(tmp_path)
        monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    for key in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv('SLURM_PROCID', '5')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'node[1-2]')

    cfg = launch.load_config(osp.join(REPO, 'configs/convnextv2/convnextv2_t_in1k.py'),
                             launcher='slurm')
    # mocks: no process group, and this process keeps its multiprocessing
    # settings (start method, OMP_NUM_THREADS)
    with mock.patch('torch.distributed.init_process_group') as init, \
            mock.patch('torch.multiprocessing.set_start_method'), \
            mock.patch('mmengine.utils.dl_utils.set_multi_processing') as mp_setup:
        launch._init_dist_without_gpu(cfg)
    assert mp_setup.call_args.kwargs['distributed'] is True
    assert init.call_args.kwargs['backend'] == 'gloo'  # no GPU: not nccl
    assert os.environ['MASTER_ADDR'] == 'node1'
    assert os.environ['MASTER_PORT'] == '29500'
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK']) == ('5', '8', '1')

    monkeypatch.setenv('MASTER_PORT', '12345')  # the documented override
    monkeypatch.setenv('MASTER_ADDR', 'head')
    with mock.patch('torch.distributed.init_process_group'), \
            mock.patch('torch.multiprocessing.set_start_method'), \
            mock.patch('mmengine.utils.dl_utils.set_multi_processing'):
        launch._init_dist_without_gpu(cfg)
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']) == ('head', '12345')
