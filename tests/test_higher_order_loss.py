"""Double backward through the losses, leaky_relu/elu/gelu and embedding.

Each case draws shapes and options with hypothesis and checks, in float64:
- the first derivatives taken with ``create_graph=True`` (which run the ops' composite
  definitions or their traced backwards) equal the plain first-order ones, and carry a
  graph;
- ``tg.gradgradcheck``: second derivatives against finite differences of the first.
Closed-form second derivatives (cross-entropy's Hessian (Σa)·(diag p - ppᵀ), GELU's
φ(x)(2 - x²), ...) check the same machinery against formulas. Shapes stay tiny:
gradgradcheck perturbs every element of every input and upstream gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tensorgrad as tg
import tensorgrad.functional as F
from tensorgrad.backend import to_numpy
from tensorgrad.testing import arrays, shapes

REDUCTIONS = ["mean", "sum", "none"]


def leaf(a, device):
    return tg.tensor(a, device=device, requires_grad=True)


def const(a, device):
    return tg.tensor(a, device=device)


def host(t) -> np.ndarray:
    return to_numpy(t.data)


def assert_twice_differentiable(fn, inputs) -> None:
    """create_graph's first derivatives are the first-order ones and record a graph, and
    the second derivatives match finite differences."""
    out = fn(*inputs)
    v = tg.tensor(np.random.default_rng(1).standard_normal(out.shape), device=out.device,
                  requires_grad=True)
    plain = tg.autograd.grad([out], inputs, [v.detach()])
    traced = tg.autograd.grad([fn(*inputs)], inputs, [v], create_graph=True)
    for p, t in zip(plain, traced):
        assert t.requires_grad and t.grad_fn is not None
        np.testing.assert_allclose(host(t), host(p), rtol=1e-9, atol=1e-12)
    assert tg.gradgradcheck(fn, inputs)


def second_derivative(fn, x, v):
    """(d/dx)(d fn(x).sum()/dx · v): the Hessian of Σ fn(x) times v."""
    (g,) = tg.autograd.grad([fn(x).sum()], [x], create_graph=True)
    (h,) = tg.autograd.grad([(g * v).sum()], [x])
    return host(h)


# ------------------------------------------------------------ strategies


@st.composite
def class_problems(draw, max_extra_dims: int = 1):
    """(logits (N, C, d...), class targets (N, d...)) with N ≤ 3, C in 2..4."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    extra = tuple(draw(st.lists(st.integers(1, 2), max_size=max_extra_dims)))
    x = draw(arrays((n, c, *extra), min_value=-3.0, max_value=3.0))
    target = draw(arrays((n, *extra), np.int64, min_value=0, max_value=c - 1))
    return x, target


def class_weights(c: int):
    return st.none() | arrays((c,), min_value=0.5, max_value=2.0)


@st.composite
def class_options(draw, x, target):
    """reduction, class weights and an ignore_index (-100 or one of the classes)."""
    reduction = draw(st.sampled_from(REDUCTIONS))
    weight = draw(class_weights(x.shape[1]))
    ignore_index = draw(st.sampled_from([-100, *range(x.shape[1])]))
    # a weighted mean over no kept target divides by a total weight of 0 (NaN, as
    # PyTorch); the unweighted one has a zero gradient and stays in
    assume(weight is None or reduction != "mean" or (target != ignore_index).any())
    return reduction, weight, ignore_index


# ------------------------------------------------------------ class-index losses


@settings(max_examples=12)
@given(problem=class_problems(), eps=st.sampled_from([0.0, 0.3]), data=st.data())
def test_cross_entropy_double_backward(problem, eps, data, device):
    x, target = problem
    reduction, weight, ignore_index = data.draw(class_options(x, target))
    t = const(target, device)
    w = None if weight is None else const(weight, device)
    assert_twice_differentiable(
        lambda a: F.cross_entropy(a, t, reduction, eps, weight=w, ignore_index=ignore_index),
        [leaf(x, device)])


@settings(max_examples=5)
@given(c=st.integers(2, 4), data=st.data())
def test_cross_entropy_double_backward_of_one_unbatched_sample(c, data, device):
    x = data.draw(arrays((c,)))
    target = data.draw(st.integers(0, c - 1))
    t = tg.tensor(np.int64(target), device=device)
    assert_twice_differentiable(lambda a: F.cross_entropy(a, t, "none", 0.1), [leaf(x, device)])


