r"""Loss functions: cross-entropy, negative log-likelihood, binary cross-entropy on
logits, mean squared error and the multiclass SVM (margin) loss.

Class-index losses take ``input`` of shape (N, C) or (N, C, d1, ...) — the classes
on axis 1, as PyTorch — and an integer ``target`` of shape (N,) or (N, d1, ...).
``reduction`` is ``'mean'`` (over the N·d1·... losses), ``'sum'`` or ``'none'``.
Cross-entropy and NLL also take one unbatched sample, (C,) with a 0-d target, and
skip targets equal to ``ignore_index`` (default -100, as PyTorch): their loss and
gradient are 0 and ``'mean'`` averages over the other targets only.

Cross-entropy is one fused op. With p = softmax(x), class weights w (all 1 unless
given) and the target distribution q — the smoothed one-hot (1 - ε)·onehot(y) + ε/C,
or for probability targets (a float target of the input's shape) (1 - ε)·t + ε/C::

    loss = -Σ_c w_c·q_c·log p_c,      ∂loss/∂x = p·Σ_c w_c·q_c - w⊙q

which is p - q without weights (q sums to 1): the backward is one subtraction — no
separate log-softmax and NLL graph nodes. log p = (x - max x) - log Σ exp(x - max x)
stays finite for logits of any size. As PyTorch, the weighted ``'mean'`` of
class-index targets divides by Σ_n w_{y_n}, the total weight of the targets (not by
N), while the ``'mean'`` of probability targets divides by the number of samples.
On a GPU with the kernels on, class-index cross-entropy of (N, C) logits runs as one
CUDA kernel each way (``_CROSS_ENTROPY``); the array code is their reference.

Binary cross-entropy on logits x with target t, pos_weight P and weight w::

    loss = w·[(1 - t)·x + (1 + (P - 1)·t)·softplus(-x)]
    ∂loss/∂x = w·[(1 - t) - (1 + (P - 1)·t)·sigmoid(-x)]

with softplus(-x) = log(1 + e^-x) = max(-x, 0) + log(1 + e^-|x|), finite for any x.

The multiclass SVM loss (``multi_margin_loss``), for one sample with target y::

    loss = Σ_{j≠y} max(0, margin - x_y + x_j)^p / C
    ∂loss/∂x_j = p·h_j^(p-1)·[h_j > 0] / C   (j ≠ y, h_j = margin - x_y + x_j)
    ∂loss/∂x_y = -Σ_{j≠y} ∂loss/∂x_j

(times w_y with class weights w, as PyTorch's implementation: the weight scales each
term after the power).

Second derivatives (``create_graph=True``): each loss is a fused op whose backward is
array code over private intermediates (softmax, e^-|x|, the hinges), so each also gives
``composite``, its forward written with differentiable tensor ops (``log_softmax``,
products with a constant target distribution, sums); create_graph differentiates that,
and the first-order path stays the fused one.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..backend import check_later, get_array_module, is_cupy_array, to_numpy
from ..tensor import Tensor
from .elementwise import where
from .embedding import onehot_array
from .reduce import ROW_HELPERS_CUDA

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction: str, count=None):
    """The per-element losses reduced; a 0-d array (not a NumPy scalar) for mean/sum.
    ``count`` is what the mean divides the sum by: an int (how many losses; default
    all of them) or a 0-d array (the total weight of weighted targets)."""
    xp = get_array_module(loss)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.asarray(loss.sum())
    if isinstance(count, int) and count == 0:  # every target ignored: NaN as PyTorch
        return xp.full((), xp.nan, dtype=loss.dtype)
    return xp.asarray(loss.mean() if count is None else loss.sum() / count)


def _reduce_composite(loss: Tensor, reduction: str, count=None) -> Tensor:
    """``_reduce`` on a Tensor, for ``composite``: only its gradient is used, so with no
    kept targets (count 0) it divides by 1, giving ``_grad_scale``'s zero gradient."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if count is None:
        return loss.mean()
    return loss.sum() / (max(count, 1) if isinstance(count, int) else count)


def _grad_scale(g, loss_shape: tuple, reduction: str, count=None):
    """d(reduced)/d(per-element loss) · g, shaped to broadcast against the loss."""
    if reduction != "mean":
        return g
    if count is None:
        count = math.prod(loss_shape)
    # With no kept targets (count 0) the masked gradient is 0 whatever the scale, as
    # PyTorch's: divide by 1 there.
    if isinstance(count, int):
        count = max(count, 1)
    else:
        count = get_array_module(count).where(count == 0, count.dtype.type(1), count)
    # g is a 0-d array of the input's dtype (and so is an array count): no upcast
    return g / count


def _with_class_axis(valid):
    """The (N, d...) mask of kept targets as (N, 1, d...), to broadcast over classes."""
    return get_array_module(valid).expand_dims(valid, 1)


