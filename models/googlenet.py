"""GoogLeNet / Inception v1 (Szegedy et al. 2015): a network designed for efficiency.

- An aggressive stem (conv 7×7/2, pool, conv 1×1, conv 3×3, pool) takes 224×224 to
  28×28 cheaply.
- Inception modules run four branches in parallel — 1×1; 1×1→3×3; 1×1→"5×5"; 3×3 max
  pool→1×1 — and concatenate them along the channels. The 1×1 "bottleneck" convs cut
  the channels before the expensive convs.
- Global average pooling replaces the big FC layers: one FC 1024→1000 at the end.
- Two auxiliary classifiers (after inception4a and 4d) add loss at intermediate depths,
  a way to train a deep net before batch normalisation existed.

The layout is torchvision's, names included, so its state_dicts load with ``strict=True``:
every conv is a ``BasicConv2d`` (conv without bias, BN with eps=0.001, ReLU) — the
BN-after-conv variant torchvision ported from TensorFlow, not the paper's plain convs.
torchvision's third branch uses a 3×3 conv where the paper has a 5×5 (a known slip,
pytorch/vision#906, kept there for compatibility with its weights); we follow
torchvision so its weights load, and so the parameter count is its 13,004,888.
torchvision's ``transform_input`` (re-normalising inputs for its TF-ported weights) is
not provided: normalise the input yourself.

In training mode with ``aux_logits=True`` the forward returns
``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`` (torchvision's order); in eval
mode, the logits alone.
"""

from __future__ import annotations

from collections import namedtuple

import nn
import tensorgrad as tg

__all__ = ["INCEPTION_CONFIGS", "BasicConv2d", "Inception", "InceptionAux", "GoogLeNet",
           "GoogLeNetOutputs", "googlenet"]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """conv (no bias: BN shifts) → BN → ReLU."""

    fuse_pairs = [("conv", "bn")]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches, concatenated along the channels.

    Output channels: ch1x1 + ch3x3 + ch5x5 + pool_proj.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1),  # 1×1 bottleneck before the 3×3
            BasicConv2d(ch3x3red, ch3x3, 3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1),
            # The paper's 5×5 is a 3×3 in torchvision (pytorch/vision#906); kept for its weights.
            BasicConv2d(ch5x5red, ch5x5, 3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, 1),  # pooling keeps the width: project it
        )

    def forward(self, x):
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return tg.cat(branches, dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: avg pool to 4×4, 1×1 conv to 128, FC 2048→1024, dropout 0.7, FC."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.flatten(self.conv(self.avgpool(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) per module, Table 1 of the paper;
# "M" is a 3×3 stride-2 max pool (2×2 before stage 5, as torchvision).
INCEPTION_CONFIGS: dict[str, tuple[int, int, int, int, int, int] | str] = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "maxpool3": "M",
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "maxpool4": "M",
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}
AUX_AFTER = {"inception4a": "aux1", "inception4d": "aux2"}  # where the aux heads tap in


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, aux_logits: bool = True,
                 in_channels: int = 3, dropout: float = 0.2, aux_dropout: float = 0.7):
        super().__init__()
        self.aux_logits = aux_logits
        # The stem: 224 → 112 → 56 → 28. ceil_mode pools as torchvision (and Caffe).
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        width = 192
        self.body: list[str] = []  # names in forward order
        for name, config in INCEPTION_CONFIGS.items():
            if config == "M":
                kernel = 2 if name == "maxpool4" else 3
                setattr(self, name, nn.MaxPool2d(kernel, stride=2, ceil_mode=True))
            else:
                setattr(self, name, Inception(width, *config))
                ch1x1, _, ch3x3, _, ch5x5, pool_proj = config
                width = ch1x1 + ch3x3 + ch5x5 + pool_proj
            self.body.append(name)

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, aux_dropout)  # after inception4a
            self.aux2 = InceptionAux(528, num_classes, aux_dropout)  # after inception4d
        else:
            self.aux1 = self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))  # global average pooling: 1024×7×7 → 1024
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's: convs and linears from N(0, 0.01²) truncated at ±2σ; BN γ=1, β=0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                truncated_normal_(m.weight, std=0.01)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        aux = {}
        for name in self.body:
            x = getattr(self, name)(x)
            if name in AUX_AFTER and self.aux_logits and self.training:
                head = AUX_AFTER[name]  # the aux heads only add loss: skipped in eval
                aux[head] = getattr(self, head)(x)
        logits = self.fc(self.dropout(self.flatten(self.avgpool(x))))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(logits, aux["aux2"], aux["aux1"])
        return logits


@tg.no_grad()
def truncated_normal_(tensor: tg.Tensor, std: float) -> tg.Tensor:
    """N(0, std²) restricted to [-2σ, 2σ]: redraw the samples that fall outside.

    Each round keeps ~95% of what is left, so a million values need about six rounds.
    """
    nn.init.normal_(tensor, 0.0, std)
    xp = tg.get_array_module(tensor.data)
    fresh = tg.zeros(*tensor.shape, dtype=tensor.dtype, device=tensor.device)
    outside = xp.abs(tensor.data) > 2 * std
    while bool(outside.any()):
        nn.init.normal_(fresh, 0.0, std)
        tensor.data[...] = xp.where(outside, fresh.data, tensor.data)
        outside = xp.abs(tensor.data) > 2 * std
    tensor._bump_version()
    return tensor


def googlenet(num_classes: int = 1000, aux_logits: bool = True,
              in_channels: int = 3) -> GoogLeNet:
    return GoogLeNet(num_classes, aux_logits, in_channels)
