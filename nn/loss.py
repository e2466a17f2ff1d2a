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


class CrossEntropyLoss(Module):
    """−log softmax(input)[target], averaged over the batch by default; ``target``
    holds class indices; those equal to ``ignore_index`` are skipped. With label
    smoothing ε the target distribution puts 1 − ε + ε/C on the true class and ε/C
    on the others."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        if weight is not None:
            raise ValueError("CrossEntropyLoss: per-class weight is not supported")
        if size_average is not None or reduce is not None:
            raise ValueError("CrossEntropyLoss: size_average and reduce are deprecated; "
                             "use reduction=")
        self.weight = weight
        self.ignore_index = ignore_index
        self.reduction = _check_reduction(reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, reduction=self.reduction,
                               label_smoothing=self.label_smoothing,
                               ignore_index=self.ignore_index)


class MSELoss(Module):
    """(input − target)², averaged by default."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            raise ValueError("MSELoss: size_average and reduce are deprecated; use reduction=")
        self.reduction = _check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)
