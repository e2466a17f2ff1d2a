"""tg.testing: the hypothesis strategies and the gradcheck helpers (issue 2 item 7)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.testing import (
    arrays,
    assert_gradcheck,
    broadcastable_shapes,
    check_gradients,
    shapes,
    strided_arrays,
    tensors,
)


@given(shapes(min_dims=1, max_dims=3, min_side=2, max_side=5))
def test_shapes_respect_bounds(s):
    assert 1 <= len(s) <= 3 and all(2 <= n <= 5 for n in s)


@given(broadcastable_shapes(n=3, max_dims=4))
def test_broadcastable_shapes_broadcast(ss):
    assert len(ss) == 3
    np.broadcast_shapes(*ss)  # raises if they do not


@given(arrays((3, 4), np.float32, min_value=-2.0, max_value=0.5, avoid=[0.0], margin=0.1))
def test_arrays_dtype_bounds_and_avoid(a):
    assert a.dtype == np.float32 and a.shape == (3, 4)
    assert (a >= -2.0).all() and (a <= 0.5).all()
    assert (np.abs(a) >= 0.1 - 1e-6).all()


@given(arrays(shapes(), np.float64, unique=True))
def test_arrays_unique(a):
    assert np.unique(a).size == a.size


@given(arrays((5,), np.int64, min_value=0, max_value=3))
def test_integer_arrays(a):
    assert a.dtype == np.int64 and ((0 <= a) & (a <= 3)).all()


@given(strided_arrays((3, 4)))
def test_strided_arrays_are_views_of_the_requested_shape(a):
    assert a.shape == (3, 4)
    assert not a.flags.c_contiguous or a.base is not None


@given(st.data())
def test_tensors(device, data):
    t = data.draw(tensors((2, 3), requires_grad=True, min_value=0.1, max_value=1.0,
                          device=device))
    assert isinstance(t, tg.Tensor) and t.requires_grad and t.dtype == tg.float64
    assert t.shape == (2, 3) and (t.numpy() >= 0.1).all()
    assert t.device == tg.zeros(1, device=device).device


@given(st.data())
def test_check_gradients_on_a_broadcasting_function(device, data):
    sx, sy = data.draw(broadcastable_shapes(n=2, max_dims=3))
    assert check_gradients(lambda x, y: (x * y).tanh() + y.exp(), data, [sx, sy],
                           device=device)


@given(strided_arrays((2, 3)))
def test_ops_on_non_contiguous_inputs_gradcheck(device, a):
    x = tg.tensor(a, requires_grad=True, device=device)
    assert_gradcheck(lambda t: (t @ t.T).sigmoid(), x)


class WrongExp(tg.Function):
    @staticmethod
    def forward(ctx, x):
        return np.exp(x)

    @staticmethod
    def backward(ctx, g):
        return g  # should be g·e^x


def test_check_gradients_fails_for_a_wrong_backward():
    @given(st.data())
    def prop(data):
        check_gradients(WrongExp.apply, data, [(3,)], min_value=0.5)

    with pytest.raises(tg.GradcheckError):
        prop()


def test_assert_gradcheck_sets_requires_grad_on_float_inputs():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64)
    assert_gradcheck(lambda t: t * t, x)
    assert x.requires_grad


@given(data=st.data())
def test_check_second_gradients_passes_a_right_op_and_fails_a_wrong_one(data):
    from tensorgrad.testing import assert_gradgradcheck, check_second_gradients

    assert check_second_gradients(lambda a, b: (a * b).tanh(), data, [(2, 3), (3,)])

    class HalfSecond(tg.Function):  # right first derivative, half the second
        differentiable_backward = True

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.x_raw = x
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * ctx.x_raw

    x = tg.tensor(np.array([1.0, -2.0]))
    with pytest.raises(tg.GradcheckError):
        assert_gradgradcheck(HalfSecond.apply, x)