@settings(max_examples=8)
@given(problem=class_problems(), eps=st.sampled_from([0.0, 0.2]), data=st.data())
def test_cross_entropy_with_probability_targets_double_backward(problem, eps, data, device):
    x, _ = problem
    probs = data.draw(arrays(x.shape, min_value=0.0, max_value=1.0))
    reduction = data.draw(st.sampled_from(REDUCTIONS))
    weight = data.draw(class_weights(x.shape[1]))
    w = None if weight is None else const(weight, device)
    # the target probabilities are differentiated too
    assert_twice_differentiable(lambda a, q: F.cross_entropy(a, q, reduction, eps, weight=w),
                                [leaf(x, device), leaf(probs, device)])


@settings(max_examples=8)
@given(problem=class_problems(), data=st.data())
def test_nll_loss_double_backward(problem, data, device):
    x, target = problem
    reduction, weight, ignore_index = data.draw(class_options(x, target))
    t = const(target, device)
    w = None if weight is None else const(weight, device)
    # nll is linear in its input: the second derivatives are those w.r.t. the upstream
    # gradient (gradgradcheck perturbs it too) and through the tanh in front
    assert_twice_differentiable(
        lambda a: F.nll_loss(a.tanh(), t, reduction, weight=w, ignore_index=ignore_index),
        [leaf(x, device)])


@settings(max_examples=6)
@given(problem=class_problems(max_extra_dims=0), eps=st.sampled_from([0.0, 0.3]),
       data=st.data())
