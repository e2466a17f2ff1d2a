"""The everyday PyTorch surface: max/min with a dim as (values, indices), amax/amin,
sort/argsort/topk, gather/scatter/scatter_add, masked_fill, norm, cumsum, flip,
repeat, split/chunk, all/any, new_*, type(), and the ``tg.*`` functions, dtype names,
creation functions, grad-mode spellings and ``tg.device``.

Values are checked against NumPy (or closed forms), gradients with ``tg.gradcheck`` in
float64 on hypothesis-drawn shapes; values are drawn distinct where an op's gradient
has a kink at ties, and drawn with many ties where the tie rule itself is tested.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.testing import arrays, shapes

# ------------------------------------------------------------------ strategies


@st.composite
def distinct(draw, min_dims: int = 1, max_dims: int = 3, max_side: int = 4):
    """A float64 array with distinct values at least 0.5 apart (a permutation, scaled):
    max/sort/topk keep their choice under a finite-difference step."""
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side))
    n = int(np.prod(shape))
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    return ((perm - n / 2) * 0.5).reshape(shape)


@st.composite
def with_ties(draw, min_dims: int = 1, max_dims: int = 3):
    """A float64 array of small integers: many ties."""
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims))
    return draw(arrays(shape, np.int64, 0, 2)).astype(np.float64)


@st.composite
def array_and_dim(draw, elements=None, min_dims: int = 1):
    a = draw(elements if elements is not None else distinct(min_dims=min_dims))
    dim = draw(st.integers(-a.ndim, a.ndim - 1))
    return a, dim


def t64(a, requires_grad=False, device="cpu"):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad,
                     device=device)


# ------------------------------------------------------- max / min with a dim


@given(array_and_dim(with_ties()), st.booleans(), st.booleans())
def test_max_min_with_dim_is_values_and_first_indices(device, ad, keepdim, largest):
    a, dim = ad
    x = t64(a, device=device)
    out = x.max(dim, keepdim) if largest else x.min(dim=dim, keepdim=keepdim)
    values, indices = out  # unpacks as a tuple
    ref_v = (np.max if largest else np.min)(a, axis=dim, keepdims=keepdim)
    ref_i = (np.argmax if largest else np.argmin)(a, axis=dim)  # the first of ties
    if keepdim:
        ref_i = np.expand_dims(ref_i, dim)
    np.testing.assert_array_equal(values.numpy(), ref_v)
    np.testing.assert_array_equal(indices.numpy(), ref_i)
    assert out.values is values and out.indices is indices
    assert indices.dtype == tg.int64 and not indices.requires_grad
    assert type(out).__name__ == ("max" if largest else "min")


@given(array_and_dim(with_ties()), st.booleans())
def test_max_with_dim_sends_the_gradient_to_the_first_index_only(device, ad, keepdim):
    a, dim = ad
    x = t64(a, requires_grad=True, device=device)
    values, _ = x.max(dim=dim, keepdim=keepdim)
    g = np.random.default_rng(0).standard_normal(values.shape)
    values.backward(tg.tensor(g, device=device))
    expected = np.zeros_like(a)
    first = np.expand_dims(np.argmax(a, axis=dim), dim)
    np.put_along_axis(expected, first, g if keepdim else np.expand_dims(g, dim), axis=dim)
    np.testing.assert_allclose(x.grad.numpy(), expected)


@given(array_and_dim(), st.booleans(), st.booleans())
def test_max_min_with_dim_gradcheck(device, ad, keepdim, largest):
    a, dim = ad
    op = "max" if largest else "min"
    assert tg.gradcheck(lambda t: getattr(t, op)(dim, keepdim).values,
                        [t64(a, True, device=device)])


def test_the_accuracy_line_of_the_pytorch_tutorials(device):
    out = tg.tensor([[0.1, 2.0, 0.3], [5.0, 0.2, 0.1]],
                    device=device)  # a batch of 2, the silent case
    _, pred = out.max(1)
    assert pred.tolist() == [1, 0]
    _, pred = tg.tensor(np.eye(4, dtype=np.float32)[[3, 1, 2]], device=device).max(1)  # batch of 3
    assert pred.tolist() == [3, 1, 2]
    assert tg.max(out, 1).indices.tolist() == [1, 0]
    assert tg.min(out, dim=1).indices.tolist() == [0, 2]


def test_max_min_without_dim_are_tensors_and_ties_share_the_gradient(device):
    x = t64([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]], requires_grad=True, device=device)
    m = x.max()
    assert isinstance(m, tg.Tensor) and m.shape == () and m.item() == 3.0
    m.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1 / 3, 1 / 3], [1 / 3, 0, 0]])
    assert tg.min(x).item() == 0.0


def test_max_min_of_a_0d_tensor_along_dim_0(device):
    x = t64(2.5, requires_grad=True, device=device)
    v, i = x.max(0)
    assert v.shape == () and v.item() == 2.5 and i.item() == 0
    v.backward()
    assert x.grad.item() == 1.0
    assert x.min(-1).indices.item() == 0


@pytest.mark.parametrize("dim", [(0, 1), [1], ()])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_with_a_tuple_of_dims_point_to_amax_amin(op, dim, device):
    x = tg.ones(2, 3, device=device)
    with pytest.raises(TypeError, match=f"a{op}"):
        getattr(x, op)(dim)
    with pytest.raises(TypeError, match=f"a{op}"):
        getattr(tg, op)(x, dim=dim)


def test_max_min_with_dim_errors(device):
    with pytest.raises(IndexError, match="out of range"):
        tg.ones(2, 3, device=device).max(2)
    with pytest.raises(ValueError, match="empty dimension"):
        tg.zeros(0, 3, device=device).max(0)
    assert tg.zeros(0, 3, device=device).max(1).values.shape == (0,)


def test_binary_max_min_are_maximum_minimum(device):
    a, b = t64([1.0, 5.0, -2.0], device=device), t64([3.0, 4.0, -2.0], device=device)
    np.testing.assert_array_equal(tg.max(a, b).numpy(), [3.0, 5.0, -2.0])
    np.testing.assert_array_equal(tg.min(a, b).numpy(), [1.0, 4.0, -2.0])
    np.testing.assert_array_equal(a.max(b).numpy(), [3.0, 5.0, -2.0])


@given(with_ties(), st.data())
def test_argmax_argmin_functions(device, a, data):
    dim = data.draw(st.none() | st.integers(-a.ndim, a.ndim - 1))
    x = t64(a, device=device)
    assert tg.argmax(x, dim).tolist() == np.argmax(a, axis=dim).tolist()
    assert tg.argmin(x, dim=dim).tolist() == np.argmin(a, axis=dim).tolist()


# ------------------------------------------------------------------ amax / amin


@st.composite
def array_and_dims(draw, elements):
    a = draw(elements)
    dims = draw(st.none() | st.lists(st.integers(0, a.ndim - 1), unique=True, min_size=1)
                .map(tuple) | st.integers(-a.ndim, a.ndim - 1))
    return a, dims


@given(array_and_dims(with_ties()), st.booleans(), st.booleans())
def test_amax_amin_match_numpy_and_ties_share_the_gradient(device, ad, keepdim, largest):
    a, dims = ad
    x = t64(a, requires_grad=True, device=device)
    out = (x.amax if largest else x.amin)(dims, keepdim)
    ref = (np.max if largest else np.min)(a, axis=dims, keepdims=keepdim)
    np.testing.assert_array_equal(out.numpy(), ref)
    out.sum().backward()
    hit = a == (np.max if largest else np.min)(a, axis=dims, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy(), hit / hit.sum(axis=dims, keepdims=True))


@given(array_and_dims(distinct()), st.booleans())
def test_amax_gradcheck(device, ad, keepdim):
    a, dims = ad
    assert tg.gradcheck(lambda t: tg.amax(t, dims, keepdim), [t64(a, True, device=device)])
    assert tg.gradcheck(lambda t: tg.amin(t, dim=dims, keepdim=keepdim),
                        [t64(a, True, device=device)])


# --------------------------------------------------------- sort / argsort / topk


def stable_argsort(a, axis, descending):
    if not descending:
        return np.argsort(a, axis=axis, kind="stable")
    return np.argsort(-a, axis=axis, kind="stable")  # -a: equal values keep their order


@given(array_and_dim(with_ties()), st.booleans())
def test_sort_and_argsort_are_stable_and_match_numpy(device, ad, descending):
    a, dim = ad
    x = t64(a, device=device)
    values, indices = x.sort(dim, descending=descending)
    ref_i = stable_argsort(a, dim, descending)
    np.testing.assert_array_equal(indices.numpy(), ref_i)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(a, ref_i, axis=dim))
    np.testing.assert_array_equal(x.argsort(dim, descending).numpy(), ref_i)
    np.testing.assert_array_equal(tg.argsort(x, dim=dim, descending=descending).numpy(), ref_i)
    assert type(x.sort()).__name__ == "sort"


@given(array_and_dim(with_ties()), st.booleans(), st.data())
def test_topk_values_are_the_k_largest_in_order(device, ad, largest, data):
    a, dim = ad
    k = data.draw(st.integers(0, a.shape[dim]))
    values, indices = tg.topk(t64(a, device=device), k, dim=dim, largest=largest)
    ordered = np.sort(a, axis=dim)
    if largest:
        ordered = np.flip(ordered, axis=dim)
    expected = np.take(ordered, np.arange(k), axis=dim)
    np.testing.assert_array_equal(values.numpy(), expected)
    # each index points at its value, and no position is picked twice
    np.testing.assert_array_equal(np.take_along_axis(a, indices.numpy(), axis=dim), expected)
    picked = np.sort(indices.numpy(), axis=dim)
    assert (np.diff(picked, axis=dim) > 0).all()


@given(array_and_dim(), st.booleans(), st.data())
def test_sort_and_topk_gradcheck(device, ad, flag, data):
    a, dim = ad
    k = data.draw(st.integers(1, a.shape[dim]))
    assert tg.gradcheck(lambda t: t.sort(dim, descending=flag).values,
                        [t64(a, True, device=device)])
    assert tg.gradcheck(lambda t: t.topk(k, dim, largest=flag).values,
                        [t64(a, True, device=device)])


def test_sort_puts_nan_last_ascending_and_first_descending(device):
    x = tg.tensor([2.0, float("nan"), -1.0], device=device)
    assert x.sort().indices.tolist() == [2, 0, 1]
    assert x.sort(descending=True).indices.tolist() == [1, 0, 2]
    assert x.topk(1).indices.tolist() == [1]


def test_topk_errors(device):
    x = tg.ones(2, 3, device=device)
    with pytest.raises(ValueError, match="k=4"):
        x.topk(4)
    with pytest.raises(ValueError, match="k=-1"):
        x.topk(-1)
    with pytest.raises(TypeError, match="k must be an int"):
        x.topk(1.5)
    with pytest.raises(IndexError):
        x.topk(1, dim=2)
    assert x.topk(0, dim=0).values.shape == (0, 3)


# -------------------------------------------------- gather / scatter / scatter_add


def np_gather(a, dim, index):
    out = np.empty(index.shape, a.dtype)
    for pos in np.ndindex(*index.shape):
        src = list(pos)
        src[dim] = index[pos]
        out[pos] = a[tuple(src)]
    return out


def np_scatter(a, dim, index, src, add):
    out = a.copy()
    for pos in np.ndindex(*index.shape):
        dst = list(pos)
        dst[dim] = index[pos]
        value = src[pos] if isinstance(src, np.ndarray) else src
        out[tuple(dst)] = out[tuple(dst)] + value if add else value
    return out


@st.composite
def gather_case(draw, unique_per_line: bool = False):
    """(x, dim, index, src): index no larger than x outside dim, src no smaller than it;
    with ``unique_per_line`` no index repeats along dim (so scatter's result is defined)."""
    shape = draw(shapes(min_dims=1, max_dims=3))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    d = dim % len(shape)
    ishape = tuple(draw(st.integers(1, n)) if i != d else
                   draw(st.integers(1, n if unique_per_line else 4)) for i, n in enumerate(shape))
    if unique_per_line:  # the first ishape[d] entries of a permutation of each line
        kshape = list(ishape)
        kshape[d] = shape[d]
        keys = draw(arrays(tuple(kshape)))
        index = np.take(np.argsort(keys, axis=d), np.arange(ishape[d]), axis=d)
    else:
        index = draw(arrays(ishape, np.int64, 0, shape[d] - 1))
    sshape = tuple(n + draw(st.integers(0, 1)) for n in ishape)
    x = draw(arrays(shape))
    src = draw(arrays(sshape))
    return x, dim, index, src


@given(gather_case())
def test_gather_matches_the_definition_and_gradcheck(device, case):
    a, dim, index, _ = case
    x, idx = t64(a, True, device=device), tg.tensor(index, device=device)
    np.testing.assert_array_equal(x.gather(dim, idx).numpy(), np_gather(a, dim, index))
    np.testing.assert_array_equal(tg.gather(x, dim, idx).numpy(), np_gather(a, dim, index))
    assert tg.gradcheck(lambda t: t.gather(dim, idx), [x])


@given(gather_case())
def test_gather_gradient_accumulates_repeated_indices(device, case):
    a, dim, index, _ = case
    x = t64(a, True, device=device)
    x.gather(dim, tg.tensor(index, device=device)).sum().backward()
    counts = np.zeros_like(a)
    for pos in np.ndindex(*index.shape):
        p = list(pos)
        p[dim] = index[pos]
        counts[tuple(p)] += 1
    np.testing.assert_array_equal(x.grad.numpy(), counts)


@given(gather_case(unique_per_line=True))
def test_scatter_matches_the_definition_and_gradcheck(device, case):
    a, dim, index, s = case
    x, idx, src = t64(a, True, device=device), tg.tensor(index, device=device), t64(s, True,
                                                                                    device=device)
    np.testing.assert_array_equal(x.scatter(dim, idx, src).numpy(),
                                  np_scatter(a, dim, index, s, add=False))
    np.testing.assert_array_equal(x.scatter(dim, idx, 1.5).numpy(),
                                  np_scatter(a, dim, index, 1.5, add=False))
    np.testing.assert_array_equal(tg.scatter(x, dim, idx, value=2.0).numpy(),
                                  np_scatter(a, dim, index, 2.0, add=False))
    assert tg.gradcheck(lambda t, u: t.scatter(dim, idx, u), [x, src])


@given(gather_case())
def test_scatter_add_matches_the_definition_and_gradcheck(device, case):
    a, dim, index, s = case
    x, idx, src = t64(a, True, device=device), tg.tensor(index, device=device), t64(s, True,
                                                                                    device=device)
    np.testing.assert_allclose(x.scatter_add(dim, idx, src).numpy(),
                               np_scatter(a, dim, index, s, add=True), rtol=1e-12)
    assert tg.gradcheck(lambda t, u: tg.scatter_add(t, dim, idx, u), [x, src])


def test_gather_scatter_errors(device):
    x = tg.zeros(2, 3, device=device)
    with pytest.raises(IndexError, match="index 3 is out of bounds"):
        x.gather(1, tg.tensor([[0, 3]], device=device))
    with pytest.raises(IndexError, match="index -1"):
        x.gather(1, tg.tensor([[-1, 0]], device=device))
    with pytest.raises(ValueError, match="dimensions"):
        x.gather(1, tg.tensor([0, 1], device=device))
    with pytest.raises(ValueError, match="larger"):
        x.gather(1, tg.zeros(3, 1, dtype=tg.int64, device=device))
    with pytest.raises(TypeError, match="integer"):
        x.gather(1, tg.zeros(2, 1, device=device))
    with pytest.raises(TypeError, match="dtype"):
        x.scatter(1, tg.zeros(2, 1, dtype=tg.int64, device=device),
                  tg.ones(2, 1, dtype=tg.float64, device=device))
    with pytest.raises(ValueError, match="src"):
        x.scatter_add(1, tg.zeros(2, 2, dtype=tg.int64, device=device),
                      tg.ones(2, 1, device=device))
    with pytest.raises(TypeError, match="src"):
        x.scatter_add(1, tg.zeros(2, 1, dtype=tg.int64, device=device), 1.0)


# ------------------------------------------------------------------ masked_fill


@given(st.data())
def test_masked_fill_matches_numpy_and_gradcheck(device, data):
    shape = data.draw(shapes(min_dims=1))
    a = data.draw(arrays(shape))
    mshape = shape[data.draw(st.integers(0, len(shape))):]  # broadcasts to shape
    mask = data.draw(arrays(mshape, bool))
    x = t64(a, True, device=device)
    out = x.masked_fill(tg.tensor(mask, device=device), -7.0)
    np.testing.assert_array_equal(out.numpy(), np.where(mask, -7.0, a))
    assert out.dtype == tg.float64
    value = t64(0.5, True, device=device)
    np.testing.assert_array_equal(tg.masked_fill(x, tg.tensor(mask, device=device), value).numpy(),
                                  np.where(mask, 0.5, a))
    assert tg.gradcheck(lambda t, v: t.masked_fill(tg.tensor(mask, device=device), v), [x, value])


def test_masked_fill_keeps_dtype_and_refuses_bad_masks(device):
    x = tg.zeros(2, 3, device=device)
    assert x.masked_fill(tg.ones(3, dtype=tg.bool, device=device), 1).dtype == tg.float32
    with pytest.raises(TypeError, match="bool"):
        x.masked_fill(tg.ones(2, 3, device=device), 1.0)
    with pytest.raises(ValueError, match=r"\(4, 2, 3\)"):
        x.masked_fill(tg.ones(4, 2, 3, dtype=tg.bool, device=device), 1.0)
    with pytest.raises(ValueError, match="0-d"):
        x.masked_fill(tg.ones(2, 3, dtype=tg.bool, device=device), tg.ones(3, device=device))


# ------------------------------------------------------------------------- norm

NORM_PS = ["fro", 1, 2, 3, 0.5, float("inf"), float("-inf"), 0]


def np_norm(a, p, axis, keepdims):
    if p == "fro":
        p = 2
    abs_a = np.abs(a)
    if p == float("inf"):
        return abs_a.max(axis=axis, keepdims=keepdims)
    if p == float("-inf"):
        return abs_a.min(axis=axis, keepdims=keepdims)
    if p == 0:
        return (a != 0).sum(axis=axis, keepdims=keepdims).astype(a.dtype)
    return (abs_a**p).sum(axis=axis, keepdims=keepdims) ** (1 / p)


@given(array_and_dims(arrays(shapes(min_dims=1), avoid=(0.0,), margin=0.1)),
       st.sampled_from(NORM_PS), st.booleans())
def test_norm_matches_the_definition(device, ad, p, keepdim):
    a, dims = ad
    out = t64(a, device=device).norm(p, dims, keepdim)
    np.testing.assert_allclose(out.numpy(), np_norm(a, p, dims, keepdim), rtol=1e-12)
    if dims is None and p in ("fro", 2):
        assert out.item() == pytest.approx(np.linalg.norm(a.ravel()))


@given(array_and_dims(distinct()), st.sampled_from(NORM_PS), st.booleans())
def test_norm_gradcheck(device, ad, p, keepdim):
    a, dims = ad
    a = np.where(a == 0, 0.25, a)  # away from the kink of |x| at 0
    assert tg.gradcheck(lambda t: tg.norm(t, p, dims, keepdim), [t64(a, True, device=device)])


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 0.5, float("inf")])
def test_norm_of_a_zero_vector_has_gradient_zero(p, device):
    x = tg.zeros(4, dtype=tg.float64, requires_grad=True, device=device)
    x.norm(p).backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


