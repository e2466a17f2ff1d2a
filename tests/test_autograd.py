"""The autograd engine: backward, graph freeing, grad modes, tg.Function (issue 2 items 3, 4).

Expected gradients are worked out by hand / with NumPy, never with tensorgrad itself.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorgrad as tg


def test_backward_of_a_scalar_fills_leaf_grads(device):
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    w = tg.tensor([0.5, -1.0, 2.0], requires_grad=True, device=device)
    ((x * w).sum() + (x * x).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5 + 2, -1.0 + 4, 2.0 + 6])
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0, 3.0])
    assert x.grad.dtype == tg.float32 and not x.grad.requires_grad


def test_gradients_accumulate_across_backward_calls(device):
    x = tg.tensor([1.0, -2.0], requires_grad=True, device=device)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 - 4])


def test_non_leaf_grad_stays_none(device):
    x = tg.ones(2, requires_grad=True, device=device)
    y = x * 2
    y.sum().backward()
    assert y.grad is None and not y.is_leaf and x.grad is not None


def test_non_scalar_backward_needs_a_gradient(device):
    x = tg.ones(2, 3, requires_grad=True, device=device)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        y.backward()
    g = np.arange(6.0).reshape(2, 3)
    y.backward(tg.tensor(g, device=device))
    np.testing.assert_allclose(x.grad.numpy(), 2 * g)
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(tg.ones(3, 2, device=device))


def test_backward_without_grad_raises(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.ones(2, device=device).sum().backward()


def test_second_backward_without_retain_graph_says_so(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])  # unchanged by the failure


def test_retain_graph_allows_a_second_backward(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * (e + e * [1.0, 2.0]), rtol=1e-6)


def test_backward_through_a_shared_freed_subgraph_raises(device):
    x = tg.ones(2, requires_grad=True, device=device)
    h = x * 3
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (h * 2).sum().backward()


def test_create_graph_through_a_raw_array_backward_raises_naming_it(device):
    class Cube(tg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * x

    x = tg.ones(2, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="create_graph=True reached Cube.*"
                                           "differentiable_backward = True.*once_differentiable"):
        Cube.apply(x).sum().backward(create_graph=True)


def test_a_chain_of_20000_ops_backprops_without_recursion():
    x = tg.tensor(1.0, dtype=tg.float64, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 20000, rel=1e-9)


def test_deep_net_of_150_layers_backprops(device):
    tg.manual_seed(0)
    x = tg.randn(4, 8, device=device)
    ws = [(tg.randn(8, 8, device=device) * 0.3).requires_grad_() for _ in range(150)]
    h = x
    for w in ws:
        h = (h @ w).tanh() + h  # residual: every layer reached twice
    h.sum().backward()
    assert all(w.grad is not None and np.isfinite(w.grad.numpy()).all() for w in ws)


def test_diamond_dag_sums_every_path(device):
    # y = a·b + a·c with b = 2a, c = a²: dy/da = 2a·2 + 3a² summed over 4 paths
    a = tg.tensor([1.5, -2.0], dtype=tg.float64, requires_grad=True, device=device)
    b, c = a * 2, a * a
    (a * b + a * c).sum().backward()
    av = np.array([1.5, -2.0])
    np.testing.assert_allclose(a.grad.numpy(), 4 * av + 3 * av**2)


def test_a_tensor_used_many_times(device):
    x = tg.tensor([2.0], dtype=tg.float64, requires_grad=True, device=device)
    total = x
    for _ in range(50):
        total = total + x * x  # x reached 101 times
    total.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1 + 50 * 2 * 2.0])


def test_x_plus_x_grads_are_independent_arrays(device):
    x = tg.ones(3, requires_grad=True, device=device)
    y = tg.ones(3, requires_grad=True, device=device)
    (x + y).sum().backward()
    x.grad.data[0] = 100.0  # modifying one gradient in place must not touch the other
    assert y.grad.numpy()[0] == 1.0
    z = tg.ones(3, requires_grad=True, device=device)
    g = tg.tensor([1.0, 2.0, 3.0], device=device)
    (z + 0).backward(g)
    z.grad.data[0] = 50.0  # nor the gradient the caller passed in
    assert g.numpy()[0] == 1.0


def test_leaf_backward_seeds_its_own_grad(device):
    x = tg.ones(2, requires_grad=True, device=device)
    x.backward(tg.tensor([3.0, 4.0], device=device))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_broadcast_gradients_reduce_to_input_shape(device):
    a = tg.ones(3, 1, dtype=tg.float64, requires_grad=True, device=device)
    b = tg.ones(4, dtype=tg.float64, requires_grad=True, device=device)
    c = tg.tensor(2.0, dtype=tg.float64, requires_grad=True, device=device)
    (a * b * c).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 8.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 6.0))
    assert c.grad.shape == () and c.grad.item() == 12.0


# --------------------------------------------------------------------- grad modes


def test_no_grad_context_records_nothing_and_nests(device):
    x = tg.ones(2, requires_grad=True, device=device)
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            z = x * 2
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_and_enable_grad_as_decorators(device):
    @tg.no_grad()
    def f(x):
        return x * 2, tg.is_grad_enabled()

    @tg.enable_grad()
    def g(x):
        return x * 2

    x = tg.ones(2, requires_grad=True, device=device)
    y, enabled = f(x)
    assert not y.requires_grad and not enabled and tg.is_grad_enabled()
    with tg.no_grad():
        assert g(x).requires_grad
        assert not tg.is_grad_enabled()


def test_no_grad_decorator_without_parentheses(device):
    @tg.no_grad
    def f(x):
        return x * 2

    x = tg.ones(2, requires_grad=True, device=device)
    assert not f(x).requires_grad and tg.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ValueError):
        with tg.no_grad():
            raise ValueError("boom")
    assert tg.is_grad_enabled()


def test_recursive_decorated_function_keeps_modes():
    @tg.no_grad()
    def rec(n):
        assert not tg.is_grad_enabled()
        return 0 if n == 0 else rec(n - 1) + 1

    assert rec(5) == 5 and tg.is_grad_enabled()


# ----------------------------------------------------------------------- Function


class ScaledProduct(tg.Function):
    """Two inputs, two outputs: (x·y·k, x + y), with k a keyword configuration."""

    last_ctx = None

    @staticmethod
    def forward(ctx, x, y, *, k):
        ScaledProduct.last_ctx = ctx
        ctx.save_for_backward(x, y)
        ctx.k = k
        return x * y * k, x + y

    @staticmethod
    def backward(ctx, g_prod, g_sum):
        x, y = ctx.saved_tensors
        return g_prod * y * ctx.k + g_sum, g_prod * x * ctx.k + g_sum


def test_custom_function_with_two_inputs_and_outputs(device):
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    y = tg.tensor([3.0, -1.0], dtype=tg.float64, requires_grad=True, device=device)
    p, s = ScaledProduct.apply(x, y, k=2.0)
    np.testing.assert_allclose(p.numpy(), [6.0, -4.0])
    np.testing.assert_allclose(s.numpy(), [4.0, 1.0])
    assert p.grad_fn is s.grad_fn
    (p.sum() * 2 + s.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([3.0, -1.0]) * 2 + 1)
    np.testing.assert_allclose(y.grad.numpy(), 2 * np.array([1.0, 2.0]) * 2 + 1)
    assert tg.gradcheck(lambda a, b: ScaledProduct.apply(a, b, k=0.5), [x, y])


def test_unused_output_of_a_multi_output_function_gets_zero_gradient(device):
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    y = tg.tensor([3.0, 4.0], dtype=tg.float64, requires_grad=True, device=device)
    _, s = ScaledProduct.apply(x, y, k=2.0)
    s.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_nothing_is_saved_when_no_input_requires_grad(device):
    ScaledProduct.apply(tg.ones(2, device=device), tg.ones(2, device=device), k=1.0)
    assert ScaledProduct.last_ctx.saved_tensors == ()
    with tg.no_grad():
        ScaledProduct.apply(tg.ones(2, requires_grad=True, device=device),
                            tg.ones(2, device=device), k=1.0)
    assert ScaledProduct.last_ctx.saved_tensors == ()
    out, _ = ScaledProduct.apply(tg.ones(2, requires_grad=True, device=device),
                                 tg.ones(2, device=device), k=1.0)
    assert len(ScaledProduct.last_ctx.saved_tensors) == 2 and out.grad_fn is not None


def test_needs_input_grad_and_none_gradients(device):
    seen = {}

    class HalfDifferentiable(tg.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * 2 + y

        @staticmethod
        def backward(ctx, g):
            seen["needs"] = ctx.needs_input_grad
            return g * 2, None  # y gets no gradient

    x = tg.ones(2, requires_grad=True, device=device)
    y = tg.ones(2, requires_grad=True, device=device)
    HalfDifferentiable.apply(x, y).sum().backward()
    assert seen["needs"] == (True, True)
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    assert y.grad is None
    HalfDifferentiable.apply(x, tg.ones(2, device=device)).sum().backward()
    assert seen["needs"] == (True, False)


def test_single_input_function_returns_a_bare_array(device):
    class Cube(tg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            assert type(x) is type(g) is not tg.Tensor  # raw arrays (NumPy or CuPy)
            return 3 * x**2 * g

    x = tg.tensor([2.0, -1.0], requires_grad=True, device=device)
    y = Cube.apply(x)
    assert isinstance(y, tg.Tensor) and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [12.0, 3.0])


def test_backward_returning_too_many_gradients_is_an_error(device):
    class Bad(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match=r"incorrect number of gradients \(expected 1, got 2\)"):
        Bad.apply(tg.ones(2, requires_grad=True, device=device)).sum().backward()


def test_saved_tensors_are_freed_after_backward(device):
    x = tg.ones(2, requires_grad=True, device=device)
    out, _ = ScaledProduct.apply(x, tg.ones(2, device=device), k=1.0)
    ctx = ScaledProduct.last_ctx
    out.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        ctx.saved_tensors  # noqa: B018
    assert not hasattr(ctx, "k")  # what forward stashed on ctx went too


def test_intermediate_gradients_are_released_once_consumed(device):
    """The gradient flowing into a node is dropped as soon as that node's backward has
    used it, so a long chain holds O(1) gradients at a time, not one per op."""
    import weakref

    seen = {}

    class Double(tg.Function):
        @staticmethod
        def forward(ctx, x, *, name):
            ctx.name = name
            return x * 2

        @staticmethod
        def backward(ctx, g):
            seen[ctx.name] = weakref.ref(g)
            if ctx.name == "first":  # runs last: the later ops' gradients must be gone
                seen["alive_at_first"] = seen["second"]() is not None
            return g * 2

    x = tg.randn(4, dtype=tg.float64, requires_grad=True, device=device)
    y = Double.apply(Double.apply(Double.apply(x, name="first"), name="second"), name="third")
    y.sum().backward()
    assert seen["alive_at_first"] is False
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 8.0))


def test_resnet152_backprops_through_every_layer():
    """The deepest lecture model: the iterative backward reaches the first conv."""
    import models

    tg.manual_seed(0)
    model = models.resnet152(num_classes=3)
    x = tg.randn(2, 3, 32, 32)  # batch 2: training-mode BN needs 2 values at 1×1
    model(x).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert float(np.abs(grads["conv1.weight"].numpy()).sum()) > 0
