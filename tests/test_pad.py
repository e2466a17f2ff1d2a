"""pad (constant mode): forward against np.pad / slicing, gradcheck, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
import tensorgrad.functional as F


@st.composite
def shape_and_pad(draw, allow_negative=True):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    dims = draw(st.integers(1, len(shape)))
    pad = []
    for size in shape[::-1][:dims]:  # from the last dimension backwards
        low = -(size // 2) if allow_negative else 0
        pad += [draw(st.integers(low, 2)), draw(st.integers(low, 2))]
    return shape, tuple(pad)


def reference_pad(x, pad, value):
    """np.pad for the positive widths, then slicing for the negative ones."""
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    y = np.pad(x, [(max(a, 0), max(b, 0)) for a, b in widths], constant_values=value)
    crop = tuple(slice(max(-a, 0), y.shape[d] - max(-b, 0)) for d, (a, b) in enumerate(widths))
    return y[crop]


@given(sp=shape_and_pad(), value=st.sampled_from([0.0, -1.5, 3.0]),
       seed=st.integers(0, 2**32 - 1))
def test_forward_matches_numpy(sp, value, seed, device):
    shape, pad = sp
    x = np.random.default_rng(seed).standard_normal(shape)
    y = F.pad(tg.tensor(x, device=device), pad, value=value)
    np.testing.assert_array_equal(y.numpy(), reference_pad(x, pad, value))


def test_pad_order_is_last_dimension_first(device):
    x = tg.ones(1, 2, 3, device=device)
    assert F.pad(x, (1, 2)).shape == (1, 2, 6)
    assert F.pad(x, (1, 2, 3, 4)).shape == (1, 9, 6)
    assert F.pad(x, (0, 0, 0, 0, 1, 0)).shape == (2, 2, 3)
    padded = F.pad(tg.tensor([[1.0, 2.0]], device=device), (1, 0, 0, 1), value=7)
    np.testing.assert_array_equal(padded.numpy(), [[7.0, 1.0, 2.0], [7.0, 7.0, 7.0]])


@settings(max_examples=25)
@given(sp=shape_and_pad(), seed=st.integers(0, 2**32 - 1))
def test_gradcheck(sp, seed, device):
    shape, pad = sp
    x = tg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True,
                  device=device)
    assert tg.gradcheck(lambda t: F.pad(t, pad, value=2.0), (x,))


def test_float32_stays_float32(device):
    x = tg.ones(2, 3, dtype=tg.float32, requires_grad=True, device=device)
    y = F.pad(x, (1, -1, 2, 0), value=0.5)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])


@pytest.mark.parametrize("pad, exc, message", [
    ((1, 2, 3), ValueError, "padding length must be even"),
    ((1, 1, 1, 1, 1, 1), ValueError, "covers 3 dimensions but the input (2, 3) has only 2"),
    ((-2, -2), ValueError, "padding (-2, -2) of dimension 1 crops more than its size 3"),
    ((-4, 1), ValueError, "crops more than its size 3"),
    ((1.5, 1), TypeError, "expected a tuple of ints"),
    (2, TypeError, "expected a tuple of ints"),
])
def test_errors_name_the_problem(pad, exc, message, device):
    with pytest.raises(exc) as info:
        F.pad(tg.zeros(2, 3, device=device), pad)
    assert message in str(info.value)
