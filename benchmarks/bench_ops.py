"""Convolution, pooling and batch-norm ops side by side with PyTorch on the CPU (or a GPU).

    python benchmarks/bench_ops.py [--repeat 7] [--threads=N] [--quick] [--only TEXT]
                                   [--device cuda]

Each row is one op's forward + backward on a layer of a classic CNN, in the same
process for both frameworks, alternating in ``--repeat`` short blocks (so both see the
same machine load), with PyTorch's thread count set to NumPy's BLAS threads. Times are
medians over all blocks; the ratio is the median of the blocks' ratios. Peak memory
of one convolution forward + backward is measured in fresh subprocesses (the growth of
the peak resident set, VmHWM, or ``ru_maxrss`` where /proc is missing, over a baseline
taken after the inputs exist), once per framework.
Prints a Markdown table of medians and ratios tensorgrad / torch (target: ≤ 2×).
With ``--device cuda`` both run on the GPU, each step ends with its library's
``synchronize`` (GPU calls return before the work is done), and peak memory is each
library's ``max_memory_allocated`` over one conv forward + backward.
Needs PyTorch; without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

# BLAS reads its thread count when NumPy loads, so fix it before any import below.
_threads = next((a.split("=")[1] for a in sys.argv if a.startswith("--threads=")), None)
THREADS = int(_threads or os.environ.get("TG_BENCH_THREADS", os.cpu_count() or 1))
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tensorgrad as tg  # noqa: E402
import tensorgrad.functional as F  # noqa: E402

# (name, N, C_in, H, C_out, kernel, stride, padding)
CONV_LAYERS = [
    ("R18-CIFAR 3x3 64@32² b32", 32, 64, 32, 64, 3, 1, 1),
    ("R18-CIFAR 3x3 128@16² b32", 32, 128, 16, 128, 3, 1, 1),
    ("R18-CIFAR 3x3 256@8² b32", 32, 256, 8, 256, 3, 1, 1),
    ("R18-CIFAR 3x3 512@4² b32", 32, 512, 4, 512, 3, 1, 1),
    ("R50 conv1 7x7/2 3→64 @224² b4", 4, 3, 224, 64, 7, 2, 3),
    ("R50 3x3 64→64 @56² b4", 4, 64, 56, 64, 3, 1, 1),
    ("R50 1x1 64→256 @56² b4", 4, 64, 56, 256, 1, 1, 0),
    ("R50 1x1 256→64 @56² b4", 4, 256, 56, 64, 1, 1, 0),
    ("R50 1x1/2 256→512 @56² b4", 4, 256, 56, 512, 1, 2, 0),
    ("R50 3x3 128 @28² b4", 4, 128, 28, 128, 3, 1, 1),
    ("R50 3x3 256 @14² b4", 4, 256, 14, 256, 3, 1, 1),
    ("R50 3x3 512 @7² b4", 4, 512, 7, 512, 3, 1, 1),
]
MEMORY_LAYERS = [CONV_LAYERS[0], CONV_LAYERS[5]]


def paired_median_ms(step_a, step_b, repeat: int, per_block: int = 2
                     ) -> tuple[float, float, float]:
    """Median times of two steps and the median of their per-block ratios.

    The steps alternate in ``repeat`` short blocks, so that both see the same machine
    load (the benchmark machine may be shared and its speed drifts by ±30% within
    minutes); the ratio of each block compares the two libraries under the same load,
    and their median is the reported ratio. Not call by call: a library's thread pool
    keeps spinning for a while after a call and slows the other's next call, so each
    block starts with an untimed warm-up call."""
    times_a, times_b, ratios = [], [], []
    for _ in range(repeat):
        block = {}
        for step, times in ((step_a, times_a), (step_b, times_b)):
            step()  # warm-up: this library's threads, allocator, lazy imports
            runs = []
            for _ in range(per_block):
                t0 = time.perf_counter()
                step()
                runs.append(time.perf_counter() - t0)
            times.extend(runs)
            block[step] = min(runs)
        ratios.append(block[step_a] / block[step_b])
    return (1e3 * float(np.median(times_a)), 1e3 * float(np.median(times_b)),
            float(np.median(ratios)))


def synced(step, sync):
    """``step`` then ``sync`` (a GPU library's synchronize; None on the CPU)."""
    if sync is None:
        return step

    def run():
        step()
        sync()
    return run


def _pt(torch, a, device: str, grad: bool = False):
    """NumPy array ``a`` as a torch tensor on ``device``; None without torch."""
    if torch is None:
        return None
    t = torch.from_numpy(a).to(device)
    return t.requires_grad_() if grad else t


def conv_cases(torch, layers, device: str = "cpu"):
    """(name, tensorgrad step, torch step) for conv forward + backward on ``device``.
    With ``torch=None`` the torch step is None: the tensorgrad side alone."""
    rng = np.random.default_rng(0)
    for name, n, c, h, o, k, s, p in layers:
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.05
        ho = (h + 2 * p - k) // s + 1
        g = rng.standard_normal((n, o, ho, ho), dtype=np.float32)
        tx = tg.tensor(x, requires_grad=True, device=device)
        tw = tg.tensor(w, requires_grad=True, device=device)
        tgrad = tg.tensor(g, device=device)
        px, pw = _pt(torch, x, device, grad=True), _pt(torch, w, device, grad=True)
        pg = _pt(torch, g, device)

        def tg_step(tx=tx, tw=tw, s=s, p=p, tgrad=tgrad):
            tx.grad = tw.grad = None
            F.conv2d(tx, tw, stride=s, padding=p).backward(tgrad)

        def torch_step(px=px, pw=pw, s=s, p=p, pg=pg):
            px.grad = pw.grad = None
            torch.nn.functional.conv2d(px, pw, stride=s, padding=p).backward(pg)

        yield f"conv2d {name}", tg_step, torch_step if torch is not None else None


def other_cases(torch, device: str = "cpu"):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 64, 112, 112), dtype=np.float32)
    g = rng.standard_normal((4, 64, 56, 56), dtype=np.float32)
    tx = tg.tensor(x, requires_grad=True, device=device)
    px = _pt(torch, x, device, grad=True)
    tgrad, pg = tg.tensor(g, device=device), _pt(torch, g, device)

    def tg_pool(tx=tx, g=tgrad):
        tx.grad = None
        F.max_pool2d(tx, 3, 2, 1).backward(g)

    def torch_pool(px=px, pg=pg):
        px.grad = None
        torch.nn.functional.max_pool2d(px, 3, 2, 1).backward(pg)

    yield "max_pool2d 3x3/2 pad 1, 64@112² b4", tg_pool, torch_pool if torch else None

    x = rng.standard_normal((32, 512, 4, 4), dtype=np.float32)
    g = rng.standard_normal((32, 512, 1, 1), dtype=np.float32)
    tx2 = tg.tensor(x, requires_grad=True, device=device)
    px2 = _pt(torch, x, device, grad=True)
    tg2, pg2 = tg.tensor(g, device=device), _pt(torch, g, device)

    def tg_gap(g=tg2):
        tx2.grad = None
        F.adaptive_avg_pool2d(tx2, 1).backward(g)

    def torch_gap():
        px2.grad = None
        torch.nn.functional.adaptive_avg_pool2d(px2, 1).backward(pg2)

    yield "adaptive_avg_pool2d →1, 512@4² b32", tg_gap, torch_gap if torch else None

    if not hasattr(F, "batch_norm"):
        print("(tg.functional.batch_norm not found: batch_norm rows skipped)")
        return
    for n, c, h in ((32, 64, 32), (4, 256, 56)):
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        g = rng.standard_normal((n, c, h, h), dtype=np.float32)
        tx = tg.tensor(x, requires_grad=True, device=device)
        tw = tg.ones(c, requires_grad=True, device=device)
        tb = tg.zeros(c, requires_grad=True, device=device)
        trm, trv = tg.zeros(c, device=device), tg.ones(c, device=device)
        ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
        px = _pt(torch, x, device, grad=True)
        pw, pb = _pt(torch, ones, device, grad=True), _pt(torch, zeros, device, grad=True)
        prm, prv = _pt(torch, zeros.copy(), device), _pt(torch, ones.copy(), device)
        pg = _pt(torch, g, device)
        g = tg.tensor(g, device=device)

        def tg_bn(tx=tx, tw=tw, tb=tb, trm=trm, trv=trv, g=g):
            tx.grad = tw.grad = tb.grad = None
            F.batch_norm(tx, trm, trv, tw, tb, training=True).backward(g)

        def torch_bn(px=px, pw=pw, pb=pb, prm=prm, prv=prv, pg=pg):
            px.grad = pw.grad = pb.grad = None
            torch.nn.functional.batch_norm(px, prm, prv, pw, pb, training=True).backward(pg)

        yield f"batch_norm train {c}@{h}² b{n}", tg_bn, torch_bn if torch else None


