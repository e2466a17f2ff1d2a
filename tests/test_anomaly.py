"""tg.detect_anomaly: the first op that makes a NaN or Inf raises, naming itself and
the line of the test that called it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import autograd
from tensorgrad.anomaly import is_anomaly_enabled

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's log(-1) warning


def _here() -> str:
    """'test_anomaly.py", line N' for the line after the caller's."""
    return f'test_anomaly.py", line {inspect.currentframe().f_back.f_lineno + 1}'


class InfBackward(tg.Function):
    """Identity forward, a backward that returns inf: a bug to find."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g / 0.0


def test_forward_nan_names_the_op_its_shapes_and_the_calling_line():
    x = tg.tensor([[1.0, -1.0, 2.0]], requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        where = _here()
        x.log()
    msg = str(err.value)
    assert "'Log'" in msg and "NaN" in msg and "forward" in msg
    assert "(1, 3)" in msg
    assert where in msg


def test_forward_inf_is_caught_too():
    with tg.detect_anomaly(), pytest.raises(RuntimeError, match=r"'Div'.*Inf"):
        tg.ones(2) / tg.zeros(2)


def test_backward_inf_names_the_function_and_where_its_forward_ran():
    x = tg.randn(4, 2, requires_grad=True)
    with tg.detect_anomaly():
        where = _here()
        y = InfBackward.apply(x)
        loss = (y * 2).sum()
        with pytest.raises(RuntimeError) as err:
            loss.backward()
    msg = str(err.value)
    assert "'InfBackward'" in msg and "Inf" in msg and "backward" in msg
    assert "(4, 2)" in msg
    assert where in msg  # the forward's line, not the backward's


def test_backward_of_sqrt_at_zero():
    # d sqrt(x)/dx = 1/(2 sqrt x) is infinite at 0: finite forward, infinite backward
    x = tg.zeros(3, requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(RuntimeError, match=r"'Sqrt'.*Inf.*backward"):
        x.sqrt().sum().backward()


def test_nothing_is_checked_outside_the_context():
    x = tg.tensor([-1.0], requires_grad=True)
    y = x.log()  # NaN, silently, as NumPy
    assert np.isnan(y.item())
    assert y.grad_fn.trace is None  # nothing recorded either
    x2 = tg.randn(3, requires_grad=True)
    InfBackward.apply(x2).sum().backward()
    assert np.isinf(x2.grad.numpy()).all()


def test_finite_computations_are_unchanged():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x1, x2 = tg.tensor(a, requires_grad=True), tg.tensor(a, requires_grad=True)
    (x1.tanh() * x1).sum().backward()
    with tg.detect_anomaly():
        (x2.tanh() * x2).sum().backward()
    np.testing.assert_array_equal(x1.grad.numpy(), x2.grad.numpy())


def test_nodes_remember_where_they_were_made():
    x = tg.ones(2, requires_grad=True)
    with tg.detect_anomaly():
        where = _here()
        y = x.exp()
    assert where in y.grad_fn.trace
    assert "y = x.exp()" in y.grad_fn.trace


def test_nesting_restores_the_outer_state():
    bad = tg.tensor([-1.0])
    assert not is_anomaly_enabled()
    with tg.detect_anomaly():
        with tg.detect_anomaly(check_nan=False):
            bad.log()  # recording only: no error
            assert is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="Log"):
            bad.log()  # the outer block checks again
        with pytest.raises(RuntimeError), tg.detect_anomaly():
            bad.log()
        assert is_anomaly_enabled()  # the inner exit (by an error) left the outer on
    assert not is_anomaly_enabled()
    assert not any(type(o).__name__ == "_AnomalyObserver" for o in autograd.observers)
    assert np.isnan(bad.log().item())


def test_works_as_a_decorator():
    @tg.detect_anomaly()
    def step(x):
        return x.log()

    with pytest.raises(RuntimeError, match="Log"):
        step(tg.tensor([-2.0]))
    assert not is_anomaly_enabled()
    assert np.isnan(tg.tensor([-2.0]).log().item())


def test_integer_outputs_are_not_checked():
    with tg.detect_anomaly():
        idx = tg.tensor([[1.0, 3.0, 2.0]]).argmax(dim=1)
    assert idx.tolist() == [1]
