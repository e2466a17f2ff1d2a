"""Higher-order gradients: create_graph, tg.autograd.grad/backward, the functional API,
once_differentiable and gradgradcheck — each against closed forms or finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.autograd import functional as AF
from tensorgrad.testing import tensors


def f64(*values, requires_grad=True, device="cpu"):
    return tg.tensor(np.array(values, dtype=np.float64), requires_grad=requires_grad,
                     device=device)


# ------------------------------------------------------------------ grad


def test_second_derivative_of_tanh_is_the_closed_form(device):
    x = f64(0.5, -1.0, 2.0, device=device)
    (g,) = tg.autograd.grad(x.tanh().sum(), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    (h,) = tg.autograd.grad(g.sum(), x, create_graph=True)
    (k,) = tg.autograd.grad(h.sum(), x)
    t = np.tanh(x.numpy())
    np.testing.assert_allclose(g.numpy(), 1 - t * t, rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), -2 * t * (1 - t * t), rtol=1e-12)
    np.testing.assert_allclose(k.numpy(), -2 * (1 - t * t) ** 2 + 4 * t * t * (1 - t * t),
                               rtol=1e-12)


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone(device):
    x, y = f64(1.0, 2.0, device=device), f64(3.0, 4.0, device=device)
    gx, gy = tg.autograd.grad((x * y).sum(), [x, y])
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gy.numpy(), [1.0, 2.0])
    assert x.grad is None and y.grad is None
    assert not gx.requires_grad  # no graph unless asked for


def test_grad_of_a_non_leaf_and_of_several_outputs(device):
    x = f64(1.0, 2.0, device=device)
    h = x * x
    out1, out2 = (h * 3.0).sum(), h.sum()
    (gh,) = tg.autograd.grad([out1, out2], h)
    np.testing.assert_allclose(gh.numpy(), [4.0, 4.0])


def test_grad_outputs_weight_a_non_scalar_output(device):
    x = f64(1.0, 2.0, device=device)
    (g,) = tg.autograd.grad(x * x, x,
                            grad_outputs=tg.tensor([10.0, 100.0], dtype=tg.float64, device=device))
    np.testing.assert_allclose(g.numpy(), [20.0, 400.0])
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        tg.autograd.grad(x * x, x)


def test_allow_unused(device):
    x, y = f64(1.0, device=device), f64(2.0, device=device)
    with pytest.raises(RuntimeError, match="input 1 .* not used.*allow_unused=True"):
        tg.autograd.grad((x * 2.0).sum(), [x, y], retain_graph=True)
    gx, gy = tg.autograd.grad((x * 2.0).sum(), [x, y], allow_unused=True)
    assert gy is None and gx.item() == 2.0


def test_retain_graph_defaults_to_create_graph(device):
    x = f64(1.0, 2.0, device=device)
    y = (x * x).sum()
    tg.autograd.grad(y, x, create_graph=True)
    (g,) = tg.autograd.grad(y, x)  # the graph was kept by create_graph
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    with pytest.raises(RuntimeError, match="second time"):
        tg.autograd.grad(y, x)


def test_backward_create_graph_gives_a_grad_with_a_graph(device):
    x = f64(1.0, -2.0, device=device)
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert g.grad_fn is not None
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, -12.0])  # d/dx 3x^2 = 6x


def test_backward_inputs_accumulates_only_into_them(device):
    x, y = f64(1.0, 2.0, device=device), f64(3.0, 4.0, device=device)
    (x * y).sum().backward(inputs=[y])
    assert x.grad is None
    np.testing.assert_allclose(y.grad.numpy(), [1.0, 2.0])
    tg.autograd.backward([(x * y).sum(), (x * 2.0).sum()], inputs=[x])
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 6.0])


def test_autograd_backward_with_grad_tensors(device):
    x = f64(1.0, 2.0, device=device)
    tg.autograd.backward([x * 3.0], [tg.tensor([1.0, 10.0], dtype=tg.float64, device=device)])
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 30.0])


def test_gradient_penalty_trains_through_the_input_gradient(device):
    # d/dw of || d(w·x)/dx ||^2 = d/dw ||w||^2 = 2w
    w = f64(0.5, -1.5, device=device)
    x = f64(1.0, 2.0, device=device)
    (gx,) = tg.autograd.grad((w * x).sum(), x, create_graph=True)
    (gx * gx).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, -3.0])


def test_hooks_see_tensors_under_create_graph(device):
    x = f64(1.0, 2.0, device=device)
    h = x * x
    seen = []
    h.register_hook(lambda g: seen.append(g.requires_grad) or g * 2.0)
    (g,) = tg.autograd.grad((h * x).sum(), x, create_graph=True)
    # d/dx (x^2 · x) with h's gradient doubled: 2·x·2x + x^2 = 5x^2
    np.testing.assert_allclose(g.numpy(), [5.0, 20.0])
    assert seen == [True]  # h's gradient is x: it has a graph of its own


# ------------------------------------------------------------------ functional


def cubic(a):
    return (a * a * a).sum()


def test_hessian_jacobian_and_products_of_a_cubic(device):
    x = f64(1.0, -2.0, 0.5, requires_grad=False, device=device)
    v = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, device=device)
    np.testing.assert_allclose(AF.hessian(cubic, x).numpy(), np.diag(6 * x.numpy()))
    np.testing.assert_allclose(AF.jacobian(lambda a: a * a, x).numpy(), np.diag(2 * x.numpy()))
    out, hv = AF.hvp(cubic, x, v)
    np.testing.assert_allclose(hv.numpy(), 6 * x.numpy() * v.numpy())
    assert out.item() == pytest.approx(float((x.numpy() ** 3).sum()))
    _, jv = AF.jvp(lambda a: a * a, x, v)
    np.testing.assert_allclose(jv.numpy(), 2 * x.numpy() * v.numpy())
    _, vj = AF.vjp(lambda a: a * a, x, v)
    np.testing.assert_allclose(vj.numpy(), 2 * x.numpy() * v.numpy())


def test_jacobian_of_two_inputs_is_a_tuple_of_blocks(device):
    a, b = f64(1.0, 2.0, requires_grad=False, device=device), f64(3.0, requires_grad=False,
                                                                  device=device)
    ja, jb = AF.jacobian(lambda p, q: p * q, (a, b))
    assert ja.shape == (2, 2) and jb.shape == (2, 1)
    np.testing.assert_allclose(ja.numpy(), np.eye(2) * 3.0)
    np.testing.assert_allclose(jb.numpy(), [[1.0], [2.0]])


@settings(max_examples=10)
@given(x=tensors(st.tuples(st.integers(1, 4)), min_value=-2, max_value=2),
       v=st.lists(st.floats(-2, 2), min_size=4, max_size=4))
def test_hvp_matches_finite_differences_of_the_gradient(x, v):
    f = lambda a: (a.tanh() * a).sum()  # noqa: E731
    vt = tg.tensor(np.array(v[:x.shape[0]]), dtype=tg.float64)
    _, hv = AF.hvp(f, x, vt)
    eps = 1e-6

    def gradient(a):
        (g,) = tg.autograd.grad(f(a), a)
        return g.numpy()

    plus = tg.tensor(x.numpy() + eps * vt.numpy(), requires_grad=True)
    minus = tg.tensor(x.numpy() - eps * vt.numpy(), requires_grad=True)
    numeric = (gradient(plus) - gradient(minus)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), numeric, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ user Functions


class Cube(tg.Function):
    """x³ with a backward written in the xp idiom: twice differentiable."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x * x


