"""Pooling layers: a fixed window (max or average) slid over H and W, or an
adaptive average that picks its windows to produce a requested output size.

Output size per spatial dim: H' = ⌊(H + 2·pad − k) / stride⌋ + 1 (⌈⌉ with ceil_mode).
"""

from __future__ import annotations

import tensorgrad.functional as F
from tensorgrad.tensor import Tensor

from .module import Module


class MaxPool2d(Module):
    """Largest value of each ``kernel_size`` window; the gradient flows back only to
    that maximum. ``stride`` defaults to the window size: windows that do not overlap."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        if dilation not in (1, (1, 1)):
            raise ValueError(f"MaxPool2d: only dilation=1 is supported, got {dilation!r}")
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                            bool(self.ceil_mode))

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean of each ``kernel_size`` window (``stride`` defaults to the window size).
    ``count_include_pad`` decides whether padded zeros count in the divisor."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        if divisor_override is not None:
            raise ValueError("AvgPool2d: divisor_override is not supported")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average over windows chosen so the output is ``output_size`` (an int, a pair,
    with None meaning "keep the input size" in that dim)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
