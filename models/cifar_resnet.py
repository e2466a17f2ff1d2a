"""CIFAR-10 ResNets and their plain twins (He et al. 2016, §4.2 and Table 6).

The experiment behind the residual idea: with BN, plain nets of 20 layers train fine,
but a plain 56-layer net has higher *training* error than the 20-layer one — an
optimisation problem, not overfitting. The same nets with identity shortcuts get
better as they get deeper.

Layout, for depth 6n+2: a 3×3 conv with 16 filters, three stages of n basic blocks
(2n layers) on 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters, global average
pooling and a 10-way FC. ResNet-20/32/44/56/110 have n = 3/5/7/9/18 and 0.27/0.46/
0.66/0.85/1.7 M parameters.

Shortcuts are the paper's option A: the identity, and where a stage begins (half the
resolution, twice the channels) the input subsampled with stride 2 and padded with
zero channels — no parameters at all, so ResNet-N and PlainNet-N have exactly the same
weights; only the additions differ.
"""

from __future__ import annotations

import nn
import tensorgrad as tg

from .resnet import BasicBlock, add_stages, init_resnet_, projection_shortcut

__all__ = [
    "CIFAR_DEPTHS", "ZeroPadShortcut", "CifarResNet",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "plain20", "plain32", "plain44", "plain56", "plain110",
]

CIFAR_DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}  # depth 6n + 2 -> n blocks per stage
CIFAR_CHANNELS = (16, 32, 64)


class ZeroPadShortcut(nn.Module):
    """Option A: ``x[:, :, ::s, ::s]`` with zero channels appended up to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ZeroPadShortcut cannot shrink channels: {in_channels} -> "
                             f"{out_channels}")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        if self.extra == 0:
            return x
        n, _, h, w = x.shape
        zeros = tg.zeros(n, self.extra, h, w, dtype=x.dtype, device=x.device)
        return tg.cat([x, zeros], dim=1)

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra}, stride={self.stride}"


# where a stage changes shape: option A pads with zeros, option B (as the ImageNet nets)
# projects with a 1×1 conv + BN
SHORTCUTS = {"A": ZeroPadShortcut, "B": projection_shortcut}


class CifarResNet(nn.Module):
    """3×3 conv 16 → 3 stages of n blocks (16, 32, 64 ch.) → global avg pool → FC."""

    fuse_pairs = [("conv1", "bn1")]

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3,
                 residual: bool = True, shortcut: str = "A"):
        super().__init__()
        if depth not in CIFAR_DEPTHS:
            raise ValueError(f"CIFAR ResNet depth must be one of {sorted(CIFAR_DEPTHS)} "
                             f"(6n+2), got {depth}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), "
                             f"got {shortcut!r}")
        n = CIFAR_DEPTHS[depth]
        width = CIFAR_CHANNELS[0]
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        width = add_stages(self, BasicBlock, width, CIFAR_CHANNELS, (n,) * len(CIFAR_CHANNELS),
                           residual=residual, shortcut=SHORTCUTS[shortcut] if residual else None)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, num_classes)
        init_resnet_(self)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


def resnet20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(20, num_classes, in_channels)


def resnet32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(32, num_classes, in_channels)


def resnet44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(44, num_classes, in_channels)


def resnet56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(56, num_classes, in_channels)


def resnet110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(110, num_classes, in_channels)


def plain20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(20, num_classes, in_channels, residual=False)


def plain32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(32, num_classes, in_channels, residual=False)


def plain44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(44, num_classes, in_channels, residual=False)


def plain56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(56, num_classes, in_channels, residual=False)


def plain110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    return CifarResNet(110, num_classes, in_channels, residual=False)
