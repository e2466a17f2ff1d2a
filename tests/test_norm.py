"""Normalization ops: forward against NumPy references, float64 gradchecks over
hypothesis-drawn shapes, in-place running statistics, errors, dtypes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
import tensorgrad.functional as F

# ------------------------------------------------------------ NumPy references


def ref_normalize(x, axes, eps=1e-5):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def affine(y, w, b, shape):
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y


def ref_batch_norm(x, w, b, mean=None, var=None, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    if mean is None:
        y = ref_normalize(x, axes, eps)
    else:
        y = (x - mean.reshape(channel_shape(x))) / np.sqrt(var.reshape(channel_shape(x)) + eps)
    return affine(y, w, b, channel_shape(x))


def ref_instance_norm(x, w, b, mean=None, var=None, eps=1e-5):
    if mean is not None:  # running statistics: the same formula as eval batch norm
        return ref_batch_norm(x, w, b, mean, var, eps)
    return affine(ref_normalize(x, tuple(range(2, x.ndim)), eps), w, b, channel_shape(x))


def ref_group_norm(x, groups, w, b, eps=1e-5):
    y = ref_normalize(x.reshape(x.shape[0], groups, -1), (2,), eps).reshape(x.shape)
    return affine(y, w, b, channel_shape(x))


def ref_layer_norm(x, k, w, b, eps=1e-5):
    y = ref_normalize(x, tuple(range(x.ndim - k, x.ndim)), eps)
    return affine(y, w, b, x.shape[x.ndim - k:])


def ref_lrn(x, size, alpha, beta, k):
    y = np.empty_like(x)
    channels = x.shape[1]
    for c in range(channels):  # the definition, one channel at a time
        lo, hi = max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1)
        s = (x[:, lo:hi] ** 2).sum(axis=1)
        y[:, c] = x[:, c] / (k + alpha / size * s) ** beta
    return y


# ------------------------------------------------------------ the op table


def fixed_stats(c):
    """Running statistics for eval-mode cases: a function of C only."""
    return np.linspace(-0.5, 0.5, c), np.linspace(0.5, 2.0, c)


@dataclass
class NormCase:
    name: str
    shapes: st.SearchStrategy  # (x shape, extra config for call/ref)
    call: Callable  # (x, w, b, config) -> Tensor
    ref: Callable  # (x, w, b, config) -> ndarray
    param_shape: Callable | None  # (x shape, config) -> weight shape; None: no affine


def dims(lo, hi):
    return st.integers(lo, hi)


def spatial_shapes(min_spatial):
    """(N, C, *spatial) with at least ``min_spatial`` spatial elements."""
    return st.tuples(dims(1, 3), dims(1, 3), st.lists(dims(1, 3), min_size=1, max_size=2)).map(
        lambda t: (t[0], t[1], *t[2])
    ).filter(lambda s: int(np.prod(s[2:])) >= min_spatial)


def bn_shapes():
    two_d = st.tuples(dims(2, 4), dims(1, 3))
    return st.one_of(two_d, spatial_shapes(1)).filter(
        lambda s: s[0] * int(np.prod(s[2:])) >= 2).map(lambda s: (s, None))


def bn_eval(x, w, b, config):
    mean, var = fixed_stats(x.shape[1])
    rm, rv = (tg.tensor(a.astype(x.dtype), device=x.device) for a in (mean, var))
    return F.batch_norm(x, rm, rv, w, b, training=False)


def in_eval(x, w, b, config):
    mean, var = fixed_stats(x.shape[1])
    rm, rv = (tg.tensor(a.astype(x.dtype), device=x.device) for a in (mean, var))
    return F.instance_norm(x, rm, rv, w, b, use_input_stats=False)


group_shapes = st.tuples(dims(1, 3), dims(1, 3), dims(1, 3), dims(1, 3), dims(1, 3)).map(
    lambda t: ((t[0], t[1] * t[2], t[3], t[4]), t[1])  # (N, G·C/G, H, W), G
).filter(lambda s: s[0][1] // s[1] * s[0][2] * s[0][3] >= 2)

layer_shapes = st.tuples(
    st.lists(dims(1, 3), min_size=0, max_size=2), st.lists(dims(1, 3), min_size=1, max_size=2)
).map(lambda t: ((*t[0], *t[1]), len(t[1]))).filter(lambda s: np.prod(s[0][-s[1]:]) >= 2)

lrn_configs = st.tuples(dims(1, 6), st.floats(0.05, 1.0), st.floats(0.3, 1.0), st.floats(0.5, 2.0))
lrn_shapes = st.tuples(spatial_shapes(1), lrn_configs).map(lambda t: ((t[0][0], 2 + t[0][1] * 2,
                                                                      *t[0][2:]), t[1]))

CASES = [
    NormCase("batch_norm_train", bn_shapes(),
             lambda x, w, b, c: F.batch_norm(x, None, None, w, b, training=True),
             lambda x, w, b, c: ref_batch_norm(x, w, b), lambda s, c: (s[1],)),
    NormCase("batch_norm_eval", bn_shapes(), bn_eval,
             lambda x, w, b, c: ref_batch_norm(x, w, b, *fixed_stats(x.shape[1])),
             lambda s, c: (s[1],)),
    NormCase("instance_norm", spatial_shapes(2).map(lambda s: (s, None)),
             lambda x, w, b, c: F.instance_norm(x, weight=w, bias=b),
             lambda x, w, b, c: ref_instance_norm(x, w, b), lambda s, c: (s[1],)),
    NormCase("instance_norm_running", spatial_shapes(1).map(lambda s: (s, None)), in_eval,
             lambda x, w, b, c: ref_instance_norm(x, w, b, *fixed_stats(x.shape[1])),
             lambda s, c: (s[1],)),
    NormCase("group_norm", group_shapes, lambda x, w, b, g: F.group_norm(x, g, w, b),
             lambda x, w, b, g: ref_group_norm(x, g, w, b), lambda s, g: (s[1],)),
    NormCase("layer_norm", layer_shapes,
             lambda x, w, b, k: F.layer_norm(x, x.shape[x.ndim - k:], w, b),
             lambda x, w, b, k: ref_layer_norm(x, k, w, b), lambda s, k: s[len(s) - k:]),
    NormCase("local_response_norm", lrn_shapes,
             lambda x, w, b, c: F.local_response_norm(x, c[0], c[1], c[2], c[3]),
             lambda x, w, b, c: ref_lrn(x, *c), None),
]


def draw_inputs(data, case, dtype, affine_mode):
    """x, weight, bias (as NumPy arrays, or None) and the case config."""
    shape, config = data.draw(case.shapes, label="shape, config")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.standard_normal(shape).astype(dtype)
    w = b = None
    if case.param_shape is not None and affine_mode:
        pshape = case.param_shape(shape, config)
        w = rng.uniform(0.5, 1.5, pshape).astype(dtype)
        b = rng.standard_normal(pshape).astype(dtype)
    return x, w, b, config


def as_tensor(a, requires_grad=False, device="cpu"):
    return None if a is None else tg.tensor(a, requires_grad=requires_grad, device=device)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data(), affine_mode=st.booleans())
def test_forward_matches_numpy(case, dtype, data, affine_mode, device):
    x, w, b, config = draw_inputs(data, case, dtype, affine_mode)
    x_, w_, b_ = (as_tensor(a, device=device) for a in (x, w, b))
    y = case.call(x_, w_, b_, config)
    expected = case.ref(x.astype(np.float64), None if w is None else w.astype(np.float64),
                        None if b is None else b.astype(np.float64), config)
    assert y.dtype == dtype
    assert y.shape == x.shape
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(y.numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@given(data=st.data(), affine_mode=st.booleans())
def test_gradcheck(case, data, affine_mode, device):
    x, w, b, config = draw_inputs(data, case, np.float64, affine_mode)
    inputs = [as_tensor(a, True, device) for a in (x, w, b)]
    assert tg.gradcheck(lambda x, w, b: case.call(x, w, b, config), inputs)


@given(data=st.data())
def test_gradcheck_weight_only_and_bias_only(data):
    x, w, b, _ = draw_inputs(data, CASES[0], np.float64, True)
    X, W, B = as_tensor(x, True), as_tensor(w, True), as_tensor(b, True)
    assert tg.gradcheck(lambda x, w: F.batch_norm(x, None, None, w, None, training=True), [X, W])
    assert tg.gradcheck(lambda x, b: F.group_norm(x, 1, None, b), [X, B])


def raw_backward(y, g):
    """The op's own backward, before the engine casts gradients to the input dtypes."""
    return y.grad_fn.function.backward(y.grad_fn.ctx, g)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_float32_stays_float32_in_backward(case, device):
    shape, config = {
        "group_norm": ((2, 4, 3, 3), 2), "layer_norm": ((2, 3, 4), 2),
        "local_response_norm": ((2, 5, 3, 3), (3, 1e-4, 0.75, 1.0)),
    }.get(case.name, ((3, 4, 3, 3), None))
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True,
                  device=device)
    w = b = None
    if case.param_shape is not None:
        pshape = case.param_shape(shape, config)
        w = tg.ones(*pshape, requires_grad=True, device=device)
        b = tg.zeros(*pshape, requires_grad=True, device=device)
    y = case.call(x, w, b, config)
    assert y.dtype == np.float32
    g = tg.tensor(rng.standard_normal(shape).astype(np.float32), device=device)
    grads = raw_backward(y, g.data)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert all(g.dtype == np.float32 for g in grads if g is not None)


