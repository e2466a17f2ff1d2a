"""Reductions (sum, mean, var, max, norm, ...), cumsum and the softmax family.

A reduction's backward spreads the output gradient back over the reduced axes:
``g`` is reshaped with the reduced axes kept as size 1 and broadcast to the input.

Every backward here is twice differentiable (``differentiable_backward``): it reads
float data only through ``ctx.saved_tensors`` (inputs and outputs, never a private
intermediate), so under create_graph the same formula runs on traced arrays.

Softmax and log-softmax over the last axis of a C-contiguous CuPy array run as CUDA
kernels when they are on (``_SOFTMAX``, one thread per row); the array code is their
reference, and the only path for traced arrays.
"""

from __future__ import annotations

import numpy as np

from .. import kernels, return_types
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


def _kept(r, in_shape, axes):
    """A reduction's output ``r`` with the reduced axes kept as size 1. (The saved output
    is the op's output Tensor under create_graph, which lost them when keepdim=False.)"""
    return r.reshape(tuple(1 if axes is None or a in axes else n
                           for a, n in enumerate(in_shape)))


def _as_array(r):
    """A keepdims reduction of a 0-d input, which NumPy returns as a scalar, as an array:
    the op's output (``r`` with the reduced axes dropped) is then a view of the saved
    ``r``, which is how create_graph finds the output tensor behind it."""
    return np.asarray(r) if isinstance(r, np.generic) else r


def _count(shape, axes) -> int:
    n = 1
    for a in range(len(shape)) if axes is None else axes:
        n *= shape[a]
    return n


