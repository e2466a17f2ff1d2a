"""Dropout: zero each element with probability p and scale the rest by 1/(1-p)
("inverted" dropout, so evaluation needs no rescaling). ``dropout2d`` draws one
keep/drop decision per channel instead, zeroing whole feature maps: a mask of shape
(N, C, 1, 1) that broadcasts over H and W."""

from __future__ import annotations

import numbers

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


class Dropout(Function):
    """z = x·mask, mask = keep/(1-p) of shape ``mask_shape`` (default: x's), broadcast."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, p, mask_shape=None):
        gen = backend.generator(backend.device_of(x))
        keep = gen.random(x.shape if mask_shape is None else mask_shape, dtype="float32") >= p
        scale = x.dtype.type(1.0 / (1.0 - p))
        mask = keep * scale  # the mask already holds the 1/(1-p) factor
        mask = mask.astype(x.dtype, copy=False)
        # an attribute, not save_for_backward: the mask does not depend on x, so a
        # backward that records a graph (create_graph) rightly sees it as a constant
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask


def _check_dropout(x: Tensor, p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout probability must be a number, got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if x.dtype.kind not in "fc":  # the kept values are scaled by 1/(1 - p)
        raise TypeError(f"dropout needs a floating-point input, got dtype {x.dtype}")


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout; ``inplace`` is accepted for PyTorch compatibility and ignored."""
    _check_dropout(x, p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p)


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Channel-wise inverted dropout of (N, C, H, W) or unbatched (C, H, W) input: each
    channel is zeroed whole with probability p, the others scaled by 1/(1 - p).
    ``inplace`` is accepted for PyTorch compatibility and ignored."""
    _check_dropout(x, p)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W) or (C, H, W), "
                         f"got {x.shape}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    # one decision per (sample, channel), i.e. per leading dim but H and W
    return Dropout.apply(x, p=p, mask_shape=x.shape[:-2] + (1, 1))
