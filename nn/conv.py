"""2-D convolution layer over (N, C, H, W) input.

The weight has shape (out_channels, in_channels / groups, k_h, k_w); each output
channel sees only its group of input channels. Output size per spatial dim:
H' = ⌊(H + 2·pad − dil·(k − 1) − 1) / stride⌋ + 1; ``padding="same"`` keeps H' = H
(when dil·(k − 1) is odd, the extra row/column goes at the bottom/right, as
PyTorch). An unbatched (C, H, W) input gives a (C', H', W') output.

Default initialisation as PyTorch: Kaiming-uniform with a = √5
(W ~ U(−1/√fan_in, 1/√fan_in)) and b ~ U(−1/√fan_in, 1/√fan_in),
fan_in = in_channels / groups · k_h · k_w.
"""

from __future__ import annotations

import math

import tensorgrad.functional as F
from tensorgrad.tensor import Tensor

from . import init
from .linear import new_parameter
from .module import Module


def _pair(v, name: str) -> tuple[int, int]:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(t) != 2 or not all(isinstance(i, int) for i in t):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t


class Conv2d(Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"Conv2d: {name} must be an int, got {v!r}")
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding")
        self._check_padding_string()
        self.groups = groups
        self.padding_mode = padding_mode
        kh, kw = self.kernel_size
        self.weight = new_parameter((out_channels, in_channels // groups, kh, kw), device, dtype)
        if bias:
            self.bias = new_parameter((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _check_padding_string(self) -> None:
        """Refuse a bad padding string when the layer is built (as PyTorch does), not at
        its first forward; F.conv2d itself pads 'same' / 'valid'."""
        if not isinstance(self.padding, str):
            return
        if self.padding not in ("valid", "same"):
            raise ValueError(f"Invalid padding string {self.padding!r}, should be one of "
                             "{'valid', 'same'}")
        if self.padding == "same" and self.stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):  # a pair, or the string 'same' / 'valid'
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class ConvTranspose2d(Conv2d):
    """The transposed convolution (the adjoint of a Conv2d, which upsamples by its
    stride): weight (in_channels, out_channels / groups, k_h, k_w), output size
    H' = (H − 1)·stride − 2·pad + dil·(k − 1) + output_padding + 1. PyTorch's signature
    and initialisation (fan_in from the weight's second dimension, as PyTorch)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got "
                             f"{padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self.output_padding = _pair(output_padding, "output_padding")
        kh, kw = self.kernel_size
        self.weight = new_parameter((in_channels, out_channels // groups, kh, kw), device, dtype)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        return s
