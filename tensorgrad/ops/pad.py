"""Constant padding, as PyTorch's ``F.pad(x, pad, mode="constant", value)``.

``pad`` lists (before, after) widths from the LAST dimension backwards:
``(left, right)`` pads the last dim, ``(left, right, top, bottom)`` the last two, and
so on. A negative width crops instead. Padding is linear in ``x``: the output is a
frame of ``value`` around a copy of (a crop of) ``x``, so the gradient is the same
window cut back out of the output gradient.

``pad_array`` is the raw-array helper that convolution and pooling use too.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .indexing import zeros_for


def _windows(shape: tuple[int, ...], widths: Sequence[tuple[int, int]]):
    """Output shape and the matching (source, destination) slices of a padding.

    ``widths`` holds one (before, after) pair per dimension, first dimension first.
    """
    out_shape, src, dst = [], [], []
    for size, (before, after) in zip(shape, widths):
        out_shape.append(size + before + after)
        # a negative width crops the source; a positive one shifts the destination
        crop = max(-before, 0)
        kept = max(size - crop - max(-after, 0), 0)
        src.append(slice(crop, crop + kept))
        dst.append(slice(max(before, 0), max(before, 0) + kept))
    return tuple(out_shape), tuple(src), tuple(dst)


def pad_array(x, widths: Sequence[tuple[int, int]], value=0):
    """``x`` padded by ``widths`` (one (before, after) pair per dim, first dim first)
    with the constant ``value``, in ``x``'s dtype. A raw-array helper, not recorded."""
    xp = get_array_module(x)
    out_shape, src, dst = _windows(x.shape, widths)
    out = xp.full(out_shape, value, dtype=x.dtype)
    out[dst] = x[src]
    return out


class Pad(Function):
    """y = x framed by a constant;  dx = the part of dy that holds x."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, widths, value):
        ctx.shape = x.shape
        ctx.widths = widths
        return pad_array(x, widths, value)

    @staticmethod
    def backward(ctx, g):
        _, src, dst = _windows(ctx.shape, ctx.widths)
        if all(s.stop - s.start == n for s, n in zip(src, ctx.shape)):
            return g[dst]  # nothing cropped: the window of g is the whole gradient
        # a crop: the cropped-away elements of x get 0 (the write is a SetItem when traced)
        gx = zeros_for(g, ctx.shape)
        gx[src] = g[dst]
        return gx


def pad(x: Tensor, pad: Sequence[int], value: float = 0.0, *, mode: str = "constant") -> Tensor:
    """Pad ``x`` with ``value``; ``pad`` = (left, right, top, bottom, ...) from the last
    dimension backwards (PyTorch's ``F.pad`` constant mode). Negative widths crop.
    ``mode`` is accepted for PyTorch compatibility; only ``"constant"`` is implemented."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got mode={mode!r}")
    if value is None:  # PyTorch's default
        value = 0.0
    if isinstance(pad, (str, bytes)) or not isinstance(pad, Sequence):
        raise TypeError(f"pad: expected a tuple of ints, got {pad!r}")
    if not all(isinstance(p, int) or hasattr(p, "__index__") for p in pad):
        raise TypeError(f"pad: expected a tuple of ints, got {tuple(pad)!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be even (pairs of before/after), "
                         f"got {len(pad)} values {pad}")
    if len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: padding {pad} covers {len(pad) // 2} dimensions but the input "
                         f"{tuple(x.shape)} has only {x.ndim}")
    # (before, after) per dimension, first dimension first; unpadded leading dims get (0, 0)
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    widths = [(0, 0)] * (x.ndim - len(pairs)) + pairs
    for dim, (size, (before, after)) in enumerate(zip(x.shape, widths)):
        if size - max(-before, 0) - max(-after, 0) < 0:
            raise ValueError(f"pad: padding ({before}, {after}) of dimension {dim} crops more "
                             f"than its size {size} (input {tuple(x.shape)}, pad {pad})")
    return Pad.apply(x, widths=tuple(widths), value=value)