def test_norm_errors(device):
    with pytest.raises(TypeError, match="floating"):
        tg.tensor([1, 2], device=device).norm()
    with pytest.raises(ValueError, match="nuc"):
        tg.ones(2, 2, device=device).norm("nuc")


# ------------------------------------------- cumsum, logsumexp, all/any, square


@given(array_and_dim(arrays(shapes(min_dims=1))))
def test_cumsum_matches_numpy_and_gradcheck(device, ad):
    a, dim = ad
    x = t64(a, True, device=device)
    np.testing.assert_allclose(x.cumsum(dim).numpy(), np.cumsum(a, axis=dim), rtol=1e-12)
    assert tg.gradcheck(lambda t: tg.cumsum(t, dim), [x])


def test_cumsum_dtypes_and_0d(device):
    assert tg.tensor([1, 2, 3], device=device).cumsum(0).tolist() == [1, 3, 6]
    assert tg.tensor([True, True], device=device).cumsum(0).dtype == tg.int64
    assert tg.ones(3, device=device).cumsum(0).dtype == tg.float32
    assert tg.tensor(2.0, device=device).cumsum(0).item() == 2.0
    with pytest.raises(TypeError, match="dim"):
        tg.ones(3, device=device).cumsum()


@given(array_and_dims(arrays(shapes(min_dims=1))), st.booleans())
def test_logsumexp_matches_numpy_and_gradcheck(device, ad, keepdim):
    a, dims = ad
    dims = 0 if dims is None else dims
    x = t64(a, True, device=device)
    ref = np.log(np.exp(a).sum(axis=dims, keepdims=keepdim))
    np.testing.assert_allclose(x.logsumexp(dims, keepdim).numpy(), ref, rtol=1e-12, atol=1e-12)
    assert tg.gradcheck(lambda t: tg.logsumexp(t, dims, keepdim), [x])


