"""The benchmarks of ``make gpu-check``: tensorgrad against PyTorch on one GPU, as ratios.

Run by ``gpu_check.py`` in a process of its own; it writes its Markdown tables row by
row, so a run stopped at its time budget keeps the rows it finished. Both libraries run
in this one process on the same GPU; every timed step ends with its library's
``synchronize``. Each training step (forward, cross-entropy, backward, SGD with momentum
and weight decay) first runs once untimed on both sides with the same weights and the
same batch: its loss and updated weights are compared (is it the same computation?),
its wall time is the "first step" (CuPy compiles its kernels then), then one more step
measures each side's peak GPU memory (``max_memory_allocated`` after
``reset_peak_memory_stats``: weights, gradients and optimizer state included), then
the two alternate in short blocks (``bench_ops.paired_median_ms``).

Precision: "float32" turns TF32 off on both sides (``tg.backends.cuda.matmul.allow_tf32``;
``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``),
"tf32" turns all three on. PyTorch runs eagerly, with its default cuDNN settings.
"""

from __future__ import annotations

import time
from pathlib import Path

import bench_ops  # noqa: I001 - first: it fixes the BLAS thread count before NumPy loads
import numpy as np
from bench_model import LR, MOMENTUM, WEIGHT_DECAY, torch_resnet20

import models
import nn
import tensorgrad as tg
import tensorgrad.functional as F

TARGETS = ("targets on the GPU: ResNet-50 b128 step ≤ 2× PyTorch's time (≥ 0.5× its "
           "throughput) at the same precision; ResNet-20 b128 ≤ 2.5×; peak memory ≤ 1.5×")
DRY_LAYERS = [("tiny 3x3 8@8² b2", 2, 8, 8, 8, 3, 1, 1)]


