"""Pre-activation ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks").

The original block ends with ``relu(F(x) + x)``: the ReLU after the addition means the
block cannot pass its input through unchanged. The pre-activation block moves BN and
ReLU in front of each conv, inside the residual branch, and does nothing after the
addition::

    original:        x → conv-BN-ReLU-conv-BN → (+x) → ReLU
    pre-activation:  x → BN-ReLU-conv-BN-ReLU-conv → (+x)

so with a zero branch the block is exactly the identity, and the signal of any layer
reaches any later layer unchanged. Since no block normalises its own output, the
network ends with one BN-ReLU before the global average pool.

The layout follows the ImageNet ResNet of ``models/resnet.py`` (same stem, stages,
depth table, names ``layerN.M.convK/bnK``); a shortcut that changes shape is a 1×1 conv
(no BN: the next block normalises) applied, as in the paper's code, to the
pre-activated input.
"""

from __future__ import annotations

import nn

from .resnet import (
    RESNET_DEPTHS,
    STAGE_CHANNELS,
    add_imagenet_stem,
    add_stages,
    conv1x1,
    conv3x3,
    init_resnet_,
)

__all__ = [
    "PREACT_DEPTHS", "PreActBasicBlock", "PreActBottleneck", "PreActResNet",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101",
    "preact_resnet152",
]


class PreActBasicBlock(nn.Module):
    """BN-ReLU-conv3×3, BN-ReLU-conv3×3, + shortcut. Nothing after the addition."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.downsample = downsample

    def forward(self, x):
        pre = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1×1, BN-ReLU-conv3×3 (stride), BN-ReLU-conv1×1 (×4), + shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv1 = conv1x1(in_channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn3 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.downsample = downsample

    def forward(self, x):
        pre = self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + shortcut


# The ResNet table with each block swapped for its pre-activation twin.
_PREACT_OF = {"BasicBlock": PreActBasicBlock, "Bottleneck": PreActBottleneck}
PREACT_DEPTHS = {depth: (_PREACT_OF[block.__name__], stages)
                 for depth, (block, stages) in RESNET_DEPTHS.items()}


class PreActResNet(nn.Module):
    """Stem conv-BN-ReLU-pool, four pre-activation stages, final BN-ReLU, pool, FC."""

    fuse_pairs = [("conv1", "bn1")]

    def __init__(self, block: type[nn.Module], blocks_per_stage: tuple[int, ...],
                 num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        width = add_imagenet_stem(self, in_channels)
        width = add_stages(self, block, width, STAGE_CHANNELS, blocks_per_stage,
                           shortcut=conv1x1)
        self.bn_final = nn.BatchNorm2d(width)  # the blocks leave their sum unnormalised
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, num_classes)
        init_resnet_(self)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.relu(self.bn_final(x))
        return self.fc(self.flatten(self.avgpool(x)))


def preact_resnet(depth: int, num_classes: int = 1000, in_channels: int = 3) -> PreActResNet:
    if depth not in PREACT_DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(PREACT_DEPTHS)}, got {depth}")
    block, blocks_per_stage = PREACT_DEPTHS[depth]
    return PreActResNet(block, blocks_per_stage, num_classes, in_channels)


def preact_resnet18(num_classes: int = 1000, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(18, num_classes, in_channels)


def preact_resnet34(num_classes: int = 1000, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(34, num_classes, in_channels)


def preact_resnet50(num_classes: int = 1000, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(50, num_classes, in_channels)


def preact_resnet101(num_classes: int = 1000, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(101, num_classes, in_channels)


def preact_resnet152(num_classes: int = 1000, in_channels: int = 3) -> PreActResNet:
    return preact_resnet(152, num_classes, in_channels)