def test_logsumexp_does_not_overflow(device):
    x = tg.tensor([1000.0, 1000.0], dtype=tg.float64, device=device)
    assert x.logsumexp(0).item() == pytest.approx(1000.0 + np.log(2.0))


@given(array_and_dims(with_ties()), st.booleans())
def test_all_any_match_numpy(device, ad, keepdim):
    a, dims = ad
    x = t64(a, device=device)
    assert x.all(dims, keepdim).tolist() == np.all(a, axis=dims, keepdims=keepdim).tolist()
    assert tg.any(x, dims, keepdim).tolist() == np.any(a, axis=dims, keepdims=keepdim).tolist()
    assert x.any().dtype == tg.bool and not x.all().requires_grad


@given(arrays(shapes()))
def test_square_matches_numpy_and_gradcheck(device, a):
    x = t64(a, True, device=device)
    np.testing.assert_array_equal(tg.square(x).numpy(), a * a)
    assert tg.gradcheck(lambda t: t.square(), [x])


# -------------------------------------------------- flip, repeat, split, chunk


@given(arrays(shapes(min_dims=1)), st.data())
def test_flip_matches_numpy_and_gradcheck(device, a, data):
    dims = tuple(data.draw(st.lists(st.integers(0, a.ndim - 1), unique=True, min_size=1)))
    x = t64(a, True, device=device)
    np.testing.assert_array_equal(x.flip(dims).numpy(), np.flip(a, dims))
    np.testing.assert_array_equal(tg.flip(x, list(dims)).numpy(), np.flip(a, dims))
    np.testing.assert_array_equal(x.flip(*dims).numpy(), np.flip(a, dims))
    assert tg.gradcheck(lambda t: t.flip(dims), [x])


def test_flip_is_a_copy(device):
    x = tg.tensor([1.0, 2.0], device=device)
    y = x.flip(0)
    y.data[0] = 9.0
    assert x.tolist() == [1.0, 2.0]


@given(arrays(shapes(max_dims=2, max_side=3)), st.data())
def test_repeat_matches_numpy_tile_and_gradcheck(device, a, data):
    extra = data.draw(st.integers(0, 2))
    sizes = tuple(data.draw(st.lists(st.integers(0, 3), min_size=a.ndim + extra,
                                     max_size=a.ndim + extra)))
    x = t64(a, True, device=device)
    np.testing.assert_array_equal(x.repeat(*sizes).numpy(), np.tile(a, sizes))
    np.testing.assert_array_equal(x.repeat(sizes).numpy(), np.tile(a, sizes))
    assert tg.gradcheck(lambda t: t.repeat(*sizes), [x])


def test_repeat_errors(device):
    with pytest.raises(ValueError, match="at least one per dim"):
        tg.ones(2, 3, device=device).repeat(2)
    with pytest.raises(ValueError, match="non-negative"):
        tg.ones(2, device=device).repeat(-1)


def torch_split_sizes(n, size):  # PyTorch's rule, written out
    return [size] * (n // size) + ([n % size] if n % size else [])


@given(arrays(shapes(min_dims=1, max_side=6)), st.data())
def test_split_and_chunk_match_pytorchs_sizes_and_gradcheck(device, a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[dim]
    size = data.draw(st.integers(1, n + 1))
    x = t64(a, True, device=device)
    pieces = x.split(size, dim)
    assert [p.shape[dim] for p in pieces] == torch_split_sizes(n, size)
    bounds = np.cumsum(torch_split_sizes(n, size))[:-1]
    for p, ref in zip(pieces, np.split(a, bounds, axis=dim)):
        np.testing.assert_array_equal(p.numpy(), ref)
    chunks = data.draw(st.integers(1, n + 1))
    per = -(-n // chunks)
    assert [p.shape[dim] for p in x.chunk(chunks, dim)] == torch_split_sizes(n, per)
    sections = data.draw(st.lists(st.integers(0, n), min_size=1, max_size=3).filter(
        lambda s: sum(s) <= n))
    sections = sections + [n - sum(sections)]
    assert [p.shape[dim] for p in tg.split(x, sections, dim)] == sections
    weights = [float(i + 1) for i in range(len(pieces))]
    # every piece used with its own weight (and one piece unused when there are several)
    assert tg.gradcheck(lambda t: tg.cat([p * w for p, w in zip(t.split(size, dim), weights)][
        : max(1, len(pieces) - 1)], dim), [x])


def test_chunk_may_return_fewer_pieces_and_errors(device):
    x = tg.arange(6, device=device)
    assert [p.tolist() for p in x.chunk(4)] == [[0, 1], [2, 3], [4, 5]]  # as torch.chunk
    assert [p.tolist() for p in tg.chunk(x, 3)] == [[0, 1], [2, 3], [4, 5]]
    assert len(tg.zeros(0, device=device).chunk(3)) == 3
    with pytest.raises(ValueError, match="add up to 6"):
        x.split([2, 3])
    with pytest.raises(ValueError, match="positive"):
        x.chunk(0)
    with pytest.raises(ValueError, match="positive"):
        x.split(0)
    with pytest.raises(ValueError, match="0-d"):
        tg.tensor(1.0, device=device).chunk(1)


# ------------------------------------------------------------ new_*, type()


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32, tg.int64])
def test_new_creation_takes_dtype_and_device_from_the_tensor(dtype, device):
    x = tg.zeros(2, dtype=dtype, device=device)
    assert x.new_zeros(2, 3).dtype == dtype and x.new_zeros((2, 3)).shape == (2, 3)
    assert x.new_ones(3).tolist() == [1, 1, 1] and x.new_ones(3).dtype == dtype
    assert x.new_empty(4).shape == (4,) and x.new_empty(4).dtype == dtype
    full = x.new_full((2,), 7)
    assert full.tolist() == [7, 7] and full.dtype == dtype
    t = x.new_tensor([1, 2])
    assert t.dtype == dtype and t.tolist() == [1, 2] and t.device == x.device
    assert x.new_zeros(2, dtype=tg.int32).dtype == tg.int32
    if dtype.kind == "f":
        assert x.new_ones(2, requires_grad=True).requires_grad
    else:
        with pytest.raises(TypeError, match="floating"):
            x.new_ones(2, requires_grad=True)


def test_new_tensor_copies(device):
    a = np.array([1.0, 2.0])
    t = tg.zeros(1, device=device).new_tensor(a)
    a[0] = 5
    assert t.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype,name", [(tg.float32, "FloatTensor"), (tg.float64, "DoubleTensor"),
                                        (tg.float16, "HalfTensor"), (tg.int64, "LongTensor"),
                                        (tg.int32, "IntTensor"), (tg.bool, "BoolTensor")])
