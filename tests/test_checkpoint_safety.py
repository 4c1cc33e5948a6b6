"""Checkpoint loading after ``mmconvarch.enable_safe_checkpoint_loading()``
(mmconvarch/checkpoint/safe_load.py): weights_only=True with an allow-list, so
a pickle payload never runs; resume of real mmengine checkpoints and
official-layout files still works; a file marked trusted loads unrestricted,
saying so. ``disable_safe_checkpoint_loading`` puts mmengine's loaders back."""
import argparse
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, load_from_http
from torch.utils.data import Dataset

from mmengine.runner import checkpoint as mmengine_checkpoint

import mmconvarch
from mmconvarch.checkpoint import safe_load
from mmconvarch.checkpoint.safe_load import TRUST_ENV, UntrustedCheckpointError
from mmconvarch.models.backbones import ConvNeXtV2


def _touch(path):
    """What a payload runs at unpickling time (here: leave a marker)."""
    open(path, 'w').close()
    return 'ran'


class Payload:
    def __init__(self, marker, via_os_system=False):
        self.marker, self.via_os_system = str(marker), via_os_system

    def __reduce__(self):
        if self.via_os_system:
            return os.system, (f'touch {self.marker}', )
        return _touch, (self.marker, )


def save_with_payload(path, marker, via_os_system=False):
    torch.save(dict(state_dict={'weight': torch.ones(2)},
                    meta=dict(payload=Payload(marker, via_os_system))), path)
    return str(path)


@pytest.fixture(autouse=True)
def safe_loading():
    """What our tools do first; undone after each test (it is process-wide)."""
    mmconvarch.enable_safe_checkpoint_loading()
    yield
    safe_load.disable_safe_checkpoint_loading()


@pytest.fixture(autouse=True)
def nothing_trusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    monkeypatch.setattr(safe_load, '_trusted', set())


def test_enable_and_disable_swap_exactly_mmengines_two_loaders():
    """Enabled: mmengine's local scheme and load_url are ours (idempotent);
    disabled: mmengine's own objects are back, and a payload is no longer
    refused by us (torch's own default decides)."""
    assert safe_load.safe_checkpoint_loading_enabled()
    mmconvarch.enable_safe_checkpoint_loading()
    assert CheckpointLoader._schemes[''] is safe_load._load_from_local
    assert mmengine_checkpoint.load_url is safe_load.load_url
    safe_load.disable_safe_checkpoint_loading()
    assert not safe_load.safe_checkpoint_loading_enabled()
    assert CheckpointLoader._schemes[''] is mmengine_checkpoint.load_from_local
    assert mmengine_checkpoint.load_url is safe_load._MMENGINE_LOADERS['load_url']
    assert mmengine_checkpoint.load_url is not safe_load.load_url
    with safe_load.safe_checkpoint_loading():  # for one block only
        assert safe_load.safe_checkpoint_loading_enabled()
    assert not safe_load.safe_checkpoint_loading_enabled()


@pytest.mark.parametrize('via_os_system', [False, True])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, via_os_system):
    marker = tmp_path / 'payload_ran'
    path = save_with_payload(tmp_path / 'evil.pth', marker, via_os_system)
    refused = 'posix.system' if via_os_system else '_touch'
    for load in (lambda: CheckpointLoader.load_checkpoint(path),
                 lambda: load_checkpoint(nn.Linear(2, 1), path),
                 lambda: ConvNeXtV2('atto', init_cfg=dict(
                     type='Pretrained', checkpoint=path)).init_weights()):
        with pytest.raises(UntrustedCheckpointError,
                           match=rf'Refusing to load .*evil.pth: .*{refused}.*'
                           rf'{TRUST_ENV}='):
            load()
    assert not marker.exists()


def test_url_download_payload_is_refused(tmp_path, monkeypatch):
    """mmengine's http(s) loader (also behind torchvision://, open-mmlab://)
    goes through torch.hub, whose default is weights_only=False."""
    marker = tmp_path / 'payload_ran'
    path = save_with_payload(tmp_path / 'evil.pth', marker)
    with pytest.raises(UntrustedCheckpointError, match='_touch'):
        load_from_http('file://' + path, model_dir=str(tmp_path / 'hub'))
    assert not marker.exists()
    # a trusted URL prefix, listed after a path (':' inside '://' is no separator)
    monkeypatch.setenv(TRUST_ENV, f'{tmp_path / "other"}{os.pathsep}file://{tmp_path}/')
    checkpoint = load_from_http('file://' + path, model_dir=str(tmp_path / 'hub'))
    assert checkpoint['meta']['payload'] == 'ran' and marker.exists()


# --- a real mmengine Runner checkpoint resumes -------------------------------

class TinyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(2)
        self.fc = nn.Linear(2, 1)

    def forward(self, x, y=None, mode='loss'):
        out = self.fc(self.bn(x))
        if mode == 'loss':
            return dict(loss=((out - y)**2).mean())
        return [out]


class TinySet(Dataset):
    metainfo = dict(classes=('a', 'b'), palette=[(1, 2, 3)])

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(x=torch.randn(2, generator=g), y=torch.randn(1, generator=g))


class Probe(Hook):
    """Records the state a run starts training from (after resuming)."""

    def before_train(self, runner):
        self.start = dict(
            epoch=runner.epoch, iter=runner.iter,
            loss=runner.message_hub.log_scalars.get('train/loss'),
            loss_mean=runner.message_hub.log_scalars['train/loss'].mean(),
            steps={int(s['step']) for s in
                   runner.optim_wrapper.state_dict()['state'].values()},
            weights={k: v.clone() for k, v in runner.model.state_dict().items()})


