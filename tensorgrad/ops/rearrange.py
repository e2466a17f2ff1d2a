"""Ops that copy values to new places: flip, repeat (tiling) and split/chunk.

Companions of the shape ops in ``shape.py``: each backward sends every gradient
back to the element it came from (flip it back; sum the copies of a repeat;
concatenate the pieces of a split, the inverse of ``cat``). Those backwards are
linear and made of recordable array ops, so create_graph runs them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor, int_args
from .reduce import normalize_dims


class Flip(Function):
    """Reverse the order along some axes (a copy, as PyTorch's flip)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axes):
        ctx.axes = axes
        return get_array_module(x).flip(x, axes).copy()

    @staticmethod
    def backward(ctx, g):
        return get_array_module(g).flip(g, ctx.axes)


class Repeat(Function):
    """Tile x ``reps[d]`` times along each dim d (new leading dims for extra reps).
    Each input element appears once per tile, so its gradient sums over the tiles:
    g viewed as (r0, s0, r1, s1, ...) summed over the r axes."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, reps):
        x = x.reshape((1,) * (len(reps) - x.ndim) + x.shape)
        ctx.shape, ctx.reps = x.shape, reps
        return get_array_module(x).tile(x, reps)

    @staticmethod
    def backward(ctx, g):
        split = tuple(n for r, s in zip(ctx.reps, ctx.shape) for n in (r, s))
        g = g.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return g  # the engine sums the new leading dims away (unbroadcast)


class Split(Function):
    """Cut x along an axis at ``bounds``; the pieces are views, as PyTorch's.
    Backward concatenates their gradients (an unused piece contributes zeros)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axis, bounds):
        ctx.axis = axis
        return tuple(get_array_module(x).split(x, bounds, axis=axis))

    @staticmethod
    def backward(ctx, *gs):
        return get_array_module(gs[0]).concatenate(gs, axis=ctx.axis)


# ------------------------------------------------------------------ wrappers


def flip(x: Tensor, *dims) -> Tensor:
    """``x.flip(0)``, ``x.flip(0, 1)`` or ``x.flip((0, 1))``: reverse those dims."""
    dims = int_args(dims, "flip dims")
    axes = normalize_dims(dims, x.ndim, "flip")
    return Flip.apply(x, axes=axes)


def repeat(x: Tensor, *sizes) -> Tensor:
    """Tile x: ``x.repeat(2, 3)`` repeats dim -2 twice and dim -1 three times; more
    sizes than dims add leading dims (as PyTorch's repeat, NumPy's tile)."""
    reps = int_args(sizes, "repeat sizes")
    if len(reps) < x.ndim:
        raise ValueError(f"repeat: {len(reps)} sizes {reps} for a tensor of shape {x.shape}: "
                         f"give at least one per dim")
    if any(r < 0 for r in reps):
        raise ValueError(f"repeat: sizes must be non-negative, got {reps}")
    return Repeat.apply(x, reps=reps)


def _split_at(x: Tensor, sizes: list[int], axis: int) -> tuple[Tensor, ...]:
    bounds = np.cumsum(sizes)[:-1].tolist()
    return Split.apply(x, axis=axis, bounds=bounds)


def _split_axis(x: Tensor, dim, op: str) -> int:
    if x.ndim == 0:
        raise ValueError(f"{op}: a 0-d tensor cannot be split")
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return normalize_dims(dim, x.ndim, op)[0]


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces along ``dim``: of ``split_size`` each (the last may be smaller), or of the
    listed sizes, which must add up to the dim's size."""
    axis = _split_axis(x, dim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, Sequence):
        sizes = list(int_args(tuple(split_size_or_sections), "split sizes"))
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} must be non-negative and add up to {n}, "
                             f"the size of dim {dim} (tensor shape {x.shape})")
    else:
        (size,) = int_args((split_size_or_sections,), "split size")
        if size <= 0 and not (size == 0 and n == 0):
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - i) for i in range(0, n, size)] if n else [0]
    return _split_at(x, sizes, axis)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """``chunks`` pieces along ``dim`` of ⌈n / chunks⌉ elements each (the last may be
    smaller, and there may be fewer pieces, as PyTorch's)."""
    axis = _split_axis(x, dim, "chunk")
    (chunks,) = int_args((chunks,), "chunks")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[axis]
    if n == 0:
        return _split_at(x, [0] * chunks, axis)
    size = -(-n // chunks)
    return _split_at(x, [min(size, n - i) for i in range(0, n, size)], axis)
