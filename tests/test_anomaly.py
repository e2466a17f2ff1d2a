"""tg.detect_anomaly: the first op that makes a NaN or Inf raises, naming itself and
the line of the test that called it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import nn
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


def test_forward_nan_names_the_op_its_shapes_and_the_calling_line(device):
    x = tg.tensor([[1.0, -1.0, 2.0]], requires_grad=True, device=device)
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        where = _here()
        x.log()
    msg = str(err.value)
    assert "'Log'" in msg and "NaN" in msg and "forward" in msg
    assert "(1, 3)" in msg
    assert where in msg


def test_forward_inf_is_caught_too(device):
    with tg.detect_anomaly(), pytest.raises(RuntimeError, match=r"'Div'.*Inf"):
        tg.ones(2, device=device) / tg.zeros(2, device=device)


def test_backward_inf_names_the_function_and_where_its_forward_ran(device):
    x = tg.randn(4, 2, requires_grad=True, device=device)
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


def test_backward_of_sqrt_at_zero(device):
    # d sqrt(x)/dx = 1/(2 sqrt x) is infinite at 0: finite forward, infinite backward
    x = tg.zeros(3, requires_grad=True, device=device)
    with tg.detect_anomaly(), pytest.raises(RuntimeError, match=r"'Sqrt'.*Inf.*backward"):
        x.sqrt().sum().backward()


def test_nothing_is_checked_outside_the_context(device):
    x = tg.tensor([-1.0], requires_grad=True, device=device)
    y = x.log()  # NaN, silently, as NumPy
    assert np.isnan(y.item())
    assert y.grad_fn.trace is None  # nothing recorded either
    x2 = tg.randn(3, requires_grad=True, device=device)
    InfBackward.apply(x2).sum().backward()
    assert np.isinf(x2.grad.numpy()).all()


def test_finite_computations_are_unchanged(device):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x1 = tg.tensor(a, requires_grad=True, device=device)
    x2 = tg.tensor(a, requires_grad=True, device=device)
    (x1.tanh() * x1).sum().backward()
    with tg.detect_anomaly():
        (x2.tanh() * x2).sum().backward()
    np.testing.assert_array_equal(x1.grad.numpy(), x2.grad.numpy())


def test_nodes_remember_where_they_were_made(device):
    x = tg.ones(2, requires_grad=True, device=device)
    with tg.detect_anomaly():
        where = _here()
        y = x.exp()
    assert where in y.grad_fn.trace
    assert "y = x.exp()" in y.grad_fn.trace


def test_nesting_restores_the_outer_state(device):
    bad = tg.tensor([-1.0], device=device)
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


def test_works_as_a_decorator(device):
    @tg.detect_anomaly()
    def step(x):
        return x.log()

    with pytest.raises(RuntimeError, match="Log"):
        step(tg.tensor([-2.0], device=device))
    assert not is_anomaly_enabled()
    assert np.isnan(tg.tensor([-2.0], device=device).log().item())


def test_integer_outputs_are_not_checked(device):
    with tg.detect_anomaly():
        idx = tg.tensor([[1.0, 3.0, 2.0]], device=device).argmax(dim=1)
    assert idx.tolist() == [1]


# ------------------------------------------------------------ naming the module
def _model_with_an_overflowing_conv():
    import models

    tg.manual_seed(0)
    model = models.resnet20(num_classes=10)
    with tg.no_grad():  # every weight at float32's limit: the sums overflow to Inf
        model.layer2[0].conv1.weight.data[...] = np.float32(3e38)
    return model


def test_forward_names_the_module_where_the_inf_is_born(device):
    model = _model_with_an_overflowing_conv().to(device)
    x = tg.rand(2, 3, 8, 8, device=device)
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        where = _here()
        model(x)
    msg = str(err.value)
    assert "in module: 'layer2.0.conv1' (Conv2d)" in msg
    assert "Inf" in msg and "already contained" not in msg  # born here, not passed on
    assert where in msg  # and still the user's line
    # the stack of running modules was unwound by the error
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        tg.tensor([-1.0], device=device).log()
    assert "in module" not in str(err.value)


class Bad(nn.Module):
    """A layer whose backward makes Inf."""

    def forward(self, x):
        return InfBackward.apply(x)


class Scaled(nn.Module):
    """Runs ops of its own, in its forward, not in a child module."""

    def forward(self, x):
        return (x * 2.0).log()


def test_backward_names_the_module_whose_forward_made_the_op(device):
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), Bad())).to(device)
    x = tg.randn(4, 3, device=device)
    with tg.detect_anomaly():
        loss = model(x).sum()
        with pytest.raises(RuntimeError) as err:
            loss.backward()
    msg = str(err.value)
    assert "'InfBackward'" in msg and "backward" in msg
    assert "in module: '1.1' (Bad)" in msg


def test_an_op_in_a_modules_own_forward_names_that_module(device):
    model = nn.Sequential(nn.Linear(2, 2), Scaled()).to(device)
    with tg.no_grad():
        model[0].weight.copy_(-np.eye(2, dtype=np.float32))
        model[0].bias.zero_()
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        model(tg.ones(1, 2, device=device))
    assert "'Log'" in str(err.value) and "in module: '1' (Scaled)" in str(err.value)


def test_the_outermost_and_unregistered_modules_are_described(device):

    class Root(nn.Module):
        def forward(self, x):
            return x.log()

    with tg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        Root()(tg.tensor([-1.0], device=device))
    assert "in module: the outermost module (Root)" in str(err.value)

    class CallsAStranger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 1).to(device)

        def forward(self, x):
            return Root()(self.lin(x))  # a module that is not a registered child

    model = nn.Sequential(CallsAStranger()).to(device)
    with tg.no_grad():
        model[0].lin.weight.data[...] = -1.0
        model[0].lin.bias.data[...] = 0.0
    with tg.detect_anomaly(), pytest.raises(RuntimeError) as err:
        model(tg.ones(1, 1, device=device))
    assert "in module: a Root called by '0' (CallsAStranger)" in str(err.value)


def test_modules_are_not_tracked_outside_anomaly_mode(device):
    from tensorgrad import anomaly

    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(list(anomaly._stack()))
            return x

    model = nn.Sequential(Spy()).to(device)
    model(tg.ones(1, device=device))
    with tg.detect_anomaly():
        model(tg.ones(1, device=device))
    assert seen[0] == [] and seen[1] == [model, model[0]]
    assert anomaly._stack() == []
