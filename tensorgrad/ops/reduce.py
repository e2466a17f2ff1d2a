"""Reductions (sum, mean, var, max, ...) and the softmax family.

A reduction's backward spreads the output gradient back over the reduced axes:
``g`` is reshaped with the reduced axes kept as size 1 and broadcast to the input.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor, int64


def normalize_dims(dim, ndim: int, op: str = "reduce") -> tuple[int, ...] | None:
    """``dim`` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if dim is None:
        return None
    if not isinstance(dim, (int, np.integer, tuple, list)):
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    n = ndim if ndim > 0 else 1  # a 0-d tensor accepts dim 0 / -1, as PyTorch
    out = []
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
        d = int(d)
        if not -n <= d < n:
            raise IndexError(
                f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions"
            )
        out.append(d % n)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim!r} repeats an axis")
    if ndim == 0:
        return ()  # a 0-d tensor has no axis to reduce: the op is the identity
    return tuple(sorted(out))


def dim_alias(op: str, dim, axis, default=None):
    """``dim``, or NumPy's name for it, ``axis`` (giving both is an error)."""
    if axis is None:
        return dim
    if dim is not None and dim != default:
        raise TypeError(f"{op}: got both dim={dim!r} and its alias axis={axis!r}")
    return axis


def _resolve(dim, keepdim, axis, keepdims, op: str = "reduce"):
    """Accept NumPy's ``axis``/``keepdims`` as aliases of ``dim``/``keepdim``. An empty
    ``dim`` (``()`` or ``[]``) reduces every dimension, as PyTorch (not NumPy)."""
    dim = dim_alias(op, dim, axis)
    if keepdims is not None:
        if keepdim:
            raise TypeError(f"{op}: got both keepdim and its alias keepdims")
        keepdim = keepdims
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    return dim, bool(keepdim)


def _expand_grad(g, in_shape, axes, keepdim):
    """Undo a reduction's shape: g -> broadcastable against the input."""
    xp = get_array_module(g)
    if axes is None:
        return xp.broadcast_to(g.reshape((1,) * len(in_shape)), in_shape)
    if not keepdim:
        g = xp.expand_dims(g, axes)
    return xp.broadcast_to(g, in_shape)


def _count(shape, axes) -> int:
    n = 1
    for a in range(len(shape)) if axes is None else axes:
        n *= shape[a]
    return n


class Sum(Function):
    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return _expand_grad(g, ctx.shape, ctx.axes, ctx.keepdim)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return x.mean(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        n = _count(ctx.shape, ctx.axes)
        return _expand_grad(g / n, ctx.shape, ctx.axes, ctx.keepdim)


def _variance(ctx, x, axes, keepdim: bool, ddof: int):
    """(x - μ, Σ(x - μ)² / (n - ddof)); records axes, keepdim and n - ddof on ``ctx``."""
    xp = get_array_module(x)
    centered = x - x.mean(axis=axes, keepdims=True)
    ctx.axes, ctx.keepdim, ctx.denom = axes, keepdim, _count(x.shape, axes) - ddof
    v = xp.sum(centered * centered, axis=axes, keepdims=keepdim)
    v = v / x.dtype.type(ctx.denom) if ctx.denom > 0 else v * x.dtype.type("nan")
    return centered, v


class Var(Function):
    """v = Σ(x - μ)² / (n - ddof);  dv/dx = 2(x - μ) / (n - ddof)"""

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, ddof):
        centered, v = _variance(ctx, x, axes, keepdim, ddof)
        ctx.save_for_backward(centered)
        return v

    @staticmethod
    def backward(ctx, g):
        (centered,) = ctx.saved_tensors
        g = _expand_grad(g, centered.shape, ctx.axes, ctx.keepdim)
        # n - ddof <= 0 (one element, unbiased): the variance is nan, and so is its gradient
        scale = 2.0 / ctx.denom if ctx.denom > 0 else float("nan")
        return g * centered * centered.dtype.type(scale)


class Std(Function):
    """s = √v (v as in Var);  ds/dx = (x - μ) / ((n - ddof)·s), and 0 where s = 0 (as
    PyTorch: the chain rule through √ would give 0·∞ = nan for a constant input)"""

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, ddof):
        centered, v = _variance(ctx, x, axes, keepdim, ddof)
        s = get_array_module(x).sqrt(v)
        ctx.save_for_backward(centered, s)
        return s

    @staticmethod
    def backward(ctx, g):
        centered, s = ctx.saved_tensors
        xp = get_array_module(g)
        denom = ctx.denom if ctx.denom > 0 else float("nan")
        zero = s == 0
        coef = xp.where(zero, 0, g / (xp.where(zero, 1, s) * centered.dtype.type(denom)))
        return _expand_grad(coef, centered.shape, ctx.axes, ctx.keepdim) * centered