class Sum(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return x.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return _expand_grad(g, ctx.shape, ctx.axes, ctx.keepdim)


class Mean(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return x.mean(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        n = _count(ctx.shape, ctx.axes)
        return _expand_grad(g / n, ctx.shape, ctx.axes, ctx.keepdim)


def _centered(x, axes):
    return x - x.mean(axis=axes, keepdims=True)


def _variance(ctx, x, axes, keepdim: bool, ddof: int):
    """Σ(x - μ)² / (n - ddof); records axes, keepdim and n - ddof on ``ctx``."""
    xp = get_array_module(x)
    centered = _centered(x, axes)
    ctx.axes, ctx.keepdim, ctx.denom = axes, keepdim, _count(x.shape, axes) - ddof
    v = xp.sum(centered * centered, axis=axes, keepdims=keepdim)
    return v / x.dtype.type(ctx.denom) if ctx.denom > 0 else v * x.dtype.type("nan")


class Var(Function):
    """v = Σ(x - μ)² / (n - ddof);  dv/dx = 2(x - μ) / (n - ddof)

    Backward recomputes x - μ from the saved x (x is kept alive by the graph anyway;
    x - μ would be a private intermediate that create_graph cannot differentiate)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, ddof):
        ctx.save_for_backward(x)
        return _variance(ctx, x, axes, keepdim, ddof)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        centered = _centered(x, ctx.axes)
        g = _expand_grad(g, centered.shape, ctx.axes, ctx.keepdim)
        # n - ddof <= 0 (one element, unbiased): the variance is nan, and so is its gradient
        scale = 2.0 / ctx.denom if ctx.denom > 0 else float("nan")
        return g * centered * centered.dtype.type(scale)


class Std(Function):
    """s = √v (v as in Var);  ds/dx = (x - μ) / ((n - ddof)·s), and 0 where s = 0 (as
    PyTorch: the chain rule through √ would give 0·∞ = nan for a constant input)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, ddof):
        xp = get_array_module(x)
        s = xp.sqrt(_variance(ctx, x, axes, keepdim, ddof))
        ctx.save_for_backward(x, s)
        return s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        xp = get_array_module(g)
        centered = _centered(x, ctx.axes)
        denom = ctx.denom if ctx.denom > 0 else float("nan")
        zero = s == 0
        coef = xp.where(zero, 0, g / (xp.where(zero, 1, s) * centered.dtype.type(denom)))
        return _expand_grad(coef, centered.shape, ctx.axes, ctx.keepdim) * centered


class MaxMin(Function):
    """Values of the max (or min); ties share the gradient evenly (as PyTorch's amax
    and its full reductions), and a NaN, which is the max, takes it."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdim, largest):
        reduced = x.shape if axes is None else [x.shape[a] for a in axes]
        if 0 in reduced:
            raise ValueError(f"max/min over an empty dimension (input shape {x.shape}, "
                             f"dim {axes})")
        out = x.max(axis=axes, keepdims=True) if largest else x.min(axis=axes, keepdims=True)
        out = _as_array(out)
        ctx.save_for_backward(x, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        if keepdim:
            return out
        return out.reshape(()) if axes is None else out.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        xp = get_array_module(g)
        out = _kept(out, x.shape, ctx.axes)
        # the mask is a constant (piecewise): the second derivative flows through g only
        mask = ((x == out) | (xp.isnan(x) & xp.isnan(out))).astype(g.dtype)
        mask /= mask.sum(axis=ctx.axes, keepdims=True)
        return _expand_grad(g, x.shape, ctx.axes, ctx.keepdim) * mask


class MaxMinDim(Function):
    """``(values, indices)`` of the max (or min) along one axis. The gradient goes to the
    selected index only, the first of equal values (as argmax and PyTorch's max(dim));
    a NaN is the max and the min, as in NumPy's argmax."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axis, keepdim, largest):
        xp = get_array_module(x)
        idx = xp.expand_dims((xp.argmax if largest else xp.argmin)(x, axis=axis), axis)
        values = xp.take_along_axis(x, idx, axis=axis)
        ctx.shape, ctx.axis, ctx.keepdim = x.shape, axis, keepdim
        ctx.save_for_backward(idx)
        if not keepdim:
            values, idx = values.squeeze(axis), idx.squeeze(axis)
        return values, idx.astype(int64)  # a copy: the saved idx is not the output

    @staticmethod
    def backward(ctx, g, g_indices):
        (idx,) = ctx.saved_tensors
        xp = get_array_module(g)
        if not ctx.keepdim:
            g = xp.expand_dims(g, ctx.axis)
        # zeros_like(g, shape=...): on g's device, and recordable under create_graph,
        # where the write is a recorded scatter (whose backward gathers at idx)
        gx = xp.zeros_like(g, shape=ctx.shape)
        xp.put_along_axis(gx, idx, g, axis=ctx.axis)
        return gx


class Norm(Function):
    """r = (Σ|x|^p)^(1/p) over the axes; p = ±inf: max/min |x|; p = 0: count of nonzeros.

    dr/dx = sign(x)·|x|^(p-1) / r^(p-1)  (p = 2: x / r;  p = 1: sign(x)), 0 where r = 0;
    p = ±inf: sign(x) split evenly among the elements with |x| = r; p = 0: 0.
    (PyTorch's subgradients: the norm of a zero vector has gradient 0, not NaN.)
    """

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, p, axes, keepdim):
        xp = get_array_module(x)
        a = xp.abs(x)
        if p == float("inf"):
            r = a.max(axis=axes, keepdims=True)
        elif p == float("-inf"):
            r = a.min(axis=axes, keepdims=True)
        elif p == 0:
            r = (x != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        elif p == 1:
            r = a.sum(axis=axes, keepdims=True)
        elif p == 2:
            r = xp.sqrt((x * x).sum(axis=axes, keepdims=True))
        else:
            r = (a**p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        r = _as_array(r)
        ctx.save_for_backward(x, r)
        ctx.p, ctx.axes, ctx.keepdim = p, axes, keepdim
        if keepdim:
            return r
        return r.reshape(()) if axes is None else r.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, g):
        x, r = ctx.saved_tensors
        xp = get_array_module(g)
        p = ctx.p
        r = _kept(r, x.shape, ctx.axes)
        g = _expand_grad(g, x.shape, ctx.axes, ctx.keepdim)
        zero = g.dtype.type(0)
        if p == 0:
            return xp.zeros_like(x)
        if p in (float("inf"), float("-inf")):
            a = xp.abs(x)
            mask = ((a == r) | xp.isnan(a)).astype(g.dtype)
            return xp.sign(x) * g * mask / mask.sum(axis=ctx.axes, keepdims=True)
        if p == 1:
            return xp.sign(x) * g
        # where(·, 1, ·) first: 0 ** (p - 1) would warn of a division by zero
        scale = xp.where(r == 0, zero, g / xp.where(r == 0, 1, r) ** (p - 1))
        if p == 2:
            return x * scale
        a = xp.abs(x)
        return xp.where(x == 0, zero, xp.sign(x) * xp.where(x == 0, 1, a) ** (p - 1) * scale)


class CumSum(Function):
    """y_i = x_1 + ... + x_i along an axis;  dx_i = g_i + ... + g_n (a reversed cumsum)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axis, dtype):
        ctx.axis = axis
        return get_array_module(x).cumsum(x, axis=axis, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        xp = get_array_module(g)
        return xp.flip(xp.cumsum(xp.flip(g, ctx.axis), axis=ctx.axis), ctx.axis)


class LogSumExp(Function):
    """y = log Σ e^x (computed as m + log Σ e^(x - m), m the max);  dx = g · e^(x - y)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdim):
        xp = get_array_module(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # a row of -inf (or inf) stays -inf (or inf)
        y = _as_array(m + xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)))
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdim = axes, keepdim
        if keepdim:
            return y
        return y.reshape(()) if axes is None else y.squeeze(axis=axes)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        xp = get_array_module(g)
        y = _kept(y, x.shape, ctx.axes)
        return _expand_grad(g, x.shape, ctx.axes, ctx.keepdim) * xp.exp(x - y)


def _shifted(x, dim: int):
    """x minus its max along ``dim`` (e^x then cannot overflow); an empty x as it is."""
    return x - x.max(axis=dim, keepdims=True) if x.size else x


class Softmax(Function):
    """s = e^x / Σe^x;  dx = s · (g - Σ g·s)

    The backward uses only the output s and array arithmetic, so create_graph runs it
    as it is (s is then the output Tensor, whose own backward is this one again)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, dim):
        xp = get_array_module(x)
        if kernels.use_kernel(x) and _by_rows(x, dim):
            s = _rows_kernel("softmax_forward", x)
        else:
            e = xp.exp(_shifted(x, dim))
            s = e / e.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(s)
        ctx.dim = dim
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        if kernels.use_kernel(s) and _by_rows(s, ctx.dim, g):  # raw arrays: not traced
            return _rows_kernel("softmax_backward", s, g)
        return s * (g - (g * s).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    """y = x - logΣe^x (shifted by the max, so ±1e4 logits are fine);
    dx = g - softmax(x) · Σg  (softmax(x) = e^y: from the saved output, also traced)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, dim):
        xp = get_array_module(x)
        if kernels.use_kernel(x) and _by_rows(x, dim):
            y = _rows_kernel("log_softmax_forward", x)
        else:
            shifted = _shifted(x, dim)
            y = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        xp = get_array_module(g)
        if kernels.use_kernel(y) and _by_rows(y, ctx.dim, g):  # raw arrays: not traced
            return _rows_kernel("log_softmax_backward", y, g)
        return g - xp.exp(y) * g.sum(axis=ctx.dim, keepdims=True)


