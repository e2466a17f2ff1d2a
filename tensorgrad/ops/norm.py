r"""Normalization layers: batch, layer, group, instance and local response norm.

Batch, layer, group and instance norm are the same computation seen through
different reshapes, so one Function, ``Normalize``, does all four. It views ``x``
as an array whose *statistics axes* are reduced (the n values that share one mean
and variance) and whose *parameter shape* says how the affine γ, β broadcast:

=============  =====================  =============  ================
op             view of x              stats axes     γ, β broadcast
=============  =====================  =============  ================
batch_norm     (N, C, L)              (0, 2)         (1, C, 1)
instance_norm  (N, C, L)              (2,)           (1, C, 1)
group_norm     (N, G, C/G, L)         (2, 3)         (1, G, C/G, 1)
layer_norm     (M, K)                 (1,)           (1, K)
=============  =====================  =============  ================

(L is the product of the spatial sizes, K of ``normalized_shape``.)

Forward, over each group of n values::

    μ = Σx / n,   σ² = Σ(x - μ)² / n   (biased),   x̂ = (x - μ) / √(σ² + eps)
    y = γ · x̂ + β

Backward. With ĝ = g · γ (the gradient reaching x̂) and s = 1/√(σ² + eps)::

    dβ = Σ g,   dγ = Σ g · x̂            (summed over everything γ is shared by)
    dx = s · (ĝ - mean(ĝ) - x̂ · mean(ĝ · x̂))   (means over the n values)

The last line follows from x̂ depending on every x of its group: ∂x̂_i/∂x_j =
s · (δ_ij - 1/n - x̂_i x̂_j / n), the three terms coming from x, from μ and from σ.
Contracting with ĝ gives the formula above. When fixed statistics are used (batch
norm in eval mode), μ and σ are constants and dx = s · ĝ.

How it is computed. x̂ is never stored: backward keeps only ``x`` (alive anyway as
the op's input), μ and s. Substituting x̂ = s·(x - μ) turns dx into one
affine map of g and x with per-group coefficients::

    dx = k·g + a·x + b,   k = s·γ,   a = -s²·mean(ĝ·x̂),   b = -s·mean(ĝ) - μ·a

and the two means need only Σg and Σg·x (Σg·x̂ = s·(Σg·x - μ·Σg)). When γ is one
number per statistic group (batch and instance norm: per channel), k factors out::

    dx = k·(g + a'·x + b'),   a' = -s·mean(g·x̂),   b' = -mean(g) - μ·a'

which is computed in place in dx's own buffer: four passes and no temporary of x's
size (a quarter faster than the three products and sums above, whose temporary
pushes the working set out of the cache). So the backward reads g and x twice and
writes dx once; the forward reads x twice (μ, then σ² from x - μ, which is kept as
y's buffer) — a BatchNorm layer is a few passes over its activation, not the dozen
of a composition of primitive ops.

On a GPU with ``tg.backends.cuda.kernels`` on, batch norm (C-contiguous float32/float64)
runs as CUDA kernels instead (``_BATCH_NORM``): the per-channel sums in two deterministic
launches (fixed partial sums, then their sum, in float64), the normalize-and-affine and
the centred dx = k·(g + a'·(x - μ) + b'') as one elementwise launch each. The generic
path above is their reference.

Running statistics (batch and instance norm in training) are updated in place, as
PyTorch: ``running = (1 - momentum) · running + momentum · batch_stat``, where the
variance term is the *unbiased* batch variance σ² · n / (n - 1).

Local response norm (AlexNet) normalises each value by its neighbours across
channels::

    d_c = k + α/size · Σ_{j ∈ W(c)} x_j²,      y_c = x_c · d_c^(-β)

with W(c) = [c - size//2, c + (size-1)//2] (zero padded), and backward::

    dx_i = g_i · d_i^(-β) - (2αβ/size) · x_i · Σ_{c : i ∈ W(c)} g_c x_c d_c^(-β-1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import kernels
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor


class Normalize(Function):
    """x̂ = (x - μ)/√(σ² + eps) over ``axes`` of x viewed as ``view``; y = γ·x̂ + β.

    With ``mean``/``var`` given the statistics are fixed (arrays broadcastable
    against the view); otherwise they are the batch's, and ``running`` — a tuple
    (running_mean, running_var, momentum) of raw arrays, either may be None — is
    updated in place from them.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, *, view, axes, param_shape, eps,
                mean=None, var=None, running=None):
        xv = x.reshape(view)
        n = math.prod(view[a] for a in axes)
        ctx.batch_stats = mean is None
        # batch norm on a GPU: its kernels (below); anything else: the generic path
        ctx.kernel = kernels.use_kernel(x) and _batch_norm_kernel_case(x, view, axes)
        if ctx.kernel:
            y, mean, invstd, ctx.stats64 = _batch_norm_forward_kernel(xv, weight, bias, eps,
                                                                      mean, var, running)
        else:
            if ctx.batch_stats:
                mean = _sum_product(xv, None, axes) / n
                y = xv - mean
                var = _sum_product(y, y, axes) / n  # two passes: no cancellation in Σx² - nμ²
                if running is not None:
                    _update_running(*running, mean, var, n)
            else:
                y = xv - mean
            invstd = 1.0 / (var + eps) ** 0.5
            scale = invstd if weight is None else invstd * weight.reshape(param_shape)
            y *= scale  # y = γ·x̂, built in the buffer of x - μ
            if bias is not None:
                y += bias.reshape(param_shape)
        ctx.save_for_backward(x, mean, invstd, weight)
        ctx.shape, ctx.view, ctx.axes, ctx.param_shape, ctx.n = x.shape, view, axes, param_shape, n
        affine = weight if weight is not None else bias
        ctx.param_size = None if affine is None else affine.shape
        return y.reshape(x.shape)

    @staticmethod
    def composite(x, weight, bias, *, view, axes, param_shape, eps, mean=None, var=None,
                  running=None):
        """The forward's definition as tensor ops, which create_graph differentiates
        (the running statistics were updated by the forward, not again here)."""
        xv = x.reshape(view)
        if mean is None:
            mean = xv.mean(dim=axes, keepdim=True)
            var = ((xv - mean) * (xv - mean)).mean(dim=axes, keepdim=True)
        y = (xv - mean) / (var + eps) ** 0.5
        if weight is not None:
            y = y * weight.reshape(param_shape)
        if bias is not None:
            y = y + bias.reshape(param_shape)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x, mu, s, weight = ctx.saved_tensors
        if ctx.kernel and kernels.use_kernel(g):  # the forward ran the batch-norm kernels
            return _batch_norm_backward_kernel(ctx, g, x, mu, weight)
        g, x = g.reshape(ctx.view), x.reshape(ctx.view)
        need_x, need_w, need_b = ctx.needs_input_grad
        axes, pshape = ctx.axes, ctx.param_shape
        # Every sum the formulas need is over "cells": the axes that both share one
        # statistic and one γ (batch norm: all of (0, 2); layer norm: none). Two
        # passes over g and x give Σg and Σg·x per cell; Σg·x̂ = s·(Σg·x - μ·Σg).
        cell = tuple(a for a in axes if pshape[a] == 1)
        sum_g = _sum_product(g, None, cell) if cell else g
        sum_gxhat = s * (_sum_product(g, x, cell) - mu * sum_g)
        # what remains: the axes γ is shared over (for dγ, dβ), or the statistic (for dx)
        param_rest = tuple(a for a, p in enumerate(pshape) if p == 1 and a not in cell)
        gw = sum_gxhat.sum(axis=param_rest).reshape(ctx.param_size) if need_w else None
        gb = sum_g.sum(axis=param_rest).reshape(ctx.param_size) if need_b else None
        if not need_x:
            return None, gw, gb
        w = 1 if weight is None else weight.reshape(pshape)
        k = s * w  # dx = k·g + a·x + b, the docstring's formula with x̂ expanded
        # dx is allocated in x's own shape and filled through a view: returned as it
        # is (not as a reshaped view), it can become x.grad without a copy
        xp = get_array_module(g)
        gx = xp.empty(ctx.shape, dtype=x.dtype)
        gxv = gx.reshape(ctx.view)
        if not ctx.batch_stats:  # fixed statistics are constants: a = b = 0
            xp.multiply(g, k, out=gxv)
            return gx, gw, gb
        stat_rest = tuple(a for a in axes if a not in cell)
        if not stat_rest:  # γ constant over each statistic group: dx = k·(g + a'·x + b')
            a = -s * sum_gxhat / ctx.n
            b = -sum_g / ctx.n - mu * a
            xp.multiply(x, a, out=gxv)
            gxv += b
            gxv += g
            gxv *= k
            return gx, gw, gb
        mean_ghat = (w * sum_g).sum(axis=stat_rest, keepdims=True) / ctx.n
        mean_ghat_xhat = (w * sum_gxhat).sum(axis=stat_rest, keepdims=True) / ctx.n
        a = -s * s * mean_ghat_xhat
        b = -s * mean_ghat - mu * a
        xp.multiply(x, a, out=gxv)
        gxv += b
        gxv += g * k
        return gx, gw, gb


