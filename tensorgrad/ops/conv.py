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

from ..autograd import Function
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

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, padding, dilation, groups):
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        g = groups
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups)
        if _is_pointwise(w.shape, stride, padding):
            # (g, O/g, C/g) @ (N, g, C/g, H·W) -> (N, g, O/g, H·W): already NCHW
            w3 = w.reshape(g, o // g, cg)
            y = (w3 @ x.reshape(n, g, cg, h * wd)).reshape(n, o, h, wd)
        else:
            y = _correlate(x, w, stride, padding, dilation, groups)
        if b is not None:
            y += b.reshape(1, o, 1, 1)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        stride, padding, dilation, g = ctx.conf
        need_x, need_w, need_b = (ctx.needs_input_grad + (False,))[:3]
        xp = get_array_module(gy)
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        _, _, ho, wo = gy.shape
        k = cg * kh * kw
        w3 = w.reshape(g, o // g, k)
        gx = gw = gb = None
        if need_b:
            gb = gy.sum(axis=(0, 2, 3))
        if _is_pointwise(w.shape, stride, padding):
            # the gradients are written into arrays of w's and x's own shapes (through
            # reshaped views), so that they can become .grad without a copy
            gy4 = gy.reshape(n, g, o // g, h * wd)
            x4 = x.reshape(n, g, cg, h * wd)
            if need_w:  # one GEMM per image, summed over the batch
                gw = xp.empty(w.shape, dtype=w.dtype)
                (gy4 @ x4.transpose(0, 1, 3, 2)).sum(axis=0, out=gw.reshape(g, o // g, cg))
            if need_x:
                gx = xp.empty(x.shape, dtype=x.dtype)
                xp.matmul(w3.transpose(0, 2, 1), gy4, out=gx.reshape(n, g, cg, h * wd))
            return gx, gw, gb
        # with stride 1 both gradients come from the columns of dy (see the top); the
        # padding of that correlation, d(k−1) − p, must not be negative. For dw alone
        # (a first layer, whose input needs no gradient) the columns of x serve as well,
        # and they are the smaller set when x has fewer channels than dy (an RGB image).
        full = tuple(d * (kk - 1) - p for d, kk, p in zip(dilation, (kh, kw), padding))
        if stride == (1, 1) and min(full) >= 0 and (need_x or o < c):
            gx, gw = _stride1_gradients(x, w, gy, full, dilation, g, need_x, need_w)
            return gx, gw, gb
        if need_w:
            gw = xp.zeros(w.shape, dtype=w.dtype)
            gw3 = gw.reshape(g, o // g, k)
        if need_x:
            gx = xp.empty(x.shape, dtype=x.dtype)
        for chunk in _batch_chunks(x.shape, (kh, kw), (ho, wo), x.dtype.itemsize):
            # dy as (g, O/g, n·Ho·Wo), the layout of the forward GEMM's result
            gy3 = xp.ascontiguousarray(gy[chunk].transpose(1, 0, 2, 3))
            gy3 = gy3.reshape(g, o // g, -1)
            cols = im2col(x[chunk], (kh, kw), stride, padding, dilation)  # recomputed
            cols = cols.reshape(g, k, -1)
            if need_w:
                gw3 += gy3 @ cols.transpose(0, 2, 1)
            if need_x:
                # dcols has the columns' shape: write it over them (they are used up)
                gcols = xp.matmul(w3.transpose(0, 2, 1), gy3, out=cols)
                gx[chunk] = col2im(gcols.reshape(c, kh, kw, -1, ho, wo),
                                   x[chunk].shape, stride, padding, dilation)
        return gx, gw, gb


def _stride1_gradients(x, w, gy, full: Pair, dilation: Pair, groups: int,
                       need_x: bool, need_w: bool):
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
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g, kg = groups, (o // groups) * kh * kw
    w_flip = _flipped(w, g).reshape(g, cg, kg)
    gx = xp.empty(x.shape, dtype=x.dtype) if need_x else None
    gw_flip = xp.zeros((g, cg, kg), dtype=w.dtype) if need_w else None
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