# ------------------------------------------------------------ running statistics


@given(data=st.data(), momentum=st.floats(0.0, 1.0))
def test_batch_norm_updates_running_stats_in_place(data, momentum, device):
    shape, _ = data.draw(bn_shapes())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    c = shape[1]
    rm0, rv0 = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    rm, rv = tg.tensor(rm0.copy(), device=device), tg.tensor(rv0.copy(), device=device)
    arrays = rm.data, rv.data
    F.batch_norm(tg.tensor(x, device=device), rm, rv, training=True, momentum=momentum)
    axes = (0,) + tuple(range(2, x.ndim))
    assert rm.data is arrays[0] and rv.data is arrays[1]  # updated in place
    np.testing.assert_allclose(rm.numpy(), (1 - momentum) * rm0 + momentum * x.mean(axis=axes),
                               rtol=1e-12, atol=1e-12)
    unbiased = x.var(axis=axes, ddof=1)
    np.testing.assert_allclose(rv.numpy(), (1 - momentum) * rv0 + momentum * unbiased,
                               rtol=1e-12, atol=1e-12)


def test_batch_norm_float32_running_stats_stay_float32(device):
    x = tg.randn(4, 3, 2, 2, device=device)
    rm, rv = tg.zeros(3, device=device), tg.ones(3, device=device)
    F.batch_norm(x, rm, rv, training=True)
    assert rm.dtype == np.float32 and rv.dtype == np.float32
    assert not np.allclose(rm.numpy(), 0.0)


