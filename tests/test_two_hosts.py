"""Multi-node across two test hosts: network namespaces mmca-node1 and mmca-node2 with their own
addresses, joined by veth links (.dev_scripts/cluster/netns_cluster.sh; root + iproute2, else
skipped).

- tools/slurm_train.sh / slurm_test.sh with one task on each Slurm node (one slurmd per host);
- tools/dist_train.sh with NNODES=2, one torchrun agent on each host;
- a host lost mid-run (its link cut, its processes killed): the surviving rank fails within the
  process-group timeout (env_cfg.dist_cfg.timeout), and --resume from the last checkpoint ends
  with the weights of an uninterrupted run.

Each rank reports where it ran (hostname, network namespace, the address MASTER_ADDR resolved to
and the local address that reaches it), on top of test_multinode's RankProbeHook record."""
import ast
import fcntl
import glob
import json
import os
import os.path as osp
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import torch

from conftest import CONFIGS, REPO
from test_multinode import (ATTO, BATCH, TRAIN_IMAGES, VAL_IMAGES, check_training, child_env,
                            free_port, load_ranks, probed_config, run, train_args)

CLUSTER = osp.join(REPO, '.dev_scripts/cluster/netns_cluster.sh')
HOSTS = ('mmca-node1', 'mmca-node2')
PARTITION = 'netns'
SLURM_CONF = '/run/mmca-netns/slurm.conf'
CONFIG_TIMEOUT_S = 600  # what our configs set (env_cfg.dist_cfg.timeout)
FAULT_TIMEOUT_S = 20  # the fault test's own timeout: the same key, shorter to keep CI short
EPOCHS = 3  # the uninterrupted and the interrupted run
ITERS_PER_EPOCH = TRAIN_IMAGES // (2 * BATCH)
STALL_ITER = 3  # rank 1 stops before this iteration (mid epoch 2); epoch_1.pth exists then
PARAM_BYTES = 3.7e6 * 4  # ConvNeXt V2 atto, fp32: what one gradient all-reduce moves

HOST_PROBE = '''
import json
import os
import os.path as osp
import socket
import time

from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def _source_ip(ip):
    """The local address this host uses to reach ip (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((ip, 9))
        return s.getsockname()[0]


@HOOKS.register_module()
class HostProbeHook(Hook):
    """Where this rank runs: hostname, network namespace (inode), MASTER_ADDR and its address."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def _dump(self, stage):
        rank, _ = get_dist_info()
        master = os.environ['MASTER_ADDR']
        master_ip = socket.gethostbyname(master)
        record = dict(hostname=socket.gethostname(), netns=os.stat('/proc/self/ns/net').st_ino,
                      slurmd_nodename=os.environ.get('SLURMD_NODENAME'), master_addr=master,
                      master_ip=master_ip, source_ip=_source_ip(master_ip))
        with open(osp.join(self.out_dir, f'host_{stage}_rank{rank}.json'), 'w') as f:
            json.dump(record, f)

    def before_train(self, runner):
        self._dump('train')

    def before_test(self, runner):
        self._dump('test')


@HOOKS.register_module()
class StallHook(Hook):
    """Rank `rank` stops before iteration `at_iter` and creates `marker`: the moment the test
    takes its host away. Only once: a resumed run (marker present) goes on."""

    def __init__(self, rank, at_iter, marker):
        self.rank, self.at_iter, self.marker = rank, at_iter, marker

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if get_dist_info()[0] == self.rank and runner.iter == self.at_iter and \\
                not osp.exists(self.marker):
            open(self.marker, 'w').close()
            time.sleep(3600)
'''


# ------------------------------------------------------------ the cluster


