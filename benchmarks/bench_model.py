"""A whole training step of CIFAR ResNet-20, tensorgrad vs PyTorch on the CPU.

    python benchmarks/bench_model.py [--batch 64] [--repeat 7] [--threads=N]

The op benchmarks time one layer at a time; this one times what a user runs: forward,
cross-entropy, backward and an SGD-momentum step of ``models.resnet20`` (He et al.'s
CIFAR net, option A shortcuts) on a 32×32 batch, against the same network written with
``torch.nn`` and loaded with the same weights. Before timing, both libraries take one
step on the same batch and must agree on the loss and the updated weights; then they
alternate in short blocks (see ``bench_ops.paired_median_ms``), and the ratio reported
is the median of the per-block ratios. Needs PyTorch; without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys

# bench_ops fixes the BLAS thread count before NumPy loads; import it first
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ops import THREADS, paired_median_ms  # noqa: E402, I001

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import models  # noqa: E402
import nn  # noqa: E402
import tensorgrad as tg  # noqa: E402
import tensorgrad.functional as F  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4


def torch_resnet20(torch):
    """models.resnet20 in torch.nn, with the same module names (so the same state_dict)."""
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            shortcut = x[:, :, ::self.stride, ::self.stride]  # option A: subsample, pad
            if self.extra:
                n, _, h, w = shortcut.shape
                shortcut = torch.cat([shortcut, shortcut.new_zeros(n, self.extra, h, w)], 1)
            return self.relu(out + shortcut)

    class ResNet20(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            self.relu = tnn.ReLU()
            width = 16
            for i, channels in enumerate((16, 32, 64)):
                blocks = [Block(width if j == 0 else channels, channels,
                                2 if i and j == 0 else 1) for j in range(3)]
                self.add_module(f"layer{i + 1}", tnn.Sequential(*blocks))
                width = channels
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.flatten = tnn.Flatten()
            self.fc = tnn.Linear(64, 10)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(self.flatten(self.avgpool(x)))

    return ResNet20()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare with (pip install torch).")
        return 0
    torch.set_num_threads(THREADS)
    tg.manual_seed(0)
    ours = models.resnet20()
    theirs = torch_resnet20(torch)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v.numpy()))
                            for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
    tx, ty = tg.tensor(x), tg.tensor(y)
    px, py = torch.from_numpy(x), torch.from_numpy(y)
    opt = nn.optim.SGD(ours.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    topt = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM,
                           weight_decay=WEIGHT_DECAY)

    def tg_step():
        opt.zero_grad()
        loss = F.cross_entropy(ours(tx), ty)
        loss.backward()
        opt.step()
        return loss.item()

    def torch_step():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(px), py)
        loss.backward()
        topt.step()
        return loss.item()

    # the same network: the same first loss and the same weights after one step
    loss_tg, loss_torch = tg_step(), torch_step()
    weight_gap = max(float(np.abs(v.numpy() - theirs.state_dict()[k].numpy()).max())
                     for k, v in ours.state_dict().items() if v.dtype.kind == "f")
    print(f"# CIFAR ResNet-20 training step, batch {args.batch}, 32×32, float32, "
          f"{THREADS} threads, torch {torch.__version__}\n")
    print(f"first step: loss {loss_tg:.6f} (tensorgrad) vs {loss_torch:.6f} (PyTorch); "
          f"largest weight difference after it {weight_gap:.1e}\n")
    if abs(loss_tg - loss_torch) > 1e-4 * max(1.0, abs(loss_torch)) or weight_gap > 1e-4:
        print("the two networks disagree: not timing them")
        return 1
    t_tg, t_torch, ratio = paired_median_ms(tg_step, torch_step, args.repeat)
    print("| library | ms/step | images/s |")
    print("|---|---:|---:|")
    print(f"| tensorgrad | {t_tg:.1f} | {1e3 * args.batch / t_tg:.0f} |")
    print(f"| PyTorch | {t_torch:.1f} | {1e3 * args.batch / t_torch:.0f} |")
    print(f"\nratio tensorgrad / PyTorch (median of per-block ratios): {ratio:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
