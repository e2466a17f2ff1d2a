"""In-place operations, version counters and the Function contract: PyTorch's rules,
so that no habit carried over from PyTorch gives a silently wrong gradient."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.testing import broadcastable_shapes

MODIFIED = "modified by an inplace operation"


# ------------------------------------------------------------ saved tensors


def test_setitem_on_a_saved_tensor_is_detected(device):
    w = tg.ones(3, requires_grad=True, device=device)
    c = tg.tensor([1.0, 2.0, 3.0], device=device)
    loss = (w * c).sum()
    c[0] = 100
    with pytest.raises(RuntimeError, match=MODIFIED) as e:
        loss.backward()
    assert "Mul" in str(e.value) and "version 1" in str(e.value) and "version 0" in str(e.value)
    assert w.grad is None  # nothing was accumulated before the error


@pytest.mark.parametrize("change", [
    lambda c: c.fill_(5.0), lambda c: c.zero_(), lambda c: c.copy_(tg.ones(3)),
    lambda c: c.add_(1.0), lambda c: c.mul_(2.0), lambda c: c.clamp_(0.0, 1.0),
    lambda c: c.__iadd__(1.0), lambda c: c.reshape(3).sub_(1.0), lambda c: c[1:].div_(2.0),
    lambda c: c.detach().abs_(), lambda c: c.unsqueeze(0).squeeze(0).neg_(),
])
def test_every_inplace_method_bumps_the_shared_counter(change, device):
    w = tg.ones(3, requires_grad=True, device=device)
    c = tg.tensor([1.0, -2.0, 3.0], device=device)
    loss = (w * c).sum()
    before = c._version
    change(c)
    assert c._version > before
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_an_output_saved_for_backward_is_checked_too(device):
    x = tg.randn(4, requires_grad=True, device=device)
    y = x.exp()  # exp's backward reads its output
    y.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*Exp"):
        y.sum().backward()


def test_optimizer_step_between_forward_and_backward_is_detected(device):
    import nn

    model = nn.Linear(3, 2).to(device)
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    loss = model(tg.randn(4, 3, device=device)).pow(2).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_views_share_the_counter_and_copies_do_not(device):
    base = tg.zeros(2, 3, device=device)
    views = [base.reshape(6), base.transpose(0, 1), base.permute(1, 0), base[0], base[:, 1:],
             base.unsqueeze(0), base.expand(4, 2, 3), base.detach(), base.view(3, 2)]
    copies = [base[tg.tensor([0, 1], device=device)], base.clone(), base * 1, base[base > 0]]
    base.add_(1.0)
    assert all(v._version == 1 for v in views)
    assert all(c._version == 0 for c in copies)
    views[3].fill_(7.0)  # writing through a view is seen by the base and its other views
    assert base._version == 2 and base.numpy()[0].tolist() == [7.0] * 3


def test_write_through_data_does_not_bump(device):
    c = tg.ones(3, device=device)
    c.data[0] = 5.0
    assert c._version == 0


# ------------------------------------------------------------ in-place rules


def test_manual_sgd_updates_the_parameter_in_place(device):
    p = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (p * p).sum().backward()
    storage = p.data
    with tg.no_grad():
        p -= 0.1 * p.grad
    assert p.data is storage and p.requires_grad and p.is_leaf
    np.testing.assert_allclose(p.numpy(), [0.8, 1.6], rtol=1e-6)
    assert p._version == 1


@pytest.mark.parametrize("op", [
    lambda p: p.add_(1.0), lambda p: p.sub_(1.0), lambda p: p.mul_(2.0), lambda p: p.div_(2.0),
    lambda p: p.clamp_(0.0), lambda p: p.abs_(), lambda p: p.fill_(0.0), lambda p: p.zero_(),
    lambda p: p.copy_(tg.zeros(2)), lambda p: p.__setitem__(0, 1.0), lambda p: p.__iadd__(1.0),
    lambda p: p.__isub__(1.0), lambda p: p.__imul__(2.0), lambda p: p.__itruediv__(2.0),
])
def test_inplace_on_a_leaf_that_requires_grad_is_refused(op, device):
    p = tg.tensor([1.0, -2.0], requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        op(p)
    assert p.numpy().tolist() == [1.0, -2.0] and p._version == 0  # nothing changed
    with tg.no_grad():
        op(p)  # allowed under no_grad, as an optimizer step
    assert p._version == 1 and p.is_leaf


def test_inplace_on_a_non_leaf_is_recorded(device):
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    h = x * 1.0
    h.mul_(3.0)
    h += x
    assert h.grad_fn is not None
    (h * h).sum().backward()
    # h = 4x, d/dx sum(h^2) = 2 h * 4 = 32 x
    np.testing.assert_allclose(x.grad.numpy(), [32.0, 64.0, 96.0])


def test_a_consumer_keeps_the_value_it_read(device):
    # y read h before mul_; its gradient must not go through the later in-place op
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    h = x * 1.0
    y = h + 2.0
    h.mul_(3.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_setitem_on_a_non_leaf_is_recorded(device):
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    v = tg.tensor([5.0], requires_grad=True, device=device)
    h = x * 2.0
    h[1:2] = v * 3.0
    (h * tg.tensor([1.0, 10.0, 100.0], device=device)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 200.0])
    np.testing.assert_allclose(v.grad.numpy(), [30.0])


def test_inplace_into_a_constant_with_a_grad_operand_records_it(device):
    w = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    acc = tg.zeros(2, device=device)
    acc += w * w
    assert not acc.is_leaf
    acc.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 4.0])


def test_inplace_through_a_view_of_a_tensor_that_requires_grad_raises(device):
    x = tg.ones(2, 3, requires_grad=True, device=device)
    h = x * 2.0
    with pytest.raises(RuntimeError, match="view"):
        h[0].add_(1.0)
    with pytest.raises(RuntimeError, match="view"):
        x.reshape(6).mul_(2.0)


def test_fill_of_a_non_leaf_cuts_the_gradient(device):
    x = tg.ones(3, requires_grad=True, device=device)
    h = x * 2.0
    h.fill_(0.0)
    (h + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0])


def test_copy_gives_the_source_its_gradient_broadcast(device):
    x = tg.ones(2, 3, requires_grad=True, device=device)
    src = tg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    h = x * 1.0
    h.copy_(src)
    (h * h).sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), [4.0, 8.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), np.zeros((2, 3)))


def test_inplace_dtype_and_shape_rules(device):
    i = tg.tensor([1, 2], device=device)
    with pytest.raises(TypeError, match="can't be cast"):
        i += 0.5
    f = tg.ones(3, device=device)
    f += tg.ones(3, dtype=tg.float64, device=device)  # a float64 result is cast down into float32
    assert f.dtype == tg.float32 and f.numpy().tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\)"):
        f += tg.ones(2, 3, device=device)
    assert f.numpy().tolist() == [2.0, 2.0, 2.0]


@given(shapes=broadcastable_shapes(), data=st.data())
def test_inplace_operators_match_numpy(shapes, data, device):
    a_shape, b_shape = shapes
    full = np.broadcast_shapes(a_shape, b_shape)
    if full != tuple(a_shape):
        return  # the result must fit the tensor written into
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    a = rng.uniform(0.5, 2.0, a_shape)
    b = rng.uniform(0.5, 2.0, b_shape)
    for name, op in (("+=", np.add), ("-=", np.subtract), ("*=", np.multiply),
                     ("/=", np.divide)):
        t = tg.tensor(a, device=device)
        storage = t.data
        if name == "+=":
            t += tg.tensor(b, device=device)
        elif name == "-=":
            t -= tg.tensor(b, device=device)
        elif name == "*=":
            t *= tg.tensor(b, device=device)
        else:
            t /= tg.tensor(b, device=device)
        assert t.data is storage and t._version == 1
        np.testing.assert_allclose(t.numpy(), op(a, b), rtol=1e-12)


@given(data=st.data())
def test_recorded_inplace_gradients_match_finite_differences(data, device):
    n = data.draw(st.integers(1, 5))
    x = tg.tensor(np.random.default_rng(n).uniform(0.5, 2.0, (n,)), requires_grad=True,
                  device=device)
    y = tg.tensor(np.random.default_rng(n + 1).uniform(0.5, 2.0, (n,)), requires_grad=True,
                  device=device)

    def f(x, y):
        h = x * 1.0
        h.mul_(y)
        h.add_(x, alpha=2.0)
        h.div_(y + 1.0)
        h.clamp_(min=0.1)
        h[0] = h[0] * y[0]
        return h

    assert tg.gradcheck(f, [x, y])


# ------------------------------------------------------------ Function contract


class MyMul(tg.Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * y  # forgot the gradient of y


def test_backward_returning_too_few_gradients_raises(device):
    x = tg.ones(2, requires_grad=True, device=device)
    y = tg.ones(2, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match=r"function MyMul returned an incorrect number of "
                                           r"gradients \(expected 2, got 1\)"):
        MyMul.apply(x, y).sum().backward()


def test_forward_returning_a_tensor_is_a_type_error_at_once(device):
    class Twice(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return tg.Tensor(x) * 2  # the PyTorch habit

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    with pytest.raises(TypeError, match="Twice.forward returned a Tensor.*raw arrays"):
        Twice.apply(tg.ones(2, requires_grad=True, device=device))


def test_backward_of_the_wrong_shape_names_the_function(device):
    class Flat(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.reshape(-1)[:1]

    x = tg.ones(2, 3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match=r"FlatBackward.*shape \(1,\).*\(2, 3\)"):
        Flat.apply(x).sum().backward()


class AddOneInPlace(tg.Function):
    @staticmethod
    def forward(ctx, x):
        x += 1
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return g


def test_mark_dirty_returns_the_input_itself_and_bumps_it(device):
    x = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    h = x * 3.0
    out = AddOneInPlace.apply(h)
    assert out is h and h._version == 1 and h.grad_fn.name() == "AddOneInPlace"
    np.testing.assert_allclose(h.numpy(), [4.0, 7.0])
    (h * h).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [24.0, 42.0])  # 2 (3x + 1) * 3
    leaf = tg.ones(2, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        AddOneInPlace.apply(leaf)