def torch_resnet50(torch, num_classes: int = 1000):
    """torchvision's ResNet-50 (v1.5) in plain torch.nn, the module names of
    ``models.resnet50`` (so the same state_dict loads): the GPU machine has no torchvision."""
    tnn = torch.nn

    class Bottleneck(tnn.Module):
        def __init__(self, cin: int, c: int, stride: int, downsample):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, c, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(c)
            self.conv2 = tnn.Conv2d(c, c, 3, stride, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(c)
            self.conv3 = tnn.Conv2d(c, 4 * c, 1, bias=False)
            self.bn3 = tnn.BatchNorm2d(4 * c)
            self.relu = tnn.ReLU()
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet50(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU()
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            width = 64
            for i, (c, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
                stride = 1 if i == 0 else 2
                down = tnn.Sequential(tnn.Conv2d(width, 4 * c, 1, stride, bias=False),
                                      tnn.BatchNorm2d(4 * c))
                layers = [Bottleneck(width, c, stride, down)]
                layers += [Bottleneck(4 * c, c, 1, None) for _ in range(1, blocks)]
                self.add_module(f"layer{i + 1}", tnn.Sequential(*layers))
                width = 4 * c
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.flatten = tnn.Flatten()
            self.fc = tnn.Linear(width, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.flatten(self.avgpool(x)))

    return ResNet50()


class Report:
    """bench.md: a head and two tables, rewritten whole after every row."""

    def __init__(self, path: Path, head: list[str]):
        self.path, self.head = path, head
        self.ops: list[str] = []
        self.steps: list[str] = []
        self.notes: list[str] = []
        self.write()

    def write(self) -> None:
        lines = list(self.head) + [""]
        lines += ["### Ops (forward + backward)", "",
                  "| op | tensorgrad ms | torch ms | ratio |", "|---|---:|---:|---:|"]
        lines += self.ops + [""]
        lines += ["### Training steps", "",
                  "| model | batch | precision | first step s (tg / torch) | tensorgrad ms "
                  "| torch ms | ratio | tg img/s | torch img/s | tg peak MiB | "
                  "torch peak MiB | memory ratio |",
                  "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += self.steps + [""]
        lines += [f"- {n}" for n in self.notes + [TARGETS]]
        self.path.write_text("\n".join(lines) + "\n")


def _fmt(v, spec: str = ".1f") -> str:
    return "—" if v is None else format(v, spec)


def median_ms(step, repeat: int, per_block: int = 2) -> float:
    """One library alone (no PyTorch to pair with): median of the timed calls."""
    times = []
    for _ in range(repeat):
        step()
        for _ in range(per_block):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def time_pair(tg_step, torch_step, repeat: int, per_block: int = 2):
    """(tensorgrad ms, torch ms, ratio); torch's are None without PyTorch."""
    if torch_step is None:
        return median_ms(tg_step, repeat, per_block), None, None
    return bench_ops.paired_median_ms(tg_step, torch_step, repeat, per_block)


def peak_mib(step, cuda) -> float:
    """The peak GPU memory, in MiB, over one call of ``step`` (what was already there
    included): ``cuda`` is ``tg.cuda`` or ``torch.cuda``."""
    cuda.synchronize()
    cuda.reset_peak_memory_stats()
    step()
    cuda.synchronize()
    return cuda.max_memory_allocated() / 2**20


def set_tf32(torch, on: bool) -> None:
    tg.backends.cuda.matmul.allow_tf32 = on
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


def free_gpu_memory(torch, on_gpu: bool) -> None:
    """Hand cached blocks back between models, so one library's cache does not crowd
    the other's next model."""
    import gc

    gc.collect()
    if on_gpu:
        from tensorgrad import backend

        backend._cupy.get_default_memory_pool().free_all_blocks()
        if torch is not None:
            torch.cuda.empty_cache()


def op_rows(report: Report, torch, device: str, dry: bool, stop_at: float) -> None:
    on_gpu = device != "cpu"
    tg_sync = tg.cuda.synchronize if on_gpu else None
    torch_sync = torch.cuda.synchronize if on_gpu and torch is not None else None
    layers = DRY_LAYERS if dry else bench_ops.CONV_LAYERS
    cases = list(bench_ops.conv_cases(torch, layers, device))
    if not dry:
        cases += list(bench_ops.other_cases(torch, device))
    for name, tg_step, torch_step in cases:
        if time.perf_counter() > stop_at:
            report.notes.append(f"ops from {name!r} on: skipped, out of time")
            break
        t_tg, t_torch, ratio = time_pair(
            bench_ops.synced(tg_step, tg_sync),
            None if torch_step is None else bench_ops.synced(torch_step, torch_sync),
            repeat=1 if dry else 3)
        report.ops.append(f"| {name} | {t_tg:.2f} | {_fmt(t_torch, '.2f')} | "
                          f"{_fmt(ratio, '.2f')}{'×' if ratio else ''} |")
        report.write()
    if on_gpu:
        for layer in bench_ops.MEMORY_LAYERS:
            (_, tg_step, torch_step), = bench_ops.conv_cases(torch, [layer], device)
            m_tg = bench_ops.gpu_peak_mib(tg_step, tg.cuda)
            m_torch = None if torch is None else bench_ops.gpu_peak_mib(torch_step, torch.cuda)
            report.notes.append(
                f"peak GPU memory of one conv2d {layer[0]} forward + backward: "
                f"{m_tg:.1f} MiB (tensorgrad), {_fmt(m_torch)} MiB (torch)")
        report.write()


def model_rows(report: Report, torch, device: str, dry: bool, stop_at: float,
               quick: bool = False) -> None:
    on_gpu = device != "cpu"
    configs = [  # (name, tensorgrad model, torch model, classes, image size, batches, precisions)
        ("CIFAR ResNet-20", models.resnet20, torch_resnet20, 10, 16 if dry else 32,
         (2,) if dry else (128,), ("float32", "tf32") if dry else ("float32",)),
        ("ResNet-50", models.resnet50, torch_resnet50, 1000, 32 if dry else 224,
         (4,) if dry else (64, 128), ("float32", "tf32")),
    ]
    if quick:  # a dry run in seconds: ResNet-50's 25 M weights take seconds on a CPU
        configs = configs[:1]
    rng = np.random.default_rng(0)
    for name, *config in configs:
        if time.perf_counter() > stop_at:
            report.notes.append(f"{name}: skipped, out of time")
            continue
        model_pair(report, torch, device, dry, stop_at, rng, name, *config)
        free_gpu_memory(torch, on_gpu)


def model_pair(report: Report, torch, device: str, dry: bool, stop_at: float, rng, name: str,
               make_tg, make_torch, classes: int, size: int, batches, precisions) -> None:
    """The rows of one model: its batch sizes × precisions."""
    on_gpu = device != "cpu"
    tg_sync = tg.cuda.synchronize if on_gpu else (lambda: None)
    torch_sync = torch.cuda.synchronize if on_gpu and torch is not None else (lambda: None)
    tg.manual_seed(0)
    ours = make_tg()
    theirs = None
    if torch is not None:
        theirs = make_torch(torch)
        theirs.load_state_dict({k: torch.from_numpy(np.array(v.numpy()))
                                for k, v in ours.state_dict().items()})
        theirs.to(device)
        topt = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM,
                               weight_decay=WEIGHT_DECAY)
    ours.to(device)
    opt = nn.optim.SGD(ours.parameters(), lr=LR, momentum=MOMENTUM,
                       weight_decay=WEIGHT_DECAY)
    checked = False
    for batch in batches:
        x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
        y = rng.integers(0, classes, batch)
        tx, ty = tg.tensor(x, device=device), tg.tensor(y, device=device)

        def tg_step(tx=tx, ty=ty):
            opt.zero_grad()
            loss = F.cross_entropy(ours(tx), ty)
            loss.backward()
            opt.step()
            return loss

        torch_step = None
        if theirs is not None:
            px, py = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

            def torch_step(px=px, py=py):
                topt.zero_grad()
                loss = torch.nn.functional.cross_entropy(theirs(px), py)
                loss.backward()
                topt.step()
                return loss

        for precision in precisions:
            if time.perf_counter() > stop_at:
                report.notes.append(f"{name} b{batch} {precision}: skipped, out of time")
                continue
            set_tf32(torch, precision == "tf32")
            first = "—"
            if not checked:  # the same computation? (fresh, equal weights, float32)
                checked = True
                first = check_same_step(report, name, ours, theirs, tg_step, torch_step,
                                        tg_sync, torch_sync, dry)
            t0 = time.perf_counter()
            if on_gpu:
                m_tg = peak_mib(tg_step, tg.cuda)
                m_torch = None if torch_step is None else peak_mib(torch_step, torch.cuda)
            else:  # no GPU memory to measure: one step of each, untimed apart
                tg_step()
                m_tg = m_torch = None
                if torch_step is not None:
                    torch_step()
            one = time.perf_counter() - t0  # one step of each: to plan the timing
            if dry:  # the code path, not the numbers: that one step is the timing
                t_tg, t_torch, ratio = 1e3 * one, None, None
            elif time.perf_counter() + one * 2 * (1 + 2) > stop_at:
                report.notes.append(f"{name} b{batch} {precision}: not timed, out of time")
                continue
            else:
                t_tg, t_torch, ratio = time_pair(
                    lambda s=tg_step: (s(), tg_sync()),
                    None if torch_step is None else
                    (lambda s=torch_step: (s(), torch_sync())), repeat=2, per_block=2)
            mem_ratio = None if m_torch is None or m_tg is None else m_tg / m_torch
            report.steps.append(
                f"| {name} | {batch} | {precision} | {first} | {t_tg:.1f} | "
                f"{_fmt(t_torch)} | {_fmt(ratio, '.2f')}{'×' if ratio else ''} | "
                f"{1e3 * batch / t_tg:.0f} | "
                f"{_fmt(None if t_torch is None else 1e3 * batch / t_torch, '.0f')} | "
                f"{_fmt(m_tg, '.0f')} | {_fmt(m_torch, '.0f')} | "
                f"{_fmt(mem_ratio, '.2f')}{'×' if mem_ratio else ''} |")
            report.write()
    set_tf32(torch, False)




def check_same_step(report, name, ours, theirs, tg_step, torch_step, tg_sync, torch_sync,
                    dry: bool) -> str:
    """One step of each from equal weights: compare the losses and the updated weights.
    Returns the wall times of the two first steps (CuPy's kernel compiles included)."""
    t0 = time.perf_counter()
    loss_tg = tg_step().item()
    tg_sync()
    t_tg = time.perf_counter() - t0
    if torch_step is None:
        report.notes.append(f"{name}: first loss {loss_tg:.5f} (no PyTorch to compare with)")
        return f"{t_tg:.1f} / —"
    t0 = time.perf_counter()
    loss_torch = torch_step().item()
    torch_sync()
    t_torch = time.perf_counter() - t0
    theirs_state = theirs.state_dict()
    gap, where = 0.0, ""  # the largest difference relative to the tensor's largest entry
    for k, v in ours.state_dict().items():
        if v.dtype.kind == "f":
            mine, other = v.numpy(), theirs_state[k].cpu().numpy()
            rel = float(np.abs(mine - other).max() / max(np.abs(other).max(), 1e-12))
            if rel > gap:
                gap, where = rel, k
    same = abs(loss_tg - loss_torch) <= 1e-3 * max(1.0, abs(loss_torch)) and gap <= 1e-3
    verdict = "agrees" if same else "DISAGREES"
    if dry and not same:  # a batch of 2 tiny images: batch norm divides by near-zero spreads
        verdict = "differs (expected in a dry run: tiny batches make batch norm ill-conditioned)"
    report.notes.append(
        f"{name}: first step {verdict}: loss {loss_tg:.5f} (tensorgrad) vs {loss_torch:.5f} "
        f"(PyTorch); largest relative weight difference after it {gap:.1e} ({where})")
    return f"{t_tg:.1f} / {t_torch:.1f}"


def run_benchmarks(path: Path, dry: bool, stop_at: float, quick: bool = False) -> int:
    try:
        import torch
    except ImportError:
        torch = None
    device = "cpu" if dry else "cuda"
    head = ["Both libraries on " + ("the CPU, tiny sizes (dry run)" if dry else "the GPU")
            + "; ratio = tensorgrad / torch time (median of per-block ratios)."]
    if torch is None:
        head.append("PyTorch is not installed: the tensorgrad side alone.")
    elif device == "cuda" and not torch.cuda.is_available():
        head.append("PyTorch sees no GPU: the tensorgrad side alone.")
        torch = None
    elif device == "cpu":
        torch.set_num_threads(bench_ops.THREADS)
    report = Report(path, head)
    op_rows(report, torch, device, dry, stop_at)
    model_rows(report, torch, device, dry, stop_at, quick)
    if quick:
        report.notes.append("quick dry run: ResNet-50 left out")
    report.write()
    return 0
