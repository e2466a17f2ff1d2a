"""Fully-connected layer: y = x Wᵀ + b, with W of shape (out_features, in_features).

Default initialisation as PyTorch: W ~ U(−1/√in, 1/√in) (Kaiming-uniform with
a = √5, whose gain √(2/(1+5)) turns √(3/fan_in)·gain into 1/√fan_in) and the same
bound for b.
"""

from __future__ import annotations

import math

import numpy as np

import tensorgrad.functional as F
from tensorgrad import backend
from tensorgrad.tensor import Tensor

from . import init
from .module import Module, Parameter


def new_parameter(shape: tuple[int, ...], device=None, dtype=None) -> Parameter:
    """An uninitialised (zero) float parameter of ``shape`` on ``device``."""
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"layer sizes must be ints, got {n!r} (parameter shape {shape})")
        if n < 0:
            raise ValueError(f"layer sizes must be non-negative, got {n} (parameter shape "
                             f"{shape})")
    dtype = np.dtype(dtype or np.float32)
    device = backend.parse_device(device)
    return Parameter(backend.module_for(device).zeros(shape, dtype=dtype))


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = new_parameter((out_features, in_features), device, dtype)
        if bias:
            self.bias = new_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