def test_batch_norm_eval_leaves_running_stats_and_uses_them(device):
    x = np.arange(24.0).reshape(4, 6)
    rm, rv = tg.tensor(np.full(6, 2.0), device=device), tg.tensor(np.full(6, 4.0), device=device)
    y = F.batch_norm(tg.tensor(x, device=device), rm, rv, training=False, eps=0.0)
    np.testing.assert_allclose(y.numpy(), (x - 2.0) / 2.0)
    np.testing.assert_array_equal(rm.numpy(), 2.0)
    np.testing.assert_array_equal(rv.numpy(), 4.0)


def test_batch_norm_only_one_running_stat(device):
    x = np.random.default_rng(1).standard_normal((5, 2))
    rm = tg.zeros(2, dtype=tg.float64, device=device)
    F.batch_norm(tg.tensor(x, device=device), rm, None, training=True, momentum=1.0)
    np.testing.assert_allclose(rm.numpy(), x.mean(axis=0), rtol=1e-12)


def test_instance_norm_running_stats_average_over_the_batch(device):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 4, 5))
    rm = tg.zeros(2, dtype=tg.float64, device=device)
    rv = tg.ones(2, dtype=tg.float64, device=device)
    F.instance_norm(tg.tensor(x, device=device), rm, rv, momentum=0.3)
    per_mean = x.mean(axis=(2, 3))  # (N, C)
    per_var = x.var(axis=(2, 3), ddof=1)
    np.testing.assert_allclose(rm.numpy(), 0.7 * 0 + 0.3 * per_mean.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.7 * 1 + 0.3 * per_var.mean(axis=0), rtol=1e-12)


