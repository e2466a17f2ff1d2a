"""Is a change slower? A ResNet-20 training step of two checkouts, timed in one run.

    git worktree add /tmp/tg_before <commit>
    python benchmarks/ab_commits.py /tmp/tg_before . [--batch 64] [--blocks 15]

Each checkout runs in a worker process of its own (its packages first on sys.path)
that builds the same ``models.resnet20`` with the same seed and batch; the parent
asks them in turn for short blocks of timed steps (forward, cross-entropy, backward,
SGD-momentum), so both see the same machine load, and reports the median of the
per-block ratios (after / before). No PyTorch needed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

WORKER = r"""
import os, sys, time
sys.path.insert(0, os.path.abspath(sys.argv[1]))
import numpy as np
import tensorgrad as tg, nn, models
import tensorgrad.functional as F
batch, steps, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tg.manual_seed(0)
model = models.resnet20(num_classes=10)
opt = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
rng = np.random.default_rng(0)
x = tg.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
y = tg.tensor(rng.integers(0, 10, batch))

def step():
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()

step(); step()
print("ready", flush=True)
for line in sys.stdin:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    print((time.perf_counter() - t0) / steps * 1000, flush=True)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=32, help="image side (8: the digits of make train)")
    p.add_argument("--steps", type=int, default=2, help="steps per block")
    p.add_argument("--blocks", type=int, default=15)
    args = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, tree, str(args.batch),
                                 str(args.steps), str(args.size)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env)
               for tree in (args.before, args.after)]
    for w in workers:
        assert w.stdout.readline().strip() == "ready"
    times: list[list[float]] = [[], []]
    for block in range(args.blocks):
        order = (0, 1) if block % 2 == 0 else (1, 0)
        for k in order:
            workers[k].stdin.write("go\n")
            workers[k].stdin.flush()
            times[k].append(float(workers[k].stdout.readline()))
    for w in workers:
        w.stdin.close()
        w.wait()
    ratios = [a / b for b, a in zip(*times)]
    print(f"ResNet-20 step, batch {args.batch} of {args.size}²: before "
          f"{statistics.median(times[0]):.1f} ms, "
          f"after {statistics.median(times[1]):.1f} ms; median per-block ratio "
          f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