# ------------------------------------------------------ the softmax family, as CUDA kernels

# Shared with the cross-entropy kernels (ops/loss.py), which prepend it to their source.
ROW_HELPERS_CUDA = r"""
// Row helpers of the softmax family: a row is n >= 1 contiguous elements, walked by one
// thread. Sums are accumulated in double and rounded to T once: as accurate as the
// generic path's (pairwise, in T), so the two differ by its rounding error, not by n·eps.

__device__ __forceinline__ float tg_exp(float v) { return expf(v); }
__device__ __forceinline__ double tg_exp(double v) { return exp(v); }
__device__ __forceinline__ float tg_log(float v) { return logf(v); }
__device__ __forceinline__ double tg_log(double v) { return log(v); }

// The row's largest element, the shift that keeps e^(x − m) <= 1. (A NaN in the row need
// not propagate here as in NumPy's max: it makes the row's sum, hence every output, NaN.)
template <typename T>
__device__ __forceinline__ T tg_row_max(const T* __restrict__ row, int n) {
    T m = row[0];
    for (int j = 1; j < n; ++j) m = row[j] > m ? row[j] : m;
    return m;
}

// Σ_j e^(row[j] − m): the softmax denominator of a row shifted by its max m.
template <typename T>
__device__ __forceinline__ T tg_row_sum_exp(const T* __restrict__ row, int n, T m) {
    double acc = 0.0;
    for (int j = 0; j < n; ++j) acc += (double)tg_exp(row[j] - m);
    return (T)acc;
}
"""

