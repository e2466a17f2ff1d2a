"""RMSprop (Hinton's lecture 6e): divide the step by a running RMS of the gradients."""

from __future__ import annotations

from collections.abc import Iterable

from tensorgrad import kernels
from tensorgrad.backend import get_array_module
from tensorgrad.tensor import Tensor

from . import fused
from .optimizer import Optimizer, check_hyperparameter


class RMSprop(Optimizer):
    r"""PyTorch's RMSprop, step t with gradient g_t of parameter θ (v, ḡ, b start at 0):

        g ← g_t + λ·θ                                  (weight_decay λ ≠ 0)
        v ← α·v + (1 − α)·g²
        ḡ ← α·ḡ + (1 − α)·g,   d ← √(v − ḡ²) + ε      (centered)
                               d ← √v + ε             (otherwise)
        b ← μ·b + g / d,       θ ← θ − lr·b           (momentum μ > 0)
                               θ ← θ − lr·g / d       (otherwise)

    ε is added outside the square root, as PyTorch (not inside, as some papers).
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, *, maximize: bool = False):
        check_hyperparameter("learning rate", lr)
        check_hyperparameter("epsilon", eps)
        check_hyperparameter("momentum", momentum)
        check_hyperparameter("weight_decay", weight_decay)
        check_hyperparameter("alpha", alpha)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad, state: dict, group: dict) -> None:
        xp = get_array_module(p.data)
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["square_avg"] = self._zeros_like(p)
        # (outside the first step's block: momentum or centered may be set later)
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self._zeros_like(p)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = self._zeros_like(p)
        state["step"] += 1
        if kernels.use_kernel(p.data) and fused.supported(p.data, grad, state, group):
            fused.rmsprop(p.data, grad, state, group)  # the whole step below, in one launch
            return
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p.data
        square_avg = state["square_avg"].data
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"].data
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"].data
            buf *= momentum
            buf += grad / avg
            p.data -= lr * buf
        else:
            p.data -= lr * (grad / avg)
