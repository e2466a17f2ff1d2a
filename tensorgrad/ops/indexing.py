"""Indexing: ``x[ints, slices, None, ..., integer arrays, boolean masks]``.

The backward writes the gradient into a zero tensor at the same positions. With
integer arrays a position can be picked twice, so the gradient must *accumulate*
there: ``xp.add.at`` does, whereas ``gx[idx] += g`` would keep only one of them.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..autograd.traced import TracedArray
from ..backend import get_array_module, is_cupy_array, to_device
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


def _on_device_of(x: Tensor, index):
    """Host index arrays (NumPy, or a CPU tensor's) moved to a CUDA tensor's device, as
    CuPy and PyTorch move them: indexing with them is not mixing devices. A CUDA index
    for a CPU tensor is left for ``getitem`` to refuse."""
    if isinstance(index, tuple):
        return tuple(_on_device_of(x, i) for i in index)
    if isinstance(index, np.ndarray) and is_cupy_array(x.data):
        return to_device(index, x.device)
    return index


def _is_advanced(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "dtype") and p.dtype.kind in "iu" for p in parts)


def zeros_for(g, shape: tuple[int, ...], dtype=None):
    """Zeros of ``shape`` for a backward to write gradient ``g`` into: ``xp.zeros`` on
    arrays (it gets zeroed memory from the allocator, no pass over it), a constant
    traced array under create_graph."""
    xp = get_array_module(g)
    if isinstance(g, TracedArray):
        return xp.zeros_like(g, dtype=dtype, shape=shape)
    return xp.zeros(shape, g.dtype if dtype is None else dtype)


class GetItem(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        # under create_graph the writes below are a recorded SetItem / IndexAdd (each
        # differentiable again)
        gx = zeros_for(g, ctx.shape, ctx.dtype)
        if _is_advanced(ctx.index):
            xp.add.at(gx, ctx.index, g)
        else:
            gx[ctx.index] = g
        return gx


def getitem(x: Tensor, index) -> Tensor:
    xp = get_array_module(x.data)
    index = _on_device_of(x, raw_index(index, xp))
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

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, value, *, index):
        ctx.index = index
        out = x.copy()
        out[index] = value
        return out

    @staticmethod
    def backward(ctx, g):
        gx = g.copy()  # (traced: the write below is itself a recorded SetItem)
        gx[ctx.index] = 0
        return gx, (g[ctx.index] if ctx.needs_input_grad[1] else None)


def setitem(x: Tensor, index, value) -> Tensor:
    xp = get_array_module(x.data)
    return SetItem.apply(x, value, index=_on_device_of(x, raw_index(index, xp)))


class IndexAdd(Function):
    """``xp.add.at(base, index, values)`` out of place: a copy of base with values
    added at the positions, repeated positions accumulating. Linear in both, so
    d base = g and d values = g[index] (a gather: the adjoint of the scatter-add).
    It is GetItem's backward under create_graph, and GetItem is its backward."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, base, values, *, index):
        ctx.index = index
        out = base.copy()
        get_array_module(base).add.at(out, index, values)
        return out

    @staticmethod
    def backward(ctx, g):
        gv = g[ctx.index] if ctx.needs_input_grad[1] else None
        return g, gv


def index_add(base: Tensor, index, values) -> Tensor:
    """A copy of ``base`` with ``values`` added at ``index`` (any index NumPy takes;
    repeated positions accumulate, as ``numpy.add.at``). Not PyTorch's dim-wise
    ``index_add``: this is the scatter-add that indexing's backward needs."""
    xp = get_array_module(base.data)
    if not isinstance(values, Tensor):
        values = Tensor._make(xp.asarray(values, dtype=base.dtype), None)
    return IndexAdd.apply(base, values, index=_on_device_of(base, raw_index(index, xp)))