_SOFTMAX = kernels.CudaSource("softmax", ROW_HELPERS_CUDA + r"""
// Softmax and log-softmax over the last axis of a C-contiguous (rows, n) array, and their
// gradients: one thread per row (a grid-stride loop over rows), three passes over it (max,
// sum, write), with the generic path's arithmetic element by element. A row of −inf or
// holding +inf or NaN gives NaN everywhere (its shifted values hold NaN), as there.

template <typename T>
__device__ void softmax_forward(const T* __restrict__ x, T* __restrict__ y, long long rows,
                                int n) {
    // each thread computes one row y = e^(x − m) / Σ e^(x − m), m = max x
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (long long)blockDim.x * gridDim.x) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        const T m = tg_row_max(xr, n);
        const T total = tg_row_sum_exp(xr, n, m);
        for (int j = 0; j < n; ++j) yr[j] = tg_exp(xr[j] - m) / total;
    }
}

template <typename T>
__device__ void log_softmax_forward(const T* __restrict__ x, T* __restrict__ y,
                                    long long rows, int n) {
    // each thread computes one row y = (x − m) − log Σ e^(x − m)
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (long long)blockDim.x * gridDim.x) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        const T m = tg_row_max(xr, n);
        const T lse = tg_log(tg_row_sum_exp(xr, n, m));
        for (int j = 0; j < n; ++j) yr[j] = (xr[j] - m) - lse;
    }
}

template <typename T>
__device__ void softmax_backward(const T* __restrict__ s, const T* __restrict__ g,
                                 T* __restrict__ dx, long long rows, int n) {
    // each thread computes one row dx = s · (g − Σ g·s), s the forward's output
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (long long)blockDim.x * gridDim.x) {
        const T* sr = s + r * n;
        const T* gr = g + r * n;
        double acc = 0.0;
        for (int j = 0; j < n; ++j) acc += (double)(gr[j] * sr[j]);
        const T dot = (T)acc;
        for (int j = 0; j < n; ++j) dx[r * n + j] = sr[j] * (gr[j] - dot);
    }
}

template <typename T>
__device__ void log_softmax_backward(const T* __restrict__ y, const T* __restrict__ g,
                                     T* __restrict__ dx, long long rows, int n) {
    // each thread computes one row dx = g − e^y · Σ g, y the forward's output
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (long long)blockDim.x * gridDim.x) {
        const T* yr = y + r * n;
        const T* gr = g + r * n;
        double acc = 0.0;
        for (int j = 0; j < n; ++j) acc += (double)gr[j];
        const T total = (T)acc;
        for (int j = 0; j < n; ++j) dx[r * n + j] = gr[j] - tg_exp(yr[j]) * total;
    }
}

// entry points, one per element type
extern "C" __global__ void softmax_forward_f32(const float* __restrict__ x,
                                               float* __restrict__ y, long long rows, int n) {
    softmax_forward<float>(x, y, rows, n);
}
extern "C" __global__ void softmax_forward_f64(const double* __restrict__ x,
                                               double* __restrict__ y, long long rows, int n) {
    softmax_forward<double>(x, y, rows, n);
}
extern "C" __global__ void log_softmax_forward_f32(const float* __restrict__ x,
                                                   float* __restrict__ y, long long rows,
                                                   int n) {
    log_softmax_forward<float>(x, y, rows, n);
}
extern "C" __global__ void log_softmax_forward_f64(const double* __restrict__ x,
                                                   double* __restrict__ y, long long rows,
                                                   int n) {
    log_softmax_forward<double>(x, y, rows, n);
}
extern "C" __global__ void softmax_backward_f32(const float* __restrict__ s,
                                                const float* __restrict__ g,
                                                float* __restrict__ dx, long long rows, int n) {
    softmax_backward<float>(s, g, dx, rows, n);
}
extern "C" __global__ void softmax_backward_f64(const double* __restrict__ s,
                                                const double* __restrict__ g,
                                                double* __restrict__ dx, long long rows,
                                                int n) {
    softmax_backward<double>(s, g, dx, rows, n);
}
extern "C" __global__ void log_softmax_backward_f32(const float* __restrict__ y,
                                                    const float* __restrict__ g,
                                                    float* __restrict__ dx, long long rows,
                                                    int n) {
    log_softmax_backward<float>(y, g, dx, rows, n);
}
extern "C" __global__ void log_softmax_backward_f64(const double* __restrict__ y,
                                                    const double* __restrict__ g,
                                                    double* __restrict__ dx, long long rows,
                                                    int n) {
    log_softmax_backward<double>(y, g, dx, rows, n);
}
""", functions=(
    "softmax_forward_f32", "softmax_forward_f64", "log_softmax_forward_f32",
    "log_softmax_forward_f64", "softmax_backward_f32", "softmax_backward_f64",
    "log_softmax_backward_f32", "log_softmax_backward_f64"))


