"""Selection by index: gather, scatter, sort, topk, masked_fill.

``gather`` and ``scatter`` address one element of ``x`` per element of ``index``: along
``dim`` the index array says where, along every other dim the position is the
element's own. ``along(index, dim)`` turns that into one NumPy index tuple (the index
array for ``dim``, open ``arange``s for the others, all broadcasting to index's shape),
so ``x[along(index, dim)]`` gathers and ``out[along(index, dim)] = src`` scatters.

Every backward routes the gradient the opposite way: what gather read, its backward
adds to (``xp.add.at``, because an index may repeat); what sort moved, its backward
moves back. The index arrays are constants (ctx attributes), and the gradient buffers
are made with ``xp.zeros_like(g, shape=...)``, so every backward also runs on traced
arrays (create_graph): its writes become recorded scatters, whose backward gathers.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import return_types
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor, int64
from .reduce import normalize_dims


def along(index, axis: int) -> tuple:
    """The NumPy index of ``x[..., index[i, j, k], ...]`` (``index`` along ``axis``,
    the element's own position along every other axis)."""
    xp = get_array_module(index)
    nd = index.ndim
    return tuple(
        index if d == axis else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (nd - d - 1))
        for d, n in enumerate(index.shape)
    )


def _region(shape) -> tuple:
    """The leading block of that shape (a larger ``src`` is only read there)."""
    return tuple(slice(0, n) for n in shape)


class Gather(Function):
    """out[i][j] = x[index[i][j]][j] (dim 0);  dx: each g added where it was read."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, index, *, axis):
        ctx.shape, ctx.where = x.shape, along(index, axis)
        return x[ctx.where]

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        gx = xp.zeros_like(g, shape=ctx.shape)
        xp.add.at(gx, ctx.where, g)  # a repeated index receives every gradient
        return gx, None


class Scatter(Function):
    """out = x, then out[index[i][j]][j] = src[i][j] (dim 0); ``src`` may be a number.
    dx: g, except at the overwritten positions;  dsrc: g read back from them."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, index, src, *, axis):
        ctx.where, ctx.index_shape = along(index, axis), index.shape
        ctx.src_shape = getattr(src, "shape", None)
        out = x.copy()
        out[ctx.where] = src[_region(index.shape)] if ctx.src_shape is not None else src
        return out

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        gx = gsrc = None
        if ctx.needs_input_grad[0]:
            gx = g.copy()
            gx[ctx.where] = 0
        if ctx.needs_input_grad[2]:
            gsrc = xp.zeros_like(g, shape=ctx.src_shape)
            gsrc[_region(ctx.index_shape)] = g[ctx.where]
        return gx, None, gsrc


class ScatterAdd(Function):
    """out = x, then out[index[i][j]][j] += src[i][j] (dim 0; repeats add up).
    dx = g;  dsrc: g read back from the positions each src element was added to."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, index, src, *, axis):
        ctx.where, ctx.index_shape, ctx.src_shape = along(index, axis), index.shape, src.shape
        out = x.copy()
        get_array_module(x).add.at(out, ctx.where, src[_region(index.shape)])
        return out

    @staticmethod
    def backward(ctx, g):
        gsrc = None
        if ctx.needs_input_grad[2]:
            gsrc = get_array_module(g).zeros_like(g, shape=ctx.src_shape)
            gsrc[_region(ctx.index_shape)] = g[ctx.where]
        return g, None, gsrc


def sort_indices(x, axis: int, descending: bool):
    """The stable sorting permutation along ``axis``. Descending keeps equal elements in
    their original order too: sort the reversed array ascending, reverse the result and
    map the positions back. NaN counts as the largest value (first when descending)."""
    xp = get_array_module(x)
    if not descending:
        return xp.argsort(x, axis=axis, kind="stable")
    rev = xp.flip(xp.argsort(xp.flip(x, axis), axis=axis, kind="stable"), axis)
    return (x.shape[axis] - 1) - rev


class Sort(Function):
    """(values, indices) of the first ``k`` elements of the sorted order along an axis
    (k = the whole axis for sort, as topk's k). The values are a permutation of the
    inputs, so the gradient goes back to where each value came from."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axis, descending, k):
        xp = get_array_module(x)
        idx = sort_indices(x, axis, descending)
        if k != x.shape[axis]:
            idx = idx[(slice(None),) * axis + (slice(0, k),)]
        ctx.shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(idx)
        return xp.take_along_axis(x, idx, axis=axis), idx.astype(int64)

    @staticmethod
    def backward(ctx, g, g_indices):
        (idx,) = ctx.saved_tensors
        xp = get_array_module(g)
        gx = xp.zeros_like(g, shape=ctx.shape)
        xp.put_along_axis(gx, idx, g, axis=ctx.axis)  # distinct positions: no accumulation
        return gx


class MaskedFill(Function):
    """out = value where mask else x;  dx = g where not mask, dvalue = Σ g where mask."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, mask, value):
        xp = get_array_module(x)
        ctx.save_for_backward(mask)
        return xp.where(mask, xp.asarray(value).astype(x.dtype), x)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        xp = get_array_module(g)
        zero = g.dtype.type(0)
        gx = xp.where(mask, zero, g) if ctx.needs_input_grad[0] else None
        gvalue = xp.where(mask, g, zero).sum() if ctx.needs_input_grad[2] else None
        return gx, None, gvalue


# ------------------------------------------------------------------ wrappers


def _one_axis(x: Tensor, dim, op: str) -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    axes = normalize_dims(dim, x.ndim, op)
    return axes[0] if axes else 0


def _check_index(x: Tensor, dim, index, op: str, src_shape=None) -> int:
    """Validate ``index`` for gather/scatter along ``dim`` (PyTorch's rules) and return
    the axis: same number of dims as x, no larger than x outside ``dim`` (and no
    larger than src anywhere), every value in range."""
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}: index must be a Tensor, got {type(index).__name__}")
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {index.dtype}")
    axis = _one_axis(x, dim, op)
    if index.ndim != x.ndim:
        raise ValueError(f"{op}: index has {index.ndim} dimensions (shape {index.shape}) but "
                         f"the tensor has {x.ndim} (shape {x.shape})")
    for d, n in enumerate(index.shape):
        if x.ndim and d != axis and n > x.shape[d]:
            raise ValueError(f"{op}: index shape {index.shape} is larger than the tensor "
                             f"shape {x.shape} in dim {d}")
        if src_shape is not None and n > src_shape[d]:
            raise ValueError(f"{op}: index shape {index.shape} is larger than the src "
                             f"shape {src_shape} in dim {d}")
    size = x.shape[axis] if x.ndim else 1
    if index.numel():
        lo, hi = int(index.data.min()), int(index.data.max())
        if lo < 0 or hi >= size:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{op}: index {bad} is out of bounds for dim {dim} with size "
                             f"{size} (tensor shape {x.shape})")
    return axis


def _nd(t: Tensor) -> Tensor:
    """A 0-d tensor as 1-d (gather/scatter/sort of a 0-d tensor act on its one value)."""
    return t.reshape(1) if t.ndim == 0 else t


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (likewise for other dims); the
    result has index's shape."""
    axis = _check_index(x, dim, index, "gather")
    out = Gather.apply(_nd(x), _nd(index), axis=axis)
    return out.reshape(()) if index.ndim == 0 else out


def _scatter(fn, x: Tensor, dim: int, index: Tensor, src, op: str) -> Tensor:
    if isinstance(src, Tensor):
        if src.dtype != x.dtype:
            raise TypeError(f"{op}: src has dtype {src.dtype} but the tensor has dtype "
                            f"{x.dtype}")
        if src.ndim != x.ndim:
            raise ValueError(f"{op}: src has shape {src.shape} but the tensor has shape "
                             f"{x.shape} (index {index.shape}); they need as many dims")
    elif fn is ScatterAdd or not isinstance(src, numbers.Number):
        raise TypeError(f"{op}: src must be a Tensor{'' if fn is ScatterAdd else ' or a number'}"
                        f", got {type(src).__name__}")
    axis = _check_index(x, dim, index, op, src.shape if isinstance(src, Tensor) else None)
    src = _nd(src) if isinstance(src, Tensor) else src
    out = fn.apply(_nd(x), _nd(index), src, axis=axis)
    return out.reshape(()) if x.ndim == 0 else out


def scatter(x: Tensor, dim: int, index: Tensor, src=None, *, value=None) -> Tensor:
    """A copy of x with ``src[i][j][k]`` written at ``[index[i][j][k]][j][k]`` (dim 0);
    ``src`` (or ``value=``) may be a number. Where an index repeats, one of the
    written values wins (which one is unspecified, as in PyTorch)."""
    if value is not None:
        if src is not None:
            raise TypeError("scatter: got both src and value")
        src = value
    return _scatter(Scatter, x, dim, index, src, "scatter")


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of x with ``src[i][j][k]`` added at ``[index[i][j][k]][j][k]`` (dim 0);
    repeated indices add up."""
    return _scatter(ScatterAdd, x, dim, index, src, "scatter_add")


def _sorted(x: Tensor, dim, descending: bool, k: int, pair, op: str):
    axis = _one_axis(x, dim, op)
    values, indices = Sort.apply(_nd(x), axis=axis, descending=bool(descending), k=k)
    if x.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return pair(values, indices)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)`` sorted along ``dim``. Always stable (equal elements keep
    their order), so ``stable`` is accepted and changes nothing."""
    n = x.shape[_one_axis(x, dim, "sort")] if x.ndim else 1
    return _sorted(x, dim, descending, n, return_types.sort, "sort")


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``x`` along ``dim`` (int64, no gradient)."""
    axis = _one_axis(x, dim, "argsort")
    idx = sort_indices(_nd(x).data, axis, bool(descending)).astype(int64)
    return Tensor._make(idx.reshape(()) if x.ndim == 0 else idx, None)


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """``(values, indices)`` of the ``k`` largest (or smallest) elements along ``dim``,
    in sorted order (also for ``sorted=False``, which allows any order)."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"topk: k must be an int, got {k!r}")
    n = x.shape[_one_axis(x, dim, "topk")] if x.ndim else 1
    if not 0 <= k <= n:
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {n} "
                         f"(tensor shape {x.shape})")
    return _sorted(x, dim, largest, int(k), return_types.topk, "topk")


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """x with ``value`` (a number or a 0-d tensor) wherever the bool ``mask`` (which
    broadcasts to x's shape) is True."""
    m = mask.data if isinstance(mask, Tensor) else mask
    if not hasattr(m, "dtype") or m.dtype != np.dtype(bool):
        raise TypeError(f"masked_fill: mask must be a bool tensor, got "
                        f"{getattr(m, 'dtype', type(m).__name__)}")
    try:
        ok = np.broadcast_shapes(m.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"masked_fill: mask of shape {tuple(m.shape)} does not broadcast "
                         f"to the tensor's shape {x.shape}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got a "
                             f"tensor of shape {value.shape}")
        if value.device != x.device:
            value = value.to(x.device)  # a CPU scalar tensor may fill a CUDA tensor
    elif not isinstance(value, numbers.Number):
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    if not isinstance(mask, Tensor):
        mask = Tensor._make(m, None)
    return MaskedFill.apply(x, mask, value)
