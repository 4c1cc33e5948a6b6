"""tools/test.py and load_from refuse a checkpoint that does not fit the model (one error with
the keys, an explicit opt-out), and a file that is not a checkpoint (empty, truncated, random
bytes, text) is one error naming it and the problem, through every path that loads one."""
import os
import os.path as osp
import re

import pytest
import torch

from conftest import REPO, load_tool

CLS_CONFIG = osp.join(REPO, 'configs/convnextv2/convnextv2_t_in1k.py')
OTHER_CONFIG = osp.join(REPO, 'configs/vanillanet/vanillanet_5_in1k.py')
ATTO = ['model.backbone.arch=atto', 'model.head.in_channels=320']


def _save_model(config: str, options: list, path: str, transform=None) -> str:
    from mmengine.config import DictAction

    from mmconvarch.launch import build_model_from_config
    parsed = {}
    for item in options:
        key, value = item.split('=', 1)
        parsed[key] = DictAction._parse_iterable(value)
    _, model = build_model_from_config(config, cfg_options=parsed)
    state = model.state_dict()
    if transform is not None:
        state = transform(state)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpts')
    atto = _save_model(CLS_CONFIG, ATTO, str(root / 'atto.pth'))
    other = _save_model(OTHER_CONFIG, [], str(root / 'vanillanet_5.pth'))
    backbone = _save_model(CLS_CONFIG, ATTO, str(root / 'backbone_only.pth'), lambda sd: {
        k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')})
    data = open(atto, 'rb').read()
    bad = {'empty': b'', 'truncated': data[:len(data) // 2], 'random': os.urandom(4096),
           'text': b'version https://git-lfs.github.com/spec/v1\noid sha256:0123\n'}
    for name, content in bad.items():
        with open(root / f'{name}.pth', 'wb') as f:
            f.write(content)
    return dict(atto=atto, other=other, backbone=backbone,
                **{name: str(root / f'{name}.pth') for name in bad})


def _test(checkpoint, sample_root, work_dir, *extra):
    test = load_tool('tools/test.py')
    test.main([CLS_CONFIG, checkpoint, '--sample-data', sample_root, '--work-dir',
               str(work_dir), *extra, '--cfg-options', *ATTO])


def test_matching_checkpoint_loads_and_evaluates(checkpoints, sample_root, tmp_path):
    _test(checkpoints['atto'], sample_root, tmp_path)


def test_checkpoint_of_another_config_is_refused_with_the_keys(checkpoints, sample_root,
                                                                tmp_path):
    with pytest.raises(SystemExit) as e:
        _test(checkpoints['other'], sample_root, tmp_path)
    message = str(e.value)
    assert checkpoints['other'] in message and 'does not fit the model' in message, message
    assert 'model keys missing from the checkpoint: backbone.' in message, message
    assert 'checkpoint keys the model does not have' in message, message
    assert '--non-strict' in message and 'load_from_strict=False' in message, message
    assert '(' in message and 'more)' in message  # shortened: a count and the first keys
    assert len(message) < 3000, message


def test_non_strict_opt_out_runs(checkpoints, sample_root, tmp_path):
    _test(checkpoints['other'], sample_root, tmp_path, '--non-strict')


def test_backbone_keys_without_prefix_are_refused(checkpoints, sample_root, tmp_path):
    with pytest.raises(SystemExit) as e:
        _test(checkpoints['backbone'], sample_root, tmp_path)
    message = str(e.value)
    assert checkpoints['backbone'] in message and "prefix their keys with 'backbone.'" in message
    assert 'missing from the checkpoint: backbone.' in message, message


def test_load_from_in_training_is_strict(checkpoints, sample_root, tmp_path):
    train = load_tool('tools/train.py')
    with pytest.raises(SystemExit, match='does not fit the model') as e:
        train.main([CLS_CONFIG, '--sample-data', sample_root, '--work-dir', str(tmp_path),
                    '--cfg-options', *ATTO, f'load_from={checkpoints["other"]}'])
    assert checkpoints['other'] in str(e.value)


PROBLEMS = {'empty': 'empty (0 bytes)', 'truncated': 'truncated',
            'random': 'not a torch checkpoint', 'text': 'a text file, not a torch checkpoint'}


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_corrupt_file_through_the_safe_loader(checkpoints, kind):
    from mmconvarch.checkpoint import CorruptCheckpointError, load_checkpoint_file
    with pytest.raises(CorruptCheckpointError) as e:
        load_checkpoint_file(checkpoints[kind])
    message = str(e.value)
    assert checkpoints[kind] in message and PROBLEMS[kind] in message, message
    assert 'trust' not in message.lower()  # not advice to trust a file that is no checkpoint


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_corrupt_file_through_mmengine_and_pretrained_init(checkpoints, kind):
    """load_checkpoint (load_from, resume) and a backbone's Pretrained init_cfg."""
    from mmengine.runner import load_checkpoint

    from mmconvarch.checkpoint import CorruptCheckpointError, safe_checkpoint_loading
    from mmconvarch.models import ConvNeXtV2
    with safe_checkpoint_loading():
        with pytest.raises(CorruptCheckpointError, match=re.escape(PROBLEMS[kind])) as e:
            load_checkpoint(torch.nn.Linear(1, 1), checkpoints[kind])
        assert checkpoints[kind] in str(e.value)
        backbone = ConvNeXtV2(arch='atto', init_cfg=dict(type='Pretrained',
                                                         checkpoint=checkpoints[kind]))
        with pytest.raises(CorruptCheckpointError, match=re.escape(PROBLEMS[kind])) as e:
            backbone.init_weights()
        assert checkpoints[kind] in str(e.value)


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_corrupt_file_through_the_tools(checkpoints, kind, tmp_path):
    """tools/test.py CKPT, tools/train.py load_from and --resume PATH: one SystemExit each,
    before anything is built."""
    path = checkpoints[kind]
    test = load_tool('tools/test.py')
    train = load_tool('tools/train.py')
    runs = [lambda: test.main([CLS_CONFIG, path, '--work-dir', str(tmp_path)]),
            lambda: train.main([CLS_CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                                f'load_from={path}']),
            lambda: train.main([CLS_CONFIG, '--work-dir', str(tmp_path), '--resume', path])]
    for run in runs:
        with pytest.raises(SystemExit) as e:
            run()
        message = str(e.value)
        assert path in message and PROBLEMS[kind] in message, message


def test_damaged_record_inside_a_complete_zip_is_corrupt_not_untrusted(tmp_path):
    """A zip with its directory but a damaged data.pkl (CRC-32 mismatch): reported as damaged,
    naming the file, not as an untrusted pickle to be trusted; and still not loaded."""
    import struct
    import zipfile

    from mmconvarch.checkpoint import CorruptCheckpointError, load_checkpoint_file
    path = str(tmp_path / 'damaged.pth')
    torch.save({'a': torch.ones(4)}, path)
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith('/data.pkl'))
    data = bytearray(open(path, 'rb').read())
    name_len, extra_len = struct.unpack('<HH', data[info.header_offset + 26:
                                                    info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + 2:start + 6] = b'\x00\x00\x00\x00'  # inside the pickle's opcodes
    with open(path, 'wb') as f:
        f.write(data)
    with pytest.raises(CorruptCheckpointError) as e:
        load_checkpoint_file(path)
    message = str(e.value)
    assert path in message and 'damaged' in message and 'CRC' in message, message


@pytest.mark.parametrize('kind', sorted(PROBLEMS))
def test_corrupt_pretrained_without_the_safe_loader(checkpoints, kind):
    """A backbone's Pretrained init_cfg in a script that did not enable the safe loader
    (mmengine's own loader): the same one error, not a bare EOFError or a miniz error."""
    from mmconvarch.checkpoint import (CorruptCheckpointError, disable_safe_checkpoint_loading,
                                       enable_safe_checkpoint_loading,
                                       safe_checkpoint_loading_enabled)
    from mmconvarch.models import ConvNeXtV2
    enabled = safe_checkpoint_loading_enabled()  # the tools of earlier tests enable it
    disable_safe_checkpoint_loading()
    try:
        backbone = ConvNeXtV2(arch='atto', init_cfg=dict(type='Pretrained',
                                                         checkpoint=checkpoints[kind]))
        with pytest.raises(CorruptCheckpointError, match=re.escape(PROBLEMS[kind])) as e:
            backbone.init_weights()
        assert checkpoints[kind] in str(e.value)
    finally:
        if enabled:
            enable_safe_checkpoint_loading()


def test_tools_test_script_exits_nonzero_without_a_traceback(checkpoints, sample_root, tmp_path):
    """As a user runs it: rc 1, the keys on stderr, no traceback, no evaluation."""
    import subprocess
    import sys
    result = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/test.py'), CLS_CONFIG, checkpoints['other'],
         '--sample-data', sample_root, '--work-dir', str(tmp_path), '--cfg-options', *ATTO],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert 'does not fit the model' in result.stderr and checkpoints['other'] in result.stderr
    assert 'accuracy/top1' not in result.stdout + result.stderr