# ---------------------------------------------------------------- peak memory

_MEMORY_CHILD = r"""
import os, resource, sys
sys.path.insert(0, {root!r})
import numpy as np
framework, n, c, h, o, k, s, p = sys.argv[1], *map(int, sys.argv[2:])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, c, h, h), dtype=np.float32)
w = rng.standard_normal((o, c, k, k), dtype=np.float32)
ho = (h + 2 * p - k) // s + 1
g = rng.standard_normal((n, o, ho, ho), dtype=np.float32)
if framework == "torch":
    import torch
    torch.set_num_threads({threads})
    x, w, g = (torch.from_numpy(a) for a in (x, w, g))
    x.requires_grad_(); w.requires_grad_()
    conv = lambda: torch.nn.functional.conv2d(x, w, stride=s, padding=p)
else:
    import tensorgrad as tg, tensorgrad.functional as F
    x, w = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
    conv = lambda: F.conv2d(x, w, stride=s, padding=p)
def peak_kib():
    # VmHWM belongs to this process's memory map, which exec made fresh; ru_maxrss is
    # carried over from the forked parent on Linux, so it is only the fallback
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = peak_kib()
conv().backward(g)
print((peak_kib() - base) / 1024)  # KiB -> MiB
"""


def gpu_peak_mib(step, cuda) -> float:
    """Growth of the peak GPU memory over one call of ``step``, in MiB. ``cuda`` is
    ``tg.cuda`` or ``torch.cuda``: the same four functions, with the same names."""
    cuda.synchronize()
    cuda.reset_peak_memory_stats()
    base = cuda.memory_allocated()
    step()
    cuda.synchronize()
    return (cuda.max_memory_allocated() - base) / 2**20


