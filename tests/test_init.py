"""nn.init: gains, fans, and the statistics of every initialiser."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nn
import tensorgrad as tg
from nn import init


@pytest.mark.parametrize("name, param, gain", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0),
    ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2)), ("selu", None, 0.75),
    ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
    ("leaky_relu", 0.2, math.sqrt(2 / 1.04)), ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)),
])
def test_calculate_gain(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain)


def test_calculate_gain_unknown():
    with pytest.raises(ValueError):
        init.calculate_gain("swish")


def test_fans(device):
    assert init._calculate_fan_in_and_fan_out(tg.zeros(16, 3, 5, 7, device=device)) == (3 * 35,
                                                                                        16 * 35)
    assert init._calculate_fan_in_and_fan_out(tg.zeros(10, 20, device=device)) == (20, 10)
    with pytest.raises(ValueError, match="fewer than 2"):
        init._calculate_fan_in_and_fan_out(tg.zeros(5, device=device))


def _stats(t):
    a = t.numpy().ravel()
    return a.min(), a.max(), a.mean(), a.std()


def test_kaiming_uniform_bound_and_std(device):
    t = tg.empty(256, 64, 3, 3, device=device)
    out = init.kaiming_uniform_(t, mode="fan_in", nonlinearity="relu")
    assert out is t
    bound = math.sqrt(2) * math.sqrt(3 / (64 * 9))
    lo, hi, mean, std = _stats(t)
    assert -bound <= lo and hi <= bound and hi > 0.99 * bound and lo < -0.99 * bound
    assert abs(mean) < 0.01 * bound and std == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_kaiming_normal_fan_out_std(device):
    t = tg.empty(128, 64, 3, 3, device=device)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    _, _, mean, std = _stats(t)
    want = math.sqrt(2 / (128 * 9))
    assert std == pytest.approx(want, rel=0.02) and abs(mean) < 0.02 * want


def test_kaiming_default_is_leaky_relu_with_slope_zero(device):
    tg.manual_seed(5)
    a = init.kaiming_uniform_(tg.empty(50, 40, device=device))
    tg.manual_seed(5)
    b = init.kaiming_uniform_(tg.empty(50, 40, device=device), a=0, nonlinearity="relu")
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_xavier(device):
    t = init.xavier_uniform_(tg.empty(300, 200, device=device), gain=2.0)
    bound = 2.0 * math.sqrt(6 / 500)
    lo, hi, _, _ = _stats(t)
    assert -bound <= lo and hi <= bound and hi > 0.98 * bound
    t = init.xavier_normal_(tg.empty(300, 200, device=device))
    assert _stats(t)[3] == pytest.approx(math.sqrt(2 / 500), rel=0.02)


def test_normal_uniform_constant(device):
    t = init.normal_(tg.empty(200, 200, dtype=tg.float64, device=device), mean=3.0, std=0.5)
    _, _, mean, std = _stats(t)
    assert t.dtype == np.float64
    assert mean == pytest.approx(3.0, abs=0.01) and std == pytest.approx(0.5, rel=0.02)
    t = init.uniform_(tg.empty(100, 100, device=device), -2.0, 5.0)
    lo, hi, mean, _ = _stats(t)
    assert -2.0 <= lo < -1.99 and 4.99 < hi <= 5.0 and mean == pytest.approx(1.5, abs=0.05)
    np.testing.assert_array_equal(init.constant_(tg.empty(3, device=device), 0.25).numpy(),
                                  [0.25] * 3)
    np.testing.assert_array_equal(init.zeros_(tg.ones(3, device=device)).numpy(), [0.0] * 3)
    np.testing.assert_array_equal(init.ones_(tg.zeros(3, device=device)).numpy(), [1.0] * 3)


def test_init_keeps_parameter_a_leaf_without_graph(device):
    p = nn.Parameter(tg.zeros(4, 3, device=device))
    data = p.data
    init.kaiming_uniform_(p, a=math.sqrt(5))
    assert p.is_leaf and p.grad_fn is None and p.requires_grad
    assert p.data is data  # filled in place


def test_seeded_init_is_reproducible(device):
    tg.manual_seed(11)
    a = init.normal_(tg.empty(10, device=device))
    tg.manual_seed(11)
    b = init.normal_(tg.empty(10, device=device))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_integer_tensor_refused(device):
    with pytest.raises(TypeError):
        init.normal_(tg.zeros(3, dtype=tg.int64, device=device))
