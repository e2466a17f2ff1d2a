"""Conformance of the core (Tensor, creation, elementwise, reduce, shape, indexing, pad)
with PyTorch's behaviour: one regression test per discrepancy found by auditing the core
against torch 2.x. Expected values are NumPy references or constants; the direct torch
comparisons at the end skip without torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
import tensorgrad.functional as F

# ----------------------------------------------------------------- creation


@pytest.mark.parametrize("make", [tg.zeros, tg.ones, tg.empty, tg.randn, tg.rand])
def test_creation_sizes_must_be_ints_and_non_negative(make):
    with pytest.raises(TypeError, match="ints"):
        make(2.0, 3)
    with pytest.raises(ValueError, match="non-negative"):
        make(2, -1)


def test_arange_rejects_zero_step_and_a_step_of_the_wrong_sign(device):
    with pytest.raises(ValueError, match="nonzero"):
        tg.arange(0, 5, 0, device=device)
    with pytest.raises(ValueError, match="step -1"):
        tg.arange(0, 5, -1, device=device)
    np.testing.assert_array_equal(tg.arange(5, 0, -2, device=device).numpy(), [5, 3, 1])
    assert tg.arange(3, 3, device=device).shape == (0,)


# ------------------------------------------------------- // and % (torch has them)


@pytest.mark.parametrize("a, b", [
    (np.array([-5, -3, 3, 7]), 2), (np.array([-5, -3, 3, 7]), -3),
    (np.array([-3.5, 2.5, 0.5, 7.25], np.float32), 2.0),
    (np.array([-3.5, 2.5, 0.5, 7.25], np.float32), np.array([2, -3, 1, 4], np.float32)),
])
def test_floor_divide_and_remainder_follow_python_signs(a, b, device):
    ta = tg.tensor(a, device=device)
    tb = tg.tensor(b, device=device) if isinstance(b, np.ndarray) else b
    for got, want in [(ta // tb, np.floor_divide(a, b)), (ta % tb, np.remainder(a, b))]:
        assert got.dtype == a.dtype  # a Python number never changes the tensor's dtype
        np.testing.assert_allclose(got.numpy(), want)
    np.testing.assert_array_equal((7 // tg.tensor([2, -2], device=device)).numpy(), [3, -4])
    np.testing.assert_array_equal((7 % tg.tensor([3, -3], device=device)).numpy(), [1, -2])


def test_floor_divide_records_no_graph(device):
    x = tg.tensor([3.5, -2.5], requires_grad=True, device=device)
    assert not (x // 2).requires_grad


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_remainder_gradcheck(device, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5, 5, (3, n))
    y = rng.uniform(0.5, 2, n) * rng.choice([-1, 1], n)
    # keep away from the jumps of x mod y (where x/y is an integer)
    q = x / y
    x = np.where(np.abs(q - np.round(q)) < 0.05, x + 0.1 * np.abs(y), x)
    xs = [tg.tensor(x, requires_grad=True, device=device),
          tg.tensor(y, requires_grad=True, device=device)]
    assert tg.gradcheck(lambda a, b: a % b, xs)


# ------------------------------------------------------------ Tensor methods


def test_method_spellings_of_the_operators(device):
    a = tg.tensor([1.0, -2.0, 3.0], device=device)
    b = tg.tensor([2.0, 2.0, -1.0], device=device)
    for method, want in [("add", [3, 0, 2]), ("sub", [-1, -4, 4]), ("mul", [2, -4, -3]),
                         ("div", [0.5, -1, -3]), ("pow", [1, 4, 1 / 3]), ("matmul", -5)]:
        np.testing.assert_allclose(getattr(a, method)(b).numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(a.neg().numpy(), [-1, 2, -3])
    for method, want in [("eq", [0, 0, 0]), ("ne", [1, 1, 1]), ("lt", [1, 1, 0]),
                         ("le", [1, 1, 0]), ("gt", [0, 0, 1]), ("ge", [0, 0, 1])]:
        got = getattr(a, method)(b)
        assert got.dtype == tg.bool
        np.testing.assert_array_equal(got.numpy(), np.array(want, bool))


def test_t_view_as_expand_as_contiguous_bool(device):
    m = tg.tensor(np.arange(6.0).reshape(2, 3), device=device)
    np.testing.assert_array_equal(m.t().numpy(), np.arange(6.0).reshape(2, 3).T)
    assert tg.ones(3, device=device).t().shape == (3,)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        tg.ones(2, 3, 4, device=device).t()
    assert tg.ones(6, device=device).view_as(m).shape == (2, 3)
    assert tg.ones(6, device=device).reshape_as(m.T).shape == (3, 2)
    assert tg.ones(1, 3, device=device).expand_as(m).shape == (2, 3)
    assert m.contiguous() is m
    b = tg.tensor([0, 2, -1], device=device).bool()
    assert b.dtype == tg.bool
    np.testing.assert_array_equal(b.numpy(), [False, True, True])


def test_T_reverses_every_axis(device):
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(tg.tensor(x, device=device).T.numpy(), x.transpose(2, 1, 0))


# ------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("fn, ref", [("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt),
                                     ("tanh", np.tanh),
                                     ("sigmoid", lambda a: 1 / (1 + np.exp(-a)))])
def test_float_functions_of_integer_tensors_are_float32(fn, ref, device):
    a = np.array([1, 2, 3])
    got = getattr(tg.tensor(a, device=device), fn)()
    assert got.dtype == tg.float32
    np.testing.assert_allclose(got.numpy(), ref(a.astype(np.float64)), rtol=1e-6)
    assert tg.tensor([True, False], device=device).sigmoid().dtype == tg.float32


def test_clamp_of_an_integer_tensor(device):
    x = tg.tensor([-5, 0, 7], device=device)
    assert x.clamp(-1, 4).dtype == tg.int64
    got = x.clamp(1.5)
    assert got.dtype == tg.float32
    np.testing.assert_array_equal(got.numpy(), [1.5, 1.5, 7])


def test_where_with_two_numbers(device):
    c = tg.tensor([True, False, True], device=device)
    got = tg.where(c, 1.0, 0.0)
    assert got.dtype == tg.float32
    np.testing.assert_array_equal(got.numpy(), [1, 0, 1])
    assert tg.where(c, 1, 0).dtype == tg.int64
    np.testing.assert_array_equal(tg.where(c, 1, 0.5).numpy(), [1, 0.5, 1])
    with pytest.raises(TypeError):
        tg.where(c, "a", 0)


def test_cat_and_stack_promote_dtypes_and_keep_gradients(device):
    a = tg.tensor([1.0, 2.0], requires_grad=True, device=device)
    out = tg.cat([a, tg.tensor([3, 4], device=device)])
    assert out.dtype == tg.float32
    np.testing.assert_array_equal(out.numpy(), [1, 2, 3, 4])
    b = tg.tensor([1.0], dtype=tg.float64, requires_grad=True, device=device)
    out = tg.cat([a, b])
    assert out.dtype == tg.float64
    (out * tg.tensor([1.0, 2, 3], dtype=tg.float64, device=device)).sum().backward()
    assert a.grad.dtype == tg.float32 and b.grad.dtype == tg.float64
    np.testing.assert_array_equal(a.grad.numpy(), [1, 2])
    np.testing.assert_array_equal(b.grad.numpy(), [3])
    assert tg.stack([tg.tensor([1, 2], device=device),
                     tg.tensor([True, False], device=device)]).dtype == tg.int64


def test_cat_errors(device):
    with pytest.raises(ValueError, match="zero-dimensional"):
        tg.cat([tg.tensor(1.0, device=device), tg.tensor(2.0, device=device)])
    with pytest.raises(TypeError, match="single Tensor"):
        tg.cat(tg.ones(2, 3, device=device))
    with pytest.raises(TypeError, match="single Tensor"):
        tg.stack(tg.ones(2, 3, device=device))


# ------------------------------------------------------------- gradients


def test_gradient_of_x_to_the_zero_is_zero_at_zero(device):
    x = tg.tensor([0.0, 1.0, -2.0], dtype=tg.float64, requires_grad=True, device=device)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])
    x = tg.tensor([0.0, 0.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    y = tg.tensor([0.0, 1.0, 0.0], dtype=tg.float64, device=device)
    (x**y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 0])


@pytest.mark.parametrize("op", ["var", "std"])
def test_unbiased_variance_of_one_element_is_nan_with_a_nan_gradient(op, device):
    x = tg.tensor([2.0], dtype=tg.float64, requires_grad=True, device=device)
    y = getattr(x, op)()
    assert np.isnan(y.item())
    y.backward()
    assert np.isnan(x.grad.numpy()).all()


def test_var_std_correction(device):
    a = np.array([[1.0, 2, 4], [3, 5, 9]])
    x = tg.tensor(a, device=device)
    np.testing.assert_allclose(x.var(1, correction=0).numpy(), a.var(1), rtol=1e-6)
    np.testing.assert_allclose(x.std(correction=2).numpy(), a.std(ddof=2), rtol=1e-6)
    np.testing.assert_allclose(x.var(0, unbiased=False).numpy(), a.var(0), rtol=1e-6)
    # dim=() reduces every dimension (PyTorch's reading, not NumPy's)
    assert x.var(dim=()).item() == pytest.approx(a.var(ddof=1))
    assert x.sum(dim=[]).item() == a.sum() and x.amax(dim=()).item() == 9.0


def test_softmax_of_a_0d_tensor_and_of_integers(device):
    x = tg.tensor(0.7, dtype=tg.float64, requires_grad=True, device=device)
    s = x.softmax(0)
    assert s.shape == () and s.item() == 1.0
    assert x.log_softmax(-1).item() == 0.0
    s.backward()
    assert x.grad.item() == 0.0
    with pytest.raises(TypeError, match="int64"):
        tg.tensor([1, 2], device=device).softmax(0)
    with pytest.raises(TypeError, match="int64"):
        F.log_softmax(tg.tensor([1, 2], device=device), 0)


# -------------------------------------------------------- argument checks


def test_shape_arguments_must_be_ints(device):
    x = tg.ones(6, device=device)
    with pytest.raises(TypeError):
        x.reshape(2.0, 3)
    with pytest.raises(TypeError):
        x.view(2, 3.0)
    with pytest.raises(TypeError):
        tg.ones(2, 3, device=device).permute(1.0, 0)


def test_expand_rejects_minus_one_in_a_new_leading_dim(device):
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        tg.ones(2, 3, device=device).expand(-1, 2, 3)
    assert tg.ones(2, 1, device=device).expand(4, -1, 3).shape == (4, 2, 3)


def test_squeeze_with_an_empty_tuple_squeezes_nothing(device):
    assert tg.ones(1, 2, 1, device=device).squeeze(()).shape == (1, 2, 1)


def test_indexing_with_a_string_is_a_type_error(device):
    with pytest.raises(TypeError, match="str"):
        tg.ones(3, device=device)["a"]


def test_pad_accepts_torch_mode_and_value_none(device):
    x = tg.ones(2, 2, device=device)
    np.testing.assert_array_equal(F.pad(x, (1, 1), mode="constant", value=2.0).numpy(),
                                  [[2, 1, 1, 2], [2, 1, 1, 2]])
    np.testing.assert_array_equal(F.pad(x, (1, 0), value=None).numpy(), [[0, 1, 1], [0, 1, 1]])
    with pytest.raises(ValueError, match="reflect"):
        F.pad(x, (1, 1), mode="reflect")


# ------------------------------------------------------ against PyTorch


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a = rng.uniform(-5, 5, (3, 4))
    b = rng.uniform(0.5, 2, 4) * rng.choice([-1, 1], 4)
    cases = [
        (lambda m, x, y: x % y, (a, b)),
        (lambda m, x, y: m.cat([x, y.double()]).exp(), (a, b[None].astype(np.float32))),
        (lambda m, x, y: x ** y, (np.array([0.0, 0.0, 2.0]), np.array([0.0, 1.0, 0.0]))),
        (lambda m, x, y: m.where(x > y, x, 0.0) * y, (a, b)),
    ]
    for fn, arrays in cases:
        results = []
        for m in (tg, torch):
            ts = [m.tensor(x, requires_grad=True) for x in arrays]
            out = fn(m, *ts)
            out.sum().backward()
            results.append([np.asarray(out.detach().numpy())]
                           + [np.asarray(t.grad.numpy()) for t in ts])
        for got, want in zip(*results):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


# ------------------------------------------------- review fixes (PyTorch's behaviour)
def test_retain_grad_keeps_a_writable_copy(device):
    x = tg.ones(2, 3, requires_grad=True, device=device)
    y = x * 2
    y.retain_grad()
    y.sum().backward()
    y.grad.zero_()  # the broadcast gradient of sum() is a read-only view; ours is a copy
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_argmax_of_a_0d_tensor_and_tuple_dims(device):
    assert tg.tensor(3.0, device=device).argmax(0).item() == 0
    assert tg.tensor(3.0, device=device).argmin().item() == 0
    with pytest.raises(TypeError):
        tg.ones(2, 3, device=device).argmax((0, 1))


def test_transpose_of_a_0d_tensor_is_itself(device):
    x = tg.tensor(3.0, device=device)
    assert x.transpose(0, -1).item() == 3.0
    with pytest.raises(IndexError):
        x.transpose(0, 1)


def test_numpy_integer_dims_are_accepted(device):
    np.testing.assert_allclose(tg.ones(2, 3, device=device).sum(np.int64(1)).numpy(), [3.0, 3.0])


def test_a_0d_tensor_does_not_upcast_a_float32_tensor(device):
    y = tg.ones(3, device=device) + tg.tensor(2.0, dtype=tg.float64, device=device)
    assert y.dtype == np.float32
    z = tg.tensor(2.0, dtype=tg.float64, device=device) * tg.ones(3, device=device)
    assert z.dtype == np.float32
    # between two tensors with dimensions NumPy's (and PyTorch's) promotion holds
    assert (tg.ones(3, device=device)
            + tg.ones(3, dtype=tg.float64, device=device)).dtype == np.float64


def test_clamp_needs_a_bound(device):
    with pytest.raises(ValueError, match="at least one of min and max"):
        tg.ones(3, device=device).clamp()


def test_a_shape_op_that_changes_nothing_still_makes_a_new_tensor(device):
    x = tg.ones(2, 3, requires_grad=True, device=device)
    for y in (x.reshape(2, 3), x.flatten(1), x.squeeze(), x.expand(2, 3), x.view(2, 3)):
        assert y is not x and not y.is_leaf
        y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 5.0))


# ------------------------------------------------ second audit (session 9)


def test_integer_and_bool_results_are_constants_to_autograd(device):
    x = tg.tensor([1.5, 2.5, 3.5], requires_grad=True, device=device)
    assert not x.long().requires_grad and x.long().grad_fn is None
    assert not x.argmax().requires_grad
    (x.long().float() * x).sum().backward()  # the cast is a constant: d/dx = trunc(x)
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError):
        (x.to(dtype=tg.int32) * 2).float().sum().backward()


def test_std_gradient_is_zero_where_the_std_is_zero(device):
    x = tg.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], dtype=tg.float64, requires_grad=True,
                  device=device)
    x.std(1).sum().backward()  # row 1: std 1, d/dx = (x - 2) / (2·1)
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0, 0], [-0.5, 0, 0.5]])
    y = tg.tensor([2.0], requires_grad=True, device=device)
    y.std(unbiased=False).backward()
    assert y.grad.numpy().tolist() == [0.0]
    with tg.no_grad():
        assert tg.tensor([1.0, 3.0], device=device).std().item() == pytest.approx(2**0.5)


def test_max_and_min_send_the_gradient_to_a_nan(device):
    x = tg.tensor([1.0, float("nan"), 3.0], requires_grad=True, device=device)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.0])
    z = tg.tensor([[2.0, float("nan")], [1.0, 0.0]], requires_grad=True, device=device)
    values, indices = z.min(1)
    assert indices.tolist() == [1, 1]
    values.sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), [[0.0, 1.0], [0.0, 1.0]])
    z.grad = None
    z.amin(1).sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), [[0.0, 1.0], [0.0, 1.0]])


def test_reductions_and_softmax_of_empty_tensors(device):
    assert tg.zeros(0, 3, device=device).max(1).values.shape == (0,)
    with pytest.raises(ValueError, match="empty dimension"):
        tg.zeros(0, 3, device=device).max(0)
    assert tg.zeros(2, 0, device=device).softmax(1).shape == (2, 0)
    assert F.log_softmax(tg.zeros(0, 4, device=device), 1).shape == (0, 4)


def test_numpy_scalars_do_not_upcast_pow_and_clamp(device):
    x = tg.tensor([1.0, 2.0, 3.0], device=device)
    assert (x ** np.float64(2.0)).dtype == np.float32
    assert x.clamp(min=np.float64(1.5)).dtype == np.float32
    assert x.clamp(max=np.float64(1.5)).dtype == np.float32
    np.testing.assert_array_equal((x ** np.int64(2)).numpy(), [1.0, 4.0, 9.0])


def test_clamp_with_min_above_max_gives_max_everywhere(device):
    x = tg.arange(4.0, device=device).requires_grad_()
    y = x.clamp(2, 1)
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0, 1.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 0.0])


def test_integer_tensor_divided_by_a_float64_array_is_float64():
    y = tg.tensor([1, 2]) / np.array([3.0, 3.0])
    assert y.dtype == np.float64
    assert y.numpy()[0] == 1 / 3


def test_pow_exponent_gradient_at_base_zero(device):
    b = tg.tensor([0.0, 0.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    e = tg.tensor([-1.0, 2.0, 2.0], dtype=tg.float64, requires_grad=True, device=device)
    with np.errstate(divide="ignore"):
        (b ** e).sum().backward()
    assert e.grad.numpy()[0] == -np.inf  # 0^-1 = inf, times log 0 = -inf
    assert e.grad.numpy()[1] == 0.0  # PyTorch's convention for 0^y, y >= 0
    assert e.grad.numpy()[2] == pytest.approx(4 * np.log(2))


def test_relu_passes_the_gradient_of_a_nan(device):
    x = tg.tensor([float("nan"), 1.0, 0.0, -1.0], requires_grad=True, device=device)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 0.0, 0.0])


def test_full_with_a_numpy_scalar_infers_like_the_python_number(device):
    assert tg.full((2,), np.float64(1.5), device=device).dtype == np.float32
    assert tg.full((2,), np.int32(3), device=device).dtype == np.int64
    np.testing.assert_array_equal(tg.full((2,), np.float64(1.5), device=device).numpy(), [1.5, 1.5])


def test_axis_is_an_alias_of_dim_everywhere_and_not_both(device):
    x = tg.ones(2, 1, 3, device=device)
    assert x.squeeze(axis=1).shape == (2, 3) and x.unsqueeze(axis=0).shape == (1, 2, 1, 3)
    assert tg.cat([x, x], axis=2).shape == (2, 1, 6) and tg.stack([x, x], axis=1).shape == (
        2, 2, 1, 3)
    np.testing.assert_allclose(x.softmax(axis=2).numpy(), np.full((2, 1, 3), 1 / 3), rtol=1e-6)
    assert F.log_softmax(x, axis=0).shape == (2, 1, 3)
    with pytest.raises(TypeError, match="both dim"):
        x.sum(dim=0, axis=1)
    with pytest.raises(TypeError, match="keepdims"):
        x.sum(1, keepdim=True, keepdims=False)
    with pytest.raises(TypeError, match="both dim"):
        tg.cat([x, x], 1, axis=0)


def test_assigning_a_gradient_is_checked_at_once(device):
    p = tg.ones(2, 3, requires_grad=True, device=device)
    with pytest.raises(ValueError, match="shape"):
        p.grad = tg.ones(3, device=device)
    with pytest.raises(TypeError, match="dtype"):
        p.grad = tg.ones(2, 3, dtype=tg.float64, device=device)
    with pytest.raises(TypeError, match="Tensor or None"):
        p.grad = [1, 2]
    p.grad = tg.zeros(2, 3, device=device)
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((2, 3), 2.0))


def test_matmul_of_two_dtypes_is_refused(device):
    with pytest.raises(TypeError, match="float32 and float64"):
        tg.ones(2, 3, device=device) @ tg.ones(3, dtype=tg.float64, device=device)


def test_full_value_alias_arange_end_keyword_and_gradcheck_error_type(device):
    np.testing.assert_array_equal(tg.full((2,), value=2.5, device=device).numpy(), [2.5, 2.5])
    np.testing.assert_array_equal(tg.arange(end=3, device=device).numpy(), [0, 1, 2])
    assert issubclass(tg.GradcheckError, RuntimeError)
    assert issubclass(tg.GradcheckError, AssertionError)


@pytest.mark.parametrize("call, error, words", [
    (lambda: tg.ones(2).size(5), IndexError, "out of range"),
    (lambda: tg.tensor(3.0).size(0), IndexError, "out of range"),
    (lambda: tg.ones(2, 3).sum(0.5), TypeError, "dim must be an int"),
    (lambda: tg.ones(3).unsqueeze(0.0), TypeError, "dim must be an int"),
    (lambda: tg.tensor([[1, 2], [3]]), ValueError, "unequal lengths"),
    (lambda: F.dropout(tg.ones(3), p="a"), TypeError, "must be a number"),
])
def test_misuse_gets_a_clear_error(call, error, words):
    with pytest.raises(error, match=words):
        call()
