"""2-D convolution (cross-correlation, as every framework computes it) by im2col + GEMM.

For an input x (N, C, H, W) and a weight w (O, C/g, kh, kw) in g groups,

    y[n, o, p, q] = b[o] + Σ_{c, i, j} w[o, c, i, j] · xpad[n, c', p·sh + i·dh, q·sw + j·dw]

with c' the input channel c of o's group. Unrolling every receptive field into a
column ("im2col") turns this sum into one matrix product over the whole batch:

    cols  (C·kh·kw, N·Ho·Wo)        cols[(c, i, j), (n, p, q)] = xpad[n, c, p·sh + i·dh, ...]
    y     (O, N·Ho·Wo) = w (O, C·kh·kw) @ cols         (per group: a batched matmul)

and the backward pass into two more:

    dw    = dy (O, N·Ho·Wo) @ colsᵀ
    dcols = wᵀ @ dy,   dx = col2im(dcols)   (each column added back where it was read)

The columns are k·k times larger than the input, so they are not kept for backward:
backward rebuilds them from the saved input (one strided copy), and once the weight
gradient is computed writes the column gradient over them, so one column buffer is
alive at a time.

1×1 convolutions with stride 1 and no padding need no columns at all: each image is
already a (C, H·W) matrix, and the convolution is a plain matmul.
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .pad import pad_array

Pair = tuple[int, int]


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
    return xp.ascontiguousarray(view)


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
    return xp.ascontiguousarray(gx[:, :, ph:ph + h, pw:pw + w].transpose(1, 0, 2, 3))


def _is_pointwise(w_shape, stride: Pair, padding: Pair) -> bool:
    return w_shape[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0)


class Conv2d(Function):
    """y = conv2d(x, w) + b, by im2col and one (batched-over-groups) GEMM."""

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, padding, dilation, groups):
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        g = groups
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups)
        w3 = w.reshape(g, o // g, cg * kh * kw)
        if _is_pointwise(w.shape, stride, padding):
            # (g, O/g, C/g) @ (N, g, C/g, H·W) -> (N, g, O/g, H·W): already NCHW
            y = (w3 @ x.reshape(n, g, cg, h * wd)).reshape(n, o, h, wd)
        else:
            cols = im2col(x, (kh, kw), stride, padding, dilation)
            _, _, _, _, ho, wo = cols.shape
            y = w3 @ cols.reshape(g, cg * kh * kw, n * ho * wo)  # (g, O/g, N·Ho·Wo)
            del cols
            y = y.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)
            y = get_array_module(y).ascontiguousarray(y)
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
        w3 = w.reshape(g, o // g, cg * kh * kw)
        gx = gw = gb = None
        if need_b:
            gb = gy.sum(axis=(0, 2, 3))
        if _is_pointwise(w.shape, stride, padding):
            gy4 = gy.reshape(n, g, o // g, h * wd)
            x4 = x.reshape(n, g, cg, h * wd)
            if need_w:  # one GEMM per image, summed over the batch
                gw = (gy4 @ x4.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
            if need_x:
                gx = (w3.transpose(0, 2, 1) @ gy4).reshape(x.shape)
            return gx, gw, gb
        # dy as (g, O/g, N·Ho·Wo), the layout of the forward GEMM's result
        gy3 = xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(g, o // g, n * ho * wo)
        cols = None
        if need_w:
            cols = im2col(x, (kh, kw), stride, padding, dilation)  # recomputed, see top
            cols = cols.reshape(g, cg * kh * kw, n * ho * wo)
            gw = (gy3 @ cols.transpose(0, 2, 1)).reshape(w.shape)
        if need_x:
            # dcols has the columns' shape: write it over them (they are used up) rather
            # than fault in a second buffer as large
            gcols = xp.matmul(w3.transpose(0, 2, 1), gy3, out=cols)  # (g, C/g·kh·kw, N·Ho·Wo)
            gx = col2im(gcols.reshape(c, kh, kw, n, ho, wo), x.shape, stride, padding, dilation)
        return gx, gw, gb


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


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int | Pair = 1,
           padding: int | Pair = 0, dilation: int | Pair = 1, groups: int = 1) -> Tensor:
    """2-D convolution of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, kH, kW),
    plus ``bias`` (C_out,); output (N, C_out, H_out, W_out) with
    H_out = ⌊(H + 2·padding − dilation·(kH − 1) − 1) / stride⌋ + 1 (PyTorch semantics)."""
    stride, padding, dilation = (_pair(stride, "stride"), _pair(padding, "padding"),
                                 _pair(dilation, "dilation"))
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if min(stride) < 1:
        raise ValueError(f"conv2d: stride must be positive, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"conv2d: dilation must be positive, got {dilation}")
    if min(padding) < 0:
        raise ValueError(f"conv2d: padding must be non-negative, got {padding}")
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
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
