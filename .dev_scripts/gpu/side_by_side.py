"""Ours beside the official code, in one process, interleaved: the measurements of issue #26
(SLaK-T inference/training, RevCol reversible step and peak memory at 4/8/16 columns,
VanillaNet deploy batch-1 latency eager and as a CUDA graph), plus the layout our 'auto'
memory format does NOT pick, so the policy table (mmconvarch/models/memory_format.py) is
re-checked on every run.

    python .dev_scripts/gpu/side_by_side.py [--official .official] [--sections slak revcol
        vanillanet] [--columns 4 8 16] [--profile-revcol 8] [--dry-run] [--out FILE.json]

--official: a folder holding the official model files (never committed; git-ignored):
    revcol/{__init__,build,modules,revcol,revcol_function}.py   megvii-research/RevCol models/
    slak/SLaK.py                                                 VITA-Group/SLaK models/
    vanillanet/vanillanet.py                                     huawei-noah/VanillaNet models/
The official SLaK needs the cutlass iGEMM extension; as in the issue's baseline it gets
nn.Conv2d with per-axis "same" padding instead. timm (and Python 3.12's missing `imp`) are
stubbed only where not installed.
--dry-run: tiny shapes on the CPU, to check the script itself (numbers mean nothing).
Ratios are official time / ours (> 1: ours faster); medians of interleaved repeats.
"""
import argparse
import copy
import importlib
import json
import os.path as osp
import statistics
import sys
import time
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


# ------------------------------------------------------------------ official code
def _stub(name: str, **attrs) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


