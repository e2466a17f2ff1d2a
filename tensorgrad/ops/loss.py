r"""Loss functions: cross-entropy, negative log-likelihood, mean squared error and
the multiclass SVM (margin) loss.

Class-index losses take ``input`` of shape (N, C) or (N, C, d1, ...) — the classes
on axis 1, as PyTorch — and an integer ``target`` of shape (N,) or (N, d1, ...).
``reduction`` is ``'mean'`` (over the N·d1·... losses), ``'sum'`` or ``'none'``.
Cross-entropy and NLL also take one unbatched sample, (C,) with a 0-d target, and
skip targets equal to ``ignore_index`` (default -100, as PyTorch): their loss and
gradient are 0 and ``'mean'`` averages over the other targets only.

Cross-entropy is one fused op. With p = softmax(x) and the smoothed target
distribution q = (1 - ε)·onehot(y) + ε/C::

    loss = -Σ_c q_c · log p_c,      ∂loss/∂x = p - q

so the backward is one subtraction — no separate log-softmax and NLL graph nodes.
log p = (x - max x) - log Σ exp(x - max x) stays finite for logits of any size.

The multiclass SVM loss (``multi_margin_loss``), for one sample with target y::

    loss = Σ_{j≠y} max(0, margin - x_y + x_j)^p / C
    ∂loss/∂x_j = p·h_j^(p-1)·[h_j > 0] / C   (j ≠ y, h_j = margin - x_y + x_j)
    ∂loss/∂x_y = -Σ_{j≠y} ∂loss/∂x_j
"""

from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module, to_numpy
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction: str, count: int | None = None):
    """The per-element losses reduced; a 0-d array (not a NumPy scalar) for mean/sum.
    ``count`` is how many losses the mean averages (default: all of them)."""
    xp = get_array_module(loss)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.asarray(loss.sum())
    if count == 0:  # every target ignored: nothing to average, NaN as PyTorch
        return xp.full((), xp.nan, dtype=loss.dtype)
    return xp.asarray(loss.mean() if count is None else loss.sum() / count)


def _grad_scale(g, loss_shape: tuple, reduction: str, count: int | None = None):
    """d(reduced)/d(per-element loss) · g, shaped to broadcast against the loss."""
    if reduction == "none":
        return g
    if reduction == "mean":
        if count is None:
            count = 1
            for n in loss_shape:
                count *= n
        # g is a 0-d array of the input's dtype: no upcast. With no kept targets
        # (count 0) the masked gradient is 0 whatever the scale, as PyTorch's.
        return g / max(count, 1)
    return g


def _with_class_axis(valid):
    """The (N, d...) mask of kept targets as (N, 1, d...), to broadcast over classes."""
    return get_array_module(valid).expand_dims(valid, 1)


def _onehot(target, num_classes: int, dtype):
    """(N, C, d...) one-hot of class indices (N, d...), in ``dtype``."""
    xp = get_array_module(target)
    classes = xp.arange(num_classes).reshape((1, num_classes) + (1,) * (target.ndim - 1))
    return (xp.expand_dims(target, 1) == classes).astype(dtype)


def _pick(x, target):
    """x[i, target[i, ...], ...]: the value at each sample's target class, shape (N, d...)."""
    xp = get_array_module(x)
    return xp.take_along_axis(x, xp.expand_dims(target, 1), axis=1).squeeze(axis=1)


def _over_classes(scale, reduction: str):
    """Per-sample gradients (N, d...) get the class axis back to broadcast against (N, C, d...)."""
    if reduction != "none":
        return scale
    return get_array_module(scale).expand_dims(scale, 1)


def _drop_ignored(target, valid):
    """``target`` with ignored entries (``valid`` False) replaced by class 0, so that
    indexing stays in range (their losses are zeroed afterwards), and the number of
    kept targets; (target, None) when nothing is ignored (``valid`` is None)."""
    if valid is None:
        return target, None
    xp = get_array_module(target)
    return xp.where(valid, target, 0), int(valid.sum())


class CrossEntropy(Function):
    """Fused log-softmax + NLL over axis 1, with label smoothing (module docstring)."""

    @staticmethod
    def forward(ctx, x, target, *, reduction, label_smoothing, valid=None):
        xp = get_array_module(x)
        num_classes = x.shape[1]
        target, count = _drop_ignored(target, valid)
        shifted = x - x.max(axis=1, keepdims=True)
        e = xp.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        logp = shifted
        logp -= xp.log(total)
        loss = -_pick(logp, target)
        if label_smoothing:
            loss *= 1.0 - label_smoothing
            loss -= (label_smoothing / num_classes) * logp.sum(axis=1)
        if valid is not None:  # where, not a product: an ignored row's loss may be inf
            loss = xp.where(valid, loss, loss.dtype.type(0))
        e /= total  # e is now softmax(x), all backward needs besides the target
        ctx.save_for_backward(e, target)
        ctx.reduction, ctx.label_smoothing = reduction, label_smoothing
        ctx.valid, ctx.count = valid, count
        return _reduce(loss, reduction, count)

    @staticmethod
    def backward(ctx, g):
        p, target = ctx.saved_tensors
        eps, num_classes = ctx.label_smoothing, p.shape[1]
        q = _onehot(target, num_classes, p.dtype)
        if eps:
            q *= 1.0 - eps
            q += eps / num_classes
        gx = p - q
        scale = _grad_scale(g, target.shape, ctx.reduction, ctx.count)
        gx *= _over_classes(scale, ctx.reduction)
        if ctx.valid is not None:
            gx *= _with_class_axis(ctx.valid)
        return gx, None


