"""Dropout: zero each element with probability p and scale the rest by 1/(1-p)
("inverted" dropout, so evaluation needs no rescaling)."""

from __future__ import annotations

import numbers

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, *, p):
        gen = backend.generator(backend.device_of(x))
        keep = gen.random(x.shape, dtype="float32") >= p
        scale = x.dtype.type(1.0 / (1.0 - p))
        mask = keep * scale  # the mask already holds the 1/(1-p) factor
        mask = mask.astype(x.dtype, copy=False)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout; ``inplace`` is accepted for PyTorch compatibility and ignored."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout probability must be a number, got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if x.dtype.kind not in "fc":  # the kept values are scaled by 1/(1 - p)
        raise TypeError(f"dropout needs a floating-point input, got dtype {x.dtype}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p)