def _stub_missing() -> None:
    """What the official files import that this environment may lack."""
    try:
        import imp  # noqa: F401  (gone in Python 3.12; RevCol's modules.py imports it)
    except ImportError:
        _stub('imp')

    class DepthWiseConv2dImplicitGEMM(nn.Conv2d):  # the official fallback: nn.Conv2d
        def __init__(self, channels, kernel, bias=False):
            kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
            super().__init__(channels, channels, (kh, kw), padding=(kh // 2, kw // 2),
                             groups=channels, bias=bias)
    _stub('depthwise_conv2d_implicit_gemm', DepthWiseConv2dImplicitGEMM=DepthWiseConv2dImplicitGEMM)
    try:
        import timm.models.layers  # noqa: F401
        import timm.models.registry  # noqa: F401
    except ImportError:
        from mmcv.cnn.bricks import DropPath
        _stub('timm')
        _stub('timm.models')
        _stub('timm.models.layers', DropPath=DropPath, trunc_normal_=nn.init.trunc_normal_,
              weight_init=types.SimpleNamespace(trunc_normal_=nn.init.trunc_normal_))
        _stub('timm.models.registry', register_model=lambda fn: fn)


def load_official(root: str, family: str) -> types.ModuleType:
    _stub_missing()
    folder = osp.join(root, family)
    if not osp.isdir(folder):
        raise SystemExit(f'--official {root}: no {family}/ folder (see this script\'s '
                         'docstring for the files it needs)')
    if family == 'revcol':  # its files import each other as `models.X`
        package = types.ModuleType('models')
        package.__path__ = [folder]
        sys.modules['models'] = package
        return importlib.import_module('models.revcol')
    sys.path.insert(0, folder)
    module = importlib.import_module({'slak': 'SLaK', 'vanillanet': 'vanillanet'}[family])
    if family == 'slak':
        module.use_sync_bn = False  # one process: BatchNorm2d, as ours
    return module


# ------------------------------------------------------------------ timing
class Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def interleaved(self, fns: dict, repeat: int, warmup: int = 2) -> dict:
        """Median seconds per call of each function, called in turn."""
        times = {name: [] for name in fns}
        for i in range(warmup + repeat):
            for name, fn in fns.items():
                self.sync()
                start = time.perf_counter()
                fn()
                self.sync()
                if i >= warmup:
                    times[name].append(time.perf_counter() - start)
        return {name: statistics.median(t) for name, t in times.items()}

    def peak_bytes(self, fn) -> int:
        """Peak memory allocated by one call above what was live before it (CUDA only)."""
        if self.device.type != 'cuda':
            return 0
        fn()  # gradients and optimizer state exist from here on
        self.sync()
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        fn()
        self.sync()
        return torch.cuda.max_memory_allocated(self.device) - before


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Layer scales and reversible alphas at trained-like magnitudes (the inits' 1e-6 would
    make every level a near-identity; on a CPU, denormals too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit('.', 1)[-1]
            if leaf.startswith('alpha') or leaf in ('gamma', 'layer_scale'):
                p.copy_(torch.rand(p.shape, generator=g) * 0.4 + 0.1)
    return model


def train_step(model, x, target, optimizer, amp_dtype, scaler):
    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
            if isinstance(out, (tuple, list)):  # the official FullNet: ([logits], None)
                out = out[0][-1] if isinstance(out[0], (tuple, list)) else out[-1]
            loss = F.cross_entropy(out.float(), target)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return step


class PooledHead(nn.Module):
    """backbone -> last output -> (pool) -> LN -> Linear: the official classifiers' head."""

    def __init__(self, backbone: nn.Module, channels: int, pooled: bool,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.backbone, self.pooled = backbone, pooled
        self.norm = nn.Identity() if pooled else nn.LayerNorm(channels, eps=1e-6)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.backbone(x)[-1]
        return self.fc(out if self.pooled else self.norm(out.mean((2, 3))))


def _amp_dtypes(device):
    # fp32 and AMP (fp16 on a GPU; bf16 is what CPU autocast runs fast)
    return [None, torch.float16 if device.type == 'cuda' else torch.bfloat16]


def _dtype_name(dtype) -> str:
    return 'fp32' if dtype is None else f'AMP {str(dtype)[6:]}'


# ------------------------------------------------------------------ sections
def section_slak(args, device, timer) -> list:
    from mmconvarch.models.backbones import SLaK
    from mmconvarch.models.memory_format import MemoryFormatPolicy
    official = load_official(args.official, 'slak')
    if args.dry_run:
        arch, kernels, size, batch = dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]), \
            [13, 11, 9, 7, 5], 64, 2
    else:
        arch, kernels, size, batch = 'tiny', [51, 49, 47, 13, 5], 224, 64
    depths = arch['depths'] if isinstance(arch, dict) else [3, 3, 9, 3]
    dims = arch['channels'] if isinstance(arch, dict) else [96, 192, 384, 768]
    torch.manual_seed(0)
    theirs = official.SLaK(depths=depths, dims=dims, kernel_size=kernels, width_factor=1.3,
                           Decom=True, drop_path_rate=0.1).to(device)
    auto = MemoryFormatPolicy('auto', 'SLaK').layout_name(device.type)
    other = 'contiguous' if auto == 'channels_last' else 'channels_last'
    ours = {}
    for layout in ('auto', other):
        backbone = SLaK(arch, kernel_size=kernels, width_factor=1.3, drop_path_rate=0.1,
                        out_indices=(3, ), gap_before_final_norm=True, memory_format=layout)
        ours[layout] = PooledHead(backbone, backbone.channels[-1], pooled=True).to(device)
    for m in (theirs, *ours.values()):
        trained_like(m)
    x = torch.randn(batch, 3, size, size, device=device)
    target = torch.randint(0, 1000, (batch, ), device=device)
    rows = []
    for amp in _amp_dtypes(device):
        models = {'official': theirs, f'ours ({auto}, default)': ours['auto'],
                  f'ours ({other})': ours[other]}
        for mode in ('inference', 'train fwd+bwd'):
            fns = {}
            for name, model in models.items():
                if mode == 'inference':
                    model.eval()

                    def fn(model=model):
                        with torch.no_grad(), torch.autocast(device.type, dtype=amp,
                                                             enabled=amp is not None):
                            model(x)
                else:
                    model.train()
                    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
                    fn = train_step(model, x, target, optimizer, amp,
                                    torch.amp.GradScaler(device.type, enabled=amp is not None))
                fns[name] = fn
            t = timer.interleaved(fns, args.repeat)
            row = dict(section='slak', mode=mode, dtype=_dtype_name(amp), batch=batch, size=size,
                       **{f'{k} img/s': batch / v for k, v in t.items()},
                       **{f'official/{k}': t['official'] / v for k, v in t.items()
                          if k != 'official'})
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


def section_revcol(args, device, timer) -> list:
    from mmconvarch.models.backbones import RevCol
    from mmconvarch.models.memory_format import MemoryFormatPolicy
    official = load_official(args.official, 'revcol')
    if args.dry_run:
        channels, layers, size, batch = [8, 16, 24, 32], [1, 1, 2, 1], 64, 2
    else:  # RevCol-T widths; the table: AMP, batch 64 @ 224
        channels, layers, size, batch = [64, 128, 256, 512], [2, 2, 4, 2], 224, 64
    auto = MemoryFormatPolicy('auto', 'RevCol').layout_name(device.type)
    other = 'contiguous' if auto == 'channels_last' else 'channels_last'
    amp = _amp_dtypes(device)[1]
    x = torch.randn(batch, 3, size, size, device=device)
    target = torch.randint(0, 1000, (batch, ), device=device)
    rows = []
    for columns in args.columns:
        torch.manual_seed(0)
        theirs = official.FullNet(list(channels), list(layers), num_subnet=columns,
                                  kernel_size=3, drop_path=0.1, save_memory=True,
                                  inter_supv=False).to(device)
        arch = dict(channels=channels, layers=layers, num_columns=columns)
        models = {'official': theirs}
        for name, layout, save_memory in ((f'ours ({auto}, default)', 'auto', True),
                                          (f'ours ({other})', other, True),
                                          ('ours plain', 'auto', False)):
            backbone = RevCol(arch, drop_path_rate=0.1, save_memory=save_memory,
                              out_indices=(3, ), memory_format=layout)
            models[name] = PooledHead(backbone, channels[-1], pooled=False).to(device)
        fns = {}
        for name, model in models.items():
            trained_like(model.train())
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
            fns[name] = train_step(model, x, target, optimizer, amp,
                                   torch.amp.GradScaler(device.type, enabled=amp is not None))
        peaks = {name: timer.peak_bytes(fn) / 2**20 for name, fn in fns.items()}
        t = timer.interleaved(fns, args.repeat)
        default = f'ours ({auto}, default)'
        row = dict(section='revcol', columns=columns, dtype=_dtype_name(amp), batch=batch,
                   size=size, **{f'{k} ms': 1000 * v for k, v in t.items()},
                   **{f'official/{k}': t['official'] / v for k, v in t.items()
                      if k not in ('official', 'ours plain')},
                   **{'reversible/plain': t[default] / t['ours plain'],
                      'official reversible/our plain': t['official'] / t['ours plain']},
                   **({f'{k} peak MiB': v for k, v in peaks.items()} if device.type == 'cuda'
                      else {}))
        rows.append(row)
        print(_fmt(row), flush=True)
        if columns in args.profile_revcol:
            for name in ('official', default):
                print(f'--- torch.profiler, {name}, {columns} columns, one step')
                print(_profile(fns[name], device))
        del models, fns
    return rows


def section_revcol_cls(args, device, timer) -> list:
    """The whole classifier step with intermediate supervision: our RevColClassifier (the
    config's model, batch augments off) against the official FullNet(inter_supv=True) with
    its compound loss (main.py/loss.py: BCE reconstruction x 3.0, aux CE x 0.7, last CE)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmpretrain.structures import DataSample
    official = load_official(args.official, 'revcol')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'revcol', 'revcol_t_in1k.py'))
    init_default_scope('mmpretrain')
    cfg.model.pop('train_cfg', None)  # Mixup/CutMix: the official applies them in the loader
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)  # as the Runner does
    channels, layers, columns = [64, 128, 256, 512], [2, 2, 4, 2], 4
    size, batch = (64, 2) if args.dry_run else (224, 64)
    if args.dry_run:
        channels, layers = [8, 16, 24, 32], [1, 1, 1, 1]
        cfg.model.backbone.arch = dict(channels=channels, layers=layers, num_columns=columns)
        cfg.model.head.in_channels = channels[-1]
    torch.manual_seed(0)
    theirs = official.FullNet(list(channels), list(layers), num_subnet=columns, kernel_size=3,
                              drop_path=0.1, save_memory=True, inter_supv=True).to(device)
    ours = MODELS.build(cfg.model).to(device)
    amp = _amp_dtypes(device)[1]
    x = torch.randn(batch, 3, size, size, device=device)
    target = torch.randint(0, 1000, (batch, ), device=device)
    samples = [DataSample().set_gt_label(int(t)) for t in target]
    bce, ce = nn.BCEWithLogitsLoss(), nn.CrossEntropyLoss()

    def official_loss():
        labels, features = theirs(x)
        image = x.clamp(0.01, 0.99)
        losses = [bce(f, image) * (1 - i / len(features)) * 3.0
                  + ce(labels[i].float(), target) * ((i + 1) / len(labels)) * 0.7
                  for i, f in enumerate(features)]
        return sum(losses) + ce(labels[-1].float(), target)

    def our_loss():
        return sum(v for k, v in ours(x, samples, mode='loss').items() if 'loss' in k)

    fns = {}
    for name, model, loss_fn in (('official', theirs, official_loss), ('ours', ours, our_loss)):
        trained_like(model.train())
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
        scaler = torch.amp.GradScaler(device.type, enabled=amp is not None)

        def step(optimizer=optimizer, scaler=scaler, loss_fn=loss_fn):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss = loss_fn()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        fns[name] = step
    t = timer.interleaved(fns, args.repeat)
    row = dict(section='revcol classifier (inter_supv)', columns=columns, dtype=_dtype_name(amp),
               batch=batch, size=size, **{f'{k} img/s': batch / v for k, v in t.items()},
               **{'official/ours': t['official'] / t['ours']})
    print(_fmt(row), flush=True)
    return [row]


def section_vanillanet(args, device, timer) -> list:
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from mmconvarch.deploy import latency_model, switch_to_deploy
    official = load_official(args.official, 'vanillanet')
    rows = []
    for arch in args.vanillanet_archs:
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'vanillanet',
                                       f'vanillanet_{arch}_in1k.py'))
        init_default_scope('mmpretrain')
        cfg.model.backbone.init_cfg = None
        torch.manual_seed(0)
        theirs = getattr(official, f'vanillanet_{arch}')().eval()
        theirs.switch_to_deploy()
        ours_cl = MODELS.build(cfg.model).eval()
        switch_to_deploy(ours_cl)
        ours_nchw = copy.deepcopy(ours_cl)
        from mmconvarch.models.memory_format import MemoryFormatPolicy
        ours_nchw.backbone.memory_format = MemoryFormatPolicy('contiguous', 'VanillaNet')
        size = 64 if args.dry_run else 224
        for dtype in (torch.float32, torch.float16 if device.type == 'cuda' else torch.bfloat16):
            x = torch.randn(1, 3, size, size, device=device, dtype=dtype)
            nets = {'official': theirs,
                    'ours (auto, default)': TensorForward(ours_cl),
                    'ours (contiguous)': TensorForward(ours_nchw)}
            nets = {k: v.to(device=device, dtype=dtype).eval() for k, v in nets.items()}
            fns = {}
            with torch.no_grad():
                for name, net in nets.items():
                    fns[f'{name} eager'] = lambda net=net: net(x)
                    graphed = latency_model(net, x)
                    fns[f'{name} graph'] = lambda g=graphed: g(x)
                t = timer.interleaved(fns, args.repeat * 20, warmup=10)
            row = dict(section='vanillanet', arch=arch, dtype=str(dtype)[6:], batch=1,
                       size=size, **{f'{k} ms': 1000 * v for k, v in t.items()},
                       **{'official eager/ours graph':
                          t['official eager'] / t['ours (auto, default) graph'],
                          'official graph/ours graph':
                          t['official graph'] / t['ours (auto, default) graph']})
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


class TensorForward(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def _profile(fn, device) -> str:
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                           if device.type == 'cuda' else [])
    fn()
    with profile(activities=activities) as prof:
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    key = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    return prof.key_averages().table(sort_by=key, row_limit=15, max_name_column_width=60)


def _fmt(row: dict) -> str:
    return ', '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}'
                     for k, v in row.items())


SECTIONS = {'slak': section_slak, 'revcol': section_revcol, 'revcol-cls': section_revcol_cls,
            'vanillanet': section_vanillanet}


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--official', default=osp.join(REPO, '.official'))
    parser.add_argument('--sections', nargs='+', default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument('--columns', type=int, nargs='+', default=[4, 8, 16])
    parser.add_argument('--vanillanet-archs', nargs='+', default=['5', '13'])
    parser.add_argument('--profile-revcol', type=int, nargs='*', default=[],
                        help='print a torch.profiler table at these column counts')
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--dry-run', action='store_true', help='tiny shapes on the CPU')
    parser.add_argument('--out', help='also write the rows to this .json')
    args = parser.parse_args(argv)
    if args.dry_run:
        device = torch.device('cpu')
        args.columns, args.repeat, args.vanillanet_archs = [2], 1, ['5']
        args.profile_revcol = args.profile_revcol and [2]
    else:
        if not torch.cuda.is_available():
            raise SystemExit('side_by_side.py measures a GPU; use --dry-run on a CPU')
        device = torch.device('cuda')
        torch.backends.cudnn.benchmark = True
    timer = Timer(device)
    print(f'torch {torch.__version__}, device {device}'
          + (f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''))
    rows = []
    for name in args.sections:
        rows += SECTIONS[name](args, device, timer)
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == '__main__':
    main()
