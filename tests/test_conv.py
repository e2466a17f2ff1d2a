"""conv2d: forward against a naive loop written here, gradients by gradcheck over
hypothesis-drawn geometries, dtype preservation, and every argument error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
import tensorgrad.functional as F
from tensorgrad.testing import conv2d_params


def naive_conv2d(x, w, b, stride, padding, dilation, groups):
    """The definition, one output element at a time (tiny sizes only)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    y = np.zeros((n, o, ho, wo), dtype=x.dtype)
    for b_ in range(n):
        for oc in range(o):
            g = oc // og
            for p in range(ho):
                for q in range(wo):
                    acc = 0.0 if b is None else b[oc]
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                acc += (w[oc, ci, i, j]
                                        * xp[b_, g * cg + ci, p * sh + i * dh, q * sw + j * dw])
                    y[b_, oc, p, q] = acc
    return y


def _draw_inputs(data, p, with_bias, dtype=np.float64, requires_grad=True, device="cpu"):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))

    def t(shape):
        return tg.tensor(rng.standard_normal(shape).astype(dtype), device=device,
                         requires_grad=requires_grad)

    return t(p.input_shape), t(p.weight_shape), t(p.out_channels) if with_bias else None


@given(p=conv2d_params(), with_bias=st.booleans(), data=st.data())
def test_forward_matches_naive_loop(p, with_bias, data, device):
    x, w, b = _draw_inputs(data, p, with_bias, requires_grad=False, device=device)
    y = F.conv2d(x, w, b, **p.kwargs)
    expected = naive_conv2d(x.numpy(), w.numpy(), None if b is None else b.numpy(),
                            p.stride, p.padding, p.dilation, p.groups)
    assert y.shape == expected.shape == p.output_shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=20)
@given(p=conv2d_params(max_batch=2, max_channels=4, max_size=5), with_bias=st.booleans(),
       data=st.data())
def test_gradcheck(p, with_bias, data, device):
    x, w, b = _draw_inputs(data, p, with_bias, device=device)
    inputs = (x, w) if b is None else (x, w, b)
    assert tg.gradcheck(lambda *t: F.conv2d(*t, **p.kwargs), inputs)


@settings(max_examples=15)
@given(groups=st.integers(1, 3), data=st.data())
def test_pointwise_fast_path(groups, data, device):
    """1x1, stride 1, no padding: the plain-matmul path, forward and gradients."""
    cin = groups * data.draw(st.integers(1, 2))
    cout = groups * data.draw(st.integers(1, 2))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = tg.tensor(rng.standard_normal((2, cin, 3, 4)), requires_grad=True, device=device)
    w = tg.tensor(rng.standard_normal((cout, cin // groups, 1, 1)), requires_grad=True,
                  device=device)
    b = tg.tensor(rng.standard_normal(cout), requires_grad=True, device=device)
    y = F.conv2d(x, w, b, groups=groups)
    expected = naive_conv2d(x.numpy(), w.numpy(), b.numpy(), (1, 1), (0, 0), (1, 1), groups)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)
    assert tg.gradcheck(lambda *t: F.conv2d(*t, groups=groups), (x, w, b))


def test_float32_stays_float32(device):
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((2, 4, 6, 6)).astype(np.float32), requires_grad=True,
                  device=device)
    w = tg.tensor(rng.standard_normal((6, 2, 3, 3)).astype(np.float32), requires_grad=True,
                  device=device)
    b = tg.tensor(rng.standard_normal(6).astype(np.float32), requires_grad=True, device=device)
    for conv in (lambda: F.conv2d(x, w, b, padding=1, groups=2),
                 lambda: F.conv2d(x, w[:, :, :1, :1], b, groups=2)):  # also the 1x1 path
        x.grad = w.grad = b.grad = None
        y = conv()
        y.sum().backward()
        assert y.dtype == np.float32
        assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    expected = naive_conv2d(x.numpy().astype(np.float64), w.numpy().astype(np.float64),
                            b.numpy().astype(np.float64), (1, 1), (1, 1), (1, 1), 2)
    np.testing.assert_allclose(F.conv2d(x, w, b, padding=1, groups=2).numpy(), expected,
                               rtol=1e-4, atol=1e-4)


def test_gradients_of_only_some_inputs(device):
    """A frozen weight or input gets no gradient, and the other one is still right."""
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True, device=device)
    w = tg.tensor(rng.standard_normal((3, 2, 3, 3)), device=device)
    assert tg.gradcheck(lambda t: F.conv2d(t, w, stride=2, padding=1), (x,))
    x2 = tg.tensor(rng.standard_normal((1, 2, 5, 5)), device=device)
    w2 = tg.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True, device=device)
    assert tg.gradcheck(lambda t: F.conv2d(x2, t, stride=2, padding=1), (w2,))
    F.conv2d(x2, w2).sum().backward()
    assert x2.grad is None


def _t(*shape, dtype=np.float32):
    return tg.tensor(np.zeros(shape, dtype=dtype))


ERRORS = [
    # (input, weight, bias, kwargs, exception, message fragment)
    ((8, 4, 32, 32), (16, 3, 3, 3), None, {}, ValueError,
     "conv2d: weight has 3 input channels but input has 4 (input (8, 4, 32, 32), "
     "weight (16, 3, 3, 3), groups=1)"),
    ((32, 32), (16, 4, 3, 3), None, {}, ValueError,
     "4-D input (N, C, H, W) or a 3-D one (C, H, W), got shape (32, 32)"),
    ((1, 4, 8, 8), (16, 4, 3), None, {}, ValueError, "4-D weight"),
    ((1, 6, 8, 8), (6, 2, 3, 3), None, {"groups": 4}, ValueError,
     "input channels 6 are not divisible by groups=4"),
    ((1, 6, 8, 8), (5, 3, 3, 3), None, {"groups": 2}, ValueError,
     "weight has 5 output channels, not divisible by groups=2"),
    ((1, 6, 8, 8), (4, 2, 3, 3), None, {"groups": 2}, ValueError,
     "weight has 2 input channels per group but input has 6"),
    ((1, 4, 8, 8), (16, 4, 3, 3), (8,), {}, ValueError, "bias has shape (8,), expected (16,)"),
    ((1, 4, 2, 2), (16, 4, 3, 3), None, {}, ValueError,
     "spans 3x3, larger than the padded input 2x2"),
    ((1, 4, 5, 5), (16, 4, 3, 3), None, {"dilation": 3}, ValueError,
     "spans 7x7, larger than the padded input 5x5"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"stride": 0}, ValueError,
     "stride must be positive, got (0, 0)"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"dilation": (1, 0)}, ValueError,
     "dilation must be positive, got (1, 0)"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"padding": -1}, ValueError,
     "padding must be non-negative, got (-1, -1)"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"groups": 0}, ValueError, "groups must be a positive int"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"stride": (1, 2, 3)}, TypeError,
     "stride must be an int or a pair of ints"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"padding": "full"}, ValueError,
     "padding must be an int, a pair of ints, 'same' or 'valid', got 'full'"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"padding": "same", "stride": 2}, ValueError,
     "padding='same' is not supported for strided convolutions"),
    ((1, 4, 8, 8), (16, 4, 3, 3), None, {"padding": (1.5, 1)}, TypeError,
     "padding must be an int or a pair of ints"),
]


@pytest.mark.parametrize("xs, ws, bs, kwargs, exc, message", ERRORS,
                         ids=[e[-1][:40] for e in ERRORS])
def test_errors_name_the_problem(xs, ws, bs, kwargs, exc, message):
    x, w = _t(*xs), _t(*ws)
    b = None if bs is None else _t(*bs)
    with pytest.raises(exc) as info:
        F.conv2d(x, w, b, **kwargs)
    assert message in str(info.value)


def test_dtype_mismatch_is_a_type_error():
    with pytest.raises(TypeError, match="input has dtype float32 but weight has dtype float64"):
        F.conv2d(_t(1, 2, 4, 4), _t(3, 2, 3, 3, dtype=np.float64))
    with pytest.raises(TypeError, match="input has dtype float64 but bias has dtype float32"):
        F.conv2d(_t(1, 2, 4, 4, dtype=np.float64), _t(3, 2, 3, 3, dtype=np.float64), _t(3))


def test_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 9, 7))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    conf = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **conf)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    X, W, B = (tg.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(X, W, B, **conf)
    y.backward(tg.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in ((X, tx), (W, tw), (B, tb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_backward_never_writes_into_the_input(device):
    """A 1×1 output makes the im2col view contiguous already; backward overwrites the
    columns with their gradient, which must not reach the saved input."""
    x = tg.tensor(np.array([[[[3.0]]]]), requires_grad=True, device=device)
    w = tg.tensor(np.array([[[[2.0]]]]), requires_grad=True, device=device)
    y = F.conv2d(x, w, stride=(1, 2))
    y.sum().backward()
    assert x.data[0, 0, 0, 0] == 3.0
    assert w.grad.item() == 3.0 and x.grad.item() == 2.0


def test_unbatched_input_is_a_batch_of_one(device):
    x, w = tg.randn(3, 6, 6, device=device), tg.randn(4, 3, 3, 3, device=device)
    y = F.conv2d(x, w, padding=1)
    assert y.shape == (4, 6, 6)
    np.testing.assert_allclose(y.numpy(), F.conv2d(x.unsqueeze(0), w, padding=1).numpy()[0],
                               rtol=1e-6)


@given(k=st.integers(1, 4), d=st.integers(1, 2), size=st.integers(4, 7))
@settings(max_examples=15)
def test_same_padding_keeps_the_size_with_the_extra_zero_at_the_end(k, d, size, device):
    """'same' pads d(k-1) in total, the odd one at the bottom/right (PyTorch's rule);
    checked against explicit zero padding and a 'valid' convolution."""
    rng = np.random.default_rng(k * 10 + d)
    x = rng.standard_normal((1, 2, size, size + 1))
    w = rng.standard_normal((3, 2, k, k))
    total = d * (k - 1)
    before, after = total // 2, total - total // 2
    xpad = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)))
    expected = F.conv2d(tg.tensor(xpad, device=device), tg.tensor(w, device=device), dilation=d,
                        padding="valid").numpy()
    xt = tg.tensor(x, requires_grad=True, device=device)
    got = F.conv2d(xt, tg.tensor(w, device=device), dilation=d, padding="same")
    assert got.shape == (1, 3, size, size + 1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert tg.gradcheck(lambda t: F.conv2d(t, tg.tensor(w, device=device), dilation=d,
                                           padding="same"), [xt])


@pytest.mark.parametrize("c, o", [(2, 5), (5, 2)])
@pytest.mark.parametrize("dilation", [1, 2])
def test_weight_gradient_alone_matches_finite_differences(c, o, dilation, device):
    # an input that needs no gradient (a first layer) takes another path: the columns
    # of x when x has fewer channels than dy, else those of dy
    rng = np.random.default_rng(c + 10 * dilation)
    x = tg.tensor(rng.standard_normal((2, c, 6, 7)), device=device)
    w = tg.tensor(rng.standard_normal((o, c, 3, 3)), requires_grad=True, device=device)
    b = tg.tensor(rng.standard_normal(o), requires_grad=True, device=device)
    assert tg.gradcheck(lambda w, b: F.conv2d(x, w, b, padding=dilation, dilation=dilation),
                        [w, b])
