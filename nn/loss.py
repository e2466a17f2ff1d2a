"""Loss layers: thin Modules over the loss functions of ``tensorgrad.functional``."""

from __future__ import annotations

import tensorgrad.functional as F
from tensorgrad.tensor import Tensor

from .module import Module

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction "
                         f"(expected one of {_REDUCTIONS})")
    return reduction


def _no_deprecated(name: str, size_average, reduce) -> None:
    if size_average is not None or reduce is not None:
        raise ValueError(f"{name}: size_average and reduce are deprecated; use reduction=")


class CrossEntropyLoss(Module):
    """−log softmax(input)[target], averaged over the batch by default. ``target`` holds
    class indices (those equal to ``ignore_index`` are skipped) or, as a float tensor
    of the input's shape, class probabilities. With label smoothing ε the target
    distribution puts 1 − ε + ε/C on the true class and ε/C on the others. ``weight``
    (one per class) scales each class's loss; the mean then divides by the total weight
    of the targets, as PyTorch."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        _no_deprecated("CrossEntropyLoss", size_average, reduce)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = _check_reduction(reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, reduction=self.reduction,
                               label_smoothing=self.label_smoothing, weight=self.weight,
                               ignore_index=self.ignore_index)


class NLLLoss(Module):
    """−input[target] for log-probability input (e.g. from ``LogSoftmax``), averaged over
    the batch by default; ``weight`` and ``ignore_index`` as ``CrossEntropyLoss``."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean"):
        super().__init__()
        _no_deprecated("NLLLoss", size_average, reduce)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = _check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, reduction=self.reduction, weight=self.weight,
                          ignore_index=self.ignore_index)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of logits against targets in [0, 1], computed stably;
    ``weight`` rescales each element and ``pos_weight`` the positive term."""

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean", pos_weight: Tensor | None = None):
        super().__init__()
        _no_deprecated("BCEWithLogitsLoss", size_average, reduce)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = _check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class MSELoss(Module):
    """(input − target)², averaged by default."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        _no_deprecated("MSELoss", size_average, reduce)
        self.reduction = _check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)