def test_type_names_and_casts(dtype, name):
    x = tg.zeros(2, dtype=dtype)
    assert x.type() == f"tensorgrad.{name}"
    y = tg.ones(2).type(f"torch.{name}")
    assert y.dtype == dtype
    assert tg.ones(2).type(f"tensorgrad.{name}").dtype == dtype
    assert tg.ones(2, dtype=tg.int64).type(dtype).dtype == dtype
    assert x.type(dtype) is x  # already of that type: itself, as PyTorch


def test_type_refuses_unknown_names(device):
    with pytest.raises(ValueError, match="unknown tensor type"):
        tg.ones(2, device=device).type("torch.FancyTensor")


# ------------------------------------------------- tg.* functions and dtype names


def test_dtype_aliases(device):
    assert (tg.long, tg.int, tg.float, tg.double, tg.half, tg.bool) == (
        np.dtype("int64"), np.dtype("int32"), np.dtype("float32"), np.dtype("float64"),
        np.dtype("float16"), np.dtype("bool"))
    assert tg.tensor([1, 2], dtype=tg.long, device=device).dtype == np.int64
    assert tg.zeros(2, device=device).to(tg.double).dtype == np.float64


X = np.array([[0.5, -1.5, 2.0], [3.0, 0.25, -0.75]])