def _onehot(target, num_classes: int, dtype):
    """(N, C, d...) one-hot of class indices (N, d...), in ``dtype``."""
    return onehot_array(target, num_classes, dtype, axis=1)


def _class_axis(weight, ndim: int):
    """(C,) class weights shaped (1, C, 1, ...) to broadcast against an (N, C, d...) input."""
    return weight.reshape((1, -1) + (1,) * (ndim - 2))


def _log_softmax(x):
    """(log softmax(x), softmax(x)) over axis 1, shifted by the max."""
    xp = get_array_module(x)
    logp = x - x.max(axis=1, keepdims=True)
    p = xp.exp(logp)
    total = p.sum(axis=1, keepdims=True)
    logp -= xp.log(total)
    p /= total
    return logp, p


def _target_distribution(target, num_classes: int, dtype, eps: float, weight):
    """(N, C, d...) w⊙q: the class weights times the smoothed one-hot
    q = (1 - ε)·onehot(target) + ε/C (module docstring)."""
    q = _onehot(target, num_classes, dtype)
    if eps:
        q *= 1.0 - eps
        q += eps / num_classes
    if weight is not None:
        q *= _class_axis(weight, q.ndim)
    return q


def _total_weight(target_weight, valid):
    """Σ w_y over the kept targets: what the weighted 'mean' divides by."""
    if valid is not None:
        xp = get_array_module(target_weight)
        target_weight = xp.where(valid, target_weight, target_weight.dtype.type(0))
    return target_weight.sum()


def _class_index_composite(logp: Tensor, target: Tensor, weight: Tensor | None, *,
                           reduction: str, label_smoothing: float = 0.0,
                           valid=None) -> Tensor:
    """-Σ_c w_c·q_c·logp_c per target, reduced as the forward does: cross-entropy of
    log-probabilities ``logp`` (NLL is the case ε = 0), for ``composite``. The target
    distribution is a constant array; only ``logp`` carries gradients."""
    target, count = _drop_ignored(target.data, valid, logp.dtype)
    w = None if weight is None else weight.data
    a = _target_distribution(target, logp.shape[1], logp.dtype, label_smoothing, w)
    if w is not None:
        count = _total_weight(w[target], valid)
    if valid is not None:
        a *= _with_class_axis(valid)
    return _reduce_composite(-(logp * a).sum(dim=1), reduction, count)


def _cross_entropy_grad(p, a, weighted: bool):
    """∂/∂x of -Σ_c a_c·log softmax(x)_c: p·Σ_c a_c - a, which is p - a when ``a`` is
    an unweighted target distribution (its sum is 1)."""
    if not weighted:
        return p - a
    gx = p * a.sum(axis=1, keepdims=True)
    gx -= a
    return gx


def _pick(x, target):
    """x[i, target[i, ...], ...]: the value at each sample's target class, shape (N, d...)."""
    xp = get_array_module(x)
    return xp.take_along_axis(x, xp.expand_dims(target, 1), axis=1).squeeze(axis=1)


def _over_classes(scale, reduction: str):
    """Per-sample gradients (N, d...) get the class axis back to broadcast against (N, C, d...)."""
    if reduction != "none":
        return scale
    return get_array_module(scale).expand_dims(scale, 1)


def _drop_ignored(target, valid, dtype):
    """``target`` with ignored entries (``valid`` False) replaced by class 0, so that
    indexing stays in range (their losses are zeroed afterwards), and the number of
    kept targets; (target, None) when nothing is ignored (``valid`` is None). The number
    is an int on the CPU; on a GPU a 0-d array of ``dtype`` (reading it would wait for
    the GPU in every step)."""
    if valid is None:
        return target, None
    xp = get_array_module(target)
    kept = valid.sum()
    return xp.where(valid, target, 0), (kept.astype(dtype) if is_cupy_array(kept)
                                        else int(kept))


