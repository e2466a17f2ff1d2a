"""Shape ops: reshape, permute, expand, squeeze, cat, stack, and device/dtype moves.

They only rearrange values, so each backward rearranges the gradient the
opposite way (reshape back, inverse permutation, split a concatenation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import backend
from ..autograd import Function
from ..autograd.traced import TracedArray
from ..backend import get_array_module
from ..tensor import Tensor, int_args
from .reduce import dim_alias, normalize_dims


class Reshape(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


class Expand(Function):
    """A broadcast view; the engine's unbroadcast sums the gradient back."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, shape):
        return get_array_module(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g


class Cat(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1].tolist()
        return get_array_module(xs[0]).concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(get_array_module(g).split(g, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        return get_array_module(xs[0]).stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis  # g[..., i, ...] at the stacked axis: a view
        return tuple(g[lead + (i,)] for i in range(g.shape[ctx.axis]))


class ToCopy(Function):
    """Move to another device and/or cast; the gradient goes back the same way."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, device, dtype):
        ctx.src_device, ctx.src_dtype = backend.device_of(x), x.dtype
        return backend.to_device(x, device).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        if isinstance(g, TracedArray):  # create_graph: the move back is a ToCopy too
            return TracedArray(g.t.to(device=ctx.src_device, dtype=ctx.src_dtype))
        return backend.to_device(g, ctx.src_device).astype(ctx.src_dtype, copy=False)


class Clone(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


class Fill(Function):
    """x's shape and dtype filled with ``value`` (broadcast): ``fill_``/``copy_``
    out of place. The old values get no gradient; ``value`` gets the sum of its uses."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, value):
        xp = get_array_module(x)
        return xp.broadcast_to(xp.asarray(value, dtype=x.dtype), x.shape).copy()

    @staticmethod
    def backward(ctx, g):
        return get_array_module(g).zeros_like(g), g


# ------------------------------------------------------------------ wrappers


def fill(x: Tensor, value) -> Tensor:
    """A new tensor like ``x`` holding ``value`` everywhere (broadcast when an array)."""
    shape = getattr(value, "shape", ())
    if len(shape) > x.ndim or any(a not in (1, b) for a, b in
                                  zip(reversed(shape), reversed(x.shape))):
        raise RuntimeError(f"the values of shape {tuple(shape)} cannot be broadcast to this "
                           f"tensor's shape {x.shape}")
    return Fill.apply(x, value)


def reshape(x: Tensor, *shape) -> Tensor:
    shape = int_args(shape, "sizes and dims")
    known = [s for s in shape if s != -1]
    size = int(np.prod(known)) if known else 1
    if shape.count(-1) > 1 or any(s < -1 for s in shape) or (
        x.numel() != size if -1 not in shape else (size == 0 or x.numel() % size)
    ):
        raise ValueError(f"reshape: shape {shape} is invalid for input of shape {x.shape} "
                         f"({x.numel()} elements)")
    return Reshape.apply(x, shape=shape)  # a new tensor even for the same shape, as PyTorch


def permute(x: Tensor, *dims) -> Tensor:
    dims = int_args(dims, "sizes and dims")
    if any(not -x.ndim <= d < x.ndim for d in dims):
        raise IndexError(f"permute: dims {dims} out of range for a tensor of shape {x.shape}")
    if sorted(d % x.ndim for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} "
                         f"dimensions of a tensor of shape {x.shape}")
    return Permute.apply(x, dims=tuple(d % x.ndim for d in dims))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    if x.ndim == 0:  # dims 0 / -1 of a 0-d tensor: nothing to swap, as PyTorch
        for d in (dim0, dim1):
            normalize_dims(d, 0, "transpose")  # still refuses dims out of range
        return Reshape.apply(x, shape=())
    d0, d1 = (normalize_dims(d, x.ndim, "transpose")[0] for d in (dim0, dim1))
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, dims=tuple(dims))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_dims(start_dim, x.ndim, "flatten")[0]
    e = normalize_dims(end_dim, x.ndim, "flatten")[0]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def squeeze(x: Tensor, dim=None, *, axis=None) -> Tensor:
    dim = dim_alias("squeeze", dim, axis)
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    axes = normalize_dims(dim, x.ndim, "squeeze") or ()  # dim=() squeezes nothing
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1)))


def unsqueeze(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    dim = dim_alias("unsqueeze", dim, axis)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"unsqueeze: dim must be an int, got {dim!r}")
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with "
                         f"{x.ndim} dimensions")
    dim = dim % (x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def expand(x: Tensor, *sizes) -> Tensor:
    sizes = int_args(sizes, "sizes and dims")
    if len(sizes) < x.ndim:
        raise ValueError(f"expand: {len(sizes)} sizes {sizes} for a tensor of shape {x.shape}")
    lead = len(sizes) - x.ndim
    if any(s < 0 for s in sizes[:lead]) or any(s < -1 for s in sizes):
        raise ValueError(f"expand: sizes {sizes} for a tensor of shape {x.shape}: -1 keeps an "
                         f"existing size, new leading sizes must be non-negative")
    shape = tuple(x.shape[i - lead] if (s == -1 and i >= lead) else s
                  for i, s in enumerate(sizes))
    for i, n in enumerate(x.shape):
        if n != 1 and n != shape[lead + i]:
            raise ValueError(f"expand: cannot expand shape {x.shape} to {sizes}")
    return Expand.apply(x, shape=shape)


def _check_tensors(ts: Sequence[Tensor], op: str, dim: int):
    if not ts:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for t in ts:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__}")


def _promote(ts: list[Tensor]) -> list[Tensor]:
    """Cast to one dtype as PyTorch's cat/stack do (a float beats ints and bools)."""
    from .elementwise import _result_dtype

    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = _result_dtype(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype=dtype) for t in ts]


def _tensor_list(tensors, op: str) -> list[Tensor]:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}: expected a sequence of Tensors, got a single Tensor")
    return list(tensors)


def cat(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Concatenate along an existing dimension."""
    dim = dim_alias("cat", dim, axis, default=0)
    tensors = _tensor_list(tensors, "cat")
    _check_tensors(tensors, "cat", dim)
    tensors = _promote(tensors)
    ref = tensors[0]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                             f"concatenated")
    (axis,) = normalize_dims(dim, ref.ndim, "cat")
    for t in tensors:
        if t.ndim != ref.ndim or any(
            a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != axis
        ):
            raise ValueError(f"cat: shapes {[u.shape for u in tensors]} differ outside dim {dim}")
    return Cat.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join along a new dimension."""
    dim = dim_alias("stack", dim, axis, default=0)
    tensors = _tensor_list(tensors, "stack")
    _check_tensors(tensors, "stack", dim)
    tensors = _promote(tensors)
    if len({t.shape for t in tensors}) > 1:
        raise ValueError(f"stack: all tensors need the same shape, got "
                         f"{[t.shape for t in tensors]}")
    nd = tensors[0].ndim + 1
    if not -nd <= dim < nd:
        raise IndexError(f"stack: dim {dim} out of range for {nd}-d result")
    return Stack.apply(*tensors, axis=dim % nd)