def _by_rows(x, dim, *others) -> bool:
    """The case the softmax kernels take (with ``kernels.use_kernel(x)``): the reduced
    axis is the last of a non-empty, C-contiguous float32/float64 ``x``, and the
    ``others`` (a backward's g) are raw device arrays of its shape and dtype."""
    if dim is None or dim != x.ndim - 1 or x.size == 0:
        return False
    if x.dtype not in kernels.FLOAT_SUFFIX or not x.flags.c_contiguous:
        return False
    for o in others:  # (``all`` is this module's reduction)
        if not (kernels.use_kernel(o) and o.shape == x.shape and o.dtype == x.dtype):
            return False
    return True


def _rows_kernel(kernel: str, x, *others):
    """One launch of ``_SOFTMAX``'s ``kernel`` over the rows of the last axis of ``x``
    (and of ``others``, made contiguous: a broadcast gradient is copied); the result."""
    xp = get_array_module(x)
    others = tuple(xp.ascontiguousarray(o) for o in others)
    out = xp.empty(x.shape, dtype=x.dtype)
    n = x.shape[-1]
    rows = x.size // n
    kernels.launch(_SOFTMAX, f"{kernel}_{kernels.FLOAT_SUFFIX[x.dtype]}", rows,
                   (x, *others, out, np.int64(rows), *kernels.int32s(n)))
    return out


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


def _check_not_empty(x: Tensor, axes, op: str) -> None:
    reduced = x.shape if axes is None else [x.shape[a] for a in axes]
    if 0 in reduced:
        raise ValueError(f"{op} over an empty dimension (input shape {x.shape}, dim {axes})")


def amax(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """The largest values over ``dim`` (None: all; an int or a tuple). Values only; equal
    maxima share the gradient evenly."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "amax")
    return MaxMin.apply(x, axes=normalize_dims(dim, x.ndim, "amax"), keepdim=keepdim,
                        largest=True)


def amin(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
    """The smallest values over ``dim``; as ``amax``."""
    dim, keepdim = _resolve(dim, keepdim, axis, keepdims, "amin")
    return MaxMin.apply(x, axes=normalize_dims(dim, x.ndim, "amin"), keepdim=keepdim,
                        largest=False)


def _max_min(x: Tensor, dim, keepdim, axis, keepdims, largest: bool):
    op, values_only = ("max", "amax") if largest else ("min", "amin")
    if isinstance(dim, Tensor):  # tg.max(a, b): the elementwise maximum, as PyTorch
        from .elementwise import maximum, minimum

        return (maximum if largest else minimum)(x, dim)
    dim = dim_alias(op, dim, axis)
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}: dim must be an int (for (values, indices)), got {dim!r}; "
                        f"to reduce over several dims use {values_only}(dim={dim!r})")
    dim, keepdim = _resolve(dim, keepdim, None, keepdims, op)
    if dim is None:  # over every element: a tensor, ties sharing the gradient
        return MaxMin.apply(x, axes=None, keepdim=keepdim, largest=largest)
    pair = getattr(return_types, op)
    if x.ndim == 0:  # dim 0 / -1 of a 0-d tensor: the value itself, index 0
        normalize_dims(dim, 0, op)
        values, indices = _max_min(x.reshape(1), 0, False, None, None, largest)
        return pair(values, indices)
    (axis_,) = normalize_dims(dim, x.ndim, op)
    _check_not_empty(x, (axis_,), op)
    return pair(*MaxMinDim.apply(x, axis=axis_, keepdim=keepdim, largest=largest))


def max(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """As PyTorch: ``x.max()`` is the largest value (a tensor; equal maxima share the
    gradient); ``x.max(dim)`` is the named tuple ``(values, indices)`` along that dim
    (gradient to the index, the first of equal values); ``tg.max(a, b)`` is
    ``tg.maximum(a, b)``. Several dims at once: ``amax``."""
    return _max_min(x, dim, keepdim, axis, keepdims, largest=True)


def min(x: Tensor, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """The smallest value, or ``(values, indices)`` along ``dim``; as ``max``."""
    return _max_min(x, dim, keepdim, axis, keepdims, largest=False)


def norm(x: Tensor, p="fro", dim=None, keepdim=False) -> Tensor:
    """The p-norm over ``dim`` (None: every element, as one vector): ``p`` a number
    (``inf``, ``-inf`` and 0 included) or ``'fro'`` (= 2, the Frobenius norm)."""
    if x.dtype.kind != "f":
        raise TypeError(f"norm needs a floating-point tensor, got dtype {x.dtype}")
    if p == "fro":
        p = 2
    if isinstance(p, str) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise ValueError(f"norm: p must be a number or 'fro', got {p!r} (the nuclear norm "
                         f"'nuc' is not supported)")
    dim, keepdim = _resolve(dim, keepdim, None, None, "norm")
    axes = normalize_dims(dim, x.ndim, "norm")
    return Norm.apply(x, p=float(p), axes=axes, keepdim=keepdim)


def cumsum(x: Tensor, dim: int | None = None, *, dtype=None,
           axis: int | None = None) -> Tensor:
    """Running sums along ``dim``; integer and bool tensors give int64, as PyTorch."""
    dim = dim_alias("cumsum", dim, axis)
    if dim is None or not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"cumsum: dim must be an int, got {dim!r}")
    if dtype is None and x.dtype.kind in "biu":
        dtype = int64
    if x.ndim == 0:
        normalize_dims(dim, 0, "cumsum")
        return cumsum(x.reshape(1), 0, dtype=dtype).reshape(())
    (axis_,) = normalize_dims(dim, x.ndim, "cumsum")
    return CumSum.apply(x, axis=axis_, dtype=None if dtype is None else np.dtype(dtype))


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log Σ exp(x) over ``dim`` (an int or a tuple), without overflow."""
    if x.dtype.kind != "f":
        raise TypeError(f"logsumexp needs a floating-point tensor, got dtype {x.dtype}")
    dim, keepdim = _resolve(dim, keepdim, None, None, "logsumexp")
    axes = normalize_dims(dim, x.ndim, "logsumexp")
    _check_not_empty(x, axes, "logsumexp")
    return LogSumExp.apply(x, axes=axes, keepdim=keepdim)


def _all_any(x: Tensor, dim, keepdim, op: str) -> Tensor:
    """all/any: whether every / some element is nonzero; a bool tensor, no gradient."""
    dim, keepdim = _resolve(dim, keepdim, None, None, op)
    axes = normalize_dims(dim, x.ndim, op)
    xp = get_array_module(x.data)
    fn = xp.all if op == "all" else xp.any
    return Tensor._make(xp.asarray(fn(x.data, axis=axes, keepdims=keepdim)), None)


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return _all_any(x, dim, keepdim, "all")


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return _all_any(x, dim, keepdim, "any")


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