class CrossEntropy(Function):
    """Fused log-softmax + NLL over axis 1 for class-index targets, with class weights
    and label smoothing (module docstring)."""

    @staticmethod
    def forward(ctx, x, target, weight, *, reduction, label_smoothing, valid=None):
        xp = get_array_module(x)
        num_classes = x.shape[1]
        if kernels.use_kernel(x) and _ce_by_rows(x):
            loss, p = _cross_entropy_kernel(x, target, weight, label_smoothing, valid)
            target, count = _drop_ignored(target, valid, x.dtype)
            if weight is not None:  # (the kernel has weighted the losses)
                count = _total_weight(weight[target], valid)
        else:
            target, count = _drop_ignored(target, valid, x.dtype)
            logp, p = _log_softmax(x)
            loss = -_pick(logp, target)
            if weight is not None:
                target_weight = weight[target]
                loss *= target_weight
                count = _total_weight(target_weight, valid)
            if label_smoothing:
                loss *= 1.0 - label_smoothing
                weighted_logp = logp if weight is None else logp * _class_axis(weight, x.ndim)
                loss -= (label_smoothing / num_classes) * weighted_logp.sum(axis=1)
            if valid is not None:  # where, not a product: an ignored row's loss may be inf
                loss = xp.where(valid, loss, loss.dtype.type(0))
        ctx.save_for_backward(p, target, *(() if weight is None else (weight,)))
        ctx.reduction, ctx.label_smoothing = reduction, label_smoothing
        ctx.valid, ctx.count = valid, count
        return _reduce(loss, reduction, count)

    @staticmethod
    def backward(ctx, g):
        p, target, *weight = ctx.saved_tensors
        if kernels.use_kernel(p) and _ce_by_rows(p, g):  # (create_graph: ``composite``)
            return _cross_entropy_backward_kernel(ctx, p, target, weight, g), None, None
        q = _target_distribution(target, p.shape[1], p.dtype, ctx.label_smoothing,
                                 weight[0] if weight else None)
        gx = _cross_entropy_grad(p, q, weighted=bool(weight))
        scale = _grad_scale(g, target.shape, ctx.reduction, ctx.count)
        gx *= _over_classes(scale, ctx.reduction)
        if ctx.valid is not None:
            gx *= _with_class_axis(ctx.valid)
        return gx, None, None

    @staticmethod
    def composite(x, target, weight, *, reduction, label_smoothing, valid=None):
        """NLL of log_softmax(x) against the smoothed, weighted one-hot: for create_graph."""
        return _class_index_composite(x.log_softmax(dim=1), target, weight,
                                      reduction=reduction, label_smoothing=label_smoothing,
                                      valid=valid)


# ------------------------------------------------------ cross-entropy, as CUDA kernels

_CROSS_ENTROPY = kernels.CudaSource("cross_entropy", ROW_HELPERS_CUDA + r"""
// Cross-entropy of (rows, n) logits (C-contiguous, n classes) against class indices, with
// class weights w (ones when none are given: multiplying by 1 is exact), label smoothing
// (keep = 1 − ε, share = ε/n, applied when ``smoothing``) and ignored targets (target −1).
// One thread per row, the generic path's arithmetic element by element (tg_row_* sum in
// double). A target outside [0, n) (on a GPU the op checks it later and raises) makes
// the row NaN instead of reading out of bounds. The reduction over rows is left to the
// caller: a sum across threads would need atomics or a second kernel.

template <typename T>
__device__ void cross_entropy_forward(const T* __restrict__ x, const long long* __restrict__ target,
                                      const T* __restrict__ w, T* __restrict__ loss,
                                      T* __restrict__ p, long long rows, int n, int smoothing,
                                      T keep, T share) {
    // each thread computes one row: p = softmax(x) (saved for the backward) and the loss
    // −w_t·[(1 − ε)·logp_t] + ... as ops/loss.py: −w_t·logp_t, times 1 − ε, minus
    // ε/n · Σ_c w_c·logp_c; 0 for an ignored target
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (long long)blockDim.x * gridDim.x) {
        const T* xr = x + r * n;
        T* pr = p + r * n;
        const T m = tg_row_max(xr, n);
        const T total = tg_row_sum_exp(xr, n, m);
        const T lse = tg_log(total);
        for (int j = 0; j < n; ++j) pr[j] = tg_exp(xr[j] - m) / total;
        const long long t = target[r];
        if (t < 0) {
            loss[r] = T(0);
            continue;
        }
        if (t >= n) {
            loss[r] = (T)nan("");
            continue;
        }
        T l = -((xr[t] - m) - lse);
        l *= w[t];
        if (smoothing) {
            double acc = 0.0;
            for (int j = 0; j < n; ++j) acc += (double)(((xr[j] - m) - lse) * w[j]);
            l *= keep;
            l -= share * (T)acc;
        }
        loss[r] = l;
    }
}

template <typename T>
__device__ __forceinline__ T tg_target_mass(int j, long long cls, const T* __restrict__ w,
                                            int weighted, int smoothing, T keep, T share) {
    // a_j = w_j·q_j, q the smoothed one-hot of class cls (ops/loss.py's order of operations)
    T a = j == cls ? T(1) : T(0);
    if (smoothing) {
        a *= keep;
        a += share;
    }
    if (weighted) a *= w[j];
    return a;
}

template <typename T>
__device__ void cross_entropy_backward(const T* __restrict__ p,
                                       const long long* __restrict__ target,
                                       const T* __restrict__ w, const T* __restrict__ scale,
                                       T* __restrict__ dx, long long rows, int n,
                                       long long scale_step, int weighted, int smoothing,
                                       T keep, T share) {
    // each thread computes one row dx = (p·Σa − a)·scale (p − a unweighted: Σa = 1),
    // times 0 for an ignored target (its class taken as 0, as the generic path does)
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (long long)blockDim.x * gridDim.x) {
        const T* pr = p + r * n;
        T* dr = dx + r * n;
        const long long t = target[r];
        if (t >= n) {
            for (int j = 0; j < n; ++j) dr[j] = (T)nan("");
            continue;
        }
        const long long cls = t < 0 ? 0 : t;
        const T kept = t < 0 ? T(0) : T(1);
        const T s = scale[r * scale_step];
        T mass = T(1);
        if (weighted) {
            double acc = 0.0;
            for (int j = 0; j < n; ++j)
                acc += (double)tg_target_mass(j, cls, w, weighted, smoothing, keep, share);
            mass = (T)acc;
        }
        for (int j = 0; j < n; ++j) {
            const T a = tg_target_mass(j, cls, w, weighted, smoothing, keep, share);
            T d = weighted ? pr[j] * mass - a : pr[j] - a;
            d *= s;
            d *= kept;
            dr[j] = d;
        }
    }
}

// entry points, one per element type
extern "C" __global__ void cross_entropy_forward_f32(
        const float* __restrict__ x, const long long* __restrict__ target,
        const float* __restrict__ w, float* __restrict__ loss, float* __restrict__ p,
        long long rows, int n, int smoothing, float keep, float share) {
    cross_entropy_forward<float>(x, target, w, loss, p, rows, n, smoothing, keep, share);
}
extern "C" __global__ void cross_entropy_forward_f64(
        const double* __restrict__ x, const long long* __restrict__ target,
        const double* __restrict__ w, double* __restrict__ loss, double* __restrict__ p,
        long long rows, int n, int smoothing, double keep, double share) {
    cross_entropy_forward<double>(x, target, w, loss, p, rows, n, smoothing, keep, share);
}
extern "C" __global__ void cross_entropy_backward_f32(
        const float* __restrict__ p, const long long* __restrict__ target,
        const float* __restrict__ w, const float* __restrict__ scale, float* __restrict__ dx,
        long long rows, int n, long long scale_step, int weighted, int smoothing, float keep,
        float share) {
    cross_entropy_backward<float>(p, target, w, scale, dx, rows, n, scale_step, weighted,
                                  smoothing, keep, share);
}
extern "C" __global__ void cross_entropy_backward_f64(
        const double* __restrict__ p, const long long* __restrict__ target,
        const double* __restrict__ w, const double* __restrict__ scale,
        double* __restrict__ dx, long long rows, int n, long long scale_step, int weighted,
        int smoothing, double keep, double share) {
    cross_entropy_backward<double>(p, target, w, scale, dx, rows, n, scale_step, weighted,
                                   smoothing, keep, share);
}
""", functions=("cross_entropy_forward_f32", "cross_entropy_forward_f64",
                "cross_entropy_backward_f32", "cross_entropy_backward_f64"))


