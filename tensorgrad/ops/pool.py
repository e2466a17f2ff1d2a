"""2-D pooling: max, average and adaptive average, with PyTorch's geometry.

Window geometry (per spatial axis, input length L, kernel k, stride s, padding p):

    L_out = ⌊(L + 2p − k) / s⌋ + 1                    (ceil_mode=False)
    L_out = ⌈(L + 2p − k) / s⌉ + 1, minus one if the last window would start
            at or beyond L + p (it must start inside the input or the left padding)

A pooled image is a sum or max over the k·k kernel offsets (i, j) of strided slices
``xpad[..., i::s, j::s]`` (each slice holds, for every window at once, the element
at that offset). So the loops here run over kernel offsets only, never over windows.

- max: the forward keeps, per output, the offset of its maximum (the argmax), not
  the window. Backward sends each output gradient to that one input: for every
  offset, the gradients whose argmax is that offset are added into its slice.
- avg: y = Σ_offsets slice / divisor, so dx gets dy / divisor added into every slice.
  The divisor counts the window's elements inside the padded input
  (``count_include_pad=True``) or inside the input itself (False).
- adaptive avg: window i spans [⌊i·L/out⌋, ⌈(i+1)·L/out⌉). Averaging over rows and
  over columns are both linear maps, so y = A_h · x · A_wᵀ with averaging matrices
  A (out, L), and dx = A_hᵀ · dy · A_w.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from ..autograd.traced import apply
from ..backend import get_array_module
from ..tensor import Tensor, _is_float
from .conv import _pair
from .pad import pad_array

Pair = tuple[int, int]


def pool_output_size(size: int, kernel: int, stride: int, padding: int,
                     ceil_mode: bool) -> int:
    """Number of pooling windows along one axis (PyTorch's rule, see the top)."""
    out = (size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _geometry(shape, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool):
    """Output size (Ho, Wo) and the padding widths of the last two axes that make every
    window fit: the left padding, and on the right whatever the last window needs
    (negative when it never reaches the input's end: that part is cropped)."""
    out, widths = [], [(0, 0)] * (len(shape) - 2)
    for size, k, s, p in zip(shape[-2:], kernel, stride, padding):
        n = pool_output_size(size, k, s, p, ceil_mode)
        out.append(n)
        widths.append((p, (n - 1) * s + k - size - p))
    return tuple(out), tuple(widths)


def _windows(kernel: Pair, stride: Pair, out: Pair):
    """(offset number, index) of every kernel offset: the index selects, from the
    padded input, the element at that offset of every window."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, (..., slice(i, i + sh * (ho - 1) + 1, sh),
                               slice(j, j + sw * (wo - 1) + 1, sw))


def _unpad(gpad, widths):
    """The adjoint of the padding: crop what was padded, zero-fill what was cropped."""
    return pad_array(gpad, [(-a, -b) for a, b in widths], 0)


def _phase_cells(size: int, pad: int, stride: int, phase: int, cells: int):
    """Along one axis, the cells r of stride phase ``phase`` that hold input elements
    (padded position r·s + phase, input position r·s + phase − pad ∈ [0, size)): the
    range [first, stop) and the matching strided slice of the input (None if empty)."""
    first = max(0, -(-(pad - phase) // stride))
    stop = min(cells, (size - 1 + pad - phase) // stride + 1)
    if stop <= first:
        return first, first, None
    start = first * stride + phase - pad
    return first, stop, slice(start, start + (stop - first - 1) * stride + 1, stride)


def _phases(x, fill, stride: Pair, padding: Pair, cells: Pair):
    """The padded input split by stride phase: P[..., a, b, r, c] = xpad[..., r·sh + a, c·sw + b]
    for r < cells[0], c < cells[1], where xpad is ``x`` framed by ``fill``.

    Kernel offset (i, j) of every window is then the block P[a, b, di:di+Ho, dj:dj+Wo]
    with (di, a) = divmod(i, sh), (dj, b) = divmod(j, sw): unit stride within rows, which
    is what makes the elementwise loops fast (one strided pass here instead of k·k)."""
    xp = get_array_module(x)
    (sh, sw), (ph, pw), (hc, wc) = stride, padding, cells
    phases = xp.empty(x.shape[:-2] + (sh, sw, hc, wc), dtype=x.dtype)
    for a in range(sh):
        r0, r1, rows = _phase_cells(x.shape[-2], ph, sh, a, hc)
        for b in range(sw):
            c0, c1, cols = _phase_cells(x.shape[-1], pw, sw, b, wc)
            block = phases[..., a, b, :, :]
            if rows is None or cols is None:
                block[...] = fill
                continue
            # fill only the frame around the copied input: no pass over the whole buffer
            block[..., :r0, :] = fill
            block[..., r1:, :] = fill
            block[..., r0:r1, :c0] = fill
            block[..., r0:r1, c1:] = fill
            block[..., r0:r1, c0:c1] = x[..., rows, cols]
    return phases


class MaxPool2d(Function):
    """y = max over each window; dx = dy routed to each window's argmax.

    Forward: the input is split by stride phase (``_phases``) into a grid of
    (Ho + ⌊(kh−1)/sh⌋ + 1) × Wq cells, Wq = Wo + ⌊(kw−1)/sw⌋. Flattened, kernel offset
    (i, j) is one contiguous run of Ho·Wq cells starting at di·Wq + dj, so the output is
    computed in an (Ho, Wq) layout (Wq − Wo junk columns per row, cropped at the end)
    with unit-stride passes. Per offset k: take = v > best (strictly: the first maximum
    wins); argmax = max(argmax, take·k), which is the last k taken since k increases
    (it starts at the window's first offset inside the input: the offsets before it are
    padding, which never wins);
    best = max(best, v), which propagates NaN to the value, as in PyTorch (its gradient
    goes to the largest number seen before the NaN; PyTorch picks the NaN).

    Backward: the flat index, in the padded input, of each output's argmax is
    corner(window) + i·Wp + j, and one ``add.at`` scatters dy there (overlapping windows
    add up); the padding is cropped off.
    """

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, ceil_mode):
        xp = get_array_module(x)
        out, _ = _geometry(x.shape, kernel, stride, padding, ceil_mode)
        if kernels.use_kernel(x) and x.dtype in kernels.FLOAT_SUFFIX:
            best, ctx.argmax = _max_pool2d_kernel(x, kernel, stride, padding, out)
            ctx.geometry = (x.shape, kernel, stride, padding, out)
            return best
        (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out
        lead = x.shape[:-2]
        # one spare row of cells: the runs of the last offsets overhang the grid by dj
        wq = wo + (kw - 1) // sw
        cells = (ho + (kh - 1) // sh + 1, wq)
        phases = _phases(x, -xp.inf, stride, padding, cells)
        phases = phases.reshape(lead + (sh, sw, cells[0] * wq))
        # the offset number fits in a signed byte for kernels up to 11x11
        argmax = xp.empty(lead + (ho * wq,), dtype=xp.int8 if kh * kw <= 127 else xp.int32)
        # it starts at each window's first offset inside the input, not in the -inf
        # padding: a window whose input values are all -inf then routes its gradient to
        # the first of them, as PyTorch (whose scan starts there), not into the padding
        (ph, pw), k = padding, xp.arange(max(ho, wq))
        first_row, first_col = xp.maximum(ph - k[:ho] * sh, 0), xp.maximum(pw - k[:wq] * sw, 0)
        argmax[...] = (first_row[:, None] * kw + first_col).reshape(-1).astype(argmax.dtype)
        take = xp.empty_like(argmax)
        best = None
        for i in range(kh):
            for j in range(kw):
                (di, a), (dj, b) = divmod(i, sh), divmod(j, sw)
                start = di * wq + dj
                v = phases[..., a, b, start:start + ho * wq]
                if best is None:
                    best = v.copy()
                    continue
                xp.greater(v, best, out=take)
                take *= argmax.dtype.type(i * kw + j)
                xp.maximum(argmax, take, out=argmax)
                xp.maximum(best, v, out=best)
        argmax, best = argmax.reshape(lead + (ho, wq)), best.reshape(lead + (ho, wq))
        if wq > wo:  # crop the junk columns
            argmax = xp.ascontiguousarray(argmax[..., :wo])
            best = xp.ascontiguousarray(best[..., :wo])
        ctx.argmax = argmax  # indices: a constant, also to a backward that is recorded
        ctx.geometry = (x.shape, kernel, stride, padding, out)
        return best

    differentiable_backward = True

    @staticmethod
    def backward(ctx, gy):
        return apply(MaxPool2dScatter, gy, argmax=ctx.argmax, geometry=ctx.geometry)


def _argmax_targets(xp, argmax, geometry):
    """Flat index, in the padded input buffer, of each output's argmax, and that
    buffer's size (hp, wp): every window, and the whole input (when ceil_mode is off
    the windows may stop short of its end)."""
    shape, (kh, kw), (sh, sw), (ph, pw), (ho, wo) = geometry
    h, w, m = shape[-2], shape[-1], argmax.size // (ho * wo)
    hp, wp = max((ho - 1) * sh + kh, ph + h), max((wo - 1) * sw + kw, pw + w)
    k = xp.arange(kh * kw, dtype=xp.int64)
    step = (k // kw) * wp + k % kw  # flat distance of offset k from its window's corner
    target = xp.take(step, argmax.reshape(m, ho, wo))
    target += ((xp.arange(m, dtype=xp.int64) * hp)[:, None, None]
               + (xp.arange(ho, dtype=xp.int64) * sh)[:, None]) * wp \
        + xp.arange(wo, dtype=xp.int64) * sw
    return target.reshape(-1), (hp, wp)


class MaxPool2dScatter(Function):
    """Max pooling's input gradient: dy sent to each window's argmax (overlapping windows
    add up). Linear in dy, so its backward is the matching gather."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, gy, *, argmax, geometry):
        ctx.argmax, ctx.geometry = argmax, geometry
        if kernels.use_kernel(gy) and gy.dtype in kernels.FLOAT_SUFFIX:
            return _max_pool2d_backward_kernel(gy, argmax, geometry)
        xp = get_array_module(gy)
        shape, _, _, (ph, pw), _ = geometry
        h, w = shape[-2:]
        target, (hp, wp) = _argmax_targets(xp, argmax, geometry)
        gpad = xp.zeros(shape[:-2] + (hp, wp), dtype=gy.dtype)
        xp.add.at(gpad.reshape(-1), target, gy.reshape(-1))
        if (hp, wp) == (h, w):  # no padding to cut: the buffer itself (it owns its memory)
            return gpad
        return xp.ascontiguousarray(gpad[..., ph:ph + h, pw:pw + w])

    @staticmethod
    def backward(ctx, g):
        return apply(MaxPool2dGather, g, argmax=ctx.argmax, geometry=ctx.geometry)


class MaxPool2dGather(Function):
    """The adjoint of ``MaxPool2dScatter``: each output reads the input at its argmax."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, argmax, geometry):
        ctx.argmax, ctx.geometry = argmax, geometry
        xp = get_array_module(x)
        shape, _, _, (ph, pw), (ho, wo) = geometry
        h, w = shape[-2:]
        target, (hp, wp) = _argmax_targets(xp, argmax, geometry)
        xpad = pad_array(x, [(0, 0)] * (x.ndim - 2) + [(ph, hp - h - ph), (pw, wp - w - pw)], 0)
        return xpad.reshape(-1)[target].reshape(shape[:-2] + (ho, wo))

    @staticmethod
    def backward(ctx, g):
        return apply(MaxPool2dScatter, g, argmax=ctx.argmax, geometry=ctx.geometry)


class AvgPool2d(Function):
    """y = Σ window / divisor; dx = dy / divisor added back into every window."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride, padding, ceil_mode, count_include_pad):
        xp = get_array_module(x)
        out, widths = _geometry(x.shape, kernel, stride, padding, ceil_mode)
        if kernels.use_kernel(x) and x.dtype in kernels.FLOAT_SUFFIX:
            total = _avg_pool2d_sum_kernel(x, kernel, stride, padding, out)
        else:
            xpad = pad_array(x, widths, 0) if any(map(any, widths)) else x
            total = None
            for _, index in _windows(kernel, stride, out):
                if total is None:
                    total = xpad[index].copy()
                else:
                    total += xpad[index]
        counts = []  # per axis: how many elements of each window are counted
        for size, k, s, p, n in zip(x.shape[-2:], kernel, stride, padding, out):
            start = xp.arange(n) * s - p
            end = xp.minimum(start + k, size + p)
            if not count_include_pad:
                start, end = xp.maximum(start, 0), xp.minimum(end, size)
            counts.append(end - start)
        divisor = (counts[0][:, None] * counts[1][None, :]).astype(x.dtype)
        ctx.divisor = divisor  # from the geometry alone: a constant
        ctx.geometry = (x.shape, widths, kernel, stride, out)
        ctx.conf = dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad)
        total /= divisor
        return total

    differentiable_backward = True

    @staticmethod
    def backward(ctx, gy):
        return apply(AvgPool2dScatter, gy, divisor=ctx.divisor, geometry=ctx.geometry,
                     conf=ctx.conf)


