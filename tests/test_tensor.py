"""Tensor creation, dtype policy, attributes and conversions (issue 2 items 1, 5)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorgrad as tg

# ------------------------------------------------------------------ dtype inference


@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32), ([1.0, 2.0], np.float32), ([[1, 2.5]], np.float32), (3, np.int64),
    ([1, 2, 3], np.int64), (True, np.bool_), ([True, False], np.bool_),
    (np.zeros(2, np.float64), np.float64), (np.zeros(2, np.float16), np.float16),
    (np.zeros(2, np.int32), np.int32), (np.float64(2.0), np.float64), (np.int32(2), np.int32),
])
def test_tensor_infers_dtype_as_pytorch(data, dtype):
    t = tg.tensor(data)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))
    assert isinstance(t.data, np.ndarray)


def test_tensor_copies_while_from_numpy_shares(device):
    a = np.arange(3.0)
    t, s = tg.tensor(a, device=device), tg.from_numpy(a)
    a[0] = 42.0
    assert t.numpy()[0] == 0.0 and s.numpy()[0] == 42.0
    with pytest.raises(TypeError):
        tg.from_numpy([1.0])


def test_tensor_with_explicit_dtype_and_from_tensors(device):
    t = tg.tensor([1, 2], dtype=tg.float64, device=device)
    assert t.dtype == tg.float64
    assert tg.tensor(t, device=device).dtype == tg.float64 and tg.tensor(t, device=device) is not t
    parts = [tg.tensor(1.0, device=device), tg.tensor(2.0, device=device)]
    assert tg.tensor(parts, device=device).shape == (2,)
    with pytest.raises(TypeError):
        tg.tensor(["a", "b"], device=device)


@pytest.mark.parametrize("make", [tg.zeros, tg.ones, tg.empty, tg.randn, tg.rand])
def test_creation_takes_ints_or_one_tuple(make):
    assert make(2, 3).shape == (2, 3) == make((2, 3)).shape == make([2, 3]).shape
    assert make(2, 3).dtype == tg.float32
    assert make(4, dtype=tg.float64).dtype == tg.float64
    assert make().shape == ()
    t = make(2, requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_zeros_ones_full_arange_values(device):
    np.testing.assert_array_equal(tg.zeros(2, 2, device=device).numpy(), np.zeros((2, 2)))
    np.testing.assert_array_equal(tg.ones(3, device=device).numpy(), np.ones(3))
    f = tg.full((2, 3), 7.5, device=device)
    assert f.dtype == tg.float32 and f.shape == (2, 3) and (f.numpy() == 7.5).all()
    assert tg.full((2,), 3, device=device).dtype == tg.int64
    assert tg.full(4, 1.0, device=device).shape == (4,)
    np.testing.assert_array_equal(tg.arange(5, device=device).numpy(), np.arange(5))
    assert tg.arange(5, device=device).dtype == tg.int64
    a = tg.arange(0, 1, 0.25, device=device)
    assert a.dtype == tg.float32
    np.testing.assert_allclose(a.numpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(tg.arange(2, 8, 3, device=device).numpy(), [2, 5])


def test_like_functions_keep_shape_dtype(device):
    x = tg.randn(2, 3, dtype=tg.float64, device=device)
    for f, v in [(tg.zeros_like, 0.0), (tg.ones_like, 1.0)]:
        y = f(x)
        assert y.shape == (2, 3) and y.dtype == tg.float64 and (y.numpy() == v).all()
    assert tg.zeros_like(x, dtype=tg.float32).dtype == tg.float32


def test_negative_sizes_are_rejected(device):
    with pytest.raises(ValueError):
        tg.zeros(2, -1, device=device)


def test_rand_and_randn_distributions(device):
    tg.manual_seed(0)
    r = tg.rand(20000, device=device).numpy()
    assert r.min() >= 0 and r.max() < 1 and abs(r.mean() - 0.5) < 0.01
    n = tg.randn(20000, device=device).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03
    assert tg.randn(3, dtype=tg.float16, device=device).dtype == tg.float16
    with pytest.raises(TypeError):
        tg.randn(3, dtype=tg.int64, device=device)


# ------------------------------------------------------------------ dtype policy


@pytest.mark.parametrize("dtype", [tg.int32, tg.int64, tg.bool])
def test_integer_and_bool_tensors_cannot_require_grad(dtype, device):
    with pytest.raises(TypeError, match=str(np.dtype(dtype))):
        tg.zeros(2, dtype=dtype, requires_grad=True, device=device)
    t = tg.zeros(2, dtype=dtype, device=device)
    with pytest.raises(TypeError):
        t.requires_grad_()
    with pytest.raises(TypeError):
        tg.tensor([1, 2], requires_grad=True, device=device)


@pytest.mark.parametrize("scalar", [2, 2.5, -1, 0.1, True])
def test_python_scalars_never_upcast_float32(scalar, device):
    x = tg.tensor([1.0, 2.0, 4.0], device=device)
    for y in (x + scalar, scalar + x, x - scalar, scalar - x, x * scalar, scalar * x,
              x / scalar if scalar else x, scalar / x, x ** 2, x ** 0.5, 2.0 ** x,
              tg.maximum(x, tg.tensor(0.5, device=device)), x.clamp(0.1, 3.0), tg.where(x > 1, x,
                                                                                        0.0)):
        assert y.dtype == tg.float32


def test_integer_arithmetic_stays_integer_and_float_scalar_promotes(device):
    i = tg.tensor([1, 2, 3], device=device)
    assert (i + 1).dtype == tg.int64 and (i * 2).dtype == tg.int64
    assert (i * 1.5).dtype == tg.float32
    np.testing.assert_allclose((i * 1.5).numpy(), [1.5, 3.0, 4.5])
    assert (i + tg.tensor([1.0, 1.0, 1.0], device=device)).dtype == tg.float32
    # true division of integers gives float32, as PyTorch
    for q in (i / tg.tensor([2, 2, 2], device=device), i / 2, 3 / i):
        assert q.dtype == tg.float32
    np.testing.assert_allclose((i / 2).numpy(), [0.5, 1.0, 1.5])


def test_float16_works_forward(device):
    x = tg.tensor(np.linspace(-2, 2, 8, dtype=np.float16), device=device)
    for y in (x + 1, x * x, x.exp(), x.tanh(), x.sigmoid(), x.relu(), x.sum(), x.mean(),
              x.softmax(0), x.reshape(2, 4) @ x.reshape(4, 2), x[::2], x.max()):
        assert y.dtype == tg.float16
    np.testing.assert_allclose((x * x).numpy(), x.numpy().astype(np.float32) ** 2, rtol=1e-3)


def test_mixed_float_tensors_promote_as_numpy(device):
    a, b = tg.ones(2, device=device), tg.ones(2, dtype=tg.float64, device=device)
    assert (a + b).dtype == tg.float64
    assert (a + tg.ones(2, dtype=tg.float16, device=device)).dtype == tg.float32


# ------------------------------------------------------------------ attributes


def test_attributes():
    x = tg.randn(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.numel() == 24
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.dtype == tg.float32 and x.device == "cpu"
    assert x.is_leaf and x.grad is None and x.grad_fn is None and not x.requires_grad
    assert isinstance(x.data, np.ndarray) and len(x) == 2


def test_item_numpy_tolist_float_int(device):
    x = tg.tensor([[1.5]], device=device)
    assert x.item() == 1.5 and isinstance(x.item(), float)
    three = tg.tensor(3, device=device)
    assert float(x) == 1.5 and int(three) == 3 and three.item() == 3
    with pytest.raises(ValueError, match=r"\(2,\)"):
        tg.ones(2, device=device).item()
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    a = t.numpy()
    a[0, 0] = 99.0  # a host copy: changing it leaves the tensor alone
    assert t.numpy()[0, 0] == 1.0


def test_to_float_double_and_dtype_casts():
    x = tg.tensor([1.0, 2.0])
    assert x.to(tg.float64).dtype == tg.float64 and x.double().dtype == tg.float64
    assert x.double().float().dtype == tg.float32
    assert x.to(dtype=tg.float16).dtype == tg.float16
    assert x.to("cpu") is x and x.to(device="cpu", dtype=tg.float32) is x
    assert x.cpu() is x
    y = tg.tensor([1.5, 2.5], requires_grad=True)
    y.double().sum().backward()  # the cast is differentiable, and the gradient float32
    assert y.grad.dtype == tg.float32 and (y.grad.numpy() == 1).all()


def test_repr():
    assert repr(tg.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert "dtype=float64" in repr(tg.tensor([1.0], dtype=tg.float64))
    assert "requires_grad=True" in repr(tg.ones(2, requires_grad=True))
    r = repr(tg.ones(2, requires_grad=True) * 2)
    assert "grad_fn=<MulBackward>" in r
    assert repr(tg.tensor(3)) == "tensor(3)"


def test_detach_shares_data_and_leaves_the_graph(device):
    x = tg.ones(3, requires_grad=True, device=device)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d.data is y.data


def test_requires_grad_(device):
    x = tg.ones(2, device=device)
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad
    y = tg.ones(2, requires_grad=True, device=device) * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)


def test_setitem_without_grad_and_refused_with_grad(device):
    x = tg.zeros(3, device=device)
    x[1] = 5.0
    x[tg.tensor([0, 2], device=device)] = tg.tensor([1.0, 2.0], device=device)
    np.testing.assert_array_equal(x.numpy(), [1.0, 5.0, 2.0])
    w = tg.zeros(3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 1.0
    with tg.no_grad():
        w[0] = 1.0
    assert w.numpy()[0] == 1.0


def test_numpy_asarray_of_a_tensor_gives_its_values():
    t = tg.tensor([1.0, 2.0])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.tolist() == [1.0, 2.0]  # not an object array
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(tg.ones(2, requires_grad=True))