def _ce_by_rows(x, *others) -> bool:
    """The case the cross-entropy kernels take (with ``kernels.use_kernel(x)``): a
    non-empty, C-contiguous float32/float64 (N, C) ``x`` (classes on the last axis), and
    ``others`` (the backward's g) raw device arrays of its dtype."""
    if x.ndim != 2 or x.size == 0 or x.dtype not in kernels.FLOAT_SUFFIX:
        return False
    return x.flags.c_contiguous and all(kernels.use_kernel(o) and o.dtype == x.dtype
                                        for o in others)


def _kernel_targets(xp, target, valid):
    """The targets as the kernels read them: int64, −1 where ignored (``valid`` False)."""
    target = target.astype(xp.int64)
    return target if valid is None else xp.where(valid, target, xp.int64(-1))


def _smoothing_args(eps: float, num_classes: int, dtype) -> tuple:
    """(smoothing, keep, share): the kernels' label-smoothing arguments, 1 − ε and ε/C
    rounded to ``dtype`` as the generic path's array arithmetic rounds them."""
    t = np.dtype(dtype).type
    return (*kernels.int32s(1 if eps else 0), t(1.0 - eps), t(eps / num_classes))


def _cross_entropy_kernel(x, target, weight, eps: float, valid):
    """The per-sample losses (N,) (weighted, smoothed, 0 where ignored) and softmax(x),
    from one launch of ``_CROSS_ENTROPY``."""
    xp = get_array_module(x)
    (rows, n), suffix = x.shape, kernels.FLOAT_SUFFIX[x.dtype]
    w = xp.ones(n, x.dtype) if weight is None else xp.ascontiguousarray(weight)
    loss, p = xp.empty(rows, x.dtype), xp.empty(x.shape, x.dtype)
    kernels.launch(_CROSS_ENTROPY, f"cross_entropy_forward_{suffix}", rows,
                   (x, _kernel_targets(xp, target, valid), w, loss, p, np.int64(rows),
                    *kernels.int32s(n), *_smoothing_args(eps, n, x.dtype)))
    return loss, p


def _cross_entropy_backward_kernel(ctx, p, target, weight: list, g):
    """∂loss/∂x from one launch of ``_CROSS_ENTROPY`` (``target``: ignored ones already
    replaced by class 0, ``ctx.valid`` says which)."""
    xp = get_array_module(p)
    (rows, n), suffix = p.shape, kernels.FLOAT_SUFFIX[p.dtype]
    scale = xp.ascontiguousarray(_grad_scale(g, target.shape, ctx.reduction, ctx.count),
                                 dtype=p.dtype).reshape(-1)
    w = xp.ascontiguousarray(weight[0]) if weight else xp.ones(n, p.dtype)
    dx = xp.empty(p.shape, p.dtype)
    kernels.launch(_CROSS_ENTROPY, f"cross_entropy_backward_{suffix}", rows,
                   (p, _kernel_targets(xp, target, ctx.valid), w, scale, dx, np.int64(rows),
                    *kernels.int32s(n), np.int64(1 if ctx.reduction == "none" else 0),
                    *kernels.int32s(1 if weight else 0),
                    *_smoothing_args(ctx.label_smoothing, n, p.dtype)))
    return dx


class SoftCrossEntropy(Function):
    """Cross-entropy against class probabilities t of the input's shape (module
    docstring); t gets a gradient too: ∂loss/∂t_c = -(1 - ε)·w_c·log p_c."""

    @staticmethod
    def forward(ctx, x, t, weight, *, reduction, label_smoothing):
        num_classes = x.shape[1]
        logp, p = _log_softmax(x)
        a = t
        if label_smoothing:
            a = t * (1.0 - label_smoothing)
            a += label_smoothing / num_classes
        if weight is not None:
            a = a * _class_axis(weight, x.ndim)
        loss = -(a * logp).sum(axis=1)
        needs_t = ctx.needs_input_grad[1]
        ctx.save_for_backward(p, a, *((logp,) if needs_t else ()),
                              *(() if weight is None else (weight,)))
        ctx.reduction, ctx.label_smoothing = reduction, label_smoothing
        ctx.needs_t, ctx.weighted = needs_t, weight is not None
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        p, a, *rest = ctx.saved_tensors
        logp = rest.pop(0) if ctx.needs_t else None
        scale = _over_classes(_grad_scale(g, p.shape[:1] + p.shape[2:], ctx.reduction),
                              ctx.reduction)
        # probabilities need not sum to 1 (nor a smoothed, weighted version of them)
        gx = _cross_entropy_grad(p, a, weighted=True)
        gx *= scale
        gt = None
        if ctx.needs_t:
            gt = logp * (scale * -(1.0 - ctx.label_smoothing))
            if ctx.weighted:
                gt *= _class_axis(rest[0], p.ndim)
        return gx, gt, None

    @staticmethod
    def composite(x, t, weight, *, reduction, label_smoothing):
        """-Σ_c a_c·log_softmax(x)_c with a = w⊙((1 - ε)·t + ε/C): for create_graph (t is
        differentiated too)."""
        a = t
        if label_smoothing:
            a = t * (1.0 - label_smoothing) + label_smoothing / x.shape[1]
        if weight is not None:
            a = a * _class_axis(weight.data, x.ndim)
        return _reduce_composite(-(a * x.log_softmax(dim=1)).sum(dim=1), reduction)


class NLLLoss(Function):
    """loss = -w_y·input[y] (input holds log-probabilities); d/dinput = -w_y·onehot(y)"""

    @staticmethod
    def forward(ctx, x, target, weight, *, reduction, valid=None):
        xp = get_array_module(x)
        target, count = _drop_ignored(target, valid, x.dtype)
        loss = -_pick(x, target)
        target_weight = None
        if weight is not None:
            target_weight = weight[target]
            loss *= target_weight
            count = _total_weight(target_weight, valid)
        if valid is not None:  # where, not a product: an ignored row's loss may be inf
            loss = xp.where(valid, loss, loss.dtype.type(0))
        ctx.save_for_backward(target, *(() if weight is None else (target_weight,)))
        ctx.shape, ctx.dtype, ctx.reduction = x.shape, x.dtype, reduction
        ctx.valid, ctx.count = valid, count
        return _reduce(loss, reduction, count)

    @staticmethod
    def backward(ctx, g):
        target, *target_weight = ctx.saved_tensors
        scale = _grad_scale(g, target.shape, ctx.reduction, ctx.count)
        if target_weight:
            scale = scale * target_weight[0]
            scale = get_array_module(scale).expand_dims(scale, 1)
        else:
            scale = _over_classes(scale, ctx.reduction)
        gx = _onehot(target, ctx.shape[1], ctx.dtype)
        gx *= -scale
        if ctx.valid is not None:
            gx *= _with_class_axis(ctx.valid)
        return gx, None, None

    @staticmethod
    def composite(x, target, weight, *, reduction, valid=None):
        """-Σ_c w_c·onehot(y)_c·x_c, linear in x: for create_graph."""
        return _class_index_composite(x, target, weight, reduction=reduction, valid=valid)


