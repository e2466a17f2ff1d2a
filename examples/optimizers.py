"""SGD, SGD+Momentum, RMSprop and Adam on the same network and the same batches.

The update rules of the lecture's Assignment 3 (docs/lecture.md, "Components and
Assignment 3"), side by side. Every optimizer starts from the same initial weights
and sees the same batches in the same order, so the curves differ only by the rule:

    SGD            w ← w − lr · g
    SGD+Momentum   v ← μ v + g;              w ← w − lr · v
    RMSprop        s ← α s + (1 − α) g²;     w ← w − lr · g / (√s + ε)
    Adam           m ← β1 m + (1 − β1) g;  s ← β2 s + (1 − β2) g²;
                   w ← w − lr · m̂ / (√ŝ + ε)   (m̂, ŝ: bias-corrected)

The network is a small CNN without normalization (two conv–ReLU–max-pool stages and a
linear classifier), where the rules differ the most; the data are scikit-learn's 8×8
digits. Output: one PNG with the training loss per iteration (smoothed) of each
optimizer, and one line per optimizer on stdout.

    python examples/optimizers.py                      # writes runs/optimizers.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Small convolutions on small images: one BLAS thread is as fast as several, and several
# spin and starve each other on a busy machine. Set OPENBLAS_NUM_THREADS to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import nn  # noqa: E402
import tensorgrad as tg  # noqa: E402
import tensorgrad.functional as F  # noqa: E402
from examples.digits_experiment import pyplot, save_figure, standardised_digits  # noqa: E402
from tensorgrad import data  # noqa: E402

OPTIMIZERS = {  # label -> the optimizer, with learning rates usual for each rule
    "SGD": lambda params: nn.optim.SGD(params, lr=0.05),
    "SGD+Momentum": lambda params: nn.optim.SGD(params, lr=0.05, momentum=0.9),
    "RMSprop": lambda params: nn.optim.RMSprop(params, lr=1e-3),
    "Adam": lambda params: nn.optim.Adam(params, lr=1e-3),
}


def small_cnn(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """conv3×3(16)–ReLU–pool, conv3×3(32)–ReLU–pool, linear: 8×8 → 4×4 → 2×2."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, num_classes),
    )


def train(make_optimizer, train_set, test_set, args) -> tuple[list[float], float]:
    """Loss of every iteration, and the final test accuracy."""
    tg.manual_seed(args.seed)  # the same initial weights for every optimizer ...
    model = small_cnn()
    optimizer = make_optimizer(model.parameters())
    losses = []
    for epoch in range(args.epochs):  # ... and the same batches, in the same order
        loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                 seed=args.seed + epoch)
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    with tg.no_grad():
        x, y = test_set.tensors
        accuracy = float((model(x).data.argmax(axis=1) == y.data).mean())
    return losses, accuracy


def smooth(values: list[float], window: int) -> np.ndarray:
    """Moving average over the last ``window`` values (shorter at the start)."""
    c = np.cumsum(np.concatenate([[0.0], values]))
    n = np.arange(1, len(values) + 1)
    lo = np.maximum(n - window, 0)
    return (c[n] - c[lo]) / (n - lo)


def plot(path: Path, curves: dict[str, list[float]], window: int) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), smooth(losses, window), label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"training loss (moving average of {window})")
    ax.set_yscale("log")
    ax.set_title("Same net, same batches: SGD, SGD+Momentum, RMSprop, Adam")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], prog="optimizers.py")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/optimizers.png", help="where to write the PNG")
    p.add_argument("--limit", type=int, default=None, help="use only this many training images")
    args = p.parse_args(argv)

    train_set, test_set = standardised_digits(args.limit)
    curves, results = {}, {}
    for label, make_optimizer in OPTIMIZERS.items():
        losses, accuracy = train(make_optimizer, train_set, test_set, args)
        curves[label] = losses
        tail = float(np.mean(losses[-10:]))
        results[label] = {"final_loss": tail, "test_accuracy": accuracy}
        print(f"{label:13s} final loss {tail:.4f}  test accuracy {accuracy:.4f}")
    out = Path(args.out)
    plot(out, curves, window=max(1, min(20, len(curves["SGD"]) // 5)))
    out.with_suffix(".json").write_text(json.dumps({"losses": curves, "results": results}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
