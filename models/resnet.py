"""ResNet (He et al. 2016, "Deep Residual Learning for Image Recognition"), ImageNet layout.

A residual block computes ``relu(F(x) + shortcut(x))``: when the weights of the
residual branch ``F`` are zero the block is the identity, so a deeper net can always
do at least as well as a shallower one — the cure for the plain 56-layer net that
trains worse than a 20-layer one.

- ``BasicBlock``: two 3×3 convs (18·H·W·C² multiply-adds), ResNet-18/34.
- ``Bottleneck``: 1×1 (4C→C), 3×3 (C→C), 1×1 (C→4C): 17·H·W·C², ResNet-50/101/152.

The layout is torchvision's, names included (``conv1, bn1, layer1.0.conv1,
layer2.0.downsample.0 ...``), so a torchvision state_dict loads with ``strict=True``.
Like torchvision ("ResNet v1.5") the stride-2 of a bottleneck sits on its 3×3 conv,
not on the first 1×1 as in the paper: a little more compute (ResNet-50 ≈ 4.1 GFLOP
instead of the lecture's 3.8), slightly better accuracy.
"""

from __future__ import annotations

import nn

__all__ = [
    "RESNET_DEPTHS", "BasicBlock", "Bottleneck", "ResNet", "add_imagenet_stem", "add_stages",
    "make_stage", "resnet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # No bias: the BatchNorm that follows has its own shift, a conv bias would be redundant.
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus the shortcut, then ReLU.

    ``downsample`` maps ``x`` to the branch's shape when the block changes resolution or
    width (torchvision: 1×1 conv + BN); None means the identity shortcut. With
    ``residual=False`` there is no shortcut at all: the "plain" net of the paper.
    """

    expansion = 1  # output channels = expansion · channels
    fuse_pairs = [("conv1", "bn1"), ("conv2", "bn2")]  # conv → BN pairs for nn.utils.fuse_conv_bn

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce - 3×3 (stride here, v1.5) - 1×1 expand ×4, each with BN; shortcut; ReLU."""

    expansion = 4
    fuse_pairs = [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True):
        super().__init__()
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.residual = residual

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


# The lecture's ResNet table: block type and blocks per stage (stem and FC are one layer each).
RESNET_DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
STAGE_CHANNELS = (64, 128, 256, 512)  # doubled at each stage while the resolution halves


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """torchvision's ``downsample``: 1×1 conv (stride s) + BN (the paper's option B)."""
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


def make_stage(block: type[nn.Module], in_channels: int, channels: int, blocks: int,
               stride: int, shortcut=projection_shortcut, **block_kwargs) -> nn.Sequential:
    """One stage: ``blocks`` blocks; the first may halve the resolution and change width.

    ``shortcut(in_channels, out_channels, stride)`` builds the first block's shortcut
    when its shape changes; every other block uses the identity. ``shortcut=None`` builds
    none (for plain nets, ``residual=False``).
    """
    out_channels = channels * block.expansion
    downsample = None
    if shortcut is not None and (stride != 1 or in_channels != out_channels):
        downsample = shortcut(in_channels, out_channels, stride)
    layers = [block(in_channels, channels, stride, downsample, **block_kwargs)]
    layers += [block(out_channels, channels, **block_kwargs) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def add_stages(model: nn.Module, block: type[nn.Module], in_channels: int,
               stage_channels: tuple[int, ...], blocks_per_stage: tuple[int, ...],
               **stage_kwargs) -> int:
    """Give ``model`` its stages ``layer1``, ``layer2`` …, one ``make_stage`` per entry of
    ``stage_channels``, and return the width of the last one. Every stage but the first
    halves the resolution while it widens the net; the first keeps the stem's."""
    width = in_channels
    for i, (channels, blocks) in enumerate(zip(stage_channels, blocks_per_stage)):
        stride = 1 if i == 0 else 2
        model.add_module(f"layer{i + 1}",
                         make_stage(block, width, channels, blocks, stride, **stage_kwargs))
        width = channels * block.expansion
    return width


def add_imagenet_stem(model: nn.Module, in_channels: int) -> int:
    """Give ``model`` torchvision's stem, ``conv1``-``bn1``-``relu``-``maxpool`` (7×7/2
    conv, BN, ReLU, 3×3/2 max pool: 224 → 56, a 16th of the pixels before any block
    runs), and return its width. ``forward`` calls them in that order."""
    width = STAGE_CHANNELS[0]
    model.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.relu = nn.ReLU()
    model.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
    return width


class ResNet(nn.Module):
    """Stem (7×7/2 conv, BN, ReLU, 3×3/2 max pool: 224 → 56), four stages, global
    average pool, one FC — the same aggressive stem and pooled head as GoogLeNet."""

    fuse_pairs = [("conv1", "bn1")]

    def __init__(self, block: type[nn.Module], blocks_per_stage: tuple[int, ...],
                 num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False):
        super().__init__()
        width = add_imagenet_stem(self, in_channels)
        width = add_stages(self, block, width, STAGE_CHANNELS, blocks_per_stage)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, num_classes)
        init_resnet_(self)
        if zero_init_residual:  # each block starts as the identity (Goyal et al. 2017)
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


def init_resnet_(model: nn.Module) -> None:
    """torchvision's initialisation: He-normal (fan_out) convs, BN γ = 1 and β = 0.
    Linear layers keep their default initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def resnet(depth: int, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """The ResNet of the lecture's table with ``depth`` layers (18, 34, 50, 101 or 152)."""
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_DEPTHS)}, got {depth}")
    block, blocks_per_stage = RESNET_DEPTHS[depth]
    return ResNet(block, blocks_per_stage, num_classes, in_channels, **kwargs)


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return resnet(18, num_classes, in_channels)


def resnet34(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return resnet(34, num_classes, in_channels)


def resnet50(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return resnet(50, num_classes, in_channels)


def resnet101(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return resnet(101, num_classes, in_channels)


def resnet152(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    return resnet(152, num_classes, in_channels)