class BinaryCrossEntropyWithLogits(Function):
    """Sigmoid + binary cross-entropy in one stable op (module docstring); the target,
    weight and pos_weight get gradients too."""

    @staticmethod
    def forward(ctx, x, t, weight, pos_weight, *, reduction):
        xp = get_array_module(x)
        e = xp.exp(-xp.abs(x))
        softplus_neg = xp.maximum(-x, 0) + xp.log1p(e)  # log(1 + e^-x), never overflows
        coef = 1 if pos_weight is None else (pos_weight - 1) * t + 1
        unweighted = (1 - t) * x + coef * softplus_neg
        loss = unweighted if weight is None else unweighted * weight
        ctx.save_for_backward(x, t, e, softplus_neg, unweighted,
                              *(xp.ones((), x.dtype) if a is None else a
                                for a in (weight, pos_weight)))
        ctx.reduction = reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        x, t, e, softplus_neg, unweighted, weight, pos_weight = ctx.saved_tensors
        xp = get_array_module(g)
        needs = ctx.needs_input_grad
        scale = _grad_scale(g, unweighted.shape, ctx.reduction)
        w_scale = scale * weight  # a scalar 1 stands in for a missing weight/pos_weight
        coef = (pos_weight - 1) * t + 1
        sigmoid_neg = xp.where(x >= 0, e / (1 + e), 1 / (1 + e))  # sigmoid(-x), stable
        gx = ((1 - t) - coef * sigmoid_neg) * w_scale if needs[0] else None
        gt = ((pos_weight - 1) * softplus_neg - x) * w_scale if needs[1] else None
        gw = unweighted * scale if needs[2] else None
        gp = t * softplus_neg * w_scale if needs[3] else None
        return gx, gt, gw, gp

    @staticmethod
    def composite(x, t, weight, pos_weight, *, reduction):
        """The forward as tensor ops, for create_graph. softplus(-x) = log(1 + e^m) - min(x, 0)
        with m = -|x|, so e^m never overflows; both pieces take x's side of the kink at 0
        from one mask (as the exact derivative, -sigmoid(0) = -1/2, needs)."""
        positive = x.data >= 0
        m = where(positive, -x, x)
        softplus_neg = (1 + m.exp()).log() - where(positive, 0.0, x)
        coef = 1 if pos_weight is None else (pos_weight - 1) * t + 1
        loss = (1 - t) * x + coef * softplus_neg
        return _reduce_composite(loss if weight is None else loss * weight, reduction)


class MSELoss(Function):
    """loss = (x - t)²;  dx = 2(x - t),  dt = -dx"""

    @staticmethod
    def forward(ctx, x, t, *, reduction):
        diff = x - t
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        return _reduce(diff * diff, reduction)

    @staticmethod
    def backward(ctx, g):
        (diff,) = ctx.saved_tensors
        gx = diff * _grad_scale(g, diff.shape, ctx.reduction)
        gx *= 2.0
        return gx, (-gx if ctx.needs_input_grad[1] else None)

    @staticmethod
    def composite(x, t, *, reduction):
        """(x - t)² as tensor ops, for create_graph (backward keeps the private x - t)."""
        diff = x - t
        return _reduce_composite(diff * diff, reduction)


class MultiMarginLoss(Function):
    """The multiclass SVM loss over axis 1 of (N, C) input (module docstring)."""

    @staticmethod
    def forward(ctx, x, target, weight, *, p, margin, reduction):
        xp = get_array_module(x)
        num_classes = x.shape[1]
        onehot = _onehot(target, num_classes, x.dtype)
        h = x - _pick(x, target)[:, None]
        h += margin
        hinge = xp.maximum(h, 0, out=h)
        # the target class itself contributes nothing (where, not a product: with an
        # infinite score, its own h is inf - inf = nan)
        hinge = xp.where(onehot > 0, hinge.dtype.type(0), hinge)
        terms = hinge if p == 1 else hinge * hinge
        loss = terms.sum(axis=1) / num_classes
        target_weight = ()
        if weight is not None:
            target_weight = (weight[target],)
            loss *= target_weight[0]
        ctx.save_for_backward(hinge, onehot, *target_weight)
        ctx.p, ctx.reduction = p, reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        hinge, onehot, *target_weight = ctx.saved_tensors
        num_classes = hinge.shape[1]
        # ∂term_j/∂x_j: 1 where the hinge is active (p = 1), 2·hinge (p = 2)
        gx = (hinge > 0).astype(hinge.dtype) if ctx.p == 1 else hinge * 2.0
        gx -= onehot * gx.sum(axis=1, keepdims=True)  # x_y enters every term with -1
        scale = _grad_scale(g, hinge.shape[:1], ctx.reduction)
        if target_weight:
            scale = (scale * target_weight[0])[:, None]
        else:
            scale = _over_classes(scale, ctx.reduction)
        gx *= scale
        gx /= num_classes
        return gx, None, None

    @staticmethod
    def composite(x, target, weight, *, p, margin, reduction):
        """The forward as tensor ops, for create_graph: the hinges relu(margin - x_y + x_j)
        off the target class, x_y picked by a product with the constant one-hot."""
        onehot = _onehot(target.data, x.shape[1], x.dtype)
        picked = (x * onehot).sum(dim=1, keepdim=True)
        hinge = where(onehot > 0, 0.0, (x - picked + margin).relu())
        loss = (hinge if p == 1 else hinge * hinge).sum(dim=1) / x.shape[1]
        if weight is not None:
            loss = loss * weight.data[target.data]
        return _reduce_composite(loss, reduction)