MODULE_FUNCTIONS = [  # tg.f(x, ...) against the method x.f(...)
    ("sum", (1,)), ("mean", ()), ("exp", ()), ("log", ()), ("softmax", (1,)),
    ("log_softmax", (0,)), ("abs", ()), ("sqrt", ()), ("relu", ()), ("sigmoid", ()),
    ("tanh", ()), ("var", (1,)), ("std", ()), ("amax", (0,)), ("amin", ((0, 1),)),
    ("argmax", (1,)), ("argmin", ()), ("clamp", (-1.0, 1.0)), ("flatten", ()),
    ("cumsum", (1,)), ("square", ()), ("norm", ()), ("all", ()), ("any", (1,)),
    ("logsumexp", (1,)), ("flip", (0,)), ("argsort", (1,)), ("transpose", (0, 1)),
    ("permute", (1, 0)), ("squeeze", ()), ("unsqueeze", (0,)), ("reshape", (3, 2)),
]


@pytest.mark.parametrize("name,args", MODULE_FUNCTIONS, ids=[f[0] for f in MODULE_FUNCTIONS])
def test_module_functions_equal_the_methods(name, args, device):
    a = np.abs(X) if name in ("log", "sqrt") else X
    x = t64(a, device=device)
    out, ref = getattr(tg, name)(x, *args), getattr(x, name)(*args)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    assert name in tg.__all__


