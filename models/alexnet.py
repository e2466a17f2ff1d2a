"""AlexNet (Krizhevsky et al. 2012) and ZFNet (Zeiler & Fergus 2014), "a bigger AlexNet".

Five convs with ReLU and three max pools, then three fully-connected layers. Most of
the memory is in the early convs, nearly all parameters in the FC layers (fc6 alone:
9216·4096 ≈ 37.7 M of 61 M), most of the compute in the convs.

The layout is torchvision's (the single-GPU "one weird trick" variant, 64/192/384/256/256
filters, no local response normalisation), names included: ``features.0`` … ``features.10``
(convs at 0, 3, 6, 8, 10), ``avgpool``, ``classifier.1/.4/.6`` (dropout at 0 and 3),
so a torchvision state_dict loads with ``strict=True``. The adaptive 6×6 average pool
lets 224×224 (torchvision's) and 227×227 (the lecture's) inputs give the same head.

ZFNet is the same network with the lecture's two changes, and nothing else:
conv1 7×7 stride 2 (instead of 11×11 stride 4) and conv3, 4, 5 with 512, 1024, 512
filters (instead of 384, 384, 256). conv1 uses padding 3 (half the kernel, the natural
choice for a 7×7): 224 → 112 and 227 → 114, then 55/56 → 27 → 13 after the three
pools, and the adaptive pool brings 13×13 to 6×6. (Zeiler & Fergus also gave conv2
stride 2, which keeps AlexNet's 13×13 maps at conv3–5; the lecture does not.)
"""

from __future__ import annotations

import nn

__all__ = ["ALEXNET_CONVS", "ZFNET_CONVS", "AlexNet", "alexnet", "zfnet"]

# (filters, kernel, stride, padding) per conv, "M" for a 3×3 stride-2 max pool.
ALEXNET_CONVS = [
    (64, 11, 4, 2), "M",
    (192, 5, 1, 2), "M",
    (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "M",
]
ZFNET_CONVS = [
    (64, 7, 2, 3), "M",          # conv1: 7×7 stride 2 sees finer detail than 11×11 stride 4
    (192, 5, 1, 2), "M",
    (512, 3, 1, 1), (1024, 3, 1, 1), (512, 3, 1, 1), "M",  # conv3-5 wider
]


def make_features(convs: list, in_channels: int) -> nn.Sequential:
    """conv+ReLU for each (filters, kernel, stride, padding), max pool for each "M"."""
    layers: list[nn.Module] = []
    for spec in convs:
        if spec == "M":
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        else:
            filters, kernel, stride, padding = spec
            layers += [nn.Conv2d(in_channels, filters, kernel, stride, padding), nn.ReLU()]
            in_channels = filters
    return nn.Sequential(*layers)


class AlexNet(nn.Module):
    """features (convs) → adaptive avg pool 6×6 → flatten → classifier (3 FC, dropout)."""

    def __init__(self, convs: list = ALEXNET_CONVS, num_classes: int = 1000,
                 in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = make_features(convs, in_channels)
        last_width = [spec for spec in convs if spec != "M"][-1][0]
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(last_width * 6 * 6, 4096),  # fc6
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),                # fc7
            nn.ReLU(),
            nn.Linear(4096, num_classes),         # fc8
        )
        # torchvision keeps PyTorch's default layer initialisation for AlexNet; so do we.

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def alexnet(num_classes: int = 1000, in_channels: int = 3) -> AlexNet:
    return AlexNet(ALEXNET_CONVS, num_classes, in_channels)


def zfnet(num_classes: int = 1000, in_channels: int = 3) -> AlexNet:
    return AlexNet(ZFNET_CONVS, num_classes, in_channels)