# ------------------------------------------------------------------ wrappers


def _check_reduction(op: str, reduction: str) -> None:
    if isinstance(reduction, Tensor):  # torch.nn.functional's third argument is weight
        raise TypeError(f"{op}: the third positional argument is reduction (a str); pass "
                        f"class weights by keyword, {op}(input, target, weight=w)")
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"{op}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
            f"got {reduction!r}"
        )


def _check_float_input(op: str, name: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {x.dtype}")


def _check_class_target(op: str, x: Tensor, target, ignore_index: int | None = None):
    """(N, C, d...) input against an integer (N, d...) target with values in [0, C),
    apart from those equal to ``ignore_index``. Returns the mask of kept targets (None
    when every target is kept) and the target to use (on a GPU, see ``check_later``)."""
    _check_float_input(op, "input", x)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor of class indices, "
                        f"got {type(target).__name__}")
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: target must hold class indices of an integer dtype, got dtype {target.dtype}"
        )
    if x.ndim < 2:
        raise ValueError(
            f"{op}: expected input of shape (N, C) or (N, C, d1, ...), got {tuple(x.shape)}"
        )
    expected = (x.shape[0],) + tuple(x.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{op}: expected target of shape {expected} for input of shape "
            f"{tuple(x.shape)}, got {tuple(target.shape)}"
        )
    num_classes = x.shape[1]
    t, valid = target.data, None
    if t.size:
        xp = get_array_module(t)
        ignored = (t == ignore_index) if ignore_index is not None else xp.zeros(t.shape, bool)
        checked = xp.where(ignored, 0, t)  # ignored targets may lie outside [0, C)

        def out_of_bounds() -> IndexError:
            lo, hi = (int(v) for v in to_numpy(xp.stack([checked.min(), checked.max()])))
            return IndexError(
                f"{op}: target {lo if lo < 0 else hi} is out of bounds for {num_classes} "
                f"classes (valid class indices are 0..{num_classes - 1})"
            )

        if is_cupy_array(t):  # read at the next transfer, not with a sync per step
            if ignore_index is not None:
                valid = ~ignored
            check_later(((checked < 0) | (checked >= num_classes)).any(), out_of_bounds)
            # until then the op must not index out of bounds: it computes on clipped
            # targets, whose result the error will replace
            return valid, Tensor._make(xp.clip(t, 0, num_classes - 1), None)
        if ignored.any():
            valid = ~ignored
        if checked.min() < 0 or checked.max() >= num_classes:
            raise out_of_bounds()
    return valid, target


def _unbatched(x: Tensor, target):
    """One (C,) sample with a 0-d target as a batch of one (PyTorch accepts both)."""
    if isinstance(x, Tensor) and x.ndim == 1 and isinstance(target, Tensor) and target.ndim == 0:
        return x.unsqueeze(0), target.unsqueeze(0), True
    return x, target, False


def _check_class_weight(op: str, weight, x: Tensor) -> None:
    """``weight``: None or a (C,) tensor of x's dtype that needs no gradient."""
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor or None, got {type(weight).__name__}")
    num_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    if weight.shape != (num_classes,):
        raise ValueError(f"{op}: weight must have shape ({num_classes},), one per class of "
                         f"input {tuple(x.shape)}, got {tuple(weight.shape)}")
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: weight has dtype {weight.dtype} but input has dtype {x.dtype}")
    if weight.requires_grad and is_grad_enabled():
        raise RuntimeError(f"{op}: the gradient with respect to weight is not implemented "
                           f"(as in PyTorch); pass weight.detach()")


def _probability_target(op: str, x: Tensor, target: Tensor) -> None:
    """A floating-point target holds class probabilities: the input's shape and dtype."""
    if tuple(target.shape) != tuple(x.shape):
        raise TypeError(f"{op}: target must hold class indices of an integer dtype, got dtype "
                        f"{target.dtype} (a floating-point target holds class probabilities "
                        f"and must have the input's shape {tuple(x.shape)}, got "
                        f"{tuple(target.shape)})")
    if target.dtype != x.dtype:
        raise TypeError(f"{op}: target probabilities have dtype {target.dtype} but input has "
                        f"dtype {x.dtype}")
    if x.ndim < 1:
        raise ValueError(f"{op}: expected input of shape (C,), (N, C) or (N, C, d1, ...), "
                         f"got {tuple(x.shape)}")


