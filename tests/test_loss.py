"""Loss functions: forward against NumPy references, float64 gradchecks over
hypothesis-drawn shapes and options, stability, errors, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nn
import tensorgrad as tg
import tensorgrad.functional as F

REDUCTIONS = ["mean", "sum", "none"]

# ------------------------------------------------------------ NumPy references


def reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


def ref_log_softmax(x):
    """Over axis 1, in float64, shifted by the max (stable for large logits)."""
    x = x.astype(np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def ref_nll(logp, target, reduction):
    picked = np.take_along_axis(logp, target[:, None], axis=1)[:, 0]
    return reduce(-picked, reduction)


def ref_cross_entropy(x, target, reduction, label_smoothing):
    logp = ref_log_softmax(x)
    c = x.shape[1]
    nll = -np.take_along_axis(logp, target[:, None], axis=1)[:, 0]
    uniform = -logp.sum(axis=1) / c
    return reduce((1 - label_smoothing) * nll + label_smoothing * uniform, reduction)


def ref_multi_margin(x, target, p, margin, reduction):
    n, c = x.shape
    loss = np.zeros(n)
    for i in range(n):  # the definition, one sample and class at a time
        for j in range(c):
            if j != target[i]:
                loss[i] += max(0.0, margin - x[i, target[i]] + x[i, j]) ** p
    return reduce(loss / c, reduction)


# ------------------------------------------------------------ strategies

# (N, C, d1, ...) with at most two extra dimensions; targets (N, d1, ...)
class_shapes = st.tuples(st.integers(1, 4), st.integers(1, 5),
                         st.lists(st.integers(1, 3), max_size=2)).map(
    lambda t: (t[0], t[1], *t[2]))


def draw_problem(data, dtype=np.float64, shapes=class_shapes, scale=1.0):
    shape = data.draw(shapes, label="input shape")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    return x, target


def leaf(a, device="cpu"):
    return tg.tensor(a, requires_grad=True, device=device)


# ------------------------------------------------------------ forward


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data(), label_smoothing=st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0, 1))
def test_cross_entropy_matches_numpy(reduction, dtype, data, label_smoothing, device):
    x, target = draw_problem(data, dtype)
    loss = F.cross_entropy(tg.tensor(x, device=device), tg.tensor(target, device=device),
                           reduction, label_smoothing)
    expected = ref_cross_entropy(x, target, reduction, label_smoothing)
    assert loss.dtype == dtype and loss.shape == np.shape(expected)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(loss.numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_nll_loss_matches_numpy(reduction, dtype, data, device):
    x, target = draw_problem(data, dtype)
    loss = F.nll_loss(tg.tensor(x, device=device), tg.tensor(target, device=device), reduction)
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss.numpy(), ref_nll(x.astype(np.float64), target, reduction),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_mse_loss_matches_numpy(reduction, dtype, data, device):
    shape = data.draw(st.lists(st.integers(1, 4), max_size=3).map(tuple))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, t = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    loss = F.mse_loss(tg.tensor(x, device=device), tg.tensor(t, device=device), reduction)
    assert loss.dtype == dtype
    expected = reduce((x.astype(np.float64) - t) ** 2, reduction)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5, atol=1e-6)


two_d = st.tuples(st.integers(1, 4), st.integers(1, 5))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data(), margin=st.floats(0.0, 2.0))
def test_multi_margin_loss_matches_numpy(reduction, p, dtype, data, margin, device):
    x, target = draw_problem(data, dtype, shapes=two_d)
    loss = F.multi_margin_loss(tg.tensor(x, device=device), tg.tensor(target, device=device), p,
                               margin, reduction)
    assert loss.dtype == dtype
    expected = ref_multi_margin(x.astype(np.float64), target, p, margin, reduction)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_multi_margin_known_value(device):
    # sample 0: target 0, terms max(0, 1 - 3 + 1) = 0 and max(0, 1 - 3 + 2.5) = 0.5
    x = tg.tensor(np.array([[3.0, 1.0, 2.5]]), device=device)
    loss = F.multi_margin_loss(x, tg.tensor(np.array([0]), device=device))
    assert loss.item() == pytest.approx(0.5 / 3)


# ------------------------------------------------------------ gradients


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data(), label_smoothing=st.sampled_from([0.0, 0.3]))
def test_cross_entropy_gradcheck(reduction, data, label_smoothing, device):
    x, target = draw_problem(data, scale=2.0)
    t = tg.tensor(target, device=device)
    assert tg.gradcheck(lambda x: F.cross_entropy(x, t, reduction, label_smoothing),
                        [leaf(x, device=device)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data())
def test_nll_loss_gradcheck(reduction, data, device):
    x, target = draw_problem(data)
    t = tg.tensor(target, device=device)
    assert tg.gradcheck(lambda x: F.nll_loss(x, t, reduction), [leaf(x, device=device)])


def test_nll_of_log_softmax_equals_cross_entropy_gradient(device):
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((4, 3)), tg.tensor(np.array([0, 2, 1, 2]), device=device)
    a, b = leaf(x, device=device), leaf(x, device=device)
    F.nll_loss(F.log_softmax(a, dim=1), t).backward()
    F.cross_entropy(b, t).backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data())
def test_mse_loss_gradcheck(reduction, data, device):
    shape = data.draw(st.lists(st.integers(1, 4), max_size=3).map(tuple))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = leaf(rng.standard_normal(shape), device=device)
    t = leaf(rng.standard_normal(shape), device=device)
    assert tg.gradcheck(lambda x, t: F.mse_loss(x, t, reduction), [x, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@given(data=st.data(), margin=st.floats(0.0, 2.0))
def test_multi_margin_loss_gradcheck(reduction, p, data, margin, device):
    x, target = draw_problem(data, shapes=two_d)
    h = margin - np.take_along_axis(x, target[:, None], axis=1) + x
    assume(np.abs(h).min() > 1e-3)  # away from the hinge's kink
    t = tg.tensor(target, device=device)
    assert tg.gradcheck(lambda x: F.multi_margin_loss(x, t, p, margin, reduction),
                        [leaf(x, device=device)])


def raw_backward(y, g):
    """The op's own backward, before the engine casts gradients to the input dtypes
    (``g``, a NumPy array, goes to y's device first, as the engine's gradients are)."""
    return y.grad_fn.function.backward(y.grad_fn.ctx, tg.tensor(g, device=y.device).data)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "multi_margin_loss", "mse_loss"])
def test_float32_stays_float32_in_backward(name, reduction, device):
    rng = np.random.default_rng(6)
    x = leaf(rng.standard_normal((4, 3)).astype(np.float32), device=device)
    if name == "mse_loss":
        t = tg.tensor(rng.standard_normal((4, 3)).astype(np.float32), device=device)
        y = F.mse_loss(x, t, reduction)
    else:
        y = getattr(F, name)(x, tg.tensor(np.array([0, 1, 2, 1]), device=device),
                             reduction=reduction)
    assert y.dtype == np.float32
    grads = raw_backward(y, rng.standard_normal(y.shape).astype(np.float32))
    assert all(g.dtype == np.float32 for g in grads if g is not None)


# ------------------------------------------------------------ stability


def test_cross_entropy_stable_for_huge_logits(device):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [1e4, 1e4, -1e4]], np.float32)
    target = np.array([1, 1, 0])
    logits = leaf(x, device=device)
    loss = F.cross_entropy(logits, tg.tensor(target, device=device))
    loss.backward()
    # sample 0 pays 2e4, sample 1 nothing, sample 2 log 2: mean (2e4 + log 2) / 3
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx((2e4 + np.log(2.0)) / 3, rel=1e-6)
    expected_grad = np.array([[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]]) / 3
    np.testing.assert_allclose(logits.grad.numpy(), expected_grad, atol=1e-6)


# ------------------------------------------------------------ errors

LOSSES = {
    "cross_entropy": F.cross_entropy,
    "nll_loss": F.nll_loss,
    "multi_margin_loss": F.multi_margin_loss,
}


@pytest.mark.parametrize("name", LOSSES)
def test_float_targets_rejected(name, device):
    with pytest.raises(TypeError, match=f"{name}: target .*integer dtype, got dtype float32"):
        LOSSES[name](tg.randn(2, 3, device=device), tg.tensor([0.0, 1.0], device=device))


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("bad", [3, 7, -1])
def test_out_of_range_targets_rejected(name, bad, device):
    # on a GPU the check is read at the next transfer (.item()), as PyTorch's device asserts
    with pytest.raises(IndexError, match=f"target {bad} is out of bounds for 3 classes"):
        LOSSES[name](tg.randn(2, 3, device=device),
                     tg.tensor(np.array([0, bad]), device=device)).item()


@pytest.mark.parametrize("name", LOSSES)
def test_target_shape_mismatch_rejected(name, device):
    with pytest.raises(ValueError, match=r"expected target of shape \(2,\) for input of shape "
                                         r"\(2, 3\), got \(3,\)"):
        LOSSES[name](tg.randn(2, 3, device=device), tg.tensor(np.array([0, 1, 2]), device=device))


@pytest.mark.parametrize("name", [*LOSSES, "mse_loss"])
def test_bad_reduction_rejected(name, device):
    fn = F.mse_loss if name == "mse_loss" else LOSSES[name]
    target = (tg.randn(2, 3, device=device) if name == "mse_loss"
              else tg.tensor(np.array([0, 1]), device=device))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', "
                                         "got 'avg'"):
        fn(tg.randn(2, 3, device=device), target, reduction="avg")


def test_other_loss_errors(device):
    t = tg.tensor(np.array([0, 1]), device=device)
    with pytest.raises(ValueError, match=r"label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(tg.randn(2, 3, device=device), t, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"input of shape \(N, C\) or \(N, C, d1, ...\), got"):
        F.cross_entropy(tg.randn(3, device=device), t)
    with pytest.raises(ValueError, match=r"only p == 1 and p == 2 are supported, got p=3"):
        F.multi_margin_loss(tg.randn(2, 3, device=device), t, p=3)
    with pytest.raises(ValueError, match=r"shape \(N, C\) or \(C,\), got \(2, 3, 4\)"):
        F.multi_margin_loss(tg.randn(2, 3, 4, device=device),
                            tg.tensor(np.zeros((2, 4), np.int64), device=device))
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) and target of shape \(3, 2\)"):
        F.mse_loss(tg.randn(2, 3, device=device), tg.randn(3, 2, device=device))
    with pytest.raises(TypeError, match="input has dtype float32 but target has dtype float64"):
        F.mse_loss(tg.randn(2, 3, device=device), tg.randn(2, 3, dtype=tg.float64, device=device))
    with pytest.raises(TypeError, match="input must be floating point, got dtype int64"):
        F.cross_entropy(tg.tensor(np.ones((2, 3), np.int64), device=device), t)


# ------------------------------------------------------------ against PyTorch, if present


def test_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(7)
    x, target = rng.standard_normal((5, 4, 3)), rng.integers(0, 4, (5, 3))
    x2, target2 = x[:, :, 0].copy(), target[:, 0].copy()
    pairs = [
        (lambda a: F.cross_entropy(a, tg.tensor(target), "sum", 0.2),
         lambda a: tf.cross_entropy(a, torch.tensor(target), reduction="sum",
                                    label_smoothing=0.2), x),
        (lambda a: F.nll_loss(a, tg.tensor(target)), lambda a: tf.nll_loss(a, torch.tensor(target)),
         x),
        (lambda a: F.multi_margin_loss(a, tg.tensor(target2), 2, 0.5),
         lambda a: tf.multi_margin_loss(a, torch.tensor(target2), 2, 0.5), x2),
        (lambda a: F.mse_loss(a, tg.tensor(x[::-1].copy())),
         lambda a: tf.mse_loss(a, torch.tensor(x[::-1].copy())), x),
    ]
    for ours, theirs, data in pairs:
        a, ta = leaf(data), torch.tensor(data, requires_grad=True)
        y, ty = ours(a), theirs(ta)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
        y.backward()
        ty.backward()
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------ class weights


def ref_weighted_cross_entropy(x, target, w, reduction, label_smoothing, ignored):
    """PyTorch's documented formula: l_n = w_{y_n}·(-log p_{n,y_n}) (smoothed with
    -Σ_c w_c log p_{n,c} / C), 'mean' divides by Σ_n w_{y_n} over the kept targets."""
    logp = ref_log_softmax(x)
    c = x.shape[1]
    wb = w.reshape((1, c) + (1,) * (x.ndim - 2))
    safe = np.where(ignored, 0, target)
    nll = -np.take_along_axis(logp, safe[:, None], axis=1)[:, 0] * w[safe]
    smooth = -(logp * wb).sum(axis=1) / c
    loss = np.where(ignored, 0.0, (1 - label_smoothing) * nll + label_smoothing * smooth)
    if reduction == "mean":
        return loss.sum() / np.where(ignored, 0.0, w[safe]).sum()
    return reduce(loss, reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data(), label_smoothing=st.sampled_from([0.0, 0.25]))
def test_weighted_cross_entropy_and_nll_match_numpy(reduction, data, label_smoothing, device):
    x, target = draw_problem(data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="weights"))
    w = rng.uniform(0.1, 3.0, x.shape[1])
    ignored = rng.random(target.shape) < 0.2
    assume(not ignored.all())
    t = np.where(ignored, -100, target)
    loss = F.cross_entropy(tg.tensor(x, device=device), tg.tensor(t, device=device), reduction,
                           label_smoothing,
                           weight=tg.tensor(w, device=device))
    want = ref_weighted_cross_entropy(x, target, w, reduction, label_smoothing, ignored)
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-12, atol=1e-12)
    logp = ref_log_softmax(x)
    nll = F.nll_loss(tg.tensor(logp, device=device), tg.tensor(t, device=device), reduction,
                     weight=tg.tensor(w, device=device))
    want = ref_weighted_cross_entropy(x, target, w, reduction, 0.0, ignored)
    np.testing.assert_allclose(nll.numpy(), want, rtol=1e-12, atol=1e-12)


def test_weighted_cross_entropy_known_value(device):
    # log p = [1 - log(e + 1), -log(e + 1)] and [-log 2, -log 2]; targets 1 and 0
    x = tg.tensor(np.array([[1.0, 0.0], [0.0, 0.0]]), device=device)
    t = tg.tensor(np.array([1, 0]), device=device)
    w = tg.tensor(np.array([3.0, 1.0]), device=device)
    losses = [np.log(np.e + 1), 3 * np.log(2)]
    np.testing.assert_allclose(F.cross_entropy(x, t, "none", weight=w).numpy(), losses)
    # the mean divides by the targets' total weight 1 + 3, not by N = 2
    assert F.cross_entropy(x, t, weight=w).item() == pytest.approx(sum(losses) / 4, rel=1e-15)
    layer = nn.CrossEntropyLoss(weight=w)
    assert layer(x, t).item() == pytest.approx(sum(losses) / 4, rel=1e-15)
    np.testing.assert_array_equal(layer.state_dict()["weight"].numpy(), [3.0, 1.0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data(), label_smoothing=st.sampled_from([0.0, 0.3]))
def test_weighted_cross_entropy_and_nll_gradcheck(reduction, data, label_smoothing, device):
    x, target = draw_problem(data, scale=2.0)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="weights"))
    w = tg.tensor(rng.uniform(0.1, 3.0, x.shape[1]), device=device)
    t = tg.tensor(np.where(rng.random(target.shape) < 0.2, -100, target), device=device)
    assert tg.gradcheck(lambda x: F.cross_entropy(x, t, reduction, label_smoothing, weight=w),
                        [leaf(x, device=device)])
    assert tg.gradcheck(lambda x: F.nll_loss(x, t, reduction, weight=w), [leaf(x, device=device)])


# ------------------------------------------------------------ probability targets


def draw_probabilities(data, shape):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="probabilities"))
    p = rng.random(shape) + 0.05
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data(), label_smoothing=st.sampled_from([0.0, 0.2]), weighted=st.booleans())
def test_probability_targets_match_numpy(reduction, data, label_smoothing, weighted, device):
    x, _ = draw_problem(data)
    probs = draw_probabilities(data, x.shape)
    c = x.shape[1]
    w = np.linspace(0.5, 2.0, c) if weighted else np.ones(c)
    q = (1 - label_smoothing) * probs + label_smoothing / c
    loss = -(w.reshape((1, c) + (1,) * (x.ndim - 2)) * q * ref_log_softmax(x)).sum(axis=1)
    # PyTorch: the mean over the N·d1·... samples, whatever the weights
    want = reduce(loss, reduction)
    got = F.cross_entropy(tg.tensor(x, device=device), tg.tensor(probs, device=device), reduction,
                          label_smoothing,
                          weight=tg.tensor(w, device=device) if weighted else None)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data())
def test_one_hot_probabilities_equal_class_indices(reduction, data, device):
    x, target = draw_problem(data)
    onehot = np.moveaxis(np.eye(x.shape[1])[target], -1, 1)
    a, b = leaf(x, device=device), leaf(x, device=device)
    ya = F.cross_entropy(a, tg.tensor(target, device=device), reduction, 0.1)
    yb = F.cross_entropy(b, tg.tensor(onehot, device=device), reduction, 0.1)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-12, atol=1e-12)
    ya.sum().backward()
    yb.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data(), label_smoothing=st.sampled_from([0.0, 0.3]), weighted=st.booleans())
def test_probability_targets_gradcheck(reduction, data, label_smoothing, weighted, device):
    x, _ = draw_problem(data, scale=2.0)
    probs = draw_probabilities(data, x.shape)  # need not sum to one for the gradient
    w = tg.tensor(np.linspace(0.5, 2.0, x.shape[1]), device=device) if weighted else None
    assert tg.gradcheck(lambda x, t: F.cross_entropy(x, t, reduction, label_smoothing, weight=w),
                        [leaf(x, device=device), leaf(probs, device=device)])


def test_unbatched_probability_target(device):
    x = np.array([0.5, -1.0, 2.0])
    t = np.array([0.2, 0.3, 0.5])
    got = F.cross_entropy(tg.tensor(x, device=device), tg.tensor(t, device=device), "none")
    assert got.shape == ()
    assert got.item() == pytest.approx(-(t * ref_log_softmax(x[None])[0]).sum(), rel=1e-14)


# ------------------------------------------------------------ binary cross-entropy on logits


def ref_bce_with_logits(x, t, w, pos_weight, reduction):
    """The documented formula with σ written out (fine for moderate logits)."""
    s = 1 / (1 + np.exp(-x))
    return reduce(-w * (pos_weight * t * np.log(s) + (1 - t) * np.log(1 - s)), reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data(), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
       weighted=st.booleans(), with_pos_weight=st.booleans())
def test_bce_with_logits_matches_numpy(reduction, data, shape, weighted, with_pos_weight, device):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, t = rng.uniform(-5, 5, shape), rng.random(shape)
    w = rng.uniform(0.1, 2, shape[-1:]) if weighted else None
    pw = rng.uniform(0.1, 3, shape[-1:]) if with_pos_weight else None
    def on(a):
        return None if a is None else tg.tensor(a, device=device)

    got = F.binary_cross_entropy_with_logits(on(x), on(t), on(w), reduction=reduction,
                                             pos_weight=on(pw))
    want = ref_bce_with_logits(x, t, 1.0 if w is None else w, 1.0 if pw is None else pw,
                               reduction)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-13)
    module = nn.BCEWithLogitsLoss(None if w is None else tg.tensor(w, device=device),
                                  reduction=reduction,
                                  pos_weight=None if pw is None else tg.tensor(pw, device=device))
    np.testing.assert_allclose(module(tg.tensor(x, device=device),
                                      tg.tensor(t, device=device)).numpy(), want, rtol=1e-12,
                               atol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(data=st.data(), shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple))
def test_bce_with_logits_gradcheck_all_inputs(reduction, data, shape, device):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x, t = leaf(rng.uniform(-4, 4, shape), device=device), leaf(rng.random(shape), device=device)
    w = leaf(rng.uniform(0.1, 2, shape[-1:]), device=device)
    pw = leaf(rng.uniform(0.1, 3, shape[-1:]), device=device)
    assert tg.gradcheck(lambda x, t, w, pw: F.binary_cross_entropy_with_logits(
        x, t, w, reduction=reduction, pos_weight=pw), [x, t, w, pw])
    assert tg.gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, reduction=reduction), [x, t])


def test_bce_with_logits_known_values_and_stability(device):
    x = tg.tensor(np.array([0.0, 2.0, -3.0]), device=device)
    t = tg.tensor(np.array([1.0, 0.0, 1.0]), device=device)
    np.testing.assert_allclose(
        F.binary_cross_entropy_with_logits(x, t, reduction="none").numpy(),
        [np.log(2), np.log1p(np.e**2), np.log1p(np.e**3)], rtol=1e-15)
    np.testing.assert_allclose(  # pos_weight 2 doubles the positive terms only
        F.binary_cross_entropy_with_logits(
            x, t, reduction="none", pos_weight=tg.tensor(np.array([2.0]), device=device)).numpy(),
        [2 * np.log(2), np.log1p(np.e**2), 2 * np.log1p(np.e**3)], rtol=1e-15)
    huge = leaf(np.array([1e4, -1e4, 1e4, -1e4], np.float32), device=device)
    target = tg.tensor(np.array([1.0, 0.0, 0.0, 1.0], np.float32), device=device)
    loss = F.binary_cross_entropy_with_logits(huge, target, reduction="sum")
    loss.backward()
    assert loss.dtype == np.float32 and loss.item() == 2e4
    np.testing.assert_array_equal(huge.grad.numpy(), [0, 0, 1, -1])
    assert huge.grad.dtype == np.float32


# ------------------------------------------------------------ dtypes and errors of the new options


def test_weights_probabilities_and_bce_keep_float32(device):
    rng = np.random.default_rng(8)
    x = leaf(rng.standard_normal((4, 3)).astype(np.float32), device=device)
    w = tg.tensor(np.array([1.0, 2.0, 0.5], np.float32), device=device)
    t = tg.tensor(np.array([0, 1, 2, 1]), device=device)
    probs = leaf(np.full((4, 3), 1 / 3, np.float32), device=device)
    for y in [F.cross_entropy(x, t, weight=w, label_smoothing=0.1), F.nll_loss(x, t, weight=w),
              F.cross_entropy(x, probs, weight=w),
              F.binary_cross_entropy_with_logits(x, probs, w, pos_weight=w)]:
        assert y.dtype == np.float32
        grads = raw_backward(y, np.ones((), np.float32))
        assert all(g.dtype == np.float32 for g in grads if g is not None)


def test_errors_of_weights_probabilities_and_bce(device):
    x, t = tg.randn(2, 3, device=device), tg.tensor(np.array([0, 1]), device=device)
    cases = [
        (lambda: F.cross_entropy(x, t, weight=tg.ones(2, device=device)), ValueError,
         r"weight must have shape \(3,\)"),
        (lambda: F.cross_entropy(x, t, weight=tg.ones(3, dtype=tg.float64, device=device)),
         TypeError,
         "weight has dtype float64 but input has dtype float32"),
        (lambda: F.cross_entropy(x, t, weight=tg.ones(3, requires_grad=True, device=device)),
         RuntimeError,
         "gradient with respect to weight is not implemented"),
        (lambda: F.cross_entropy(x, t, tg.ones(3, device=device)), TypeError,
         "pass class weights by keyword"),
        (lambda: F.nll_loss(x, t, tg.ones(3, device=device)), TypeError,
         "pass class weights by keyword"),
        (lambda: F.cross_entropy(x, tg.ones(2, 3, device=device), ignore_index=0), ValueError,
         "ignore_index is not supported for probability targets"),
        (lambda: F.cross_entropy(x, tg.ones(2, 3, dtype=tg.float64, device=device)), TypeError,
         "target probabilities have dtype float64"),
        (lambda: F.binary_cross_entropy_with_logits(x, tg.ones(3, 2, device=device)), ValueError,
         r"target size \(3, 2\) must be the same as input size \(2, 3\)"),
        (lambda: F.binary_cross_entropy_with_logits(x, tg.ones(2, 3, device=device),
                                                    tg.ones(2, device=device)), ValueError,
         r"weight of shape \(2,\) does not broadcast"),
        (lambda: F.binary_cross_entropy_with_logits(x, tg.ones(2, 3, device=device),
                                                    pos_weight=tg.ones(2, 2, 3, device=device)),
         ValueError, "pos_weight of shape"),
        (lambda: F.binary_cross_entropy_with_logits(x, t), TypeError,
         "target must be floating point"),
        (lambda: F.binary_cross_entropy_with_logits(x, tg.ones(2, 3, device=device),
                                                    size_average=True),
         ValueError, "deprecated"),
        (lambda: nn.NLLLoss(reduce=False), ValueError, "deprecated"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words):
            call()