def _sum_product(a, b, axes: tuple[int, ...]):
    """Σ a·b over ``axes`` (kept as size 1), without materialising a·b; Σ a if b is None.

    By einsum: it reads its operands once, and sums over non-adjacent axes (batch
    norm's (0, 2)) faster than ``sum`` does."""
    xp = get_array_module(a)
    if not axes:
        return a if b is None else a * b
    idx = "abcdefghij"[: a.ndim]
    out = "".join(c for i, c in enumerate(idx) if i not in axes)
    r = (xp.einsum(f"{idx}->{out}", a) if b is None
         else xp.einsum(f"{idx},{idx}->{out}", a, b))
    return r.reshape(tuple(1 if i in axes else n for i, n in enumerate(a.shape)))


def _update_running(running_mean, running_var, momentum, mean, var, n: int) -> None:
    """running ← (1 - m)·running + m·batch statistic, in place; the variance unbiased.

    ``mean``/``var`` hold one value per normalised group; groups that share a
    running-stat entry (instance norm: the samples of a batch) are averaged.
    """
    if running_mean is not None:
        batch_mean = mean.reshape(-1, running_mean.size).mean(axis=0)
        running_mean *= 1.0 - momentum
        running_mean += (momentum * batch_mean).astype(running_mean.dtype, copy=False)
    if running_var is not None:
        unbiased = var.reshape(-1, running_var.size).mean(axis=0) * (n / (n - 1))
        running_var *= 1.0 - momentum
        running_var += (momentum * unbiased).astype(running_var.dtype, copy=False)