class MaxMin(Function):
    """Values of the max (or min); ties share the gradient evenly (as PyTorch's amax
    and its full reductions), and a NaN, which is the max, takes it."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, largest):
        reduced = x.shape if axes is None else [x.shape[a] for a in axes]
        if 0 in reduced:
            raise ValueError(f"max/min over an empty dimension (input shape {x.shape}, "
                             f"dim {axes})")
        out = x.max(axis=axes, keepdims=True) if largest else x.min(axis=axes, keepdims=True)
        ctx.save_for_backward(x, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        if keepdim:
            return out
        return out.reshape(()) if axes is None else out.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        xp = get_array_module(g)
        mask = ((x == out) | (xp.isnan(x) & xp.isnan(out))).astype(g.dtype)
        mask /= mask.sum(axis=ctx.axes, keepdims=True)
        return _expand_grad(g, x.shape, ctx.axes, ctx.keepdim) * mask


def _shifted(x, dim: int):
    """x minus its max along ``dim`` (e^x then cannot overflow); an empty x as it is."""
    return x - x.max(axis=dim, keepdims=True) if x.size else x


class Softmax(Function):
    """s = e^x / Σe^x;  dx = s · (g - Σ g·s)"""

    @staticmethod
    def forward(ctx, x, *, dim):
        xp = get_array_module(x)
        e = xp.exp(_shifted(x, dim))
        s = e / e.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(s)
        ctx.dim = dim
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return s * (g - (g * s).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    """y = x - logΣe^x (shifted by the max, so ±1e4 logits are fine);
    dx = g - softmax(x) · Σg"""

    @staticmethod
    def forward(ctx, x, *, dim):
        xp = get_array_module(x)
        shifted = _shifted(x, dim)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        xp = get_array_module(g)
        return g - xp.exp(y) * g.sum(axis=ctx.dim, keepdims=True)


# ------------------------------------------------------------------ wrappers


def sum(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "sum")
    return Sum.apply(x, axes=normalize_dims(dim, x.ndim, "sum"), keepdim=keepdim)


def mean(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "mean")
    if x.dtype.kind != "f":
        raise TypeError(f"mean needs a floating-point tensor, got dtype {x.dtype}")
    return Mean.apply(x, axes=normalize_dims(dim, x.ndim, "mean"), keepdim=keepdim)


def var(x: Tensor, dim=None, keepdim=False, unbiased=True, *, correction=None, axis=None,
        keepdims=None):
    """Variance over ``dim``, dividing by n - 1 (``unbiased``) or n; PyTorch's newer
    ``correction=`` (the number subtracted from n) overrides ``unbiased`` when given."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "var")
    if x.dtype.kind != "f":
        raise TypeError(f"var needs a floating-point tensor, got dtype {x.dtype}")
    axes = normalize_dims(dim, x.ndim, "var")
    ddof = (1 if unbiased else 0) if correction is None else correction
    return Var.apply(x, axes=axes, keepdim=keepdim, ddof=ddof)


def std(x: Tensor, dim=None, keepdim=False, unbiased=True, *, correction=None, axis=None,
        keepdims=None):
    """Standard deviation, √var (same arguments as ``var``)."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "std")
    if x.dtype.kind != "f":
        raise TypeError(f"std needs a floating-point tensor, got dtype {x.dtype}")
    axes = normalize_dims(dim, x.ndim, "std")
    ddof = (1 if unbiased else 0) if correction is None else correction
    return Std.apply(x, axes=axes, keepdim=keepdim, ddof=ddof)


def max(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "max")
    axes = normalize_dims(dim, x.ndim, "max")
    return MaxMin.apply(x, axes=axes, keepdim=keepdim, largest=True)


def min(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:  # noqa: A001
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "min")
    axes = normalize_dims(dim, x.ndim, "min")
    return MaxMin.apply(x, axes=axes, keepdim=keepdim, largest=False)


def _arg(x: Tensor, dim, keepdim, largest: bool, name: str) -> Tensor:
    xp = get_array_module(x.data)
    fn = xp.argmax if largest else xp.argmin
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}: dim must be an int or None, got {dim!r}")
    axes = normalize_dims(dim, x.ndim, name)
    if not axes:  # dim None, or any dim of a 0-d tensor: the index into the flat values
        out = fn(x.data.reshape(-1))
        if keepdim:
            out = out.reshape((1,) * x.ndim)
    else:
        (axis,) = axes
        out = fn(x.data, axis=axis)
        if keepdim:
            out = xp.expand_dims(out, axis)
    return Tensor._make(xp.asarray(out).astype(int64, copy=False), None)


def argmax(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "argmax")
    return _arg(x, dim, keepdim, True, "argmax")


def argmin(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "argmin")
    return _arg(x, dim, keepdim, False, "argmin")


def _softmax_axis(x: Tensor, dim: int, op: str):
    if x.dtype.kind != "f":
        raise TypeError(f"{op} needs a floating-point tensor, got dtype {x.dtype}")
    if not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    axes = normalize_dims(dim, x.ndim, op)
    return axes[0] if axes else None  # a 0-d tensor: its single value is the whole axis


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    dim = dim_alias("softmax", dim, axis)
    return Softmax.apply(x, dim=_softmax_axis(x, dim, "softmax"))


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    dim = dim_alias("log_softmax", dim, axis)
    return LogSoftmax.apply(x, dim=_softmax_axis(x, dim, "log_softmax"))
