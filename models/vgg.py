"""VGG (Simonyan & Zisserman 2015): deeper networks with a regular design.

The rules: every conv is 3×3 stride 1 pad 1, every pool 2×2 stride 2, and after each
pool the channels double (64, 128, 256, 512, 512). Two stacked 3×3 convs see a 5×5
window with 18C² weights instead of 25C²; and every spatial resolution costs the same
compute, because halving H and W while doubling C keeps C²·H·W constant.

The layout is torchvision's: ``features.N`` numbers the layers in order (conv, [BN],
ReLU, …, pool), so with ``batch_norm=True`` the BatchNorm layers shift the indices
exactly as torchvision's ``make_layers`` does; then ``avgpool`` (adaptive 7×7) and
``classifier.0/.3/.6`` (FC 4096, FC 4096, FC num_classes, with ReLU and dropout between).
"""

from __future__ import annotations

import nn

__all__ = ["VGG_CONFIGS", "VGG", "make_layers", "vgg", "vgg11", "vgg13", "vgg16", "vgg19"]

# Conv widths per layer, "M" = 2×2 max pool. Convs per stage: VGG-11 1,1,2,2,2;
# VGG-13 2,2,2,2,2; VGG-16 2,2,3,3,3; VGG-19 2,2,4,4,4 (configs A, B, D, E of the paper).
VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def make_layers(config: list[int | str], batch_norm: bool = False,
                in_channels: int = 3) -> nn.Sequential:
    """conv3×3 [+ BN] + ReLU per width, 2×2 max pool per "M" — VGG's two rules."""
    layers: list[nn.Module] = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """features (``make_layers``) → adaptive avg pool 7×7 → flatten → three FC layers
    with ReLU and dropout (fc6, fc7, fc8)."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000,
                 dropout: float = 0.5):
        super().__init__()
        self.features = features
        # 7×7 at 224×224 input; adaptive so smaller inputs still reach the 25088-wide fc6
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),   # fc6: 102.8 M of VGG-16's 138 M parameters
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's: He-normal (fan_out) convs, N(0, 0.01) linears, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def vgg(depth: int, num_classes: int = 1000, in_channels: int = 3,
        batch_norm: bool = False) -> VGG:
    """VGG-``depth`` (11, 13, 16 or 19 weight layers)."""
    if depth not in VGG_CONFIGS:
        raise ValueError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}, got {depth}")
    return VGG(make_layers(VGG_CONFIGS[depth], batch_norm, in_channels), num_classes)


def vgg11(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> VGG:
    return vgg(11, num_classes, in_channels, batch_norm)


def vgg13(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> VGG:
    return vgg(13, num_classes, in_channels, batch_norm)


def vgg16(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> VGG:
    return vgg(16, num_classes, in_channels, batch_norm)


def vgg19(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> VGG:
    return vgg(19, num_classes, in_channels, batch_norm)