def tiny_runner(work_dir, max_epochs, probe=None, **kwargs):
    return Runner(
        model=TinyModel(), work_dir=work_dir,
        train_dataloader=dict(dataset=TinySet(), batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                              begin=0, end=2),
                         dict(type='MultiStepLR', milestones=[1], by_epoch=True)],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=[dict(type='EMAHook')] + ([probe] if probe else []),
        randomness=dict(seed=0), default_scope='mmengine',
        experiment_name=f'checkpoint_safety_{max_epochs}', **kwargs)


def test_runner_checkpoint_resumes_with_weights_only(tmp_path):
    work_dir = str(tmp_path / 'work')
    tiny_runner(work_dir, max_epochs=1).train()
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    # what plain weights_only=True refuses in it: all on our allow-list
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(ckpt)) == {
        'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr',
        'numpy.ndarray', 'numpy.dtype', 'numpy._core.multiarray._reconstruct',
        'numpy._core.multiarray.scalar'}
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(ckpt)
    saved = torch.load(ckpt, weights_only=False)

    probe = Probe()
    runner = tiny_runner(work_dir, max_epochs=2, probe=probe, resume=True,
                         load_from=ckpt)
    runner.train()
    start = probe.start
    assert (start['epoch'], start['iter'], start['steps']) == (1, 2, {2})
    assert isinstance(start['loss'], HistoryBuffer)
    assert start['loss_mean'] == saved['message_hub']['log_scalars'][
        'train/loss'].mean()
    # EMAHook saves the EMA weights as state_dict, the trained ones aside
    for key, value in start['weights'].items():
        assert torch.equal(value, saved['ema_state_dict']['module.' + key]), key
    assert (runner.epoch, runner.iter) == (2, 4)


# --- an official-layout checkpoint loads --------------------------------------

def test_official_layout_with_args_namespace_loads(tmp_path):
    """What the official repos save: model, model_ema, optimizer, scaler,
    epoch and the argparse Namespace of the run."""
    from test_converters import official_convnextv2_state_dict
    sd = official_convnextv2_state_dict()
    linear = nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=1e-3)
    linear(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    path = str(tmp_path / 'checkpoint-best.pth')
    torch.save(dict(model=sd, model_ema=sd, optimizer=optimizer.state_dict(),
                    epoch=299, scaler=dict(scale=65536.0, _growth_tracker=3),
                    args=argparse.Namespace(model='convnextv2_atto', lr=8e-4,
                                            input_size=224, ema=True,
                                            finetune='', drop_path=0.1,
                                            layer_decay=[0.9])), path)
    assert 'argparse.Namespace' in \
        torch.serialization.get_unsafe_globals_in_checkpoint(path)
    model = ConvNeXtV2('atto', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    assert torch.equal(model.stages[2][3].pointwise_conv1.weight,
                       sd['stages.2.3.pwconv1.weight'])
    args = CheckpointLoader.load_checkpoint(path)['args']
    assert args.model == 'convnextv2_atto' and args.layer_decay == [0.9]


# --- a file marked trusted loads unrestricted, with one log line --------------

def test_trusted_by_env_var_loads_unrestricted(tmp_path, monkeypatch, log_lines):
    trusted_dir, sibling = tmp_path / 'trusted', tmp_path / 'trusted2'
    trusted_dir.mkdir(), sibling.mkdir()
    marker = tmp_path / 'payload_ran'
    inside = save_with_payload(trusted_dir / 'mine.pth', marker)
    outside = save_with_payload(sibling / 'other.pth', marker)
    monkeypatch.setenv(TRUST_ENV, os.pathsep.join(
        [str(tmp_path / 'elsewhere.pth'), str(trusted_dir)]))
    with pytest.raises(UntrustedCheckpointError):  # a prefix is not a dir
        CheckpointLoader.load_checkpoint(outside)
    assert not marker.exists()
    checkpoint = CheckpointLoader.load_checkpoint(inside)
    assert checkpoint['meta']['payload'] == 'ran' and marker.exists()
    trust_lines = [line for line in log_lines if 'weights_only=False' in line]
    assert trust_lines == [f'Loading {inside} with weights_only=False (any code '
                           f'it holds runs): trusted by {TRUST_ENV}.']


def test_trust_checkpoint_marks_one_file(tmp_path, log_lines):
    marker = tmp_path / 'payload_ran'
    path = save_with_payload(tmp_path / 'mine.pth', marker)
    safe_load.trust_checkpoint(path)
    model = nn.Linear(2, 1)
    load_checkpoint(model, path)  # mmengine's load_from path
    assert marker.exists()
    assert sum('trusted by trust_checkpoint()' in line for line in log_lines) == 1
    marker.unlink()
    with pytest.raises(UntrustedCheckpointError):
        CheckpointLoader.load_checkpoint(
            save_with_payload(tmp_path / 'mine2.pth', marker))
    assert not marker.exists()


class GetattrPayload:
    """Reaches past the allow-list through builtins.getattr (which mmengine's
    HistoryBuffer pickles need for its statistics methods only)."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_is_limited_to_history_buffer_methods(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'state_dict': {}, 'meta': GetattrPayload()}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"getattr\(.*HistoryBuffer'>, "
                       r"'__init__'\) is not allowed"):
        CheckpointLoader.load_checkpoint(path)
