"""2-D convolution (cross-correlation, as every framework computes it) by im2col + GEMM.

For an input x (N, C, H, W) and a weight w (O, C/g, kh, kw) in g groups,

    y[n, o, p, q] = b[o] + Σ_{c, i, j} w[o, c, i, j] · xpad[n, c', p·sh + i·dh, q·sw + j·dw]

with c' the input channel c of o's group. Unrolling every receptive field into a
column ("im2col") turns this sum into one matrix product:

    cols  (C·kh·kw, N·Ho·Wo)        cols[(c, i, j), (n, p, q)] = xpad[n, c, p·sh + i·dh, ...]
    y     (O, N·Ho·Wo) = w (O, C·kh·kw) @ cols         (per group: a batched matmul)

and the backward pass into two more:

    dw    = dy (O, N·Ho·Wo) @ colsᵀ
    dcols = wᵀ @ dy,   dx = col2im(dcols)   (each column added back where it was read)

With stride 1 the input gradient is itself a convolution: x[u] meets w[i] in the
output y[u - i·d], so dx[c, u] = Σ_{o, i} w[o, c, i] · dy[o, u - i·d] — a correlation
of dy, padded by d(k−1) − p, with the kernel flipped and its in/out channels swapped.
That path costs one copy (the columns of dy) and one GEMM instead of a GEMM into a
column-sized buffer plus col2im's kh·kw scattered additions, about three times the
copy. And the columns of dy also give dw, with x in place of the kernel (see
``_stride1_gradients``), so a stride-1 backward builds one set of columns, not two.

Memory and cache. The columns are kh·kw times larger than the input, so they are
never kept: backward builds the columns it needs again (those of dy with stride 1,
those of the saved input otherwise). And they are built for a
few images at a time (``_batch_chunks``, ~16 MiB of columns; a typical batch is a
handful of chunks, not a loop over images): a chunk is largely still in cache when
the GEMM reads it, the buffer is small enough that the allocator reuses it instead of
mapping (and page-faulting) fresh memory on every call, and only one chunk's
columns are alive at a time. Each chunk's GEMM is still large (thousands of
columns), so BLAS runs at full speed.

1×1 convolutions with stride 1 and no padding need no columns at all: each image is
already a (C, H·W) matrix, and the convolution is a plain matmul.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from ..autograd.traced import TracedArray, apply
from ..backend import get_array_module
from ..tensor import Tensor
from .pad import pad, pad_array

Pair = tuple[int, int]

# Bytes of columns built at once (see the module docstring): large enough for an
# efficient GEMM (thousands of columns, also on a GPU), small enough that a typical
# batch takes a handful of chunks whose buffer is reused instead of page-faulted anew.
# Measured on 2 CPU cores (64@32², batch 32, fwd+bwd): 4 MiB 67 ms, 16 MiB 72 ms,
# whole batch at once 80 ms.
_CHUNK_BYTES = 16 << 20


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis: ⌊(L + 2p − d(k−1) − 1)/s⌋ + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def im2col(x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair):
    """The receptive fields of ``x`` (N, C, H, W) as columns (C, kh, kw, N, Ho, Wo).

    A strided view picks, for every kernel offset (i, j), the input pixels that meet
    it at each output position; one copy lays that view out contiguously, in the
    order the GEMM wants (channel and offset major, then batch and pixel).
    """
    if kernels.use_kernel(x) and x.dtype in kernels.FLOAT_SUFFIX:
        return _im2col_kernel(x, kernel, stride, padding, dilation)
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    ho, wo = output_size(h, kh, sh, ph, dh), output_size(w, kw, sw, pw, dw)
    if ph or pw:
        x = pad_array(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    else:
        x = xp.ascontiguousarray(x)  # the strides below assume a C-ordered array
    bn, bc, bh, bw = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(c, kh, kw, n, ho, wo),
        strides=(bc, dh * bh, dw * bw, bn, sh * bh, sw * bw))
    # A copy even when the view happens to be contiguous already (a 1×1 output): the
    # columns are overwritten in backward, which must never write into x itself.
    return view.copy()


def col2im(cols, x_shape: tuple, stride: Pair, padding: Pair, dilation: Pair):
    """The adjoint of ``im2col``: add each column entry back onto the pixel it was
    read from. Overlapping windows read a pixel several times, so the gradients of
    those reads add up; a loop over the kh·kw kernel offsets accumulates one strided
    slice (every output position at once) per offset."""
    if kernels.use_kernel(cols) and cols.dtype in kernels.FLOAT_SUFFIX:
        return _col2im_kernel(cols, x_shape, stride, padding, dilation)
    xp = get_array_module(cols)
    c, kh, kw, n, ho, wo = cols.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    _, _, h, w = x_shape
    # accumulate channel-major (the columns' order), transpose to NCHW once at the end
    gx = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
               j * dw:j * dw + sw * (wo - 1) + 1:sw] += cols[:, i, j]
    return gx[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3)


# ------------------------------------------------------ the same two, as CUDA kernels

_COLUMNS = kernels.CudaSource("im2col", r"""
// im2col and col2im for conv2d on a GPU: one thread per element of the array written (a
// grid-stride loop, flat indices in 64 bits). Layouts, all C-ordered: the input x and its
// gradient dx (N, C, H, W); the columns (C, kh, kw, N, Ho, Wo).

