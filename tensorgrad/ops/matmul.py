"""Matrix products: ``a @ b`` (with NumPy's batching rules) and the fused linear layer."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, unbroadcast
from ..backend import get_array_module
from ..tensor import Tensor


class MatMul(Function):
    """c = a @ b;  da = g @ bᵀ,  db = aᵀ @ g (batch dims reduced if broadcast)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        xp = get_array_module(g)
        # treat vectors as matrices: a (k,) -> (1, k); b (k,) -> (k, 1)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # b's dropped last axis first: for vector @ vector, g is 0-d
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = unbroadcast(g @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:  # one matrix shared by a batch: fold the
                k = a2.shape[-1]              # batch into one GEMM, not B GEMMs + a sum
                gb = (a2.reshape(-1, k).T @ g.reshape(-1, g.shape[-1])).reshape(b.shape)
            else:
                gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb


class Linear(Function):
    """y = x Wᵀ + b for x (..., in), W (out, in);
    dx = g W,  dW = gᵀ x,  db = Σ g over every axis but the last."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        y = x @ w.T
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = (ctx.needs_input_grad + (False,))[:3]
        gx = g @ w if need_x else None
        rows = math.prod(g.shape[:-1])  # every axis but the last, flattened (not -1:
        g2 = g.reshape(rows, g.shape[-1])  # with 0 features, -1 cannot be inferred)
        gw = g2.T @ x.reshape(rows, x.shape[-1]) if need_w else None
        gb = g2.sum(axis=0) if need_b else None
        return gx, gw, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    from .elementwise import as_tensor_pair

    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype:
        # as PyTorch: a product of two tensors is never a silent upcast
        raise TypeError(f"matmul: operands have different dtypes, {a.dtype} and {b.dtype} "
                        f"(shapes {a.shape} and {b.shape}); convert one with .to(dtype=...)")
    a, b = as_tensor_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned "
                         f"({k_a} != {k_b})")
    try:  # the batch dimensions (all but the last two) broadcast as NumPy's
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} "
                         f"cannot be broadcast together") from None
    return MatMul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weightᵀ + bias, with weight of shape (out_features, in_features)."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {x.shape} does not match weight {weight.shape} "
                         f"(expected input (..., {weight.shape[-1] if weight.ndim else '?'}) "
                         f"and weight (out_features, in_features))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    for t in (weight,) + ((bias,) if bias is not None else ()):
        if t.dtype != x.dtype:
            raise TypeError(f"linear: input dtype {x.dtype} but parameter dtype {t.dtype}")
    return Linear.apply(x, weight, bias) if bias is not None else Linear.apply(x, weight)
