"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from collections.abc import Iterable

from tensorgrad import kernels
from tensorgrad.tensor import Tensor

from . import fused
from .optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    r"""PyTorch's SGD, step t with gradient g_t of parameter θ:

        g ← g_t + λ·θ                                  (weight_decay λ ≠ 0)
        b ← g                                          (momentum μ ≠ 0, first step)
        b ← μ·b + (1 − τ)·g                            (later steps; dampening τ)
        g ← g + μ·b   if nesterov   else   g ← b       (μ ≠ 0)
        θ ← θ − lr·g

    The momentum buffer starts as the first gradient, not zero (so dampening does
    not shrink the first step). ``maximize`` ascends instead (g_t → −g_t).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False,
                 *, maximize: bool = False):
        check_hyperparameter("learning rate", lr)
        check_hyperparameter("momentum", momentum)
        check_hyperparameter("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad, state: dict, group: dict) -> None:
        if kernels.use_kernel(p.data) and fused.supported(p.data, grad, state, group):
            fused.sgd(p.data, grad, state, group)  # the whole step below, in one launch
            return
        lr, momentum = group["lr"], group["momentum"]
        weight_decay, dampening = group["weight_decay"], group["dampening"]
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = Tensor(grad.copy())
            else:
                buf.data *= momentum
                buf.data += (1 - dampening) * grad
            grad = grad + momentum * buf.data if group["nesterov"] else buf.data
        p.data -= lr * grad