class AvgPool2dScatter(Function):
    """Average pooling's input gradient: dy / divisor added back into every window. Its
    adjoint, hence its backward, is average pooling itself."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, gy, *, divisor, geometry, conf):
        ctx.conf = conf
        shape, widths, kernel, stride, out = geometry
        if kernels.use_kernel(gy) and gy.dtype in kernels.FLOAT_SUFFIX:
            return _avg_pool2d_backward_kernel(gy, divisor, geometry)
        xp = get_array_module(gy)
        padded = tuple(n + a + b for n, (a, b) in zip(shape, widths))
        gpad = xp.zeros(padded, dtype=gy.dtype)
        share = gy / divisor
        for _, index in _windows(kernel, stride, out):
            gpad[index] += share
        return _unpad(gpad, widths)

    @staticmethod
    def backward(ctx, g):
        return apply(AvgPool2d, g, **ctx.conf)


# ----------------------------------------------------- max and avg pooling, as CUDA kernels

_POOL = kernels.CudaSource("pool2d", r"""
// Max and average pooling on a GPU: one thread per element of the array written (a
// grid-stride loop, flat indices in 64 bits), every leading axis flattened into planes of
// (H, W). Window (p, q) covers the input rows p·sh − ph + i and columns q·sw − pw + j for
// the kernel offsets 0 <= i < kh, 0 <= j < kw; what falls outside the input is padding.
// The gradients are gathers (each input element sums what it receives): no atomics.

__device__ __forceinline__ int tg_min(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int tg_max(int a, int b) { return a > b ? a : b; }

// The windows (p0..p1) that contain padded position t along an axis of Ho windows.
__device__ __forceinline__ void tg_windows_over(int t, int k, int s, int out, int& p0, int& p1) {
    p0 = t < k ? 0 : (t - k) / s + 1;
    p1 = tg_min(t / s, out - 1);
}

template <typename T, typename A>
__device__ void max_pool2d_forward(const T* __restrict__ x, T* __restrict__ y,
                                   A* __restrict__ argmax, long long total, int h, int w,
                                   int ho, int wo, int kh, int kw, int sh, int sw,
                                   int ph, int pw) {
    // each thread computes one output y[plane, p, q], the maximum of the window's input
    // elements (the −inf padding never wins), and argmax[plane, p, q], the offset i·kw + j
    // of the first maximum in raster order (a later element wins only if strictly
    // greater). A NaN becomes the value and stays it; argmax keeps the largest number
    // seen before it. As the generic path.
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int q = (int)(t % wo), p = (int)(t / wo % ho);
        const long long plane = t / wo / ho;
        const int y0 = p * sh - ph, x0 = q * sw - pw;
        const int i0 = tg_max(-y0, 0), i1 = tg_min(kh, h - y0);
        const int j0 = tg_max(-x0, 0), j1 = tg_min(kw, w - x0);
        const T* src = x + plane * h * w;
        T best = src[(long long)(y0 + i0) * w + x0 + j0];
        int arg = i0 * kw + j0;
        for (int i = i0; i < i1; ++i) {
            for (int j = j0; j < j1; ++j) {
                const T v = src[(long long)(y0 + i) * w + x0 + j];
                if (v > best) {
                    best = v;
                    arg = i * kw + j;
                } else if (v != v) {
                    best = v;  // NaN
                }
            }
        }
        y[t] = best;
        argmax[t] = (A)arg;
    }
}

template <typename T, typename A>
__device__ void max_pool2d_backward(const T* __restrict__ dy, const A* __restrict__ argmax,
                                    T* __restrict__ dx, long long total, int h, int w,
                                    int ho, int wo, int kh, int kw, int sh, int sw,
                                    int ph, int pw) {
    // each thread computes one input element dx[plane, y, x]: the sum of dy[plane, p, q]
    // over the windows (p, q) that contain it and whose argmax it is, in raster order (as
    // the generic path's scatter adds them)
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int ty = (int)(t / w % h) + ph, tx = (int)(t % w) + pw;  // in the padded frame
        const long long plane = t / w / h;
        int p0, p1, q0, q1;
        tg_windows_over(ty, kh, sh, ho, p0, p1);
        tg_windows_over(tx, kw, sw, wo, q0, q1);
        T acc = T(0);
        for (int p = p0; p <= p1; ++p) {
            const long long row = (plane * ho + p) * wo;
            for (int q = q0; q <= q1; ++q) {
                if ((int)argmax[row + q] == (ty - p * sh) * kw + (tx - q * sw)) {
                    acc += dy[row + q];
                }
            }
        }
        dx[t] = acc;
    }
}

template <typename T>
__device__ void avg_pool2d_sum(const T* __restrict__ x, T* __restrict__ y, long long total,
                               int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
                               int ph, int pw) {
    // each thread computes one output y[plane, p, q]: the sum of the window's input
    // elements in raster order (the padding adds zeros); pool.py divides by the divisor
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int q = (int)(t % wo), p = (int)(t / wo % ho);
        const long long plane = t / wo / ho;
        const int y0 = p * sh - ph, x0 = q * sw - pw;
        const int i1 = tg_min(kh, h - y0), j1 = tg_min(kw, w - x0);
        const T* src = x + plane * h * w;
        T acc = T(0);
        for (int i = tg_max(-y0, 0); i < i1; ++i) {
            for (int j = tg_max(-x0, 0); j < j1; ++j) {
                acc += src[(long long)(y0 + i) * w + x0 + j];
            }
        }
        y[t] = acc;
    }
}