class CubeOnce(tg.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @tg.autograd.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x * x


def test_a_user_function_with_a_differentiable_backward(device):
    x = f64(1.0, -2.0, device=device)
    assert tg.gradgradcheck(Cube.apply, [x])
    (g,) = tg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [6.0, -12.0])


def test_once_differentiable_raises_only_when_differentiated_again(device):
    x = f64(1.0, -2.0, device=device)
    (g,) = tg.autograd.grad(CubeOnce.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])  # the first derivative is fine
    with pytest.raises(RuntimeError, match="once_differentiable: CubeOnce"):
        g.sum().backward()


def test_gradgradcheck_catches_a_wrong_second_derivative(device):
    class WrongCube(Cube):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.x_raw = x  # an attribute, not saved: a constant to create_graph
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x * ctx.x_raw  # right values, half the second derivative

    x = f64(1.0, -2.0, device=device)
    assert tg.gradcheck(WrongCube.apply, [x])  # first order is right
    with pytest.raises(tg.GradcheckError, match="gradgradcheck failed for input 0"):
        tg.gradgradcheck(WrongCube.apply, [x])


def test_gradgradcheck_catches_a_recorded_first_derivative_that_differs(device):
    # the recorded backward returns zeros: its own derivative (zero) is consistent, so
    # only the comparison with plain backward's first derivative can catch it
    class TwoFaced(Cube):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            if isinstance(g, tg.autograd.traced.TracedArray):
                return 0 * g * x
            return 3 * g * x * x

    x = f64(1.0, -2.0, device=device)
    with pytest.raises(tg.GradcheckError, match="recorded with create_graph differs"):
        tg.gradgradcheck(TwoFaced.apply, [x])


def test_a_fused_op_whose_inputs_share_a_history_gets_partial_derivatives():
    # weight and bias both computed from g: create_graph differentiates layer_norm's
    # composite, and each input must get its own partial derivative (once), not g's
    # total derivative through the other input as well
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 2)), requires_grad=True)
    g = f64(0.5, -1.5)

    def f(a, w):
        return tg.functional.layer_norm(a, (2,), w, w * 0.5)

    (recorded,) = tg.autograd.grad(f(x, g).sum(), g, create_graph=True)
    (plain,) = tg.autograd.grad(f(x, g).sum(), g)
    np.testing.assert_allclose(recorded.detach().numpy(), plain.numpy(), rtol=1e-12)
    assert tg.gradgradcheck(lambda a, w: f(a, w) ** 2, [x, g])
