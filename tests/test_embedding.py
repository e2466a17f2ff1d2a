"""one_hot, F.embedding and nn.Embedding: values against NumPy, the gradient's
accumulation over repeated indices and the padding row, gradcheck over hypothesis
shapes, PyTorch's initialisation, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nn
import tensorgrad as tg
import tensorgrad.functional as F
from tensorgrad.testing import shapes

# ------------------------------------------------------------------ one_hot


@given(shape=shapes(min_dims=0, max_dims=3), classes=st.integers(1, 6), seed=st.integers(0, 99))
def test_one_hot_is_the_rows_of_the_identity(shape, classes, seed, device):
    idx = np.random.default_rng(seed).integers(0, classes, shape)
    out = F.one_hot(tg.tensor(idx, device=device), classes)
    assert out.dtype == np.int64 and out.shape == (*shape, classes)
    np.testing.assert_array_equal(out.numpy(), np.eye(classes, dtype=np.int64)[idx])


def test_one_hot_infers_the_number_of_classes(device):
    out = F.one_hot(tg.tensor(np.array([[0, 4], [2, 1]]), device=device))
    assert out.shape == (2, 2, 5)
    np.testing.assert_array_equal(out.numpy()[0, 1], [0, 0, 0, 0, 1])
    assert F.one_hot(tg.tensor(np.zeros((0,), np.int64), device=device), 3).shape == (0, 3)
    assert not out.requires_grad


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.one_hot(tg.tensor([0.0, 1.0])), TypeError, "integer dtype, got dtype float32"),
    (lambda: F.one_hot(tg.tensor([0, 3]), 3), IndexError, "class value 3 is out of range"),
    (lambda: F.one_hot(tg.tensor([0, -1]), 3), IndexError, "non-negative, got -1"),
    (lambda: F.one_hot(tg.tensor(np.zeros(0, np.int64))), ValueError, "empty tensor"),
    (lambda: F.one_hot(tg.tensor([0]), 2.0), TypeError, "num_classes must be an int"),
    (lambda: F.one_hot(tg.tensor([0]), -2), ValueError, "-1 or non-negative"),
])
def test_one_hot_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ------------------------------------------------------------------ F.embedding


def test_embedding_looks_up_rows(device):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((7, 3)).astype(np.float32)
    idx = np.array([[0, 6, 2], [2, 2, 5]])
    out = F.embedding(tg.tensor(idx, device=device), tg.tensor(w, device=device))
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), w[idx])
    np.testing.assert_array_equal(F.embedding(tg.tensor(np.array(4), device=device),
                                              tg.tensor(w, device=device)).numpy(),
                                  w[4])


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_gradient_accumulates_repeats_and_skips_the_padding_row(padding_idx, device):
    rng = np.random.default_rng(1)
    w = tg.tensor(rng.standard_normal((6, 4)), requires_grad=True, device=device)
    idx = np.array([[2, 2, 0], [5, 2, 1]])  # 2 three times, 3 and 4 never
    g = rng.standard_normal((2, 3, 4))
    F.embedding(tg.tensor(idx, device=device), w,
                padding_idx=padding_idx).backward(tg.tensor(g, device=device))
    # the sum over positions, written as a product with the one-hot matrix
    want = np.eye(6)[idx.reshape(-1)].T @ g.reshape(-1, 4)
    if padding_idx is not None:
        want[padding_idx] = 0
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-12)
    assert np.count_nonzero(w.grad.numpy()[3]) == 0


@given(data=st.data(), idx_shape=shapes(min_dims=0, max_dims=3),
       rows=st.integers(1, 5), dim=st.integers(1, 3))
def test_embedding_gradcheck(data, idx_shape, rows, dim, device):
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    idx = tg.tensor(rng.integers(0, rows, idx_shape), device=device)
    w = tg.tensor(rng.standard_normal((rows, dim)), requires_grad=True, device=device)
    assert tg.gradcheck(lambda w: F.embedding(idx, w), [w])


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.embedding(tg.tensor([0, 7]), tg.randn(7, 2)), IndexError,
     "index 7 is out of range for 7 embeddings"),
    (lambda: F.embedding(tg.tensor([-1]), tg.randn(7, 2)), IndexError, "index -1"),
    (lambda: F.embedding(tg.tensor([0.0]), tg.randn(7, 2)), TypeError, "integer dtype"),
    (lambda: F.embedding(tg.tensor([0]), tg.randn(7)), ValueError, "must be 2-D"),
    (lambda: F.embedding(tg.tensor([0]), tg.randn(7, 2), padding_idx=7), ValueError,
     "padding_idx must be within num_embeddings"),
    (lambda: F.embedding(tg.tensor([0]), tg.randn(7, 2), max_norm=1.0), ValueError,
     "not supported"),
])
def test_embedding_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ------------------------------------------------------------------ nn.Embedding


def test_embedding_layer_init_is_standard_normal_with_a_zero_padding_row(device):
    tg.manual_seed(0)
    layer = nn.Embedding(400, 50, padding_idx=-3).to(device)
    assert layer.padding_idx == 397  # normalised, as PyTorch
    w = layer.weight.numpy()
    assert w.dtype == np.float32 and w.shape == (400, 50) and layer.weight.requires_grad
    np.testing.assert_array_equal(w[397], 0)
    rest = np.delete(w, 397, axis=0)
    assert abs(rest.mean()) < 0.02 and abs(rest.std() - 1) < 0.02  # 19,950 N(0, 1) draws
    assert list(layer.state_dict()) == ["weight"]
    assert repr(layer) == "Embedding(400, 50, padding_idx=397)"


def test_embedding_padding_row_stays_zero_through_training(device):
    layer = nn.Embedding(5, 3, padding_idx=0).to(device)
    opt = nn.optim.SGD(layer.parameters(), lr=0.5, momentum=0.9)
    ids = tg.tensor(np.array([[0, 1, 0], [2, 0, 4]]), device=device)
    for _ in range(3):
        opt.zero_grad()
        (layer(ids) ** 2).sum().backward()
        opt.step()
    np.testing.assert_array_equal(layer.weight.numpy()[0], 0)
    assert np.all(layer.weight.numpy()[1] != 0)


def test_embedding_from_pretrained_is_frozen_by_default(device):
    table = tg.tensor(np.arange(6.0).reshape(3, 2), device=device)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(tg.tensor([2, 0], device=device)).numpy(),
                                  [[4, 5], [0, 1]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    with pytest.raises(ValueError, match="not supported"):
        nn.Embedding(3, 2, sparse=True).to(device)