template <typename T>
__device__ void im2col(const T* __restrict__ x, T* __restrict__ cols, long long total,
                       int n, int c, int h, int w, int ho, int wo, int kh, int kw,
                       int sh, int sw, int ph, int pw, int dh, int dw) {
    // each thread writes column entry cols[ch, i, j, b, p, q]: the pixel of image b that
    // kernel offset (i, j) meets at output (p, q), x[b, ch, p·sh − ph + i·dh, q·sw − pw +
    // j·dw], or 0 where that falls in the padding
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        long long r = t;
        const int q = (int)(r % wo); r /= wo;
        const int p = (int)(r % ho); r /= ho;
        const long long b = r % n; r /= n;
        const int j = (int)(r % kw); r /= kw;
        const int i = (int)(r % kh);
        const long long ch = r / kh;
        const int y = p * sh - ph + i * dh, xx = q * sw - pw + j * dw;
        cols[t] = (y >= 0 && y < h && xx >= 0 && xx < w)
                      ? x[((b * c + ch) * h + y) * w + xx] : T(0);
    }
}

template <typename T>
__device__ void col2im(const T* __restrict__ cols, T* __restrict__ dx, long long total,
                       int n, int c, int h, int w, int ho, int wo, int kh, int kw,
                       int sh, int sw, int ph, int pw, int dh, int dw) {
    // each thread computes one input pixel dx[b, ch, y, x], the adjoint of im2col as a
    // gather: the sum of the column entries that read it, cols[ch, i, j, b, p, q] for the
    // offsets (i, j) with p·sh = y + ph − i·dh and q·sw = x + pw − j·dw inside the output.
    // No atomics; the additions run in the generic path's order (i, then j).
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        long long r = t;
        const int xx = (int)(r % w); r /= w;
        const int y = (int)(r % h); r /= h;
        const long long ch = r % c, b = r / c;
        T acc = T(0);
        for (int i = 0; i < kh; ++i) {
            const int ty = y + ph - i * dh;  // p·sh: falls as i grows
            if (ty < 0) break;
            if (ty % sh != 0 || ty / sh >= ho) continue;
            const long long row = (ch * kh + i) * kw * n;  // where cols[ch, i] starts, / (Ho·Wo)
            for (int j = 0; j < kw; ++j) {
                const int tx = xx + pw - j * dw;
                if (tx < 0) break;
                if (tx % sw != 0 || tx / sw >= wo) continue;
                acc += cols[((row + (long long)j * n + b) * ho + ty / sh) * wo + tx / sw];
            }
        }
        dx[t] = acc;
    }
}

