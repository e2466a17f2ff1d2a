"""Tensor.register_hook: hooks see gradients as Tensors, may replace them, run in
order, and are removed by their handles — on leaves and on intermediate tensors.

Expected gradients are worked out by hand in the comments (no autograd involved).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg


def test_leaf_hook_sees_the_gradient_as_a_tensor(device):
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    seen = []
    x.register_hook(seen.append)
    (x * 3.0).sum().backward()  # d/dx sum(3x) = 3
    assert len(seen) == 1 and isinstance(seen[0], tg.Tensor)
    np.testing.assert_array_equal(seen[0].numpy(), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


def test_leaf_hook_replaces_the_gradient(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    x.register_hook(lambda g: g * 10.0)
    (x * x).sum().backward()  # 2x = [2, 4], times 10
    np.testing.assert_array_equal(x.grad.numpy(), [20.0, 40.0])


def test_leaf_used_twice_gets_one_call_with_the_summed_gradient(device):
    # As PyTorch: the hook fires once per backward, on the total gradient 2x + 2.
    x = tg.tensor([1.0, 3.0], requires_grad=True, device=device)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy()) or tg.full((2,), 7.0, device=device))
    (x * x + 2.0 * x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [4.0, 8.0])
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0])


def test_intermediate_hook_sees_and_replaces_the_gradient(device):
    x = tg.tensor([1.0, -2.0], requires_grad=True, device=device)
    h = x * 2.0
    seen = []

    def hook(g):
        seen.append(g.numpy())
        return tg.ones(2, device=device)  # pretend d loss/dh = 1

    h.register_hook(hook)
    (h * h).sum().backward()  # d/dh sum(h²) = 2h = 4x = [4, -8]
    np.testing.assert_array_equal(seen[0], [4.0, -8.0])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])  # 1 · dh/dx
    assert h.grad is None  # hooks do not retain non-leaf grads


def test_intermediate_with_two_consumers_sees_their_sum_once(device):
    x = tg.tensor([2.0], requires_grad=True, device=device)
    h = x.exp()
    seen = []
    h.register_hook(lambda g: seen.append(g.item()))
    (h * 3.0 + h * 5.0).sum().backward()
    assert seen == [8.0]


def test_hooks_run_in_registration_order_each_on_the_previous_result(device):
    x = tg.tensor([1.0], requires_grad=True, device=device)
    order = []
    x.register_hook(lambda g: order.append(("a", g.item())) or g * 2.0)
    x.register_hook(lambda g: order.append(("b", g.item())) or g + 1.0)
    x.register_hook(lambda g: order.append(("c", g.item())))  # returns None: keeps g
    (x * 5.0).sum().backward()  # 5 -> a: 10 -> b: 11
    assert order == [("a", 5.0), ("b", 10.0), ("c", 11.0)]
    assert x.grad.item() == 11.0


def test_handle_remove_stops_the_hook(device):
    x = tg.tensor([1.0], requires_grad=True, device=device)
    h = x * 1.0
    calls = []
    leaf_handle = x.register_hook(lambda g: calls.append("leaf"))
    mid_handle = h.register_hook(lambda g: calls.append("mid"))
    (h * 1.0).sum().backward()
    assert calls == ["mid", "leaf"]  # gradients flow from the output towards the leaves
    leaf_handle.remove()
    mid_handle.remove()
    mid_handle.remove()  # removing twice is harmless
    x.grad = None
    h2 = x * 1.0
    (h2 * 1.0).sum().backward()
    assert calls == ["mid", "leaf"]
    assert x.grad.item() == 1.0


def test_hook_on_a_tensor_without_grad_is_an_error(device):
    with pytest.raises(RuntimeError, match="require"):
        tg.ones(3, device=device).register_hook(lambda g: g)


def test_hook_on_the_output_changes_the_seed(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x * x).sum()
    y.register_hook(lambda g: g * 0.5)
    y.backward()  # seed 1 -> 0.5, times 2x
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])


@given(scale=st.floats(-4, 4, allow_nan=False), n=st.integers(1, 5))
def test_gradient_scaling_hook_scales_the_gradient(scale, n, device):
    x = tg.tensor(np.arange(1.0, n + 1), requires_grad=True, device=device)  # float64
    h = x.tanh()
    h.register_hook(lambda g: g * scale)
    h.sum().backward()
    expected = scale * (1 - np.tanh(np.arange(1.0, n + 1)) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-15)


# ------------------------------------------------ second audit (session 9)


def test_retain_grad_keeps_the_gradient_after_the_hooks_and_only_once(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 3
    y.retain_grad()
    y.retain_grad()  # a second call changes nothing
    y.register_hook(lambda g: g * 2)  # registered after retain_grad, still runs first
    (y * y).sum().backward()  # dy = 2y = [6, 12], doubled by the hook
    np.testing.assert_array_equal(y.grad.numpy(), [12.0, 24.0])
    np.testing.assert_array_equal(x.grad.numpy(), [36.0, 72.0])
    assert y.retains_grad and not x.retains_grad
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        tg.ones(2, device=device).retain_grad()


def test_a_hook_may_not_change_the_gradient_shape_or_dtype(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    x.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match="changed the size"):
        (x * 2).sum().backward()
    z = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    h = z * 2
    h.register_hook(lambda g: g.float())
    with pytest.raises(RuntimeError, match="changed the type"):
        h.sum().backward()
    w = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    w.register_hook(lambda g: 3.0)
    with pytest.raises(TypeError, match="returned float"):
        (w * 2).sum().backward()


def test_no_grad_decorates_a_generator_step_by_step(device):
    @tg.no_grad()
    def steps():
        yield tg.is_grad_enabled()
        yield (tg.ones(1, requires_grad=True, device=device) * 2).requires_grad
        return "done"

    gen = steps()
    assert next(gen) is False
    assert tg.is_grad_enabled()  # the caller's mode between steps
    assert next(gen) is False
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"


def test_a_leaf_gradient_is_final_and_hooked_before_backward_ends():
    # the last layer's weight is done long before the first layer's backward runs: its
    # post-accumulate hook fires then (DistributedDataParallel starts all-reduces there)
    events = []

    class Probe(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            events.append("first layer's backward")
            return g

    x = tg.randn(4, 3)
    w1 = tg.randn(3, 3, requires_grad=True)
    w2 = tg.randn(3, 2, requires_grad=True)
    w2.register_post_accumulate_grad_hook(lambda p: events.append(("w2 ready", p.grad.shape)))
    w1.register_post_accumulate_grad_hook(lambda p: events.append(("w1 ready", p.grad.shape)))
    (Probe.apply(x @ w1).tanh() @ w2).sum().backward()
    assert events == [("w2 ready", (3, 2)), "first layer's backward", ("w1 ready", (3, 3))]