def test_module_functions_with_several_results_and_tensors(device):
    x, y = t64(X, device=device), t64(X.T, device=device)
    np.testing.assert_array_equal(tg.matmul(x, y).numpy(), X @ X.T)
    np.testing.assert_array_equal(tg.topk(x, 2).values.numpy(), np.sort(X, 1)[:, ::-1][:, :2])
    np.testing.assert_array_equal(tg.sort(x, 0).values.numpy(), np.sort(X, 0))
    assert [p.shape for p in tg.split(x, 2, 1)] == [(2, 2), (2, 1)]
    assert tg.is_tensor(x) and not tg.is_tensor(X) and tg.numel(x) == 6


def test_eye_linspace():
    np.testing.assert_array_equal(tg.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(tg.eye(2, 4, dtype=tg.float64).numpy(), np.eye(2, 4))
    assert tg.eye(3).dtype == tg.float32
    np.testing.assert_allclose(tg.linspace(-1, 2, 7).numpy(), np.linspace(-1, 2, 7), rtol=1e-6)
    assert tg.linspace(0, 1, 5).dtype == tg.float32 and tg.linspace(0, 1, 0).shape == (0,)
    with pytest.raises(ValueError, match="steps"):
        tg.linspace(0, 1, -1)


def test_randint_and_randperm_are_seeded_and_in_range():
    tg.manual_seed(3)
    a = tg.randint(2, 9, (500,))
    b = tg.randint(9, (4, 5))
    assert a.dtype == tg.int64 and b.shape == (4, 5)
    assert a.numpy().min() >= 2 and a.numpy().max() <= 8 and len(set(a.tolist())) == 7
    assert b.numpy().min() >= 0 and b.numpy().max() <= 8
    tg.manual_seed(3)
    assert tg.randint(2, 9, (500,)).tolist() == a.tolist()
    p = tg.randperm(20)
    assert p.dtype == tg.int64 and sorted(p.tolist()) == list(range(20))
    assert p.tolist() != list(range(20))
    tg.manual_seed(5)
    q = tg.randperm(20)
    tg.manual_seed(5)
    assert tg.randperm(20).tolist() == q.tolist()
    assert tg.randint(0, 2, (3,), dtype=tg.float32).dtype == tg.float32
    with pytest.raises(ValueError, match="smaller than high"):
        tg.randint(5, 5, (2,))
    with pytest.raises(TypeError, match="size"):
        tg.randint(5)


def test_like_creation(device):
    x = tg.zeros(2, 3, dtype=tg.float64, device=device)
    assert tg.full_like(x, 4).tolist() == [[4.0] * 3] * 2 and tg.full_like(x, 4).dtype == x.dtype
    r = tg.rand_like(x)
    assert r.shape == x.shape and r.dtype == tg.float64
    assert 0 <= r.numpy().min() and r.numpy().max() < 1
    assert tg.randn_like(x, dtype=tg.float32).dtype == tg.float32


# --------------------------------------------------------- grad mode, devices


def test_set_grad_enabled_as_function_context_and_decorator(device):
    x = tg.ones(2, requires_grad=True, device=device)
    try:
        tg.set_grad_enabled(False)  # a plain call switches at once, as torch's
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    assert tg.is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with tg.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()

    @tg.set_grad_enabled(False)
    def f():
        return tg.is_grad_enabled()

    assert tg.is_grad_enabled() and f() is False and tg.is_grad_enabled()


def test_inference_mode_is_no_grad(device):
    x = tg.ones(2, requires_grad=True, device=device)
    with tg.inference_mode():
        assert not (x * 2).requires_grad
    with tg.inference_mode(False):
        assert (x * 2).requires_grad

    @tg.inference_mode
    def f():
        return (x * 2).requires_grad

    assert f() is False and tg.is_grad_enabled()


def test_device_names_a_device_without_needing_it():
    assert tg.device("cpu") == "cpu" and tg.device("cpu").type == "cpu"
    cuda = tg.device("cuda")  # constructs without a GPU, as torch.device
    assert cuda.type == "cuda" and cuda.index is None
    assert tg.device("cuda:1").index == 1 and tg.device("cuda", 2) == "cuda:2"
    assert tg.device(0) == "cuda:0" and isinstance(tg.device(0), tg.Device)
    assert tg.zeros(2, device=tg.device("cpu")).device == "cpu"
    with pytest.raises(ValueError, match="tpu"):
        tg.device("tpu")
    with pytest.raises(ValueError, match="twice"):
        tg.device("cuda:0", 1)
    with pytest.raises(ValueError, match="invalid"):
        tg.device("cuda:x")


@pytest.mark.skipif(tg.cuda.is_available(), reason="needs a machine without CUDA")
def test_using_a_cuda_device_object_without_a_gpu_says_why():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tg.zeros(2, device=tg.device("cuda"))


# ------------------------------------------------------------------ on a GPU


@pytest.mark.gpu
def test_selection_ops_on_cuda_match_the_cpu():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5))
    index = rng.integers(0, 5, (3, 4))
    mask = a > 0
    ops = [
        lambda t, i, m: t.max(1).values, lambda t, i, m: t.sort(1, descending=True).values,
        lambda t, i, m: t.topk(2, 0).values, lambda t, i, m: t.gather(1, i),
        lambda t, i, m: t.scatter_add(1, i, t[:, :4] * 2), lambda t, i, m: t.scatter(1, i, 1.0),
        lambda t, i, m: t.masked_fill(m, 0.5), lambda t, i, m: t.norm(3, 1),
        lambda t, i, m: t.cumsum(0), lambda t, i, m: t.flip(0, 1), lambda t, i, m: t.repeat(2, 1),
        lambda t, i, m: t.chunk(2, 1)[1], lambda t, i, m: t.logsumexp(1),
    ]
    for op in ops:
        outs, grads = [], []
        for dev in ("cpu", "cuda"):
            t = tg.tensor(a, device=dev, requires_grad=True)
            out = op(t, tg.tensor(index, device=dev), tg.tensor(mask, device=dev))
            out.backward(tg.ones_like(out))
            outs.append(out.numpy())
            grads.append(t.grad.numpy())
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-10)
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-10)
    assert tg.randperm(5, device="cuda").device == "cuda:0"
    assert tg.randint(0, 3, (4,), device="cuda").device == "cuda:0"