# ------------------------------------------------------------------ batch norm, as CUDA kernels

_BATCH_NORM = kernels.CudaSource("batch_norm", r"""
// Batch norm on a GPU, x viewed as (N, C, L) and C-contiguous: channel ch holds the
// N·L values x[s, ch, j], numbered i = s·L + j. The per-channel sums are two launches,
// without shared memory or atomics, so they are deterministic: first P partial sums per
// channel (part p adds the values i = p, p + P, p + 2P, ... in order: neighbouring
// threads read neighbouring addresses), then one thread per channel adds its P partials
// in order. Sums are accumulated in double, for float32 inputs as well.

template <typename T>
__device__ void batch_norm_partials(const T* __restrict__ u, const T* __restrict__ v,
                                    const double* __restrict__ mean,
                                    double* __restrict__ partials, int n, int c, int l,
                                    int parts, int mode) {
    // each thread computes the partial sums of one (channel, part) over its values i:
    //   mode 0: Σ u                                  -> partials[ch, p]
    //   mode 1: Σ (u - mean[ch])²                    -> partials[ch, p]
    //   mode 2: Σ u and Σ u·(v - mean[ch])  -> partials[0, ch, p] and partials[1, ch, p]
    // (forward: u = x, for the mean then the centred variance; backward: u = g, v = x)
    const long long count = (long long)n * l, rows = (long long)c * parts;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < rows;
         t += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)(t / parts), p = (int)(t % parts);
        double first = 0.0, second = 0.0;
        // value i is (s, j) = (i / L, i % L); stepping i by P steps (s, j) by (P / L, P % L)
        // with a carry, so the loop divides nothing (64-bit division is slow on a GPU)
        const int s_step = parts / l, j_step = parts % l;
        long long s = p / l;
        int j = p % l;
        for (long long i = p; i < count; i += parts) {
            const long long at = (s * c + ch) * l + j;
            const double value = (double)u[at];
            if (mode == 0) {
                first += value;
            } else if (mode == 1) {
                const double d = value - mean[ch];
                first += d * d;
            } else {
                first += value;
                second += value * ((double)v[at] - mean[ch]);
            }
            s += s_step;
            j += j_step;
            if (j >= l) {
                j -= l;
                ++s;
            }
        }
        partials[t] = first;
        if (mode == 2) {
            partials[rows + t] = second;
        }
    }
}

extern "C" __global__ void batch_norm_reduce(const double* __restrict__ partials,
                                             double* __restrict__ sums, int rows, int parts) {
    // each thread computes one row's sum of its P partials, in order
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (long long)blockDim.x * gridDim.x) {
        double acc = 0.0;
        for (int p = 0; p < parts; ++p) {
            acc += partials[r * parts + p];
        }
        sums[r] = acc;
    }
}

template <typename T>
__device__ void batch_norm_forward(const T* __restrict__ x, const T* __restrict__ mean,
                                   const T* __restrict__ scale, const T* __restrict__ shift,
                                   T* __restrict__ y, long long total, int c, int l) {
    // each thread computes one output y = (x - μ)·k + β of its channel (k = s·γ), in the
    // generic path's order
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)(t / l % c);
        y[t] = (x[t] - mean[ch]) * scale[ch] + shift[ch];
    }
}

template <typename T>
__device__ void batch_norm_backward(const T* __restrict__ g, const T* __restrict__ x,
                                    const T* __restrict__ mean, const T* __restrict__ k,
                                    const T* __restrict__ slope,
                                    const T* __restrict__ offset, T* __restrict__ dx,
                                    long long total, int c, int l) {
    // each thread computes one input gradient dx = k·(g + slope·(x - μ) + offset) of its
    // channel (norm.py's coefficients; slope = offset = 0 for fixed statistics)
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int ch = (int)(t / l % c);
        dx[t] = k[ch] * (g[t] + slope[ch] * (x[t] - mean[ch]) + offset[ch]);
    }
}

extern "C" __global__ void batch_norm_partials_f32(
        const float* __restrict__ u, const float* __restrict__ v, const double* __restrict__ mean,
        double* __restrict__ partials, int n, int c, int l, int parts, int mode) {
    batch_norm_partials<float>(u, v, mean, partials, n, c, l, parts, mode);
}
extern "C" __global__ void batch_norm_forward_f32(
        const float* __restrict__ x, const float* __restrict__ mean,
        const float* __restrict__ scale, const float* __restrict__ shift, float* __restrict__ y,
        long long total, int c, int l) {
    batch_norm_forward<float>(x, mean, scale, shift, y, total, c, l);
}
extern "C" __global__ void batch_norm_backward_f32(
        const float* __restrict__ g, const float* __restrict__ x, const float* __restrict__ mean,
        const float* __restrict__ k, const float* __restrict__ slope,
        const float* __restrict__ offset, float* __restrict__ dx, long long total, int c, int l) {
    batch_norm_backward<float>(g, x, mean, k, slope, offset, dx, total, c, l);
}
extern "C" __global__ void batch_norm_partials_f64(
        const double* __restrict__ u, const double* __restrict__ v, const double* __restrict__ mean,
        double* __restrict__ partials, int n, int c, int l, int parts, int mode) {
    batch_norm_partials<double>(u, v, mean, partials, n, c, l, parts, mode);
}
extern "C" __global__ void batch_norm_forward_f64(
        const double* __restrict__ x, const double* __restrict__ mean,
        const double* __restrict__ scale, const double* __restrict__ shift, double* __restrict__ y,
        long long total, int c, int l) {
    batch_norm_forward<double>(x, mean, scale, shift, y, total, c, l);
}
extern "C" __global__ void batch_norm_backward_f64(
        const double* __restrict__ g, const double* __restrict__ x, const double* __restrict__ mean,
        const double* __restrict__ k, const double* __restrict__ slope,
        const double* __restrict__ offset, double* __restrict__ dx, long long total, int c, int l) {
    batch_norm_backward<double>(g, x, mean, k, slope, offset, dx, total, c, l);
}
""", functions=("batch_norm_reduce", "batch_norm_partials_f32", "batch_norm_partials_f64",
                "batch_norm_forward_f32", "batch_norm_forward_f64", "batch_norm_backward_f32",
                "batch_norm_backward_f64"))