def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean",  # noqa: A002
                  label_smoothing: float = 0.0, *, weight: Tensor | None = None,
                  ignore_index: int = -100) -> Tensor:
    """Cross-entropy between softmax(input) over axis 1 and the target: class indices
    (an integer tensor), or class probabilities (a float tensor of the input's shape).
    ``weight`` is one rescaling factor per class (module docstring: the weighted mean
    divides by the targets' total weight). ``reduction`` and ``label_smoothing`` may be
    given by position (docs/differences-from-pytorch.md); ``weight`` only by keyword."""
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, "
                         f"got {label_smoothing}")
    _check_float_input(op, "input", input)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        _probability_target(op, input, target)
        if ignore_index >= 0:
            raise ValueError(f"{op}: ignore_index is not supported for probability targets "
                             f"(got ignore_index={ignore_index})")
        _check_class_weight(op, weight, input)
        unbatched = input.ndim == 1
        if unbatched:
            input, target = input.unsqueeze(0), target.unsqueeze(0)  # noqa: A001
        loss = SoftCrossEntropy.apply(input, target, weight, reduction=reduction,
                                      label_smoothing=float(label_smoothing))
        return loss.squeeze(0) if unbatched and reduction == "none" else loss
    input, target, unbatched = _unbatched(input, target)  # noqa: A001
    valid, target = _check_class_target(op, input, target, ignore_index)
    _check_class_weight(op, weight, input)
    loss = CrossEntropy.apply(input, target, weight, reduction=reduction,
                              label_smoothing=float(label_smoothing), valid=valid)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean",  # noqa: A002
             *, weight: Tensor | None = None, ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of class-index targets; ``input`` holds log-probabilities.
    With ``weight`` each loss is scaled by its target's weight and the mean divides by
    their sum, as PyTorch."""
    op = "nll_loss"
    _check_reduction(op, reduction)
    input, target, unbatched = _unbatched(input, target)  # noqa: A001
    valid, target = _check_class_target(op, input, target, ignore_index)
    _check_class_weight(op, weight, input)
    loss = NLLLoss.apply(input, target, weight, reduction=reduction, valid=valid)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,  # noqa: A002
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",  # noqa: A002
                                     pos_weight: Tensor | None = None) -> Tensor:
    """-[t·log σ(x) + (1 - t)·log(1 - σ(x))] of logits x, computed without forming σ(x)
    (stable for any x). ``weight`` rescales each element and ``pos_weight`` the positive
    term (both broadcast against the input, pos_weight usually one per class)."""
    op = "binary_cross_entropy_with_logits"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated; use reduction=")
    _check_reduction(op, reduction)
    _check_float_input(op, "input", input)
    _check_float_input(op, "target", target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as input "
                         f"size {tuple(input.shape)}")
    for name, t in (("target", target), ("weight", weight), ("pos_weight", pos_weight)):
        if t is None:
            continue
        _check_float_input(op, name, t)
        if t.dtype != input.dtype:
            raise TypeError(f"{op}: {name} has dtype {t.dtype} but input has dtype "
                            f"{input.dtype}")
        try:
            fits = np.broadcast_shapes(t.shape, input.shape) == tuple(input.shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: {name} of shape {tuple(t.shape)} does not broadcast to "
                             f"the input's shape {tuple(input.shape)}")
    return BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight,
                                              reduction=reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error between tensors of the same shape and dtype."""
    op = "mse_loss"
    _check_reduction(op, reduction)
    _check_float_input(op, "input", input)
    _check_float_input(op, "target", target)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} and target of shape "
                         f"{tuple(target.shape)} differ")
    if input.dtype != target.dtype:
        raise TypeError(f"{op}: input has dtype {input.dtype} but target has dtype "
                        f"{target.dtype}")
    return MSELoss.apply(input, target, reduction=reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1,  # noqa: A002
                      margin: float = 1.0, reduction: str = "mean", *,
                      weight: Tensor | None = None) -> Tensor:
    """The multiclass SVM (hinge) loss of (N, C) scores, normalised by C as PyTorch.
    ``weight`` (C,) scales each sample's loss by its target class's weight (after the
    power, as PyTorch's implementation); the 'mean' still divides by N."""
    op = "multi_margin_loss"
    _check_reduction(op, reduction)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 are supported, got p={p!r}")
    input, target, unbatched = _unbatched(input, target)  # noqa: A001
    if isinstance(input, Tensor) and input.ndim != 2:
        raise ValueError(f"{op}: expected input of shape (N, C) or (C,), "
                         f"got {tuple(input.shape)}")
    _, target = _check_class_target(op, input, target)
    _check_class_weight(op, weight, input)
    loss = MultiMarginLoss.apply(input, target, weight, p=int(p), margin=float(margin),
                                 reduction=reduction)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss
