"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from tensorgrad import kernels
from tensorgrad.backend import get_array_module
from tensorgrad.tensor import Tensor

from . import fused
from .optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    r"""PyTorch's Adam, step t with gradient g_t of parameter θ (m, v, v̂ start at 0):

        g ← g_t + λ·θ                                  (weight_decay λ ≠ 0, L2 penalty)
        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²
        v̂ ← max(v̂, v),  u ← v̂   (amsgrad)   else   u ← v
        θ ← θ − lr/(1 − β₁ᵗ) · m / (√u / √(1 − β₂ᵗ) + ε)

    The bias corrections 1 − βᵗ undo the pull of the zero initial m and v towards 0.
    """

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False,
                 *, maximize: bool = False):
        check_hyperparameter("learning rate", lr)
        check_hyperparameter("epsilon", eps)
        check_hyperparameter("beta parameter at index 0", betas[0], 0.0, 1.0)
        check_hyperparameter("beta parameter at index 1", betas[1], 0.0, 1.0)
        check_hyperparameter("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad, state: dict, group: dict) -> None:
        xp = get_array_module(p.data)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay = group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = self._zeros_like(p)
            state["exp_avg_sq"] = self._zeros_like(p)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:  # (amsgrad may be set later)
            state["max_exp_avg_sq"] = self._zeros_like(p)
        state["step"] += 1
        step = state["step"]
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if kernels.use_kernel(p.data) and fused.supported(p.data, grad, state, group):
            fused.adam(p.data, grad, state, group, decoupled=self._decoupled,
                       step_size=step_size, bias_correction2_sqrt=bias_correction2_sqrt)
            return  # the whole step below, in one launch
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            if self._decoupled:
                p.data *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p.data
        exp_avg, exp_avg_sq = state["exp_avg"].data, state["exp_avg_sq"].data
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            max_sq = state["max_exp_avg_sq"].data
            xp.maximum(max_sq, exp_avg_sq, out=max_sq)
            root_of = max_sq
        else:
            root_of = exp_avg_sq
        # one buffer, updated in place: denom -> √v̂ + ε -> m / denom -> the step. It is
        # allocated explicitly: xp.sqrt of a 0-d array returns a NumPy scalar, which
        # cannot be an ``out=`` target (a scalar parameter such as a temperature)
        denom = xp.sqrt(root_of, out=xp.empty_like(root_of))
        denom /= bias_correction2_sqrt
        denom += eps
        xp.divide(exp_avg, denom, out=denom)
        denom *= step_size
        p.data -= denom


class AdamW(Adam):
    r"""Adam with decoupled weight decay: before Adam's update (which then sees the
    raw gradient, λ = 0 in its first line),

        θ ← θ · (1 − lr·λ)

    so the decay is not rescaled by the adaptive denominator.
    """

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