_PARTS = 256  # partial sums per channel (fewer for small inputs): a fixed split by shape


def _batch_norm_kernel_case(x, view: tuple, axes: tuple) -> bool:
    """What the batch-norm kernels cover: batch norm's (N, C, L) view with statistics over
    (0, 2), of a non-empty C-contiguous float32 or float64 input."""
    return (axes == (0, 2) and len(view) == 3 and x.dtype in kernels.FLOAT_SUFFIX
            and x.flags.c_contiguous and x.size > 0)


def _channel_sums(a, b, mean, mode: int):
    """The per-channel sums of ``batch_norm_partials`` in ``mode`` (see the kernel), in
    float64: (C,) for modes 0 and 1, (2, C) for mode 2. ``a``, ``b``: (N, C, L) arrays;
    ``mean``: (C,) float64 (read by modes 1 and 2)."""
    xp = get_array_module(a)
    n, c, length = a.shape
    parts = max(1, min(_PARTS, n * length))
    rows = c * parts
    partials = xp.empty((2 if mode == 2 else 1) * rows, dtype=xp.float64)
    kernels.launch(_BATCH_NORM, f"batch_norm_partials_{kernels.FLOAT_SUFFIX[a.dtype]}", rows,
                   (a, b, mean, partials, *kernels.int32s(n, c, length, parts, mode)))
    sums = xp.empty(partials.size // parts, dtype=xp.float64)
    kernels.launch(_BATCH_NORM, "batch_norm_reduce", sums.size,
                   (partials, sums, *kernels.int32s(sums.size, parts)))
    return sums.reshape(2, c) if mode == 2 else sums


def _batch_norm_forward_kernel(xv, weight, bias, eps: float, mean, var, running):
    """Batch norm's forward by the kernels, xv the (N, C, L) view: (y, μ, s, (μ, s) as
    (C,) float64) with μ and s = 1/√(σ² + eps) of shape (1, C, 1) in x's dtype, as the
    generic path saves them; the backward's sums use the float64 ones. Batch statistics
    (``mean`` None): two reductions, μ then the centred σ², and the running statistics
    updated as the generic path does; then one elementwise launch."""
    xp = get_array_module(xv)
    n, c, length = xv.shape
    if mean is None:
        count = n * length
        mean64 = _channel_sums(xv, xv, xp.zeros(c, dtype=xp.float64), 0) / count
        var64 = _channel_sums(xv, xv, mean64, 1) / count
        mean = mean64.astype(xv.dtype).reshape(1, c, 1)
        var = var64.astype(xv.dtype).reshape(1, c, 1)
        if running is not None:
            _update_running(*running, mean, var, count)
    else:  # fixed statistics, already in x's dtype
        mean64, var64 = mean.reshape(-1).astype(xp.float64), var.reshape(-1).astype(xp.float64)
    invstd = 1.0 / (var + eps) ** 0.5
    scale = invstd if weight is None else invstd * weight.reshape(1, c, 1)
    shift = (xp.zeros(c, dtype=xv.dtype) if bias is None
             else xp.ascontiguousarray(bias.reshape(-1)))
    y = xp.empty(xv.shape, dtype=xv.dtype)
    kernels.launch(_BATCH_NORM, f"batch_norm_forward_{kernels.FLOAT_SUFFIX[xv.dtype]}",
                   y.size, (xv, xp.ascontiguousarray(mean), xp.ascontiguousarray(scale), shift,
                            y, np.int64(y.size), *kernels.int32s(c, length)))
    return y, mean, invstd, (mean64, 1.0 / (var64 + eps) ** 0.5)


def _batch_norm_backward_kernel(ctx, g, x, mu, weight):
    """Batch norm's backward by the kernels: Σg and Σg·(x - μ) per channel in one
    reduction, dγ and dβ from them, and dx = k·(g + a·(x - μ) + b) in one elementwise
    launch, with k = s·γ, a = -s·mean(g·x̂), b = -mean(g) (the module docstring's dx,
    centred; a = b = 0 for fixed statistics). Coefficients in float64, then x's dtype."""
    xp = get_array_module(g)
    need_x, need_w, need_b = ctx.needs_input_grad
    _, c, length = ctx.view
    dtype = x.dtype
    g, xv = xp.ascontiguousarray(g).reshape(ctx.view), x.reshape(ctx.view)
    mean64, s64 = ctx.stats64
    sum_g, sum_gxc = _channel_sums(g, xv, mean64, 2)
    sum_gxhat = s64 * sum_gxc
    gw = sum_gxhat.astype(dtype).reshape(ctx.param_size) if need_w else None
    gb = sum_g.astype(dtype).reshape(ctx.param_size) if need_b else None
    if not need_x:
        return None, gw, gb
    k = s64 if weight is None else s64 * weight.reshape(-1)
    if ctx.batch_stats:
        a, b = -s64 * sum_gxhat / ctx.n, -sum_g / ctx.n
    else:  # fixed statistics are constants
        a = b = xp.zeros(c, dtype=xp.float64)
    gx = xp.empty(ctx.shape, dtype=dtype)
    kernels.launch(_BATCH_NORM, f"batch_norm_backward_{kernels.FLOAT_SUFFIX[dtype]}", gx.size,
                   (g, xv, xp.ascontiguousarray(mu), k.astype(dtype), a.astype(dtype),
                    b.astype(dtype), gx, np.int64(gx.size), *kernels.int32s(c, length)))
    return gx, gw, gb


class LocalResponseNorm(Function):
    """y_c = x_c · d_c^(-β), d_c = k + α/size · Σ_{j∈W(c)} x_j² (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, *, size, alpha, beta, k):
        before, after = size // 2, (size - 1) // 2
        d = _window_sum(x * x, before, after)
        d *= alpha / size
        d += k
        scale = d ** -beta
        ctx.save_for_backward(x, d, scale)
        ctx.size, ctx.alpha, ctx.beta = size, alpha, beta
        return x * scale

    @staticmethod
    def backward(ctx, g):
        x, d, scale = ctx.saved_tensors
        size = ctx.size
        t = g * x
        t *= scale
        t /= d  # g_c x_c d_c^(-β-1)
        # the adjoint of a window [c-b, c+a] is the mirrored window [i-a, i+b]
        back = _window_sum(t, (size - 1) // 2, size // 2)
        back *= x
        back *= 2.0 * ctx.alpha * ctx.beta / size
        gx = g * scale
        gx -= back
        return gx

    @staticmethod
    def composite(x, *, size, alpha, beta, k):
        """The forward as tensor ops, for create_graph: a zero-padded window sum of x²
        over the channels, one slice per offset."""
        from .pad import pad

        c, before, after = x.shape[1], size // 2, (size - 1) // 2
        sq = (x * x).reshape(x.shape[0], c, -1)
        padded = pad(sq, (0, 0, before, after))
        total = padded[:, 0:c]
        for offset in range(1, before + after + 1):
            total = total + padded[:, offset:offset + c]
        d = total.reshape(x.shape) * (alpha / size) + k
        return x * d ** -beta


def _window_sum(a, before: int, after: int):
    """out[:, c] = Σ a[:, c-before .. c+after] along axis 1, zero padded.

    A loop over the window offsets (``size`` of them), each a whole-array slice add.
    """
    xp = get_array_module(a)
    c = a.shape[1]
    padded = xp.zeros((a.shape[0], c + before + after) + a.shape[2:], dtype=a.dtype)
    padded[:, before:before + c] = a
    out = padded[:, 0:c].copy()
    for offset in range(1, before + after + 1):
        out += padded[:, offset:offset + c]
    return out


# ------------------------------------------------------------------ wrappers


def _check_param(name: str, op: str, p: Tensor | None, shape: tuple, x: Tensor) -> None:
    if p is None:
        return
    if not isinstance(p, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(p).__name__}")
    if tuple(p.shape) != tuple(shape):
        raise ValueError(
            f"{op}: expected {name} of shape {tuple(shape)}, got {tuple(p.shape)} "
            f"(input {tuple(x.shape)})"
        )


def _check_input(op: str, x: Tensor, min_ndim: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{op}: expected an input with at least {min_ndim} dimensions, "
            f"got shape {tuple(x.shape)}"
        )


def _check_affine_dtype(op: str, x: Tensor, weight: Tensor | None, bias: Tensor | None) -> None:
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {p.dtype} but input has dtype {x.dtype}")


def _channel_view(x: Tensor) -> tuple[int, int, int]:
    """(N, C, L): x of shape (N, C, *spatial) with the spatial sizes flattened."""
    n, c = x.shape[0], x.shape[1]
    return n, c, math.prod(x.shape[2:])


def _fixed(stat: Tensor, x: Tensor, shape: tuple):
    """A running statistic as a constant array broadcastable against the view.

    A copy, so a later in-place update of the running statistic cannot change
    what this op's backward sees."""
    return stat.data.reshape(shape).astype(x.dtype)


def _running_arrays(running_mean, running_var, momentum: float):
    """What ``Normalize`` updates in place: (mean array, var array, momentum), or None
    when neither running statistic is tracked."""
    if running_mean is None and running_var is None:
        return None
    for stat in (running_mean, running_var):
        if stat is not None:
            stat._bump_version()  # the forward is about to update it in place
    return (None if running_mean is None else running_mean.data,
            None if running_var is None else running_var.data, momentum)


def _check_channel_params(op: str, x: Tensor, c: int, weight, bias, running_mean,
                          running_var) -> None:
    """Every per-channel tensor of batch/instance norm is (C,) and matches x's dtype."""
    for name, p in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        _check_param(name, op, p, (c,), x)
    _check_affine_dtype(op, x, weight, bias)


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over (N, C), (N, C, L) or (N, C, H, W) input, per channel.

    Training: normalise with the batch statistics (biased variance) and update the
    given running statistics in place (unbiased variance). Eval: use the running ones.
    """
    op = "batch_norm"
    _check_input(op, x, 2)
    n, c, spatial = _channel_view(x)
    _check_channel_params(op, x, c, weight, bias, running_mean, running_var)
    view, param_shape = (n, c, spatial), (1, c, 1)
    config = dict(view=view, axes=(0, 2), param_shape=param_shape, eps=eps)
    if training:
        if n * spatial <= 1:
            raise ValueError(
                f"{op}: Expected more than 1 value per channel when training, "
                f"got input size {tuple(x.shape)}"
            )
        running = _running_arrays(running_mean, running_var, momentum)
        return Normalize.apply(x, weight, bias, running=running, **config)
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var are required when training=False")
    return Normalize.apply(x, weight, bias, mean=_fixed(running_mean, x, param_shape),
                           var=_fixed(running_var, x, param_shape), **config)


def layer_norm(x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions of each sample."""
    op = "layer_norm"
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    _check_input(op, x, 1)
    if len(shape) == 0 or tuple(x.shape[x.ndim - len(shape):]) != shape:
        raise ValueError(
            f"{op}: normalized_shape {shape} does not match the trailing dimensions "
            f"of the input of shape {tuple(x.shape)}"
        )
    _check_param("weight", op, weight, shape, x)
    _check_param("bias", op, bias, shape, x)
    _check_affine_dtype(op, x, weight, bias)
    k = math.prod(shape)
    m = math.prod(x.shape) // k if k else 0
    return Normalize.apply(x, weight, bias, view=(m, k), axes=(1,), param_shape=(1, k), eps=eps)


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over groups of C/num_groups channels (and all positions)."""
    op = "group_norm"
    _check_input(op, x, 2)
    n, c, spatial = _channel_view(x)
    if not isinstance(num_groups, int) or num_groups <= 0 or c % num_groups:
        raise ValueError(
            f"{op}: expected the number of channels ({c}) to be divisible by num_groups, "
            f"got num_groups={num_groups} (input {tuple(x.shape)})"
        )
    _check_param("weight", op, weight, (c,), x)
    _check_param("bias", op, bias, (c,), x)
    _check_affine_dtype(op, x, weight, bias)
    g = num_groups
    return Normalize.apply(x, weight, bias, view=(n, g, c // g, spatial), axes=(2, 3),
                           param_shape=(1, g, c // g, 1), eps=eps)


def instance_norm(x: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel of each sample over its spatial positions."""
    op = "instance_norm"
    _check_input(op, x, 3)
    n, c, spatial = _channel_view(x)
    _check_channel_params(op, x, c, weight, bias, running_mean, running_var)
    config = dict(view=(n, c, spatial), axes=(2,), param_shape=(1, c, 1), eps=eps)
    if use_input_stats:
        if spatial <= 1:
            raise ValueError(
                f"{op}: Expected more than 1 spatial element when training, "
                f"got input size {tuple(x.shape)}"
            )
        running = _running_arrays(running_mean, running_var, momentum)
        return Normalize.apply(x, weight, bias, running=running, **config)
    if running_mean is None or running_var is None:
        raise ValueError(
            f"{op}: running_mean and running_var are required when use_input_stats=False"
        )
    return Normalize.apply(x, weight, bias, mean=_fixed(running_mean, x, (1, c, 1)),
                           var=_fixed(running_var, x, (1, c, 1)), **config)


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """AlexNet's local response normalization across ``size`` neighbouring channels."""
    op = "local_response_norm"
    _check_input(op, x, 3)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"{op}: size must be a positive int, got {size!r}")
    return LocalResponseNorm.apply(x, size=size, alpha=alpha, beta=beta, k=k)
