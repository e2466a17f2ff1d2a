"""Engine benchmark: one SGD-momentum training step of an MLP, tensorgrad vs PyTorch (CPU).

The model is 784-1024-1024-10 with ReLU, batch 256, float32; a step is forward,
cross-entropy loss, backward and the momentum update

    v <- mu·v + g,    p <- p - lr·v        (PyTorch's SGD with momentum, dampening 0)

Both libraries run in the same process on the same number of threads; the table
shows the median time of N steps and the ratio (target: tensorgrad <= 1.3x PyTorch).

    PYTHONPATH=. python benchmarks/bench_engine.py [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

SIZES = (784, 1024, 1024, 10)
BATCH = 256
LR, MOMENTUM = 0.01, 0.9


def _median_ms(steps: dict, rounds: int, blocks: int = 4) -> dict:
    """Median ms per step of each library. The libraries alternate block by block, so a
    busy moment on a shared machine slows both rather than one. Not step by step: a
    library's thread pool keeps spinning after a call and would slow the other's next
    step, so each block starts with untimed warm-up steps."""
    times = {name: [] for name in steps}
    per_block = max(1, -(-rounds // blocks))
    for _ in range(blocks):
        for name, step in steps.items():
            for _ in range(2):
                step()
            for _ in range(per_block):
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def _data(seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    # PyTorch's nn.Linear default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(n_in)
        params.append(rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (n_out,)).astype(np.float32))
    return x, y, params


def tensorgrad_step(x_np, y_np, params_np):
    import tensorgrad as tg
    import tensorgrad.functional as F

    params = [tg.tensor(p, requires_grad=True) for p in params_np]
    velocity = [None] * len(params)
    x, y = tg.tensor(x_np), tg.tensor(y_np)
    cross_entropy = getattr(F, "cross_entropy", None)

    def loss_fn(logits):
        if cross_entropy is not None:
            return cross_entropy(logits, y)
        return -logits.log_softmax(1)[tg.arange(BATCH), y].mean()

    def step():
        h = x
        for i in range(0, len(params), 2):
            h = F.linear(h, params[i], params[i + 1])
            if i + 2 < len(params):
                h = F.relu(h)
        loss = loss_fn(h)
        for p in params:
            p.grad = None
        loss.backward()
        with tg.no_grad():
            for i, p in enumerate(params):
                g = p.grad.data
                if velocity[i] is None:
                    velocity[i] = g.copy()
                else:
                    velocity[i] *= MOMENTUM
                    velocity[i] += g
                p.data -= LR * velocity[i]
        return loss.item()

    return step


def torch_step(torch, x_np, y_np, params_np):
    params = [torch.tensor(p, requires_grad=True) for p in params_np]
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    F = torch.nn.functional

    def step():
        h = x
        for i in range(0, len(params), 2):
            h = F.linear(h, params[i], params[i + 1])
            if i + 2 < len(params):
                h = F.relu(h)
        loss = F.cross_entropy(h, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per library")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/intra-op threads")
    args = parser.parse_args()
    # NumPy's BLAS reads these at import time: set them before anything imports it.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

    x, y, params = _data()
    steps = {"tensorgrad": tensorgrad_step(x, y, params)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        steps["torch"] = torch_step(torch, x, y, params)
    ms = _median_ms(steps, args.steps)
    tg_ms = ms["tensorgrad"]
    if torch is None:
        print(f"tensorgrad: {tg_ms:.1f} ms/step (median of {args.steps})")
        print("PyTorch is not installed: no side-by-side comparison (pip install torch)")
        return 0
    torch_ms = ms["torch"]

    mlp = "-".join(map(str, SIZES))
    print(f"MLP {mlp}, batch {BATCH}, float32, SGD-momentum step, {args.threads} threads, "
          f"median of {args.steps}")
    print("| library    | ms/step |")
    print("|------------|--------:|")
    print(f"| tensorgrad | {tg_ms:7.1f} |")
    print(f"| PyTorch    | {torch_ms:7.1f} |  ({torch.__version__})")
    print(f"ratio tensorgrad / PyTorch: {tg_ms / torch_ms:.2f}x (target <= 1.30x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
