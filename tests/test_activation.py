"""leaky_relu, elu, gelu (exact and tanh) and the vectorised erfc behind GELU: values
against Python's math.erfc and the closed forms, gradients by float64 gradcheck over
hypothesis-drawn shapes, PyTorch's gradients at the kinks, dtypes and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
import tensorgrad.functional as F
from tensorgrad.ops.activation import erfc
from tensorgrad.testing import check_gradients, shapes

# ------------------------------------------------------------------ erfc


def math_erfc(a: np.ndarray) -> np.ndarray:
    """The reference: Python's math.erfc, one element at a time, in float64."""
    return np.array([math.erfc(float(v)) for v in a.ravel()]).reshape(a.shape)


def erfc_points() -> np.ndarray:
    rng = np.random.default_rng(1)
    edges = [0.0, 0.25, 0.84375, 1.25, 1 / 0.35, 6.0, 10.0, 26.0]  # the pieces' borders
    near = [np.nextafter(e, s) for e in edges for s in (-np.inf, np.inf)]
    return np.concatenate([np.linspace(-7, 27, 3401), rng.uniform(-6, 6, 2000),
                           rng.standard_normal(1000) * 0.3, edges, near, np.negative(near)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erfc_is_within_a_few_units_in_the_last_place(dtype):
    x = erfc_points().astype(dtype)
    got = erfc(x)
    assert got.dtype == dtype
    want = math_erfc(x)
    normal = want > np.finfo(dtype).tiny  # below, the result is subnormal or 0
    ulps = np.abs(got[normal] - want[normal]) / (want[normal] * np.finfo(dtype).eps)
    assert ulps.max() <= 4, (x[normal][ulps.argmax()], ulps.max())
    # in the subnormal tail, the absolute error is within a few of the smallest steps
    tail = ~normal
    assert np.all(np.abs(got[tail] - want[tail]) <= 8 * np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_erfc_special_values(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 30.0, -30.0], dtype)
    # no overflow, division or invalid-value warnings on the way (underflow to 0 is fine)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        got = erfc(x)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.array([1, 1, 0, 2, np.nan, 0, 2], dtype))


# ------------------------------------------------------------------ values


def gelu_reference(x: np.ndarray) -> np.ndarray:
    """x·Φ(x) with Φ(x) = erfc(−x/√2)/2, from math.erfc."""
    return x * 0.5 * math_erfc(-x / math.sqrt(2))


def test_gelu_matches_known_values(device):
    # Φ(±1), Φ(±3): the standard normal table; PyTorch prints gelu([-3, -1, 0, 1, 3]) as
    # [-0.0040, -0.1587, 0.0000, 0.8413, 2.9960]
    x = tg.tensor(np.array([-3.0, -1.0, 0.0, 1.0, 3.0]), device=device)
    want = [-3 * 0.0013498980316300946, -0.15865525393145707, 0.0, 0.8413447460685429,
            3 * 0.9986501019683699]
    np.testing.assert_allclose(F.gelu(x).numpy(), want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_matches_the_erf_formula(dtype, device):
    x = np.concatenate([np.linspace(-12, 12, 2401), [1e-30, -1e-30]]).astype(dtype)
    got = F.gelu(tg.tensor(x, device=device))
    assert got.dtype == dtype
    want = gelu_reference(x.astype(np.float64))
    # Relative accuracy in the left tail too (Φ comes from erfc, not from 1 + erf), up to
    # the problem's own conditioning: rounding x/√2 alone moves Φ(x) by about x²·eps.
    eps = np.finfo(dtype).eps
    x64 = x.astype(np.float64)
    assert np.all(np.abs(got.numpy() - want) <= (4 + 2 * x64 * x64) * eps * np.abs(want))
    # where that is small, PyTorch's 1e-6 (float32) / 1e-14 (float64) relative agreement
    core = np.abs(x64) <= 3
    np.testing.assert_allclose(got.numpy()[core], want[core],
                               rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_gelu_tanh_matches_its_formula(device):
    x = np.linspace(-8, 8, 1601)
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    want = 0.5 * x * (1 + np.tanh(u))
    # 1 + tanh(u) cancels for u << 0 (in PyTorch's formula too): an absolute tolerance
    np.testing.assert_allclose(F.gelu(tg.tensor(x, device=device), approximate="tanh").numpy(),
                               want,
                               rtol=1e-14, atol=1e-15)
    # the approximation is within 1e-3 of the exact GELU (Hendrycks & Gimpel)
    assert np.abs(want - gelu_reference(x)).max() < 1e-3


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_elu_matches_its_formula(alpha, device):
    x = np.linspace(-30, 5, 701)
    want = np.where(x > 0, x, alpha * np.expm1(x))
    np.testing.assert_allclose(F.elu(tg.tensor(x, device=device), alpha).numpy(), want, rtol=1e-15)
    tiny = tg.tensor(np.array([-1e-10]), device=device)  # α(eˣ − 1) ≈ αx: expm1 keeps the digits
    np.testing.assert_allclose(F.elu(tiny, alpha).numpy(), [alpha * -1e-10], rtol=1e-9)


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5, 1.5])
def test_leaky_relu_matches_its_formula(slope, device):
    x = np.linspace(-4, 4, 81)
    want = np.where(x > 0, x, slope * x)
    np.testing.assert_array_equal(F.leaky_relu(tg.tensor(x, device=device), slope).numpy(), want)
    assert F.leaky_relu.__defaults__[0] == 0.01  # PyTorch's default slope


# ------------------------------------------------------------------ gradients

CASES = {
    "gelu": (lambda x: F.gelu(x), ()),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ()),
    "elu": (lambda x: F.elu(x, 0.7), (0.0,)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), (0.0,)),
}


@pytest.mark.parametrize("name", CASES)
@given(data=st.data(), shape=shapes(min_dims=0, max_dims=3))
def test_gradcheck(name, data, shape):
    fn, avoid = CASES[name]
    assert check_gradients(fn, data, [shape], min_value=-5.0, max_value=5.0, avoid=avoid)


def test_gelu_gradient_matches_its_closed_form(device):
    x = np.linspace(-10, 10, 201)
    t = tg.tensor(x, requires_grad=True, device=device)
    F.gelu(t).sum().backward()
    pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(t.grad.numpy(), 0.5 * math_erfc(-x / math.sqrt(2)) + x * pdf,
                               rtol=1e-13, atol=1e-300)


def test_gradients_at_the_kinks_are_pytorchs(device):
    # PyTorch: leaky_relu's gradient at 0 is the slope, elu's is alpha
    for fn, want in [(lambda t: F.leaky_relu(t, 0.3), 0.3), (lambda t: F.elu(t, 0.7), 0.7)]:
        t = tg.tensor(np.array([0.0]), requires_grad=True, device=device)
        fn(t).sum().backward()
        assert t.grad.item() == want


@pytest.mark.parametrize("fn", [lambda t: F.gelu(t), lambda t: F.gelu(t, approximate="tanh"),
                                lambda t: F.elu(t), lambda t: F.leaky_relu(t)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_dtype_is_kept_forward_and_backward(fn, dtype, device):
    t = tg.tensor(np.linspace(-3, 3, 7).astype(dtype), requires_grad=True, device=device)
    out = fn(t)
    assert out.dtype == dtype
    out.sum().backward()
    assert t.grad.dtype == dtype and np.all(np.isfinite(t.grad.numpy()))


def test_large_inputs_stay_finite(device):
    x = tg.tensor(np.array([-1e4, -40.0, 40.0, 1e4]), requires_grad=True, device=device)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = F.gelu(x)
        y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [-0.0, -0.0, 40.0, 1e4])
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0, 1.0])


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.gelu(tg.randn(3), approximate="fast"), ValueError, "'none' or 'tanh'"),
    (lambda: F.gelu(tg.tensor([1, 2])), TypeError, "floating point, got dtype int64"),
    (lambda: F.elu(tg.tensor([1, 2])), TypeError, "floating point"),
    (lambda: F.leaky_relu(tg.randn(3), "0.1"), TypeError, "negative_slope must be a number"),
    (lambda: F.elu(tg.randn(3), alpha=None), TypeError, "alpha must be a number"),
    (lambda: F.leaky_relu([1.0, 2.0]), TypeError, "must be a Tensor"),
])
def test_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()