class NLLLoss(Function):
    """loss = -input[target] (input holds log-probabilities); d/dinput = -onehot."""

    @staticmethod
    def forward(ctx, x, target, *, reduction, valid=None):
        target, count = _drop_ignored(target, valid)
        loss = -_pick(x, target)
        if valid is not None:  # where, not a product: an ignored row's loss may be inf
            loss = get_array_module(x).where(valid, loss, loss.dtype.type(0))
        ctx.save_for_backward(target)
        ctx.shape, ctx.dtype, ctx.reduction = x.shape, x.dtype, reduction
        ctx.valid, ctx.count = valid, count
        return _reduce(loss, reduction, count)

    @staticmethod
    def backward(ctx, g):
        (target,) = ctx.saved_tensors
        gx = _onehot(target, ctx.shape[1], ctx.dtype)
        gx *= -_over_classes(_grad_scale(g, target.shape, ctx.reduction, ctx.count),
                             ctx.reduction)
        if ctx.valid is not None:
            gx *= _with_class_axis(ctx.valid)
        return gx, None


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


class MultiMarginLoss(Function):
    """The multiclass SVM loss over axis 1 of (N, C) input (module docstring)."""

    @staticmethod
    def forward(ctx, x, target, *, p, margin, reduction):
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
        ctx.save_for_backward(hinge, onehot)
        ctx.p, ctx.reduction = p, reduction
        return _reduce(loss, reduction)

    @staticmethod
    def backward(ctx, g):
        hinge, onehot = ctx.saved_tensors
        num_classes = hinge.shape[1]
        # ∂term_j/∂x_j: 1 where the hinge is active (p = 1), 2·hinge (p = 2)
        gx = (hinge > 0).astype(hinge.dtype) if ctx.p == 1 else hinge * 2.0
        gx -= onehot * gx.sum(axis=1, keepdims=True)  # x_y enters every term with -1
        gx *= _over_classes(_grad_scale(g, hinge.shape[:1], ctx.reduction), ctx.reduction)
        gx /= num_classes
        return gx, None


# ------------------------------------------------------------------ wrappers


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
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
    apart from those equal to ``ignore_index``. Returns the mask of kept targets, or
    None when every target is kept."""
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
        # the three numbers in one host transfer: on a GPU each would be a sync
        stats = to_numpy(xp.stack([ignored.sum(), checked.min(), checked.max()]))
        n_ignored, lo, hi = (int(v) for v in stats)
        if n_ignored:
            valid = ~ignored
        if lo < 0 or hi >= num_classes:
            raise IndexError(
                f"{op}: target {lo if lo < 0 else hi} is out of bounds for {num_classes} "
                f"classes (valid class indices are 0..{num_classes - 1})"
            )
    return valid


def _unbatched(x: Tensor, target):
    """One (C,) sample with a 0-d target as a batch of one (PyTorch accepts both)."""
    if isinstance(x, Tensor) and x.ndim == 1 and isinstance(target, Tensor) and target.ndim == 0:
        return x.unsqueeze(0), target.unsqueeze(0), True
    return x, target, False


def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean",  # noqa: A002
                  label_smoothing: float = 0.0, *, ignore_index: int = -100) -> Tensor:
    """Cross-entropy between softmax(input) over axis 1 and class-index targets."""
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, "
                         f"got {label_smoothing}")
    input, target, unbatched = _unbatched(input, target)  # noqa: A001
    valid = _check_class_target(op, input, target, ignore_index)
    loss = CrossEntropy.apply(input, target, reduction=reduction,
                              label_smoothing=float(label_smoothing), valid=valid)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean",  # noqa: A002
             *, ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of class-index targets; ``input`` holds log-probabilities."""
    op = "nll_loss"
    _check_reduction(op, reduction)
    input, target, unbatched = _unbatched(input, target)  # noqa: A001
    valid = _check_class_target(op, input, target, ignore_index)
    loss = NLLLoss.apply(input, target, reduction=reduction, valid=valid)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


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
                      margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """The multiclass SVM (hinge) loss of (N, C) scores, normalised by C as PyTorch."""
    op = "multi_margin_loss"
    _check_reduction(op, reduction)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 are supported, got p={p!r}")
    input, target, unbatched = _unbatched(input, target)  # noqa: A001
    if isinstance(input, Tensor) and input.ndim != 2:
        raise ValueError(f"{op}: expected input of shape (N, C) or (C,), "
                         f"got {tuple(input.shape)}")
    _check_class_target(op, input, target)
    loss = MultiMarginLoss.apply(input, target, p=int(p), margin=float(margin),
                                 reduction=reduction)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss
