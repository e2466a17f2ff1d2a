"""conv_transpose2d (the adjoint of conv2d, and conv2d's input gradient), nn.ConvTranspose2d,
and conv2d's double backward — against a direct NumPy sum and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nn
import tensorgrad as tg
import tensorgrad.functional as F
from tensorgrad.testing import conv2d_params


def transposed_reference(u, w, stride, padding, output_padding, dilation, groups):
    """y[n, c, o·s + i·d − p] += u[n, oc, o] · w[oc, c, i]: every input pixel spreads
    its value over the kernel's footprint (one offset at a time, all pixels at once)."""
    n, cin, h, wd = u.shape
    _, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((n, cg * groups, ho + 2 * ph + sh + dh * kh, wo + 2 * pw + sw + dw * kw))
    per = cin // groups
    for g in range(groups):
        ug = u[:, g * per:(g + 1) * per]
        wg = w[g * per:(g + 1) * per]
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nohw,oc->nchw", ug, wg[:, :, i, j])
                full[:, g * cg:(g + 1) * cg, i * dh:i * dh + sh * (h - 1) + 1:sh,
                     j * dw:j * dw + sw * (wd - 1) + 1:sw] += contrib
    return full[:, :, ph:ph + ho, pw:pw + wo]


@settings(max_examples=15)
@given(p=conv2d_params(), data=st.data())
def test_conv_transpose2d_matches_the_direct_sum(p, data, device):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    out = p.output_shape
    u = rng.standard_normal(out)
    w = rng.standard_normal(p.weight_shape)
    op = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(p.stride, p.dilation))
    y = F.conv_transpose2d(tg.tensor(u, device=device), tg.tensor(w, device=device), None,
                           p.stride, p.padding, op,
                           p.groups, p.dilation)
    expected = transposed_reference(u, w, p.stride, p.padding, op, p.dilation, p.groups)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=10)
@given(p=conv2d_params(max_size=5, max_channels=3), data=st.data())
def test_conv_transpose2d_gradients(p, data, device):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    op = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(p.stride, p.dilation))
    u = tg.tensor(rng.standard_normal(p.output_shape), requires_grad=True, device=device)
    w = tg.tensor(rng.standard_normal(p.weight_shape), requires_grad=True, device=device)
    b = tg.tensor(rng.standard_normal(p.in_channels), requires_grad=True, device=device)

    def f(u, w, b):
        return F.conv_transpose2d(u, w, b, p.stride, p.padding, op, p.groups, p.dilation)

    assert tg.gradcheck(f, [u, w, b])
    assert tg.gradgradcheck(f, [u, w, b])


@settings(max_examples=10)
@given(p=conv2d_params(max_size=5, max_channels=3), data=st.data())
def test_conv2d_double_backward(p, data, device):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = tg.tensor(rng.standard_normal(p.input_shape), requires_grad=True, device=device)
    w = tg.tensor(rng.standard_normal(p.weight_shape), requires_grad=True, device=device)
    b = tg.tensor(rng.standard_normal(p.out_channels), requires_grad=True, device=device)
    assert tg.gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **p.kwargs), [x, w, b])


def test_conv2d_third_order(device):
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True, device=device)
    w = tg.tensor(rng.standard_normal((2, 2, 2, 2)), requires_grad=True, device=device)

    def first(x, w):  # d/dx of sum(conv(x, w)^3), itself differentiated twice more
        (g,) = tg.autograd.grad((F.conv2d(x, w, stride=2, padding=1) ** 3).sum(), x,
                                create_graph=True)
        return g

    assert tg.gradgradcheck(first, [x, w])


def test_conv_transpose2d_is_conv2ds_input_gradient(device):
    rng = np.random.default_rng(2)
    x = tg.tensor(rng.standard_normal((2, 4, 7, 6)), requires_grad=True, device=device)
    w = tg.tensor(rng.standard_normal((6, 2, 3, 3)), device=device)
    y = F.conv2d(x, w, stride=2, padding=1, dilation=1, groups=2)
    gy = tg.tensor(rng.standard_normal(y.shape), device=device)
    y.backward(gy)
    # 7 rows: one more than the convolution reads back from 4 outputs at stride 2
    dx = F.conv_transpose2d(gy, w, stride=2, padding=1, output_padding=(0, 1), groups=2)
    np.testing.assert_allclose(dx.numpy(), x.grad.numpy(), rtol=1e-12)


def test_conv_transpose_layer(device):
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, bias=True).to(device)
    assert layer.weight.shape == (4, 6, 3, 3) and layer.bias.shape == (6,)
    bound = 1 / np.sqrt(6 * 9)  # fan_in from the weight's second dimension, as PyTorch
    assert np.abs(layer.weight.numpy()).max() <= bound
    assert np.abs(layer.bias.numpy()).max() <= bound
    y = layer(tg.randn(2, 4, 5, 5, device=device))
    assert y.shape == (2, 6, 10, 10)
    assert "output_padding=(1, 1)" in repr(layer)


@pytest.mark.parametrize("kwargs, match", [
    (dict(stride=2, output_padding=2), "output_padding"),
    (dict(groups=3), "divisible|input channels"),
    (dict(padding=-1), "non-negative"),
])
def test_conv_transpose2d_errors(kwargs, match, device):
    with pytest.raises(ValueError, match=match):
        F.conv_transpose2d(tg.randn(1, 4, 3, 3, device=device),
                           tg.randn(4, 2, 3, 3, device=device), **kwargs)