extern "C" __global__ void im2col_f32(const float* __restrict__ x, float* __restrict__ cols,
        long long total, int n, int c, int h, int w, int ho, int wo, int kh, int kw,
        int sh, int sw, int ph, int pw, int dh, int dw) {
    im2col<float>(x, cols, total, n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw);
}
extern "C" __global__ void im2col_f64(const double* __restrict__ x, double* __restrict__ cols,
        long long total, int n, int c, int h, int w, int ho, int wo, int kh, int kw,
        int sh, int sw, int ph, int pw, int dh, int dw) {
    im2col<double>(x, cols, total, n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw);
}
extern "C" __global__ void col2im_f32(const float* __restrict__ cols, float* __restrict__ dx,
        long long total, int n, int c, int h, int w, int ho, int wo, int kh, int kw,
        int sh, int sw, int ph, int pw, int dh, int dw) {
    col2im<float>(cols, dx, total, n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw);
}
extern "C" __global__ void col2im_f64(const double* __restrict__ cols, double* __restrict__ dx,
        long long total, int n, int c, int h, int w, int ho, int wo, int kh, int kw,
        int sh, int sw, int ph, int pw, int dh, int dw) {
    col2im<double>(cols, dx, total, n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw);
}
""", functions=("im2col_f32", "im2col_f64", "col2im_f32", "col2im_f64"))


def _im2col_kernel(x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair):
    """``im2col`` as one launch of ``_COLUMNS`` (x float32/float64, on a GPU)."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = output_size(h, kh, sh, ph, dh), output_size(w, kw, sw, pw, dw)
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    kernels.launch(_COLUMNS, f"im2col_{kernels.FLOAT_SUFFIX[x.dtype]}", cols.size,
                   (x, cols, np.int64(cols.size),
                    *kernels.int32s(n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw)))
    return cols


def _col2im_kernel(cols, x_shape: tuple, stride: Pair, padding: Pair, dilation: Pair):
    """``col2im`` as one launch of ``_COLUMNS``: a gather, dx (N, C, H, W) C-ordered."""
    xp = get_array_module(cols)
    cols = xp.ascontiguousarray(cols)
    c, kh, kw, n, ho, wo = cols.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    h, w = x_shape[2:]
    dx = xp.empty((n, c, h, w), dtype=cols.dtype)
    kernels.launch(_COLUMNS, f"col2im_{kernels.FLOAT_SUFFIX[cols.dtype]}", dx.size,
                   (cols, dx, np.int64(dx.size),
                    *kernels.int32s(n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw)))
    return dx


