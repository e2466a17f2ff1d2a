"""Data parallel on one machine: 1 process × 2 BLAS threads against 2 ranks × 1 thread.

    python benchmarks/bench_distributed.py [--epochs 1] [--batch 64]

One epoch of CIFAR ResNet-20 on the digits (1437 8×8 images, SGD + momentum, a global
batch of 64, no augmentation), timed twice, each in fresh processes:

- ``single``: one process, OpenBLAS with 2 threads, plain BatchNorm (and, for
  reference, with 1 thread);
- ``ddp``: ``mpiexec -n 2``, one thread each, 32 images per rank, SyncBatchNorm and
  DistributedDataParallel (default 25 MiB buckets: ResNet-20's 0.27 M parameters fit
  in two); and the same with plain BatchNorm (each rank its shard's statistics), to
  show what SyncBatchNorm's two collectives per layer cost.

The ddp workers time every collective (wrapping ``tensorgrad.distributed``'s functions
and ``Work.wait``) and report the communication time per step, split into the
gradient buckets (launch + wait: what was not hidden behind backward) and the rest
(SyncBatchNorm's all-gather and all-reduce per layer, the buffer broadcast, the unused-
parameter flags). Needs the distributed extra (mpi4py, mpich); without it, says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(mode: str, epochs: int, batch: int) -> None:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import models
    import nn
    import tensorgrad as tg
    import tensorgrad.functional as F

    ranks, rank = 1, 0
    timers: dict[str, float] = {}
    if mode.startswith("ddp"):
        import tensorgrad.distributed as dist

        dist.init_process_group()
        ranks, rank = dist.get_world_size(), dist.get_rank()
        _time_collectives(dist, timers)
    train = tg.data.Digits(train=True)
    x_all, y_all = train.get_batch(np.arange(len(train)))
    x_all = (x_all.numpy() - x_all.numpy().mean()) / x_all.numpy().std()
    y_all = y_all.numpy()

    tg.manual_seed(0)
    model = models.resnet20(num_classes=10, in_channels=1)
    if mode.startswith("ddp"):
        if mode == "ddp":  # "ddp-local-bn": each rank normalises with its shard's statistics
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    local = batch // ranks
    steps = len(x_all) // batch
    step_seconds = []
    for epoch in range(epochs):
        order = np.random.default_rng([0, epoch]).permutation(len(x_all))
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch][rank * local:(rank + 1) * local]
            start = time.perf_counter()
            loss = F.cross_entropy(model(tg.tensor(x_all[idx])), tg.tensor(y_all[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_seconds.append(time.perf_counter() - start)
    result = {"mode": mode, "ranks": ranks, "steps": len(step_seconds),
              "epoch_seconds": sum(step_seconds) / epochs,
              "ms_per_step": 1000 * float(np.median(step_seconds)),
              "comm_ms_per_step": {k: 1000 * v / len(step_seconds) for k, v in timers.items()},
              "loss": float(loss.item())}
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _time_collectives(dist, timers: dict[str, float]) -> None:
    """Wrap the collectives DDP and SyncBatchNorm call so that their time is counted."""
    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                key = "buckets" if kwargs.get("async_op") or name == "wait" else name
                timers[key] = timers.get(key, 0.0) + time.perf_counter() - start
        return wrapper

    for name in ("all_reduce", "all_gather_into_tensor", "broadcast"):
        setattr(dist, name, timed(name, getattr(dist, name)))
    dist.Work.wait = timed("wait", dist.Work.wait)


def launch(mode: str, args, threads: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--worker", mode, "--epochs", str(args.epochs),
               "--batch", str(args.batch)]
    if mode.startswith("ddp"):
        mpiexec = Path(sys.executable).parent / "mpiexec"
        command = [str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec"), "-n", "2"] \
            + command
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{mode} run failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.epochs, args.batch)
        return
    import importlib.util

    if importlib.util.find_spec("mpi4py") is None:
        print('bench_distributed: needs the distributed extra (pip install -e ".[distributed]")')
        return
    one = launch("single", args, threads=1)
    single = launch("single", args, threads=2)
    ddp = launch("ddp", args, threads=1)
    local_bn = launch("ddp-local-bn", args, threads=1)
    comm = ddp["comm_ms_per_step"]
    print(f"ResNet-20, digits, {single['steps']} steps of a global batch of {args.batch}, "
          f"{args.epochs} epoch(s)")
    print(f"{'':24s} {'epoch s':>8s} {'ms/step':>8s}")
    for name, r in (("1 process x 1 thread", one), ("1 process x 2 threads", single),
                    ("2 ranks x 1 thread", ddp), ("  same, plain BatchNorm", local_bn)):
        print(f"{name:24s} {r['epoch_seconds']:8.2f} {r['ms_per_step']:8.1f}")
    print(f"speed-up of 2 ranks: {single['epoch_seconds'] / ddp['epoch_seconds']:.2f}x over "
          f"2 threads, {one['epoch_seconds'] / ddp['epoch_seconds']:.2f}x over 1 thread")
    print("communication per step (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in comm.items())
          + f"; total {sum(comm.values()):.2f} ({100 * sum(comm.values()) / ddp['ms_per_step']:.0f}"
          f"% of a step)")
    comm = local_bn["comm_ms_per_step"]
    print("  with plain BatchNorm: " + ", ".join(f"{k} {v:.2f}" for k, v in comm.items())
          + f"; total {sum(comm.values()):.2f}")


if __name__ == "__main__":
    main()
