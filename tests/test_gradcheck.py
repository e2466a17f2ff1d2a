"""tg.gradcheck and tg.GradcheckError (issue 2 item 6)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tensorgrad as tg


class WrongSquare(tg.Function):
    """y = x², with a deliberately wrong backward (3x instead of 2x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * g


def test_gradcheck_passes_for_a_correct_op(device):
    x = tg.tensor([[0.5, -1.0], [2.0, 1.5]], dtype=tg.float64, requires_grad=True, device=device)
    w = tg.tensor([1.0, -0.5], dtype=tg.float64, requires_grad=True, device=device)
    assert tg.gradcheck(lambda a, b: (a @ b).tanh(), [x, w]) is True
    assert x.grad is None  # gradcheck leaves no gradient behind


def test_gradcheck_error_names_input_element_and_both_values(device):
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    y = tg.tensor([[1.0, -2.0], [0.5, 4.0]], dtype=tg.float64, requires_grad=True, device=device)
    with pytest.raises(tg.GradcheckError) as e:
        tg.gradcheck(lambda a, b: a.sum() + WrongSquare.apply(b), [x, y])
    msg = str(e.value)
    assert "input 1" in msg and "(2, 2)" in msg
    # the worst element is the one with the largest |x|: 4.0 at (1, 1)
    assert "element (1, 1)" in msg
    analytic = float(re.search(r"analytic (\S+)", msg).group(1))
    numeric = float(re.search(r"numeric (\S+)", msg).group(1))
    # with the random output weighting v: analytic = 3·x·v, numeric = 2·x·v
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-5)
    assert isinstance(e.value, AssertionError)


def test_gradcheck_refuses_float32(device):
    x = tg.ones(2, requires_grad=True, device=device)
    with pytest.raises(ValueError, match="float64"):
        tg.gradcheck(lambda a: a * 2, [x])


def test_gradcheck_needs_an_input_that_requires_grad(device):
    with pytest.raises(ValueError, match="requires grad"):
        tg.gradcheck(lambda a: a * 2, [tg.ones(2, dtype=tg.float64, device=device)])


def test_gradcheck_accepts_a_single_tensor_and_non_contiguous_input(device):
    base = np.arange(1.0, 7.0).reshape(2, 3)
    x = tg.tensor(base, device=device).requires_grad_()
    x.data = base.T  # a transposed (non-contiguous) view
    assert tg.gradcheck(lambda a: (a * a).sum(0), x)


def test_gradcheck_tolerances_are_used(device):
    class SlightlyWrong(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return g * (1 + 1e-4)

    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    assert tg.gradcheck(SlightlyWrong.apply, [x], atol=1e-3, rtol=1e-3)
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(SlightlyWrong.apply, [x], atol=1e-8, rtol=1e-8)