def _batch_chunks(x_shape: tuple, kernel: Pair, out: Pair, itemsize: int):
    """Slices of the batch whose columns take about ``_CHUNK_BYTES`` each."""
    n, c = x_shape[:2]
    per_image = c * kernel[0] * kernel[1] * out[0] * out[1] * itemsize
    step = max(1, min(n, _CHUNK_BYTES // max(per_image, 1)))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _correlate(x, w, stride: Pair, padding: Pair, dilation: Pair, groups: int):
    """y = x ⋆ w (no bias) by im2col + GEMM, a chunk of the batch at a time."""
    xp = get_array_module(x)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g, k = groups, cg * kh * kw
    ho = output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = output_size(wd, kw, stride[1], padding[1], dilation[1])
    w3 = w.reshape(g, o // g, k)
    y = xp.empty((n, o, ho, wo), dtype=x.dtype)
    for chunk in _batch_chunks(x.shape, (kh, kw), (ho, wo), x.dtype.itemsize):
        cols = im2col(x[chunk], (kh, kw), stride, padding, dilation)
        yc = w3 @ cols.reshape(g, k, -1)  # (g, O/g, n·Ho·Wo)
        y[chunk] = yc.reshape(o, -1, ho, wo).transpose(1, 0, 2, 3)
    return y


def _flipped(w, groups: int):
    """The kernel of the stride-1 input gradient: each group's (O/g, C/g) block
    transposed to (C/g, O/g), and the kernel rotated by 180°."""
    o, cg, kh, kw = w.shape
    g = groups
    wt = w.reshape(g, o // g, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return wt[..., ::-1, ::-1].reshape(g * cg, o // g, kh, kw)


def _is_pointwise(w_shape, stride: Pair, padding: Pair) -> bool:
    return w_shape[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0)


class Conv2d(Function):
    """y = conv2d(x, w) + b, by im2col and one (batched-over-groups) GEMM per chunk."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, padding, dilation, groups):
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups)
        y = conv2d_array(x, w, stride, padding, dilation, groups)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        conf = dict(zip(("stride", "padding", "dilation", "groups"), ctx.conf))
        need_x, need_w, need_b = (ctx.needs_input_grad + (False,))[:3]
        gb = gy.sum(axis=(0, 2, 3)) if need_b else None
        if isinstance(gy, TracedArray):
            # create_graph: the same two gradients as recorded ops, each a Function whose
            # forward is conv2d_gradients and whose backward is again a convolution
            gx = apply(ConvTranspose2d, gy, w, output_size=x.shape, **conf) if need_x else None
            gw = apply(Conv2dWeight, x, gy, weight_shape=w.shape, **conf) if need_w else None
            return gx, gw, gb
        gx, gw = conv2d_gradients(x, x.shape, w, w.shape, gy, need_x, need_w, **conf)
        return gx, gw, gb


class ConvTranspose2d(Function):
    """y = conv_transpose2d(u, w) + b: the adjoint of x ↦ conv2d(x, w), i.e. the input
    gradient of a convolution as an op of its own (also a layer: it upsamples).
    ``w`` (C_in, C_out/g, kh, kw) is the weight of the convolution it transposes, which
    maps C_out channels to C_in. Its backward is that convolution (for u) and the
    convolution's weight gradient with u in the role of dy (for w)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, u, w, b=None, *, output_size, stride, padding, dilation, groups):
        ctx.save_for_backward(u, w)
        ctx.conf = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        y, _ = conv2d_gradients(None, tuple(output_size), w, w.shape, u, True, False,
                                **ctx.conf)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, g):
        u, w = ctx.saved_tensors
        need_u, need_w, need_b = (ctx.needs_input_grad + (False,))[:3]
        gb = g.sum(axis=(0, 2, 3)) if need_b else None
        ho, wo = u.shape[2:]
        # (a convolution of g may have more outputs than u had inputs when the output
        # was padded by output_padding: those see none of u)
        gu = apply(Conv2d, g, w, **ctx.conf)[:, :, :ho, :wo] if need_u else None
        gw = apply(Conv2dWeight, g, u, weight_shape=w.shape, **ctx.conf) if need_w else None
        return gu, gw, gb



class Conv2dWeight(Function):
    """dw = the weight gradient of y = conv2d(x, w) for output gradient dy, as an op:
    bilinear in (x, dy), so its backward is a transposed convolution of dy (for x) and
    a convolution of x (for dy), both with the incoming gradient as the kernel."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, gy, *, weight_shape, stride, padding, dilation, groups):
        ctx.save_for_backward(x, gy)
        ctx.conf = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        out = tuple(output_size(size, k, s, p, d) for size, k, s, p, d in zip(
            x.shape[2:], weight_shape[2:], stride, padding, dilation))
        if out != gy.shape[2:]:  # x is a transposed convolution's output_padding-ed input
            xp = get_array_module(gy)
            padded = xp.zeros(gy.shape[:2] + out, dtype=gy.dtype)
            padded[:, :, :gy.shape[2], :gy.shape[3]] = gy
            gy = padded  # the extra output positions get no gradient
        return conv2d_gradients(x, x.shape, None, tuple(weight_shape), gy, False, True,
                                **ctx.conf)[1]

    @staticmethod
    def backward(ctx, gw):
        x, gy = ctx.saved_tensors
        need_x, need_gy = ctx.needs_input_grad[:2]
        gx = apply(ConvTranspose2d, gy, gw, output_size=x.shape, **ctx.conf) if need_x else None
        ho, wo = gy.shape[2:]
        ggy = apply(Conv2d, x, gw, **ctx.conf)[:, :, :ho, :wo] if need_gy else None
        return gx, ggy


def conv2d_array(x, w, stride: Pair, padding: Pair, dilation: Pair, groups: int):
    """y = conv2d(x, w) on arrays: a matmul for 1×1 kernels, else im2col + GEMM."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g = groups
    if _is_pointwise(w.shape, stride, padding):
        # (g, O/g, C/g) @ (N, g, C/g, H·W) -> (N, g, O/g, H·W): already NCHW
        w3 = w.reshape(g, o // g, cg)
        return (w3 @ x.reshape(n, g, cg, h * wd)).reshape(n, o, h, wd)
    return _correlate(x, w, stride, padding, dilation, groups)


def conv2d_gradients(x, x_shape: tuple, w, w_shape: tuple, gy, need_x: bool, need_w: bool, *,
                     stride: Pair, padding: Pair, dilation: Pair, groups: int):
    """(dx, dw) of y = conv2d(x, w) for the output gradient gy, on arrays: dx needs only
    w (x may be None), dw only x (w may be None); both at once share their columns."""
    g = groups
    xp = get_array_module(gy)
    n, c, h, wd = x_shape
    o, cg, kh, kw = w_shape
    _, _, ho, wo = gy.shape
    k = cg * kh * kw
    gx = gw = None
    if _is_pointwise(w_shape, stride, padding):
        # the gradients are written into arrays of w's and x's own shapes (through
        # reshaped views), so that they can become .grad without a copy
        gy4 = gy.reshape(n, g, o // g, h * wd)
        if need_w:  # one GEMM per image, summed over the batch
            x4 = x.reshape(n, g, cg, h * wd)
            gw = xp.empty(w_shape, dtype=gy.dtype)
            (gy4 @ x4.transpose(0, 1, 3, 2)).sum(axis=0, out=gw.reshape(g, o // g, cg))
        if need_x:
            gx = xp.empty(x_shape, dtype=gy.dtype)
            xp.matmul(w.reshape(g, o // g, k).transpose(0, 2, 1), gy4,
                      out=gx.reshape(n, g, cg, h * wd))
        return gx, gw
    # with stride 1 both gradients come from the columns of dy (see the top); the
    # padding of that correlation, d(k−1) − p, must not be negative. For dw alone
    # (a first layer, whose input needs no gradient) the columns of x serve as well,
    # and they are the smaller set when x has fewer channels than dy (an RGB image).
    full = tuple(d * (kk - 1) - p for d, kk, p in zip(dilation, (kh, kw), padding))
    exact = (h, wd) == (ho + 2 * full[0] - dilation[0] * (kh - 1),
                        wo + 2 * full[1] - dilation[1] * (kw - 1))  # no output_padding
    if stride == (1, 1) and min(full) >= 0 and exact and (need_x or o < c):
        return _stride1_gradients(x, x_shape, w, w_shape, gy, full, dilation, g, need_x,
                                  need_w)
    if need_w:
        gw = xp.zeros(w_shape, dtype=gy.dtype)
        gw3 = gw.reshape(g, o // g, k)
    if need_x:
        w3 = w.reshape(g, o // g, k)
        gx = xp.empty(x_shape, dtype=gy.dtype)
    for chunk in _batch_chunks(x_shape, (kh, kw), (ho, wo), gy.dtype.itemsize):
        # dy as (g, O/g, n·Ho·Wo), the layout of the forward GEMM's result
        gy3 = xp.ascontiguousarray(gy[chunk].transpose(1, 0, 2, 3))
        gy3 = gy3.reshape(g, o // g, -1)
        m = gy3.shape[-1] // (ho * wo)  # images in this chunk
        if need_w:
            cols = im2col(x[chunk], (kh, kw), stride, padding, dilation)  # recomputed
            cols = cols.reshape(g, k, -1)
            gw3 += gy3 @ cols.transpose(0, 2, 1)
        if need_x:
            # dcols has the columns' shape: written over them when they are used up
            out = cols if need_w else xp.empty((g, k, gy3.shape[-1]), dtype=gy.dtype)
            gcols = xp.matmul(w3.transpose(0, 2, 1), gy3, out=out)
            gx[chunk] = col2im(gcols.reshape(c, kh, kw, -1, ho, wo),
                               (m, c, h, wd), stride, padding, dilation)
    return gx, gw


def _stride1_gradients(x, x_shape: tuple, w, w_shape: tuple, gy, full: Pair, dilation: Pair,
                       groups: int, need_x: bool, need_w: bool):
    """dx and dw of a stride-1 convolution from one set of columns: those of dy.

    The columns of dy padded by ``full`` = d(k−1) − p hold, at kernel offset (i', j')
    and input pixel u, dy[u + d·i' − full]. The input gradient is their product with
    the flipped kernel (a correlation, see the top), and the same columns give the
    weight gradient: dw[o, c, i] = Σ x[c, u] · dy[o, u − d·i + p], which is the column
    at the flipped offset i' = k − 1 − i. So

        dx            = w_flipped (C, O·kh·kw) @ cols
        dw_flipped    = x (C, N·H·W) @ colsᵀ          (x channel-major: a cheap transpose)

    one im2col of dy instead of that one plus rebuilding the columns of x.
    """
    xp = get_array_module(gy)
    n, c, h, wd = x_shape
    o, cg, kh, kw = w_shape
    g, kg = groups, (o // groups) * kh * kw
    w_flip = _flipped(w, g).reshape(g, cg, kg) if need_x else None
    gx = xp.empty(x_shape, dtype=gy.dtype) if need_x else None
    gw_flip = xp.zeros((g, cg, kg), dtype=gy.dtype) if need_w else None
    for chunk in _batch_chunks(gy.shape, (kh, kw), (h, wd), gy.dtype.itemsize):
        cols = im2col(gy[chunk], (kh, kw), (1, 1), full, dilation).reshape(g, kg, -1)
        if need_x:
            gxc = w_flip @ cols  # (g, C/g, n·H·W)
            gx[chunk] = gxc.reshape(c, -1, h, wd).transpose(1, 0, 2, 3)
        if need_w:
            xc = xp.ascontiguousarray(x[chunk].transpose(1, 0, 2, 3)).reshape(g, cg, -1)
            gw_flip += xc @ cols.transpose(0, 2, 1)
    # _flipped undoes itself: dw_flipped (C, O/g, kh, kw) -> dw (O, C/g, kh, kw)
    gw = _flipped(gw_flip.reshape(g * cg, o // g, kh, kw), g) if need_w else None
    return gx, gw


# ----------------------------------------------------------------- public function


def _pair(value, name: str, fn: str = "conv2d") -> Pair:
    """An int or a pair of ints as a pair (PyTorch's ``_pair``)."""
    pair = (value, value) if isinstance(value, int) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = None
    if pair is None or len(pair) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    return pair


def _same_padding(x: Tensor, weight: Tensor, stride: Pair, dilation: Pair):
    """``padding="same"``: the output keeps the input's size (stride 1 only, as PyTorch).
    A kernel spanning an even number of pixels needs one more row/column of zeros at
    the bottom/right than at the top/left; that extra one is padded explicitly."""
    if stride != (1, 1):
        raise ValueError(f"conv2d: padding='same' is not supported for strided "
                         f"convolutions (stride {stride})")
    total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
    before = (total[0] // 2, total[1] // 2)
    extra = (total[0] - 2 * before[0], total[1] - 2 * before[1])
    if any(extra):
        x = pad(x, (0, extra[1], 0, extra[0]))
    return x, before


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Pair = 1,
           padding: int | Pair | str = 0, dilation: int | Pair = 1, groups: int = 1) -> Tensor:
    """2-D convolution of ``x`` (N, C_in, H, W) — or one unbatched image (C_in, H, W) —
    with ``weight`` (C_out, C_in/groups, kH, kW), plus ``bias`` (C_out,); output
    (N, C_out, H_out, W_out) with H_out = ⌊(H + 2·padding − dilation·(kH − 1) − 1) / stride⌋
    + 1 (PyTorch semantics). ``padding`` may also be ``"valid"`` (0) or ``"same"``."""
    if isinstance(x, Tensor) and x.ndim == 3:  # one image: a batch of one, as PyTorch
        return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation,
                      groups).squeeze(0)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"conv2d: padding must be an int, a pair of ints, 'same' or "
                             f"'valid', got {padding!r}")
        if padding == "same" and x.ndim == 4 and weight.ndim == 4:
            x, padding = _same_padding(x, weight, stride, dilation)
        else:
            padding = 0
    padding = _pair(padding, "padding")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if min(stride) < 1:
        raise ValueError(f"conv2d: stride must be positive, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"conv2d: dilation must be positive, got {dilation}")
    if min(padding) < 0:
        raise ValueError(f"conv2d: padding must be non-negative, got {padding}")
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D input (N, C, H, W) or a 3-D one (C, H, W), "
                         f"got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D weight (out_channels, in_channels/groups, "
                         f"kH, kW), got shape {tuple(weight.shape)}")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    shapes = f"(input {tuple(x.shape)}, weight {tuple(weight.shape)}, groups={groups})"
    if c % groups:
        raise ValueError(f"conv2d: input channels {c} are not divisible by groups={groups} "
                         f"{shapes}")
    if o % groups:
        raise ValueError(f"conv2d: weight has {o} output channels, not divisible by "
                         f"groups={groups} {shapes}")
    if cg * groups != c:
        what = "input channels" if groups == 1 else "input channels per group"
        raise ValueError(f"conv2d: weight has {cg} {what} but input has {c} {shapes}")
    if min(kh, kw) < 1:
        raise ValueError(f"conv2d: weight has an empty kernel {shapes}")
    if bias is not None and tuple(bias.shape) != (o,):
        raise ValueError(f"conv2d: bias has shape {tuple(bias.shape)}, expected ({o},) "
                         f"for a weight of shape {tuple(weight.shape)}")
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    padded = (h + 2 * padding[0], w + 2 * padding[1])
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(f"conv2d: kernel size {(kh, kw)} with dilation {dilation} spans "
                         f"{span[0]}x{span[1]}, larger than the padded input "
                         f"{padded[0]}x{padded[1]} (input {tuple(x.shape)}, "
                         f"padding {padding})")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"conv2d: input has dtype {x.dtype} but {name} has dtype {t.dtype}")
    conf = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if bias is None:
        return Conv2d.apply(x, weight, **conf)
    return Conv2d.apply(x, weight, bias, **conf)


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: int | Pair = 1, padding: int | Pair = 0,
                     output_padding: int | Pair = 0, groups: int = 1,
                     dilation: int | Pair = 1) -> Tensor:
    """Transposed convolution of ``x`` (N, C_in, H, W) — or (C_in, H, W) — with ``weight``
    (C_in, C_out/groups, kH, kW): the adjoint of ``conv2d`` with that weight, so
    conv2d's input gradient. Output (N, C_out, H_out, W_out) with
    H_out = (H − 1)·stride − 2·padding + dilation·(kH − 1) + output_padding + 1
    (PyTorch's signature and semantics)."""
    fn = "conv_transpose2d"
    if isinstance(x, Tensor) and x.ndim == 3:
        return conv_transpose2d(x.unsqueeze(0), weight, bias, stride, padding, output_padding,
                                groups, dilation).squeeze(0)
    stride, padding = _pair(stride, "stride", fn), _pair(padding, "padding", fn)
    dilation = _pair(dilation, "dilation", fn)
    output_padding = _pair(output_padding, "output_padding", fn)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive int, got {groups!r}")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or min(output_padding) < 0:
        raise ValueError(f"{fn}: stride and dilation must be positive, padding and "
                         f"output_padding non-negative (stride {stride}, dilation "
                         f"{dilation}, padding {padding}, output_padding {output_padding})")
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{fn}: output_padding {output_padding} must be smaller than either "
                         f"stride {stride} or dilation {dilation}")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"{fn}: expected a 4-D input and a 4-D weight (C_in, C_out/groups, "
                         f"kH, kW), got shapes {tuple(x.shape)} and {tuple(weight.shape)}")
    n, c, h, w = x.shape
    cin, cg, kh, kw = weight.shape
    shapes = f"(input {tuple(x.shape)}, weight {tuple(weight.shape)}, groups={groups})"
    if cin != c or c % groups:
        raise ValueError(f"{fn}: weight has {cin} input channels but input has {c}, or they "
                         f"are not divisible by groups {shapes}")
    if bias is not None and tuple(bias.shape) != (cg * groups,):
        raise ValueError(f"{fn}: bias has shape {tuple(bias.shape)}, expected "
                         f"({cg * groups},) {shapes}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{fn}: input has dtype {x.dtype} but {name} has dtype {t.dtype}")
    out = tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, s, p, d, k, op in
                zip((h, w), stride, padding, dilation, (kh, kw), output_padding))
    if min(out) < 1:
        raise ValueError(f"{fn}: the output would be {out[0]}x{out[1]} {shapes}")
    conf = dict(output_size=(n, cg * groups, *out), stride=stride, padding=padding,
                dilation=dilation, groups=groups)
    if bias is None:
        return ConvTranspose2d.apply(x, weight, **conf)
    return ConvTranspose2d.apply(x, weight, bias, **conf)