def cluster(*args, env=None, timeout=600):
    return subprocess.run(['bash', CLUSTER, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def _skip_reason():
    if os.environ.get('MMCONVARCH_SKIP_TWO_HOSTS'):
        return 'MMCONVARCH_SKIP_TWO_HOSTS is set'
    if not sys.platform.startswith('linux'):
        return 'network namespaces are Linux only'
    if os.geteuid() != 0:
        return 'two test hosts need root (network namespaces, links, /etc/hosts)'
    if not shutil.which('ip'):
        return "no iproute2 ('ip'); .ci/run installs it (apt-get install iproute2)"
    return None


def _slurm_skip_reason():
    if not shutil.which('slurmd') and not shutil.which('apt-get'):
        return 'slurm is not installed and there is no apt-get'
    return None


def _cluster_lock():
    """One user of the test hosts on this machine at a time (another test session)."""
    lock = open(osp.join(tempfile.gettempdir(), 'mmconvarch-netns-cluster.lock'), 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock  # released when closed


def _daemons():
    """Running (not zombie) munged, and slurmctld/slurmd of the two-host cluster: pid, name."""
    found = []
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as f:
                pid, rest = f.read().split(' (', 1)
        except OSError:
            continue
        name, state = rest.rsplit(') ', 1)[0], rest.rsplit(') ', 1)[1].split()[0]
        if state == 'Z' or name not in ('slurmctld', 'slurmd', 'munged'):
            continue
        if name != 'munged':  # another Slurm (local_slurm.sh) may come and go meanwhile
            try:
                with open(f'/proc/{pid}/environ', 'rb') as f:
                    if f'SLURM_CONF={SLURM_CONF}'.encode() not in f.read().split(b'\0'):
                        continue
            except OSError:
                continue
        found.append((int(pid), name))
    return sorted(found)


def machine_state():
    """What the cluster script may change, to compare before and after."""
    def out(*cmd):
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    with open('/etc/hosts') as f:
        hosts = f.read()
    return dict(
        netns=out('ip', 'netns', 'list'), hosts=hosts, routes=out('ip', '-4', 'route'),
        links=sorted(line.split()[0].split('@')[0]
                     for line in out('ip', '-br', 'link').splitlines()),
        files=[p for p in ('/run/mmca-netns', '/var/spool/mmca-netns') if osp.exists(p)],
        daemons=_daemons())


def host_addr(host):
    out = subprocess.run(['ip', '-n', host, '-4', '-o', 'addr', 'show', 'dev', 'eth0'],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[3].split('/')[0]


def netns_inode(host):
    return os.stat(f'/run/netns/{host}').st_ino


def link_bytes(host):
    """Bytes both ways on the host's link, counted on its root-namespace end."""
    index = HOSTS.index(host) + 1
    stats = f'/sys/class/net/mmca-veth{index}/statistics'
    return sum(int(open(f'{stats}/{d}_bytes').read()) for d in ('rx', 'tx'))


@pytest.fixture(scope='module')
def two_hosts():
    """The two hosts (namespaces, links, /etc/hosts names), started if needed and stopped at the
    end of the module when this fixture started them; stopping must leave the machine as it
    was (checked here)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with _cluster_lock():
        was_running = cluster('status').returncode != 1
        before = None if was_running else machine_state()
        try:
            start = cluster('start', '--no-slurm')
            assert start.returncode == 0, start.stdout + start.stderr
            yield {host: dict(addr=host_addr(host), netns=netns_inode(host)) for host in HOSTS}
        finally:
            if not was_running:
                stop = cluster('stop', timeout=120)
                assert stop.returncode == 0, stop.stderr
                assert machine_state() == before


@pytest.fixture(scope='module')
def two_host_slurm(two_hosts):
    """Slurm across the hosts: slurmctld here, one slurmd per host (stopped with the hosts)."""
    reason = _slurm_skip_reason()
    if reason:
        pytest.skip(reason)
    start = cluster('start')
    assert start.returncode == 0, start.stdout + start.stderr
    again = cluster('start', timeout=120)
    assert again.returncode == 0 and 'already running' in again.stderr, again.stderr
    sinfo = subprocess.run(['sinfo', '-h', '-N', '-o', '%N %t'], capture_output=True, text=True,
                           env=dict(os.environ, SLURM_CONF=SLURM_CONF), check=True).stdout
    assert sorted(sinfo.split()) == sorted([*HOSTS, 'idle', 'idle']), sinfo
    return PARTITION


# ------------------------------------------------------------ the runs


def two_host_config(tmp_path, stall_marker=None) -> str:
    """test_multinode's probed config plus HostProbeHook (and StallHook)."""
    base = probed_config(tmp_path)
    (tmp_path / 'host_probe.py').write_text(HOST_PROBE)
    hooks = [dict(type='RankProbeHook', out_dir=str(tmp_path)),
             dict(type='HostProbeHook', out_dir=str(tmp_path))]
    if stall_marker:
        hooks.append(dict(type='StallHook', rank=1, at_iter=STALL_ITER, marker=stall_marker))
    cfg = tmp_path / 'two_host_convnextv2_in1k.py'
    cfg.write_text(
        f'_base_ = [{base!r}]\n'
        "custom_imports = dict(imports=['mmconvarch', 'rank_probe', 'host_probe'],\n"
        '                      allow_failed_imports=False)\n'
        f'custom_hooks = {hooks!r}\n')
    return str(cfg)


def deterministic_args(sample_root, work_dir, timeout_s=None):
    """EPOCHS epochs, a checkpoint each; nothing random but the seeded shuffle: no stochastic
    depth, no Mixup/CutMix (mmengine checkpoints do not hold the RNG state, so a resumed run
    could not replay those draws)."""
    args = ['--sample-data', sample_root, '--work-dir', work_dir, '--cfg-options', *ATTO,
            f'train_cfg.max_epochs={EPOCHS}', 'default_hooks.checkpoint.interval=1',
            'env_cfg.dist_cfg.backend=gloo', 'model.backbone.drop_path_rate=0.0',
            'model.train_cfg=None', 'randomness.seed=0', 'train_dataloader.sampler.seed=0']
    if timeout_s is not None:
        args.append(f'env_cfg.dist_cfg.timeout={timeout_s}')
    return args


def start_agents(tool_args, tmp_path, port, tag):
    """tools/dist_train.sh or dist_test.sh (tool_args: the script and its arguments) with
    NNODES=2: one torchrun agent (one process) on each host; node rank 0 on mmca-node1, which is
    MASTER_ADDR. Returns the Popens and their log paths."""
    agents = []
    for node, host in enumerate(HOSTS):
        log = tmp_path / f'{tag}_{host}.log'
        env = child_env(tmp_path, NNODES=2, NODE_RANK=node, MASTER_ADDR=HOSTS[0], PORT=port,
                        OMP_NUM_THREADS=1)
        with open(log, 'w') as out:
            agents.append((subprocess.Popen(
                ['bash', CLUSTER, 'exec', host, 'bash', *tool_args],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT), log))
    return agents


def descendants(pid):
    """pid and every process below it (torchrun starts its workers in new sessions)."""
    children = {}
    for stat in glob.glob('/proc/[0-9]*/stat'):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(') ', 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split('/')[2]))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def kill_tree(pid):
    for p in descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_agents(agents, timeout=420):
    try:
        for proc, _ in agents:
            proc.wait(timeout=timeout)
    finally:
        for proc, _ in agents:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()
    for proc, log in agents:
        assert proc.returncode == 0, log.read_text()[-6000:]


def check_hosts(tmp_path, stage, hosts):
    """Rank r ran on host r+1: its hostname and network namespace; MASTER_ADDR (the first host)
    resolved to mmca-node1's address, and each rank reached it from its own host's address."""
    records = []
    for rank, host in enumerate(HOSTS):
        with open(tmp_path / f'host_{stage}_rank{rank}.json') as f:
            record = json.load(f)
        assert record['hostname'] == host
        assert record['netns'] == hosts[host]['netns']
        assert record['master_addr'] == HOSTS[0]
        assert record['master_ip'] == hosts[HOSTS[0]]['addr']
        assert record['source_ip'] == hosts[host]['addr']
        records.append(record)
    return records


def check_gathered(tmp_path, out):
    """Each rank tested its own half of the val images; the .pkl holds all of them."""
    tested = load_ranks(tmp_path, 'test')
    assert [len(r['paths']) for r in tested] == [VAL_IMAGES // 2] * 2
    assert not set(tested[0]['paths']) & set(tested[1]['paths'])
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == VAL_IMAGES  # gathered from both hosts
    assert sorted(p['img_path'] for p in preds) == sorted(tested[0]['paths'] + tested[1]['paths'])


def same_weights(ckpt_a, ckpt_b):
    a = torch.load(ckpt_a, map_location='cpu', weights_only=False)['state_dict']
    b = torch.load(ckpt_b, map_location='cpu', weights_only=False)['state_dict']
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


# ------------------------------------------------------------ the tests


def _set_timeout(path):
    """(timeout that path's own env_cfg sets or None, path's bases in this repo)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    timeout, bases = None, []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        if node.targets[0].id == '_base_':
            value = ast.literal_eval(node.value)
            bases = [osp.normpath(osp.join(osp.dirname(path), b))
                     for b in ([value] if isinstance(value, str) else value) if '::' not in b]
        elif node.targets[0].id == 'env_cfg':  # env_cfg = dict(dist_cfg=dict(timeout=...))
            for kw in getattr(node.value, 'keywords', []):
                if kw.arg == 'dist_cfg':
                    timeout = next((k.value.value for k in kw.value.keywords
                                    if k.arg == 'timeout'), None)
    return timeout, bases


def _resolved_timeout(path):
    """The timeout the nearest file of path's inheritance (path, then its bases) sets."""
    todo = [path]
    while todo:
        timeout, bases = _set_timeout(todo.pop(0))
        if timeout is not None:
            return timeout
        todo += bases
    return None


def test_two_hosts_configs_bound_the_process_group_timeout():
    """Every config a user runs sets the process-group timeout (found along its _base_ chain,
    which is cheap for all configs); mmengine's merge, checked on one config per library, keeps
    the inherited backend beside it."""
    from mmengine.config import Config
    assert {p: _resolved_timeout(p) for p in CONFIGS} == {p: CONFIG_TIMEOUT_S for p in CONFIGS}
    for rel in ('convnextv2/convnextv2_t_in1k.py', 'convnextv2/cascade_convnextv2_t_coco.py',
                'convnextv2/upernet_convnextv2_t_ade20k.py'):
        dist_cfg = Config.fromfile(osp.join(REPO, 'configs', rel),
                                   import_custom_modules=False).env_cfg.dist_cfg
        assert dict(dist_cfg) == dict(backend='nccl', timeout=CONFIG_TIMEOUT_S), rel


@pytest.mark.slow  # builds and tears down the hosts
def test_two_hosts_failed_start_leaves_machine_as_found():
    """A start that fails half-way (slurmctld cannot bind its port: the hosts are already up
    then) says why and undoes all it did; no root / no iproute2 are refused up front."""
    reason = _skip_reason() or _slurm_skip_reason()
    if reason:
        pytest.skip(reason)
    running = 'the two-host cluster is running already (this or another session)'
    if cluster('status').returncode != 1:  # before the lock: this session's fixture may hold it
        pytest.skip(running)
    with _cluster_lock():
        if cluster('status').returncode != 1:
            pytest.skip(running)
        before = machine_state()
        with socket.socket() as taken:
            taken.bind(('0.0.0.0', 0))
            taken.listen()
            failed = cluster('start', env=dict(NETNS_CLUSTER_CTLD_PORT=str(taken.getsockname()[1])))
        assert failed.returncode == 1
        assert 'hosts up' in failed.stderr  # it failed after building the hosts
        assert 'error: slurmctld refused to run' in failed.stderr
        assert 'Address already in use' in failed.stderr  # slurmctld's own words
        assert 'start failed: undoing what it did' in failed.stderr
        assert machine_state() == before

        scratch = tempfile.mkdtemp()
        try:  # the scripts where any user can read them; a PATH with bash but no ip
            os.chmod(scratch, 0o755)
            for script in ('netns_cluster.sh', 'local_slurm.sh'):
                shutil.copy(osp.join(REPO, '.dev_scripts/cluster', script), scratch)
            not_root = subprocess.run(
                ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'bash',
                 osp.join(scratch, 'netns_cluster.sh'), 'start'], capture_output=True, text=True)
            bin_dir = osp.join(scratch, 'bin')
            os.mkdir(bin_dir)
            for tool in ('bash', 'dirname', 'nproc', 'id', 'cat', 'grep'):
                os.symlink(shutil.which(tool), osp.join(bin_dir, tool))
            no_ip = subprocess.run([osp.join(bin_dir, 'bash'), CLUSTER, 'start'],
                                   capture_output=True, text=True, env=dict(PATH=bin_dir))
        finally:
            shutil.rmtree(scratch)
        assert not_root.returncode == 1 and 'error: needs root' in not_root.stderr
        assert no_ip.returncode == 1 and "error: needs iproute2's 'ip'" in no_ip.stderr
        assert machine_state() == before


@pytest.mark.slow  # multi-host
def test_two_hosts_slurm_train_and_test(two_host_slurm, two_hosts, tmp_path, sample_root):
    """GPUS=2 GPUS_PER_NODE=0 TASKS_PER_NODE=1: one task on each Slurm node. MASTER_ADDR is the
    first node of SLURM_NODELIST (mmengine) and resolves to mmca-node1's address; the gradient
    all-reduce crosses the link; slurm_test.sh gathers the predictions of both hosts."""
    cfg = two_host_config(tmp_path)
    work_dir = str(tmp_path / 'work')
    port = free_port()
    job = f'mmca-two-hosts-{os.getpid()}'
    env = child_env(tmp_path, GPUS=2, GPUS_PER_NODE=0, TASKS_PER_NODE=1, CPUS_PER_TASK=1,
                    MASTER_PORT=port, SLURM_CONF=SLURM_CONF, OMP_NUM_THREADS=1)

    def cancel():
        subprocess.run(['scancel', '--name', job], capture_output=True, env=env)

    link_before = link_bytes(HOSTS[1])
    run(['bash', 'tools/slurm_train.sh', two_host_slurm, job, cfg, work_dir,
         *train_args(sample_root, work_dir)], env, on_timeout=cancel)
    crossed = link_bytes(HOSTS[1]) - link_before
    records = check_training(tmp_path, work_dir)
    for rank, (r, host) in enumerate(zip(records, check_hosts(tmp_path, 'train', two_hosts))):
        assert host['slurmd_nodename'] == HOSTS[rank]
        assert r['env']['SLURM_NODELIST'] == 'mmca-node[1-2]'
        assert r['env']['SLURM_PROCID'] == r['env']['RANK'] == str(rank)
        assert r['env']['SLURM_NTASKS'] == '2'
        assert r['env']['LOCAL_RANK'] == r['env']['SLURM_LOCALID'] == '0'  # one task per node
        assert r['env']['MASTER_ADDR'] == HOSTS[0]
        assert r['env']['MASTER_PORT'] == str(port)
    # each iteration all-reduces the gradients between the hosts: both ways over the link
    assert crossed > ITERS_PER_EPOCH * PARAM_BYTES, crossed

    out = str(tmp_path / 'preds.pkl')
    run(['bash', 'tools/slurm_test.sh', two_host_slurm, job, cfg,
         osp.join(work_dir, 'epoch_1.pth'), '--sample-data', sample_root,
         '--work-dir', work_dir, '--out', out, '--cfg-options', *ATTO], env, on_timeout=cancel)
    check_hosts(tmp_path, 'test', two_hosts)
    check_gathered(tmp_path, out)


@pytest.fixture(scope='module')
def uninterrupted_run(two_hosts, tmp_path_factory, sample_root):
    """The reference: EPOCHS deterministic epochs, torchrun agents on both hosts, no fault."""
    tmp_path = tmp_path_factory.mktemp('uninterrupted')
    work_dir = str(tmp_path / 'work')
    cfg = two_host_config(tmp_path)
    link_before = link_bytes(HOSTS[1])
    wait_agents(start_agents(['tools/dist_train.sh', cfg, '1',
                              *deterministic_args(sample_root, work_dir)],
                             tmp_path, free_port(), 'train'))
    return dict(tmp_path=tmp_path, work_dir=work_dir, cfg=cfg,
                crossed=link_bytes(HOSTS[1]) - link_before)


@pytest.mark.slow  # multi-host
def test_two_hosts_torchrun_agents(uninterrupted_run, two_hosts, sample_root):
    """NNODES=2, one agent in each namespace: one world of 2 over the link, DDP replicas equal;
    then dist_test.sh the same way gathers the predictions of both hosts."""
    tmp_path, work_dir = uninterrupted_run['tmp_path'], uninterrupted_run['work_dir']
    records = load_ranks(tmp_path, 'train')
    check_hosts(tmp_path, 'train', two_hosts)
    for rank, r in enumerate(records):
        assert (r['rank'], r['world'], r['backend']) == (rank, 2, 'gloo')
        assert r['wrapper'] == 'MMDistributedDataParallel'
        assert r['env']['RANK'] == str(rank) and r['env']['LOCAL_RANK'] == '0'
        assert r['env']['MASTER_ADDR'] == HOSTS[0]
        assert r['iter'] == EPOCHS * ITERS_PER_EPOCH
        assert len(r['paths']) == EPOCHS * TRAIN_IMAGES // 2
    assert records[0]['checksum'] == pytest.approx(records[1]['checksum'], rel=1e-6)
    assert uninterrupted_run['crossed'] > EPOCHS * ITERS_PER_EPOCH * PARAM_BYTES
    final = osp.join(work_dir, f'epoch_{EPOCHS}.pth')
    ckpt = torch.load(final, weights_only=False)
    assert (ckpt['meta']['epoch'], ckpt['meta']['iter']) == (EPOCHS, EPOCHS * ITERS_PER_EPOCH)

    out = str(tmp_path / 'preds.pkl')
    wait_agents(start_agents(['tools/dist_test.sh', uninterrupted_run['cfg'], final, '1',
                              '--sample-data', sample_root, '--work-dir', work_dir,
                              '--out', out, '--cfg-options', *ATTO], tmp_path, free_port(),
                             'test'))
    check_hosts(tmp_path, 'test', two_hosts)
    check_gathered(tmp_path, out)


@pytest.mark.slow  # multi-host
def test_two_hosts_node_lost_mid_run_then_resume(two_hosts, uninterrupted_run, tmp_path,
                                                 sample_root):
    """Mid epoch 2, mmca-node2 is lost: its link goes down and everything our run had on it is
    killed (no FIN/RST reaches mmca-node1, as when a machine loses power). The rank on
    mmca-node1 waits in the gradient all-reduce until the process-group timeout
    (env_cfg.dist_cfg.timeout) and its agent exits non-zero. With the host back, --resume
    continues from epoch_1.pth and ends with the uninterrupted run's weights, bit for bit."""
    marker = str(tmp_path / 'rank1_stalled')
    cfg = two_host_config(tmp_path, stall_marker=marker)
    work_dir = str(tmp_path / 'work')
    args = deterministic_args(sample_root, work_dir, timeout_s=FAULT_TIMEOUT_S)
    agents = start_agents(['tools/dist_train.sh', cfg, '1', *args], tmp_path, free_port(),
                          'fault')
    (survivor, survivor_log), (lost, lost_log) = agents
    try:
        deadline = time.monotonic() + 420
        while not osp.exists(marker):
            assert time.monotonic() < deadline, 'rank 1 never reached the stall point'
            assert survivor.poll() is None and lost.poll() is None, (
                survivor_log.read_text()[-3000:] + lost_log.read_text()[-3000:])
            time.sleep(0.2)
        assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))
        cut = cluster('link', HOSTS[1], 'down')
        lost_at = time.monotonic()
        assert cut.returncode == 0, cut.stderr
        on_lost_host = descendants(lost.pid)
        assert len(on_lost_host) >= 2 and all(  # the agent, its worker: all on mmca-node2
            os.stat(f'/proc/{p}/ns/net').st_ino == two_hosts[HOSTS[1]]['netns']
            for p in on_lost_host)
        kill_tree(lost.pid)
        lost.wait()

        survivor.wait(timeout=FAULT_TIMEOUT_S + 120)  # no hang: TimeoutExpired fails the test
        waited = time.monotonic() - lost_at
    finally:
        for proc, _ in agents:
            if proc.poll() is None:
                kill_tree(proc.pid)
                proc.wait()
        cluster('link', HOSTS[1], 'up')
    log = survivor_log.read_text()
    assert survivor.returncode != 0, log[-3000:]
    # the gloo timeout ended it, not an error from the peer
    assert f'Timed out waiting {FAULT_TIMEOUT_S * 1000}ms' in log, log[-3000:]
    assert FAULT_TIMEOUT_S - 3 < waited < FAULT_TIMEOUT_S + 60, waited
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))

    wait_agents(start_agents(['tools/dist_train.sh', cfg, '1', '--resume', *args], tmp_path,
                             free_port(), 'resume'))
    resumed_log = (tmp_path / f'resume_{HOSTS[0]}.log').read_text()
    assert f'resumed epoch: 1, iter: {ITERS_PER_EPOCH}' in resumed_log
    for r in load_ranks(tmp_path, 'train'):
        assert r['iter'] == EPOCHS * ITERS_PER_EPOCH
        assert len(r['paths']) == (EPOCHS - 1) * TRAIN_IMAGES // 2  # epochs 2 and 3 only
    final = f'epoch_{EPOCHS}.pth'
    assert same_weights(osp.join(work_dir, final),
                        osp.join(uninterrupted_run['work_dir'], final)) == []
