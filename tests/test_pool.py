"""max_pool2d, avg_pool2d, adaptive_avg_pool2d: forward against naive per-window loops
written here (PyTorch's boundary rules spelled out), gradcheck over hypothesis-drawn
geometries (max pooling on distinct values, so no ties), dtypes and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
import tensorgrad.functional as F
from tensorgrad.testing import pool2d_params


def naive_out(size, k, s, p, ceil_mode):
    rounding = math.ceil if ceil_mode else math.floor
    out = rounding((size + 2 * p - k) / s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # last window must start in input/left pad
        out -= 1
    return out


def naive_pool(x, kernel, stride, padding, ceil_mode, mode, count_include_pad=True):
    """PyTorch's CPU kernel, one window at a time."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = naive_out(h, kh, sh, ph, ceil_mode), naive_out(w, kw, sw, pw, ceil_mode)
    y = np.zeros((n, c, ho, wo), dtype=x.dtype)
    for p in range(ho):
        for q in range(wo):
            h0, w0 = p * sh - ph, q * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)  # windows end in the padding
            pool_size = (h1 - h0) * (w1 - w0)
            h0c, w0c, h1c, w1c = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            window = x[:, :, h0c:h1c, w0c:w1c]
            if mode == "max":
                y[:, :, p, q] = window.max(axis=(2, 3))
            else:
                divisor = pool_size if count_include_pad else (h1c - h0c) * (w1c - w0c)
                y[:, :, p, q] = window.sum(axis=(2, 3)) / divisor
    return y


def naive_adaptive_avg(x, out):
    n, c, h, w = x.shape
    oh, ow = out
    y = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            h0, h1 = (i * h) // oh, math.ceil((i + 1) * h / oh)
            w0, w1 = (j * w) // ow, math.ceil((j + 1) * w / ow)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def _distinct(shape, seed, dtype=np.float64):
    """Distinct values (a shuffled range, spaced well beyond gradcheck's eps): no ties."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0).astype(dtype)


# ------------------------------------------------------------------ forward


@given(p=pool2d_params(), seed=st.integers(0, 2**32 - 1))
def test_max_pool_forward(p, seed, device):
    x = np.random.default_rng(seed).standard_normal(p.input_shape)
    y = F.max_pool2d(tg.tensor(x, device=device), **p.max_pool_kwargs)
    expected = naive_pool(x, p.kernel_size, p.stride, p.padding, p.ceil_mode, "max")
    assert y.shape == expected.shape == p.output_shape
    np.testing.assert_array_equal(y.numpy(), expected)


@given(p=pool2d_params(), seed=st.integers(0, 2**32 - 1))
def test_avg_pool_forward(p, seed, device):
    x = np.random.default_rng(seed).standard_normal(p.input_shape)
    y = F.avg_pool2d(tg.tensor(x, device=device), **p.avg_pool_kwargs)
    expected = naive_pool(x, p.kernel_size, p.stride, p.padding, p.ceil_mode, "avg",
                          p.count_include_pad)
    assert y.shape == expected.shape == p.output_shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


sizes = st.integers(1, 9)
out_sizes = st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5) | st.none(),
                                                   st.integers(1, 5) | st.none()))


@given(h=sizes, w=sizes, output_size=out_sizes, seed=st.integers(0, 2**32 - 1))
def test_adaptive_avg_pool_forward(h, w, output_size, seed, device):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    y = F.adaptive_avg_pool2d(tg.tensor(x, device=device), output_size)
    pair = (output_size,) * 2 if isinstance(output_size, int) else output_size
    out = tuple(n if o is None else o for o, n in zip(pair, (h, w)))
    np.testing.assert_allclose(y.numpy(), naive_adaptive_avg(x, out), rtol=1e-12, atol=1e-12)


def test_unbatched_input_pools_like_a_batch_of_one(device):
    x = np.random.default_rng(0).standard_normal((3, 5, 6))
    for pool in (lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 3, 2, 1),
                 lambda t: F.adaptive_avg_pool2d(t, (2, 4))):
        np.testing.assert_array_equal(pool(tg.tensor(x, device=device)).numpy(),
                                      pool(tg.tensor(x[None], device=device)).numpy()[0])


def test_max_pool_propagates_nan_like_torch(device):
    x = np.array([[[[1.0, np.nan, 3.0, 0.0], [np.nan, 5.0, 2.0, 1.0]]]])
    y = F.max_pool2d(tg.tensor(x, device=device), (1, 2)).numpy()
    np.testing.assert_array_equal(y, [[[[np.nan, 3.0], [np.nan, 2.0]]]])


# ---------------------------------------------------------------- gradients


@settings(max_examples=20)
@given(p=pool2d_params(max_size=6), seed=st.integers(0, 2**32 - 1))
def test_max_pool_gradcheck(p, seed, device):
    x = tg.tensor(_distinct(p.input_shape, seed), requires_grad=True, device=device)
    assert tg.gradcheck(lambda t: F.max_pool2d(t, **p.max_pool_kwargs), (x,))


@pytest.mark.parametrize("shape, kernel, stride, padding, ceil_mode", [
    ((1, 2, 1, 1), (3, 3), (2, 2), (1, 1), False),  # phases of padding only
    ((2, 1, 7, 5), (2, 2), (3, 3), (1, 0), True),   # stride > kernel: cells no window reads
    ((1, 1, 4, 9), (3, 2), (2, 1), (1, 1), True),   # last window overhangs the padding
    ((1, 3, 6, 6), (4, 3), (1, 3), (2, 0), False),  # stride 1 on one axis, wide kernel
])
def test_max_pool_routes_each_window_gradient_to_its_maximum(shape, kernel, stride, padding,
                                                              ceil_mode, device):
    """Edge geometries of the stride-phase layout, forward and backward, against one loop
    per window that adds the window's gradient to its (unique) maximum."""
    x = _distinct(shape, 5) - math.prod(shape)  # all negative: padding must not read as 0
    y = naive_pool(x, kernel, stride, padding, ceil_mode, "max")
    gy = np.random.default_rng(6).standard_normal(y.shape)
    expected = np.zeros_like(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    for n, c, p, q in np.ndindex(*y.shape):
        rows = range(max(p * sh - ph, 0), min(p * sh - ph + kh, shape[2]))
        cols = range(max(q * sw - pw, 0), min(q * sw - pw + kw, shape[3]))
        r, s = max(((r, s) for r in rows for s in cols), key=lambda rs: x[n, c, rs[0], rs[1]])
        expected[n, c, r, s] += gy[n, c, p, q]
    t = tg.tensor(x, requires_grad=True, device=device)
    out = F.max_pool2d(t, kernel, stride, padding, ceil_mode)
    out.backward(tg.tensor(gy, device=device))
    np.testing.assert_array_equal(out.numpy(), y)
    np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_max_pool_gradient_goes_to_the_first_maximum_once_per_window(device):
    """Overlapping windows sharing one maximum each send it their gradient."""
    x = tg.tensor(np.array([[[[0.0, 5.0, 1.0, 0.0, 2.0]]]]), requires_grad=True, device=device)
    F.max_pool2d(x, (1, 3), stride=1).sum().backward()  # windows: [0,5,1] [5,1,0] [1,0,2]
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0.0, 2.0, 0.0, 0.0, 1.0]]]])
    ties = tg.tensor(np.array([[[[3.0, 3.0]]]]), requires_grad=True, device=device)
    F.max_pool2d(ties, (1, 2)).sum().backward()
    np.testing.assert_array_equal(ties.grad.numpy(), [[[[1.0, 0.0]]]])


@settings(max_examples=20)
@given(p=pool2d_params(max_size=6), seed=st.integers(0, 2**32 - 1))
def test_avg_pool_gradcheck(p, seed, device):
    x = tg.tensor(np.random.default_rng(seed).standard_normal(p.input_shape),
                  requires_grad=True, device=device)
    assert tg.gradcheck(lambda t: F.avg_pool2d(t, **p.avg_pool_kwargs), (x,))


@settings(max_examples=20)
@given(h=st.integers(1, 6), w=st.integers(1, 6), output_size=out_sizes,
       seed=st.integers(0, 2**32 - 1))
def test_adaptive_avg_pool_gradcheck(h, w, output_size, seed, device):
    x = tg.tensor(np.random.default_rng(seed).standard_normal((2, 2, h, w)),
                  requires_grad=True, device=device)
    assert tg.gradcheck(lambda t: F.adaptive_avg_pool2d(t, output_size), (x,))


@pytest.mark.parametrize("pool", [
    lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
    lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda t: F.adaptive_avg_pool2d(t, 3),
    lambda t: F.adaptive_avg_pool2d(t, 1),
], ids=["max", "avg", "adaptive", "global"])
def test_float32_stays_float32(pool, device):
    x = tg.tensor(_distinct((2, 3, 7, 7), 0, np.float32), requires_grad=True, device=device)
    y = pool(x)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == np.float32


# ------------------------------------------------------------------- errors

ERRORS = [
    (lambda x: F.max_pool2d(x, 3, padding=2), ValueError,
     "padding should be non-negative and at most half of the kernel size, but got "
     "padding=(2, 2), kernel_size=(3, 3)"),
    (lambda x: F.avg_pool2d(x, 2, padding=-1), ValueError, "padding=(-1, -1)"),
    (lambda x: F.max_pool2d(x, 6), ValueError,
     "input (1, 2, 5, 5) is too small for kernel_size=(6, 6)"),
    (lambda x: F.avg_pool2d(x, 2, stride=0), ValueError, "stride must be positive, got (0, 0)"),
    (lambda x: F.max_pool2d(x, 0), ValueError, "kernel_size must be positive, got (0, 0)"),
    (lambda x: F.max_pool2d(x, (2, 2, 2)), TypeError,
     "kernel_size must be an int or a pair of ints"),
    (lambda x: F.max_pool2d(x.reshape(2, 25), 2), ValueError,
     "3-D (C, H, W) or 4-D (N, C, H, W) input, got shape (2, 25)"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), ValueError, "output_size must be positive, got 0"),
    (lambda x: F.adaptive_avg_pool2d(x, (2, 2, 2)), TypeError,
     "output_size must be an int or a pair"),
    (lambda x: F.adaptive_avg_pool2d(x.reshape(50), 2), ValueError, "got shape (50,)"),
]


@pytest.mark.parametrize("call, exc, message", ERRORS, ids=[e[2][:40] for e in ERRORS])
def test_errors_name_the_problem(call, exc, message, device):
    x = tg.zeros(1, 2, 5, 5, device=device)
    with pytest.raises(exc) as info:
        call(x)
    assert message in str(info.value)


def test_integer_input_is_a_type_error(device):
    x = tg.tensor(np.zeros((1, 1, 4, 4), dtype=np.int64), device=device)
    with pytest.raises(TypeError, match="floating-point input, got dtype int64"):
        F.max_pool2d(x, 2)


def test_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    x = _distinct((2, 3, 9, 8), 3)
    g = np.random.default_rng(4).standard_normal
    cases = [("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
             ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                 count_include_pad=False)),
             ("adaptive_avg_pool2d", dict(output_size=(4, 3)))]
    for name, kwargs in cases:
        tx, X = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
        ty, y = getattr(torch.nn.functional, name)(tx, **kwargs), getattr(F, name)(X, **kwargs)
        gy = g(tuple(ty.shape))
        ty.backward(torch.tensor(gy))
        y.backward(tg.tensor(gy))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(X.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ double backward


@settings(max_examples=10)
@given(p=pool2d_params(max_size=5, max_channels=2), seed=st.integers(0, 2**32 - 1))
def test_pooling_double_backward(p, seed, device):
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.permutation(math.prod(p.input_shape)).reshape(p.input_shape) * 0.1
                  + rng.uniform(0, 0.01, p.input_shape),  # no ties
                  requires_grad=True, device=device)
    # squared, so the second derivative also goes through the pooling itself
    assert tg.gradgradcheck(lambda a: F.max_pool2d(a, **p.max_pool_kwargs) ** 2, [x])
    assert tg.gradgradcheck(lambda a: F.avg_pool2d(a, **p.avg_pool_kwargs) ** 2, [x])


@pytest.mark.parametrize("out", [(1, 1), (2, 3), (3, 2)])
def test_adaptive_avg_pool_double_backward(out, device):
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 2, 6, 5)), requires_grad=True,
                  device=device)
    assert tg.gradgradcheck(lambda a: F.adaptive_avg_pool2d(a, out) ** 2, [x])


def test_max_pool_refuses_pytorchs_positional_dilation():
    # F.max_pool2d(x, 2, 2, 0, 1) is PyTorch's dilation=1; read as ceil_mode it would
    # silently change the output size (5x5 -> 3x3 instead of 2x2)
    x = tg.randn(1, 1, 5, 5)
    with pytest.raises(TypeError, match="ceil_mode must be a bool.*dilation"):
        F.max_pool2d(x, 2, 2, 0, 1)
    assert F.max_pool2d(x, 2, 2, 0, True).shape == (1, 1, 3, 3)
    assert F.max_pool2d(x, 2, 2, 0).shape == (1, 1, 2, 2)
