"""Indexing: ``x[ints, slices, None, ..., integer arrays, boolean masks]``.

The backward writes the gradient into a zero tensor at the same positions. With
integer arrays a position can be picked twice, so the gradient must *accumulate*
there: ``xp.add.at`` does, whereas ``gx[idx] += g`` would keep only one of them.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module, is_cupy_array
from ..tensor import Tensor


def raw_index(index, xp=None):
    """Replace Tensors (and lists) in an index by raw arrays of module ``xp``."""
    if isinstance(index, tuple):
        return tuple(raw_index(i, xp) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list) and xp is not None:
        return xp.asarray(index)
    return index


def _is_advanced(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "dtype") and p.dtype.kind in "iu" for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, *, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        gx = xp.zeros(ctx.shape, ctx.dtype)
        if _is_advanced(ctx.index):
            xp.add.at(gx, ctx.index, g)
        else:
            gx[ctx.index] = g
        return gx


def getitem(x: Tensor, index) -> Tensor:
    xp = get_array_module(x.data)
    index = raw_index(index, xp)
    parts = index if isinstance(index, tuple) else (index,)
    for p in parts:
        if isinstance(p, (str, bytes, dict, set)):
            raise TypeError(f"cannot index a tensor of shape {x.shape} with "
                            f"{type(p).__name__} {p!r}")
        if hasattr(p, "dtype"):
            if is_cupy_array(p) != is_cupy_array(x.data):
                raise RuntimeError(f"index on {'cuda' if is_cupy_array(p) else 'cpu'} "
                                   f"for a tensor on {x.device}")
            if p.dtype.kind not in "iub":
                raise IndexError(f"tensors used as indices must be integer or bool, "
                                 f"got {p.dtype}")
    try:
        return GetItem.apply(x, index=index)
    except IndexError as e:
        raise IndexError(f"index {index!r} is out of range for a tensor of shape "
                         f"{x.shape}: {e}") from None


class SetItem(Function):
    """``x[index] = value`` out of place: a copy of x with the positions replaced.
    The replaced positions of x get no gradient; value gets the gradient there."""

    @staticmethod
    def forward(ctx, x, value, *, index):
        ctx.index = index
        out = x.copy()
        out[index] = value
        return out

    @staticmethod
    def backward(ctx, g):
        gx = g.copy()
        gx[ctx.index] = 0
        return gx, g[ctx.index]


def setitem(x: Tensor, index, value) -> Tensor:
    xp = get_array_module(x.data)
    return SetItem.apply(x, value, index=raw_index(index, xp))