template <typename T>
__device__ void avg_pool2d_backward(const T* __restrict__ dy, const T* __restrict__ divisor,
                                    T* __restrict__ dx, long long total, int h, int w,
                                    int ho, int wo, int kh, int kw, int sh, int sw,
                                    int ph, int pw) {
    // each thread computes one input element dx[plane, y, x]: the sum of
    // dy[plane, p, q] / divisor[p, q] over the windows that contain it, in the generic
    // path's order (by kernel offset i = ty − p·sh ascending: p descending; q alike)
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        const int ty = (int)(t / w % h) + ph, tx = (int)(t % w) + pw;  // in the padded frame
        const long long plane = t / w / h;
        int p0, p1, q0, q1;
        tg_windows_over(ty, kh, sh, ho, p0, p1);
        tg_windows_over(tx, kw, sw, wo, q0, q1);
        T acc = T(0);
        for (int p = p1; p >= p0; --p) {
            const long long row = (plane * ho + p) * wo;
            for (int q = q1; q >= q0; --q) {
                acc += dy[row + q] / divisor[p * wo + q];
            }
        }
        dx[t] = acc;
    }
}

// entry points, one per element type (and argmax type): the host names kernels by
// their extern "C" names, which templates do not have
extern "C" __global__ void max_pool2d_forward_f32_i8(
        const float* __restrict__ x, float* __restrict__ y, signed char* __restrict__ argmax,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_forward<float, signed char>(
        x, y, argmax, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void max_pool2d_forward_f32_i32(
        const float* __restrict__ x, float* __restrict__ y, int* __restrict__ argmax,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_forward<float, int>(
        x, y, argmax, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void max_pool2d_forward_f64_i8(
        const double* __restrict__ x, double* __restrict__ y, signed char* __restrict__ argmax,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_forward<double, signed char>(
        x, y, argmax, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void max_pool2d_forward_f64_i32(
        const double* __restrict__ x, double* __restrict__ y, int* __restrict__ argmax,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_forward<double, int>(
        x, y, argmax, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void max_pool2d_backward_f32_i8(
        const float* __restrict__ dy, const signed char* __restrict__ argmax,
        float* __restrict__ dx,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_backward<float, signed char>(
        dy, argmax, dx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void max_pool2d_backward_f32_i32(
        const float* __restrict__ dy, const int* __restrict__ argmax, float* __restrict__ dx,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_backward<float, int>(
        dy, argmax, dx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void max_pool2d_backward_f64_i8(
        const double* __restrict__ dy, const signed char* __restrict__ argmax,
        double* __restrict__ dx,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_backward<double, signed char>(
        dy, argmax, dx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void max_pool2d_backward_f64_i32(
        const double* __restrict__ dy, const int* __restrict__ argmax, double* __restrict__ dx,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    max_pool2d_backward<double, int>(
        dy, argmax, dx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void avg_pool2d_sum_f32(
        const float* __restrict__ x, float* __restrict__ y,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    avg_pool2d_sum<float>(
        x, y, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void avg_pool2d_sum_f64(
        const double* __restrict__ x, double* __restrict__ y,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    avg_pool2d_sum<double>(
        x, y, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void avg_pool2d_backward_f32(
        const float* __restrict__ dy, const float* __restrict__ divisor, float* __restrict__ dx,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    avg_pool2d_backward<float>(
        dy, divisor, dx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void avg_pool2d_backward_f64(
        const double* __restrict__ dy, const double* __restrict__ divisor, double* __restrict__ dx,
        long long total, int h, int w, int ho, int wo, int kh, int kw, int sh, int sw,
        int ph, int pw) {
    avg_pool2d_backward<double>(
        dy, divisor, dx, total, h, w, ho, wo, kh, kw, sh, sw, ph, pw);
}
""", functions=(
    "max_pool2d_forward_f32_i8", "max_pool2d_forward_f32_i32",
    "max_pool2d_forward_f64_i8", "max_pool2d_forward_f64_i32",
    "max_pool2d_backward_f32_i8", "max_pool2d_backward_f32_i32",
    "max_pool2d_backward_f64_i8", "max_pool2d_backward_f64_i32", "avg_pool2d_sum_f32",
    "avg_pool2d_sum_f64", "avg_pool2d_backward_f32", "avg_pool2d_backward_f64"))


_ARGMAX_SUFFIX = {np.dtype(np.int8): "i8", np.dtype(np.int32): "i32"}


def _pool_ints(shape, kernel: Pair, stride: Pair, padding: Pair, out: Pair):
    """The kernels' geometry arguments h, w, ho, wo, kh, kw, sh, sw, ph, pw, as np.int32."""
    return kernels.int32s(*shape[-2:], *out, *kernel, *stride, *padding)


def _max_pool2d_kernel(x, kernel: Pair, stride: Pair, padding: Pair, out: Pair):
    """Max pooling's forward as one launch of ``_POOL``: (y, argmax), argmax in the
    generic path's dtype (int8 for kernels up to 127 elements)."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:-2] + out, dtype=x.dtype)
    argmax = xp.empty(y.shape, dtype=xp.int8 if kernel[0] * kernel[1] <= 127 else xp.int32)
    name = (f"max_pool2d_forward_{kernels.FLOAT_SUFFIX[x.dtype]}_"
            f"{_ARGMAX_SUFFIX[argmax.dtype]}")
    kernels.launch(_POOL, name, y.size, (x, y, argmax, np.int64(y.size),
                                         *_pool_ints(x.shape, kernel, stride, padding, out)))
    return y, argmax


def _max_pool2d_backward_kernel(gy, argmax, geometry):
    """Max pooling's input gradient as one launch of ``_POOL`` (a gather)."""
    xp = get_array_module(gy)
    shape, kernel, stride, padding, out = geometry
    gy, argmax = xp.ascontiguousarray(gy), xp.ascontiguousarray(argmax)
    dx = xp.empty(shape, dtype=gy.dtype)
    name = (f"max_pool2d_backward_{kernels.FLOAT_SUFFIX[gy.dtype]}_"
            f"{_ARGMAX_SUFFIX[argmax.dtype]}")
    kernels.launch(_POOL, name, dx.size, (gy, argmax, dx, np.int64(dx.size),
                                          *_pool_ints(shape, kernel, stride, padding, out)))
    return dx


def _avg_pool2d_sum_kernel(x, kernel: Pair, stride: Pair, padding: Pair, out: Pair):
    """The window sums of average pooling as one launch of ``_POOL``."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(x.shape[:-2] + out, dtype=x.dtype)
    kernels.launch(_POOL, f"avg_pool2d_sum_{kernels.FLOAT_SUFFIX[x.dtype]}", y.size,
                   (x, y, np.int64(y.size), *_pool_ints(x.shape, kernel, stride, padding, out)))
    return y


def _avg_pool2d_backward_kernel(gy, divisor, geometry):
    """Average pooling's input gradient as one launch of ``_POOL`` (a gather)."""
    xp = get_array_module(gy)
    shape, widths, kernel, stride, out = geometry
    padding = (widths[-2][0], widths[-1][0])  # the left paddings are the op's padding
    gy = xp.ascontiguousarray(gy)
    divisor = xp.ascontiguousarray(divisor, dtype=gy.dtype)
    dx = xp.empty(shape, dtype=gy.dtype)
    kernels.launch(_POOL, f"avg_pool2d_backward_{kernels.FLOAT_SUFFIX[gy.dtype]}", dx.size,
                   (gy, divisor, dx, np.int64(dx.size),
                    *_pool_ints(shape, kernel, stride, padding, out)))
    return dx


def _averaging_matrix(xp, size: int, out: int, dtype):
    """A (out, size): row i averages PyTorch's adaptive window i."""
    i = xp.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)  # ceil division
    j = xp.arange(size)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPool2d(Function):
    """y = A_h x A_wᵀ; dx = A_hᵀ dy A_w (or a block mean when the windows tile x).
    The backward is linear in dy with constant A's, so it records as it is."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, out):
        xp = get_array_module(x)
        (h, w), (oh, ow) = x.shape[-2:], out
        ctx.shape = x.shape
        if h % oh == 0 and w % ow == 0:  # equal, disjoint windows: a mean over blocks
            ctx.matrices = None
            blocks = x.reshape(x.shape[:-2] + (oh, h // oh, ow, w // ow))
            # einsum sums the two block axes in one pass, 2-5x faster than mean() over
            # these short, non-adjacent axes (a 4x4 or 7x7 global average pool)
            y = xp.einsum("...ahbw->...ab", blocks)
            y /= x.dtype.type((h // oh) * (w // ow))
            return y
        a_h = _averaging_matrix(xp, h, oh, x.dtype)
        a_w = _averaging_matrix(xp, w, ow, x.dtype)
        ctx.matrices = (a_h, a_w)
        return a_h @ x @ a_w.T

    @staticmethod
    def backward(ctx, gy):
        xp = get_array_module(gy)
        shape = ctx.shape
        if ctx.matrices is None:
            (h, w), (oh, ow) = shape[-2:], gy.shape[-2:]
            kh, kw = h // oh, w // ow
            share = (gy / gy.dtype.type(kh * kw))[..., :, None, :, None]
            blocks = xp.broadcast_to(share, gy.shape[:-2] + (oh, kh, ow, kw))
            return blocks.reshape(shape)
        a_h, a_w = ctx.matrices
        return a_h.T @ gy @ a_w


# ----------------------------------------------------------------- public functions


def _check_pool(fn: str, x: Tensor, kernel_size, stride, padding):
    kernel = _pair(kernel_size, "kernel_size", fn)
    stride = kernel if stride is None else _pair(stride, "stride", fn)
    padding = _pair(padding, "padding", fn)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, "
                         f"got shape {tuple(x.shape)}")
    if not _is_float(x.dtype):
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype}")
    if min(kernel) < 1:
        raise ValueError(f"{fn}: kernel_size must be positive, got {kernel}")
    if min(stride) < 1:
        raise ValueError(f"{fn}: stride must be positive, got {stride}")
    if min(padding) < 0 or any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{fn}: padding should be non-negative and at most half of the "
                         f"kernel size, but got padding={padding}, kernel_size={kernel}")
    return kernel, stride, padding


def _check_output(fn: str, x: Tensor, kernel, stride, padding, ceil_mode):
    out, _ = _geometry(x.shape, kernel, stride, padding, ceil_mode)
    if min(out) < 1:
        raise ValueError(f"{fn}: input {tuple(x.shape)} is too small for kernel_size={kernel}, "
                         f"stride={stride}, padding={padding}: the output would be "
                         f"{out[0]}x{out[1]}")


def max_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None,
               padding: int | Pair = 0, ceil_mode: bool = False) -> Tensor:
    """Max over kH×kW windows of ``x`` (N, C, H, W) or (C, H, W); padding counts as -inf.
    ``stride`` defaults to ``kernel_size``."""
    if not isinstance(ceil_mode, bool):
        # PyTorch's fifth positional argument is dilation: F.max_pool2d(x, 2, 2, 0, 1)
        # would silently turn ceil_mode on here, so only a bool is taken for it
        raise TypeError(f"max_pool2d: ceil_mode must be a bool, got {ceil_mode!r} (PyTorch's "
                        f"fifth positional argument is dilation, which tensorgrad does not "
                        f"have: pass ceil_mode=... by keyword)")
    kernel, stride, padding = _check_pool("max_pool2d", x, kernel_size, stride, padding)
    _check_output("max_pool2d", x, kernel, stride, padding, ceil_mode)
    return MaxPool2d.apply(x, kernel=kernel, stride=stride, padding=padding,
                           ceil_mode=bool(ceil_mode))


def avg_pool2d(x: Tensor, kernel_size: int | Pair, stride: int | Pair | None = None,
               padding: int | Pair = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over kH×kW windows of ``x`` (N, C, H, W) or (C, H, W); zero padding is
    counted in the mean when ``count_include_pad``. ``stride`` defaults to ``kernel_size``."""
    kernel, stride, padding = _check_pool("avg_pool2d", x, kernel_size, stride, padding)
    _check_output("avg_pool2d", x, kernel, stride, padding, ceil_mode)
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding,
                           ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad))


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int | None, int | None]) -> Tensor:
    """Average ``x`` (N, C, H, W) or (C, H, W) into an ``output_size`` grid of windows
    (an int, or a pair whose None entries keep the input's size), as PyTorch."""
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) "
                         f"input, got shape {tuple(x.shape)}")
    if not _is_float(x.dtype):
        raise TypeError(f"adaptive_avg_pool2d: expected a floating-point input, "
                        f"got dtype {x.dtype}")
    if isinstance(output_size, (int, type(None))):
        size = (output_size, output_size)
    else:
        try:
            size = tuple(output_size)
        except TypeError:  # a float, a string of one character...
            size = ()
    if len(size) != 2 or not all(s is None or (isinstance(s, int) and not isinstance(s, bool))
                                 for s in size):
        raise TypeError(f"adaptive_avg_pool2d: output_size must be an int or a pair of "
                        f"ints/None, got {output_size!r}")
    out = tuple(n if s is None else s for s, n in zip(size, x.shape[-2:]))
    if min(out) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    if min(x.shape[-2:]) < 1:
        raise ValueError(f"adaptive_avg_pool2d: input {tuple(x.shape)} has an empty "
                         f"spatial dimension")
    return AdaptiveAvgPool2d.apply(x, out=out)