def peak_memory_mb(framework: str, layer) -> float:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _MEMORY_CHILD.format(root=root, threads=THREADS)
    args = [str(v) for v in layer[1:]]
    out = subprocess.run([sys.executable, "-c", code, framework, *args], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--quick", action="store_true", help="a few rows, for a smoke test")
    parser.add_argument("--only", default="", help="only the rows whose name contains TEXT")
    parser.add_argument("--device", default="cpu", help="cpu | cuda: where both libraries run")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare with (pip install torch).")
        return 0
    torch.set_num_threads(THREADS)
    on_gpu = args.device.startswith("cuda")
    if on_gpu and not (tg.cuda.is_available() and torch.cuda.is_available()):
        print(f"--device {args.device}: no GPU usable by both libraries "
              f"({tg.cuda.unavailable_reason() or 'torch.cuda.is_available() is False'})")
        return 0
    layers = CONV_LAYERS[:2] if args.quick else CONV_LAYERS
    where = (torch.cuda.get_device_name() if on_gpu
             else f"CPU: {platform.processor() or platform.machine()}, {THREADS} threads")
    print(f"# ops, {where}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{args.repeat} blocks\n")
    print("| op (forward + backward) | tensorgrad ms | torch ms | ratio |")
    print("|---|---:|---:|---:|")
    memory_layers = [layer for layer in MEMORY_LAYERS[: 1 if args.quick else None]
                     if args.only in f"conv2d {layer[0]}"]
    if on_gpu:  # each library's own allocator statistics, in this process
        memory = []
        for layer in memory_layers:
            (_, tg_step, torch_step), = conv_cases(torch, [layer], args.device)
            memory.append((layer[0], gpu_peak_mib(tg_step, tg.cuda),
                           gpu_peak_mib(torch_step, torch.cuda)))
    else:  # memory first: the child processes are forked from this one, still small now
        memory = [(layer[0], peak_memory_mb("tensorgrad", layer),
                   peak_memory_mb("torch", layer)) for layer in memory_layers]
    cases = list(conv_cases(torch, layers, args.device))
    if not args.quick:
        cases += list(other_cases(torch, args.device))
    tg_sync = tg.cuda.synchronize if on_gpu else None
    torch_sync = torch.cuda.synchronize if on_gpu else None
    for name, tg_step, torch_step in cases:
        if args.only not in name:
            continue
        t_tg, t_torch, ratio = paired_median_ms(synced(tg_step, tg_sync),
                                                synced(torch_step, torch_sync), args.repeat)
        print(f"| {name} | {t_tg:.2f} | {t_torch:.2f} | {ratio:.2f}× |", flush=True)
    print("\n| peak memory, one conv forward + backward | tensorgrad MiB | torch MiB | ratio |")
    print("|---|---:|---:|---:|")
    for name, m_tg, m_torch in memory:
        print(f"| conv2d {name} | {m_tg:.1f} | {m_torch:.1f} | "
              f"{m_tg / max(m_torch, 1e-9):.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
