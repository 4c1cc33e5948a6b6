"""Peak training memory and step time of RevCol, reversible vs plain.

    python tools/analysis/benchmark_revcol_memory.py [--columns 4 8 16]
        [--size 224] [--batch 2] [--device cpu|cuda] [--repeat 3]

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU it is
the peak of glibc's allocated bytes (``malloc_peak_bytes``), or without glibc
the peak of live bytes replayed from ``torch.profiler``'s memory records
(which miss what a nested backward allocates). Both count tensors
allocated during one forward+backward of the backbone (weights and their
gradients excluded: measured from a warm start with grads already allocated).
Everything is measured in this one run and printed as ratios; the
reversible step is also timed in the layout that ``memory_format='auto'``
(the default) does not pick on this device (``other/auto time``).
"""
import argparse
import copy
import ctypes
import os.path as osp
import sys
import threading
import time

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def trained_like(model, seed: int = 0):
    """Give RevCol's alphas and layer scales trained-like magnitudes, so the levels contribute
    (at init they are 1e-6) and the reversible inversion is really exercised
    (tests/test_revcol.py and tests/test_cuda.py use it too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'alpha' in name:
                p.copy_(torch.rand(p.shape, generator=g) * 0.8 + 0.3)
            elif name.endswith('gamma'):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--columns', type=int, nargs='+', default=[4, 8, 16])
    parser.add_argument('--arch', default='tiny',
                        help='channels/layers taken from this arch')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', action='store_true', help='autocast (fp16 on cuda, bf16 on cpu)')
    return parser.parse_args(argv)


def step(model, x, amp: bool):
    dtype = torch.float16 if x.is_cuda else torch.bfloat16
    with torch.autocast(x.device.type, dtype=dtype, enabled=amp):
        outs = model(x)
        loss = sum(o.float().square().mean() for o in outs)
    loss.backward()


def cpu_peak_bytes(fn) -> int:
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # each op's own (self) allocations minus frees, plus the frees that
    # happen outside any op ('[memory]' events), in time order
    deltas = sorted(
        (e.time_range.start, e.cpu_memory_usage if e.name == '[memory]'
         else e.self_cpu_memory_usage) for e in prof.events())
    live = peak = 0
    for _, delta in deltas:
        live += delta
        peak = max(peak, live)
    return peak


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
        'fordblks', 'keepcost')]


def malloc_peak_bytes(fn, interval: float = 2e-5) -> int:
    """Peak of glibc's allocated bytes (``mallinfo2``: heap in use + mmapped) over ``fn``,
    sampled by a thread (torch ops release the GIL). Unlike the profiler's live bytes it
    also sees what a nested backward allocates (the official ReverseFunction calls
    ``torch.autograd.backward`` inside its backward: one RevCol-T level measured 7.7 MiB
    by the profiler there, 53 MiB here; 41 / 46 MiB outside a backward)."""
    libc = ctypes.CDLL('libc.so.6')
    libc.mallinfo2.restype = _MallInfo2

    def allocated() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    base = allocated()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], allocated())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], allocated()) - base


def measure(model, x, amp: bool, repeat: int):
    step(model, x, amp)  # warm-up: allocates .grad so they are not counted
    if x.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(model, x, amp)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:  # glibc's count where there is one (it sees nested backwards too)
        peak = (malloc_peak_bytes if hasattr(ctypes.CDLL(None), 'mallinfo2') else
                cpu_peak_bytes)(lambda: step(model, x, amp))
    times = []
    for _ in range(repeat):
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(model, x, amp)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return peak, min(times)


def main(argv=None):
    args = parse_args(argv)
    from mmconvarch.models.backbones import RevCol
    from mmconvarch.models.memory_format import MemoryFormatPolicy
    auto = MemoryFormatPolicy('auto', 'RevCol').layout_name(torch.device(args.device).type)
    other = 'contiguous' if auto == 'channels_last' else 'channels_last'
    arch = dict(RevCol.arch_zoo[args.arch])
    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    rows = []
    for columns in args.columns:
        arch['num_columns'] = columns
        plain = RevCol(arch, drop_path_rate=0.1).to(args.device).train()
        rev = copy.deepcopy(plain)
        rev.save_memory = True
        rev_nchw = RevCol(arch, drop_path_rate=0.1, save_memory=True,
                          memory_format=other).to(args.device).train()
        rev_nchw.load_state_dict(plain.state_dict())
        mem_p, t_p = measure(plain, x, args.amp, args.repeat)
        mem_r, t_r = measure(rev, x, args.amp, args.repeat)
        _, t_n = measure(rev_nchw, x, args.amp, args.repeat)
        rows.append((columns, mem_p, mem_r, t_p, t_r, t_n))
        del plain, rev, rev_nchw
    base_rev = rows[0][2]
    print(f'RevCol {args.arch} layout, input {args.batch}x3x{args.size}x{args.size}, '
          f'{args.device}{" amp" if args.amp else ""}; peak = activation memory of one '
          f'forward+backward; auto layout: {auto}, other: {other}')
    print(f'{"columns":>7} {"plain MB":>9} {"rev MB":>8} {"plain/rev":>9} '
          f'{"rev vs first":>12} {"plain s":>8} {"rev s":>7} {"rev/plain time":>14} '
          f'{"rev other s":>11} {"other/auto time":>15}')
    for columns, mem_p, mem_r, t_p, t_r, t_n in rows:
        print(f'{columns:>7} {mem_p / 2**20:>9.1f} {mem_r / 2**20:>8.1f} {mem_p / mem_r:>9.2f} '
              f'{mem_r / base_rev:>12.2f} {t_p:>8.3f} {t_r:>7.3f} {t_r / t_p:>14.2f} '
              f'{t_n:>11.3f} {t_n / t_r:>15.2f}')


if __name__ == '__main__':
    main()