def test_cross_entropy_hessian_is_the_closed_form(problem, eps, data, device):
    # loss_n = -Σ_c a_c·log p_c with a = w⊙((1 - ε)·onehot(y) + ε/C), and the Hessian of
    # -log p_c in x is diag(p) - ppᵀ for every c: H_n = (Σ_c a_c)·(diag p - ppᵀ)
    x, target = problem
    n, c = x.shape
    weight = data.draw(class_weights(c))
    v = data.draw(arrays(x.shape))
    w = np.ones(c) if weight is None else weight
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    total_a = (1 - eps) * w[target] + eps / c * w.sum()
    expected = total_a[:, None] * (p * v - p * (p * v).sum(axis=1, keepdims=True))
    t, wt = const(target, device), None if weight is None else const(weight, device)
    hv = second_derivative(lambda a: F.cross_entropy(a, t, "sum", eps, weight=wt),
                           leaf(x, device), const(v, device))
    np.testing.assert_allclose(hv, expected, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------ other losses


@settings(max_examples=8)
@given(shape=shapes(min_dims=0, max_dims=3, max_side=3), reduction=st.sampled_from(REDUCTIONS),
       data=st.data())
def test_mse_loss_double_backward(shape, reduction, data, device):
    x, y = data.draw(arrays(shape)), data.draw(arrays(shape))
    assert_twice_differentiable(lambda a, b: F.mse_loss(a, b, reduction),
                                [leaf(x, device), leaf(y, device)])


@settings(max_examples=5)
@given(shape=shapes(min_dims=1, max_dims=2, max_side=3), data=st.data())
def test_mse_loss_second_derivatives_are_2_over_n(shape, data, device):
    x, y, v = (data.draw(arrays(shape)) for _ in range(3))
    a, b = leaf(x, device), leaf(y, device)
    g = tg.autograd.grad([F.mse_loss(a, b)], [a], create_graph=True)[0]
    hx, hy = tg.autograd.grad([(g * const(v, device)).sum()], [a, b])
    n = math.prod(shape)
    np.testing.assert_allclose(host(hx), 2 * v / n, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(hy), -2 * v / n, rtol=1e-12, atol=1e-15)


@settings(max_examples=12)
@given(n=st.integers(1, 3), c=st.integers(2, 4), p=st.sampled_from([1, 2]),
       margin=st.floats(0.1, 2.0), reduction=st.sampled_from(REDUCTIONS), data=st.data())
def test_multi_margin_loss_double_backward(n, c, p, margin, reduction, data, device):
    x = data.draw(arrays((n, c), min_value=-2.0, max_value=2.0))
    target = data.draw(arrays((n,), np.int64, min_value=0, max_value=c - 1))
    weight = data.draw(class_weights(c))
    # keep every hinge margin - x_y + x_j away from its kink at 0
    h = margin - x[np.arange(n), target][:, None] + x
    h[np.arange(n), target] = 1.0
    assume(np.abs(h).min() > 0.05)
    t, w = const(target, device), None if weight is None else const(weight, device)
    assert_twice_differentiable(
        lambda a: F.multi_margin_loss(a, t, p, margin, reduction, weight=w),
        [leaf(x, device)])


@settings(max_examples=10)
@given(shape=shapes(min_dims=1, max_dims=2, max_side=3), reduction=st.sampled_from(REDUCTIONS),
       use_weight=st.booleans(), use_pos_weight=st.booleans(), data=st.data())
def test_binary_cross_entropy_with_logits_double_backward(shape, reduction, use_weight,
                                                          use_pos_weight, data, device):
    x = data.draw(arrays(shape, min_value=-4.0, max_value=4.0))
    t = data.draw(arrays(shape, min_value=0.0, max_value=1.0))
    inputs = [leaf(x, device), leaf(t, device)]
    if use_weight:
        inputs.append(leaf(data.draw(arrays(shape, min_value=0.5, max_value=2.0)), device))
    if use_pos_weight:  # one per class (the last axis), broadcast as PyTorch
        inputs.append(leaf(data.draw(arrays(shape[-1:], min_value=0.5, max_value=2.0)),
                           device))

    def fn(a, b, *rest):
        rest = list(rest)
        w = rest.pop(0) if use_weight else None
        pw = rest.pop(0) if use_pos_weight else None
        return F.binary_cross_entropy_with_logits(a, b, w, reduction=reduction, pos_weight=pw)

    # target, weight and pos_weight get (second) derivatives too
    assert_twice_differentiable(fn, inputs)


def test_binary_cross_entropy_with_logits_derivatives_at_and_around_zero(device):
    # d/dx = w·[(1 - t) - c·σ(-x)] and d²/dx² = w·c·σ(x)σ(-x), c = 1 + (P - 1)·t; at x = 0
    # exactly, where the composite's pieces meet, they are w·[(1 - t) - c/2] and w·c/4
    x = np.array([0.0, 0.0, -0.0, 1.5, -2.0, 30.0, -30.0])
    t = np.array([0.0, 1.0, 0.3, 0.7, 0.2, 1.0, 0.0])
    w, pw = np.linspace(0.5, 2.0, x.size), 1.7
    a = leaf(x, device)
    loss = F.binary_cross_entropy_with_logits(a, const(t, device), const(w, device),
                                              reduction="sum",
                                              pos_weight=const(np.array(pw), device))
    (g,) = tg.autograd.grad([loss], [a], create_graph=True)
    (h,) = tg.autograd.grad([g.sum()], [a])
    coef = 1 + (pw - 1) * t
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(host(g), w * ((1 - t) - coef * (1 - sig)), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(host(h), w * coef * sig * (1 - sig), rtol=1e-9, atol=1e-15)


# ------------------------------------------------------------ activations


@settings(max_examples=8)
@given(shape=shapes(min_dims=0, max_dims=3, max_side=3), slope=st.floats(-0.5, 0.5),
       data=st.data())
def test_leaky_relu_double_backward(shape, slope, data, device):
    x = data.draw(arrays(shape, avoid=[0.0], margin=0.05))
    assert_twice_differentiable(lambda a: F.leaky_relu(a, slope) ** 2, [leaf(x, device)])
    # piecewise linear (z'' = 0), so (z²/2)'' = z'² + z·z'' = z'²: 1 or slope²
    v = data.draw(arrays(shape))
    np.testing.assert_allclose(
        second_derivative(lambda a: F.leaky_relu(a, slope) ** 2 / 2, leaf(x, device),
                          const(v, device)),
        np.where(x > 0, 1.0, slope * slope) * v, rtol=1e-12, atol=1e-15)


@settings(max_examples=8)
@given(shape=shapes(min_dims=0, max_dims=3, max_side=3), alpha=st.floats(0.2, 2.0),
       data=st.data())
def test_elu_double_backward(shape, alpha, data, device):
    x = data.draw(arrays(shape, avoid=[0.0], margin=0.05))
    assert_twice_differentiable(lambda a: F.elu(a, alpha), [leaf(x, device)])
    v = data.draw(arrays(shape))
    expected = np.where(x > 0, 0.0, alpha * np.exp(x)) * v
    np.testing.assert_allclose(
        second_derivative(lambda a: F.elu(a, alpha), leaf(x, device), const(v, device)),
        expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=8)
@given(shape=shapes(min_dims=0, max_dims=3, max_side=3),
       approximate=st.sampled_from(["none", "tanh"]), data=st.data())
def test_gelu_double_backward(shape, approximate, data, device):
    x = data.draw(arrays(shape, min_value=-4.0, max_value=4.0))
    assert_twice_differentiable(lambda a: F.gelu(a, approximate), [leaf(x, device)])


def test_gelu_second_derivatives_are_the_closed_forms(device):
    x = np.linspace(-5.0, 5.0, 41)
    v = np.ones_like(x)
    # exact: (x·Φ)'' = 2φ + x·φ' = φ(x)·(2 - x²)
    pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(
        second_derivative(F.gelu, leaf(x, device), const(v, device)),
        pdf * (2 - x * x), rtol=1e-10, atol=1e-15)
    # tanh: z = x/2·(1 + T), T = tanh u, u = k(x + cx³):
    # z'' = (1 - T²)·(u' - x·T·u'² + x·u''/2)
    k, c = math.sqrt(2 / math.pi), 0.044715
    tt = np.tanh(k * (x + c * x**3))
    du, ddu = k * (1 + 3 * c * x * x), 6 * k * c * x
    np.testing.assert_allclose(
        second_derivative(lambda a: F.gelu(a, "tanh"), leaf(x, device), const(v, device)),
        (1 - tt * tt) * (du - x * tt * du * du + x * ddu / 2), rtol=1e-10, atol=1e-15)


# ------------------------------------------------------------ embedding


@st.composite
def embedding_problems(draw):
    """(weight (V, D), indices with repeats, padding_idx or None)."""
    rows, dim = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    idx_shape = draw(shapes(min_dims=1, max_dims=2, max_side=4))
    indices = draw(arrays(idx_shape, np.int64, min_value=0, max_value=rows - 1))
    padding_idx = draw(st.none() | st.integers(0, rows - 1))
    weight = draw(arrays((rows, dim)))
    return weight, indices, padding_idx


@settings(max_examples=8)
@given(problem=embedding_problems())
def test_embedding_double_backward(problem, device):
    weight, indices, padding_idx = problem
    ids = const(indices, device)
    # tanh after the lookup: the weight's second derivative goes through the recorded
    # scatter-add of embedding's backward and gathers back, repeats accumulating
    assert_twice_differentiable(lambda w: F.embedding(ids, w, padding_idx).tanh(),
                                [leaf(weight, device)])


@settings(max_examples=5)
@given(problem=embedding_problems(), data=st.data())
def test_embedding_hessian_counts_repeated_indices(problem, data, device):
    # L = Σ_positions |weight[i]|²/2: dL/dweight_r = count_r·weight_r, so the Hessian
    # times v is count_r·v_r (0 on the padding row, which gets no gradient)
    weight, indices, padding_idx = problem
    v = data.draw(arrays(weight.shape))
    counts = np.bincount(indices.reshape(-1), minlength=weight.shape[0]).astype(np.float64)
    if padding_idx is not None:
        counts[padding_idx] = 0
    ids = const(indices, device)
    hv = second_derivative(lambda w: F.embedding(ids, w, padding_idx) ** 2 / 2,
                           leaf(weight, device), const(v, device))
    np.testing.assert_allclose(hv, counts[:, None] * v, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------ multi_margin_loss weights
# (first order: the class weights multi_margin_loss gained with its double backward)


def ref_weighted_multi_margin(x, target, p, margin, weight, reduction):
    """PyTorch's implementation (aten LossMultiMargin.cpp): each active term
    max(0, margin - x_y + x_j)^p times weight[y], summed over j ≠ y, over C."""
    n, c = x.shape
    loss = np.zeros(n)
    for i in range(n):
        for j in range(c):
            if j != target[i]:
                loss[i] += max(0.0, margin - x[i, target[i]] + x[i, j]) ** p * weight[target[i]]
    loss /= c
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


@settings(max_examples=8)
@given(n=st.integers(1, 3), c=st.integers(2, 4), p=st.sampled_from([1, 2]),
       reduction=st.sampled_from(REDUCTIONS), data=st.data())
def test_multi_margin_loss_class_weights_match_pytorch_formula(n, c, p, reduction, data,
                                                               device):
    x = data.draw(arrays((n, c), min_value=-2.0, max_value=2.0))
    target = data.draw(arrays((n,), np.int64, min_value=0, max_value=c - 1))
    weight = data.draw(arrays((c,), min_value=0.5, max_value=2.0))
    h = 0.5 - x[np.arange(n), target][:, None] + x
    h[np.arange(n), target] = 1.0
    assume(np.abs(h).min() > 0.05)
    t, w = const(target, device), const(weight, device)
    loss = F.multi_margin_loss(const(x, device), t, p, 0.5, reduction, weight=w)
    np.testing.assert_allclose(host(loss),
                               ref_weighted_multi_margin(x, target, p, 0.5, weight, reduction),
                               rtol=1e-12, atol=1e-15)
    assert tg.gradcheck(lambda a: F.multi_margin_loss(a, t, p, 0.5, reduction, weight=w),
                        [leaf(x, device)])


def test_multi_margin_loss_weight_must_be_one_per_class(device):
    x, t = const(np.zeros((2, 3)), device), const(np.array([0, 1]), device)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.multi_margin_loss(x, t, weight=const(np.ones(2), device))
    with pytest.raises(TypeError, match="dtype"):
        F.multi_margin_loss(x, t, weight=const(np.ones(3, np.float32), device))
