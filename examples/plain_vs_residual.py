"""The lecture's degradation experiment: deeper plain nets train *worse*; residual nets don't.

The lecture's ResNet section (docs/lecture.md): a plain 56-layer net has higher training
*and* test error than a 20-layer one: an optimization problem, not overfitting. The fix
is the residual block F(x) + x, whose zero weights give the identity. This script
reruns that comparison (the paper's Fig. 6, on 8×8 digits instead of CIFAR-10 so it
fits in minutes on a CPU): CIFAR-style plain and residual nets of two depths (6n + 2
layers: three stages of 16/32/64 channels, models.plainN / models.resnetN), trained
identically — same initial seed, same batches, SGD with momentum 0.9 and BN.

Output: one PNG with two panels, plain nets and ResNets, each showing the training
error (solid) and test error (dashed) per epoch for both depths; a JSON file with the
numbers; one line per network on stdout.

    python examples/plain_vs_residual.py                        # plain/resnet 20 and 56
    python examples/plain_vs_residual.py --depths 20 32 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Small convolutions on small images: one BLAS thread is as fast as several, and several
# spin and starve each other on a busy machine. Set OPENBLAS_NUM_THREADS to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import models  # noqa: E402
import nn  # noqa: E402
import tensorgrad as tg  # noqa: E402
import tensorgrad.functional as F  # noqa: E402
from examples.digits_experiment import pyplot, save_figure, standardised_digits  # noqa: E402
from tensorgrad import data  # noqa: E402

DEPTHS = (20, 32, 44, 56, 110)  # the CIFAR nets models defines, 6n + 2 layers


@tg.no_grad()
def error_rate(model: nn.Module, dataset: data.Dataset) -> float:
    model.eval()
    x, y = dataset.tensors
    return float((model(x).data.argmax(axis=1) != y.data).mean())


def train(name: str, train_set, test_set, args) -> dict[str, list[float]]:
    """Training error (over each epoch, as the batches went by) and test error per epoch."""
    tg.manual_seed(args.seed)
    model = getattr(models, name)(num_classes=10, in_channels=1)
    optimizer = nn.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    curves = {"train_error": [], "test_error": []}
    for epoch in range(args.epochs):
        model.train()
        wrong = seen = 0
        loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                 seed=args.seed + epoch)
        for x, y in loader:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            wrong += int((logits.data.argmax(axis=1) != y.data).sum())
            seen += len(y)
        curves["train_error"].append(wrong / seen)
        curves["test_error"].append(error_rate(model, test_set))
    return curves


def plot(path: Path, results: dict[str, dict], depths: list[int]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, family, title in ((axes[0], "plain", "plain networks"),
                              (axes[1], "resnet", "residual networks")):
        for color, depth in zip(colors, depths):
            curves = results[f"{family}{depth}"]
            epochs = np.arange(1, len(curves["train_error"]) + 1)
            ax.plot(epochs, 100 * np.array(curves["train_error"]), "-", color=color,
                    label=f"{family}-{depth} train")
            ax.plot(epochs, 100 * np.array(curves["test_error"]), "--", color=color,
                    label=f"{family}-{depth} test")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)")
    fig.suptitle("Degradation: deeper plain nets train worse, residual nets do not")
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], prog="plain_vs_residual.py")
    p.add_argument("--depths", type=int, nargs=2, default=[20, 56], metavar=("SHALLOW", "DEEP"),
                   help=f"two depths among {DEPTHS}")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/plain_vs_residual.png", help="where to write the PNG")
    p.add_argument("--limit", type=int, default=None, help="use only this many training images")
    args = p.parse_args(argv)
    if any(d not in DEPTHS for d in args.depths):
        p.error(f"depths must be among {DEPTHS}, got {args.depths}")

    train_set, test_set = standardised_digits(args.limit)
    results = {}
    for family in ("plain", "resnet"):
        for depth in args.depths:
            name = f"{family}{depth}"
            start = time.perf_counter()
            results[name] = train(name, train_set, test_set, args)
            print(f"{name:9s} train error {100 * results[name]['train_error'][-1]:6.2f}%  "
                  f"test error {100 * results[name]['test_error'][-1]:6.2f}%  "
                  f"({time.perf_counter() - start:.1f}s)")
    out = Path(args.out)
    plot(out, results, args.depths)
    out.with_suffix(".json").write_text(json.dumps(results))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