def test_backward_after_running_stats_change_uses_the_forward_statistics(device):
    """Eval-mode backward must not see a later in-place update of the running stats."""
    rng = np.random.default_rng(3)
    x = tg.tensor(rng.standard_normal((4, 3)), requires_grad=True, device=device)
    w = tg.ones(3, dtype=tg.float64, requires_grad=True, device=device)
    rm, rv = tg.zeros(3, dtype=tg.float64, device=device), tg.tensor(np.full(3, 4.0), device=device)
    y = F.batch_norm(x, rm, rv, w, training=False, eps=0.0)
    F.batch_norm(tg.tensor(rng.standard_normal((4, 3)), device=device), rm, rv, training=True,
                 momentum=1.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((4, 3), 0.5))
    np.testing.assert_allclose(w.grad.numpy(), (x.numpy() / 2.0).sum(axis=0), rtol=1e-12)


# ------------------------------------------------------------ errors


def bn_state():
    return tg.tensor(np.array([0.1, 0.2, 0.3])), tg.tensor(np.array([1.0, 2.0, 3.0]))


BN_ERRORS = [
    # (description, call(x4d, rm, rv), exception, message fragment)
    ("1-d input", lambda x, rm, rv: F.batch_norm(tg.ones(3, dtype=tg.float64), rm, rv,
                                                 training=True), ValueError, "(3,)"),
    ("weight shape", lambda x, rm, rv: F.batch_norm(x, rm, rv, tg.ones(4, dtype=tg.float64),
                                                    training=True), ValueError,
     "expected weight of shape (3,), got (4,)"),
    ("bias shape", lambda x, rm, rv: F.batch_norm(x, rm, rv, None, tg.ones(3, 1),
                                                  training=True), ValueError,
     "expected bias of shape (3,), got (3, 1)"),
    ("running_mean shape", lambda x, rm, rv: F.batch_norm(x, tg.zeros(2), rv, training=True),
     ValueError, "expected running_mean of shape (3,), got (2,)"),
    ("running_var shape", lambda x, rm, rv: F.batch_norm(x, rm, tg.zeros(5), training=True),
     ValueError, "expected running_var of shape (3,), got (5,)"),
    ("one value per channel", lambda x, rm, rv: F.batch_norm(x[:1, :, :1, :1], rm, rv,
                                                             training=True), ValueError,
     "Expected more than 1 value per channel when training, got input size (1, 3, 1, 1)"),
    ("one value per channel 2-d", lambda x, rm, rv: F.batch_norm(x[:1, :, 0, 0], rm, rv,
                                                                 training=True), ValueError,
     "Expected more than 1 value per channel when training, got input size (1, 3)"),
    ("weight dtype", lambda x, rm, rv: F.batch_norm(x, rm, rv, tg.ones(3), training=True),
     TypeError, "float32"),
    ("integer input", lambda x, rm, rv: F.batch_norm(tg.tensor(np.ones((2, 3), np.int64)),
                                                     rm, rv, training=True), TypeError, "int64"),
]


@pytest.mark.parametrize("call, exc, message", [c[1:] for c in BN_ERRORS],
                         ids=[c[0] for c in BN_ERRORS])
def test_batch_norm_errors_leave_running_stats_unchanged(call, exc, message, device):
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 3, 2, 2)), device=device)
    rm, rv = bn_state()
    before = rm.numpy().copy(), rv.numpy().copy()
    with pytest.raises(exc) as info:
        call(x, rm, rv)
    assert message in str(info.value)
    np.testing.assert_array_equal(rm.numpy(), before[0])
    np.testing.assert_array_equal(rv.numpy(), before[1])


def test_batch_norm_eval_needs_running_stats(device):
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(tg.randn(4, 3, device=device), None, None, training=False)


def test_instance_norm_errors(device):
    rm, rv = bn_state()
    before = rm.numpy().copy()
    with pytest.raises(ValueError, match=r"more than 1 spatial element.*\(2, 3, 1, 1\)"):
        F.instance_norm(tg.ones(2, 3, 1, 1, dtype=tg.float64, device=device), rm, rv)
    np.testing.assert_array_equal(rm.numpy(), before)
    with pytest.raises(ValueError, match=r"at least 3 dimensions, got shape \(2, 3\)"):
        F.instance_norm(tg.ones(2, 3, device=device))
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\), got \(2,\)"):
        F.instance_norm(tg.ones(2, 3, 4, device=device), weight=tg.ones(2, device=device))
    with pytest.raises(ValueError, match="required when use_input_stats=False"):
        F.instance_norm(tg.ones(2, 3, 4, device=device), use_input_stats=False)


def test_group_norm_errors(device):
    with pytest.raises(ValueError, match=r"channels \(6\) to be divisible by num_groups.*=4"):
        F.group_norm(tg.ones(2, 6, 3, 3, device=device), 4)
    with pytest.raises(ValueError, match=r"num_groups=0"):
        F.group_norm(tg.ones(2, 6, 3, 3, device=device), 0)
    with pytest.raises(ValueError, match=r"expected bias of shape \(6,\), got \(3,\)"):
        F.group_norm(tg.ones(2, 6, 3, 3, device=device), 3, bias=tg.ones(3, device=device))


def test_layer_norm_errors(device):
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\) does not match.*\(2, 3\)"):
        F.layer_norm(tg.ones(2, 3, device=device), 4)
    with pytest.raises(ValueError, match=r"normalized_shape \(2, 3, 4\) does not match"):
        F.layer_norm(tg.ones(3, 4, device=device), (2, 3, 4))
    with pytest.raises(ValueError, match=r"expected weight of shape \(3, 4\), got \(4,\)"):
        F.layer_norm(tg.ones(2, 3, 4, device=device), (3, 4), weight=tg.ones(4, device=device))


def test_local_response_norm_errors(device):
    with pytest.raises(ValueError, match=r"at least 3 dimensions, got shape \(2, 5\)"):
        F.local_response_norm(tg.ones(2, 5, device=device), 3)
    with pytest.raises(ValueError, match="size must be a positive int, got 0"):
        F.local_response_norm(tg.ones(2, 5, 3, device=device), 0)


# ------------------------------------------------------------ against PyTorch, if present


def test_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6, 3, 5))
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    rm, rv = tg.zeros(6, dtype=tg.float64), tg.ones(6, dtype=tg.float64)
    trm, trv = torch.zeros(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
    pairs = [
        (lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True),
         lambda x, w, b: tf.batch_norm(x, trm, trv, w, b, training=True)),
        (lambda x, w, b: F.group_norm(x, 3, w, b), lambda x, w, b: tf.group_norm(x, 3, w, b)),
        (lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
         lambda x, w, b: tf.instance_norm(x, weight=w, bias=b)),
        (lambda x, w, b: F.local_response_norm(x, 3) * w.sum() + b.sum(),
         lambda x, w, b: tf.local_response_norm(x, 3) * w.sum() + b.sum()),
    ]
    for ours, theirs in pairs:
        args = [tg.tensor(a, requires_grad=True) for a in (x, w, b)]
        targs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
        y, ty = ours(*args), theirs(*targs)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        for a, ta in zip(args, targs):
            np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-12)


# ------------------------------------------------------------ double backward
# The fused Normalize/LRN backwards stay array code; create_graph differentiates the
# ops' definitions as tensor ops (Function.composite). Checked against finite differences.


@settings(max_examples=4)
@given(data=st.data())
def test_normalization_double_backward(data, device):
    n = 2
    c = data.draw(st.sampled_from([2, 4]))
    spatial = data.draw(st.sampled_from([(), (3,), (1, 2)]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = tg.tensor(rng.standard_normal((n, c) + spatial), requires_grad=True, device=device)
    w = tg.tensor(rng.standard_normal(c), requires_grad=True, device=device)
    b = tg.tensor(rng.standard_normal(c), requires_grad=True, device=device)
    rm = tg.zeros(c, dtype=tg.float64, device=device)
    rv = tg.ones(c, dtype=tg.float64, device=device) * 1.5
    square = lambda y: y * y  # noqa: E731 - so that second derivatives reach every input
    assert tg.gradgradcheck(
        lambda a, g, h: square(F.batch_norm(a, rm, rv, g, h, training=True)), [x, w, b])
    assert tg.gradgradcheck(
        lambda a, g, h: square(F.batch_norm(a, rm, rv, g, h, training=False)), [x, w, b])
    assert tg.gradgradcheck(lambda a, g, h: square(F.group_norm(a, 2, g, h)), [x, w, b])
    lw = tg.tensor(rng.standard_normal(x.shape[1:]), requires_grad=True, device=device)
    assert tg.gradgradcheck(lambda a, g: square(F.layer_norm(a, x.shape[1:], g, g * 0.5)),
                            [x, lw])
    if spatial:
        assert tg.gradgradcheck(lambda a, g, h: square(F.instance_norm(a, weight=g, bias=h)),
                                [x, w, b])
        assert tg.gradgradcheck(lambda a: F.local_response_norm(a, 3, alpha=0.5, k=2.0),
                                [x])
