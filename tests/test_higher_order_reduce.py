"""Double backward through the reductions, the softmax family, selection by index and
the rearranging ops (``ops/reduce.py``, ``ops/select.py``, ``ops/rearrange.py``).

Each property draws float64 inputs of small hypothesis-drawn shapes, dims, keepdim and
indices, and checks with ``tg.gradgradcheck`` (second derivatives against finite
differences of the first derivatives, which are computed with ``create_graph=True``).
``check`` also compares those recorded first derivatives with the plain first-order
backward, whose own correctness ``tg.gradcheck`` tests in ``test_ops_table.py``.
max/min/sort/topk draw values at least 0.2 apart, so no finite-difference step
crosses a tie. softmax and log_softmax are checked to third order.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tensorgrad as tg
from tensorgrad.testing import arrays, shapes

EXAMPLES = settings(max_examples=6)


# ------------------------------------------------------------------ helpers


def small_shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 3):
    return shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side)


@st.composite
def spaced(draw, shape: tuple[int, ...], away_from_zero: bool = False) -> np.ndarray:
    """Float64 values at least 0.2 apart (a shuffled ramp plus a little noise); with
    ``away_from_zero``, their absolute values are too, and all are >= 0.25."""
    n = math.prod(shape)
    ramp = np.array(draw(st.permutations(range(n))), dtype=np.float64).reshape(shape)
    noise = draw(arrays(shape, min_value=-0.05, max_value=0.05))
    if not away_from_zero:
        return (ramp - (n - 1) / 2) * 0.3 + noise
    signs = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    return signs * (0.3 + 0.3 * ramp + noise)


def dims_of(shape: tuple[int, ...]):
    """What a reduction's ``dim`` can be: None, an int (negative too) or a tuple."""
    nd = len(shape)
    if nd == 0:
        return st.sampled_from([None, 0, -1, ()])
    axes = st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)
    return st.one_of(st.none(), st.integers(-nd, nd - 1), axes.map(tuple))


def one_dim(shape: tuple[int, ...]):
    nd = max(len(shape), 1)
    return st.integers(-nd, nd - 1)


def leaf(a: np.ndarray, device: str = "cpu") -> tg.Tensor:
    return tg.tensor(a, requires_grad=True, device=device)


def check(fn, *inputs: tg.Tensor) -> None:
    """gradgradcheck ``fn``; and its first derivatives recorded under create_graph
    equal the plain first-order backward's."""
    outs = fn(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    rng = np.random.default_rng(1)
    ws = [tg.tensor(rng.standard_normal(o.shape), device=o.device) for o in outs]
    loss = sum((o * w).sum() for o, w in zip(outs, ws))
    recorded = tg.autograd.grad(loss, inputs, create_graph=True, allow_unused=True)
    plain = tg.autograd.grad(loss, inputs, allow_unused=True)
    for r, p in zip(recorded, plain):
        assert (r is None) == (p is None)
        if r is not None:
            np.testing.assert_allclose(r.numpy(), p.numpy(), rtol=1e-12, atol=1e-12)
    assert tg.gradgradcheck(fn, inputs)


def first_derivatives(fn):
    """x -> d Σ fn(x)·w / dx, recorded: its gradgradcheck checks third derivatives."""
    def d(x):
        y = fn(x)
        w = tg.tensor(np.linspace(-1.0, 1.5, y.numel()).reshape(y.shape), device=y.device)
        return tg.autograd.grad((y * w).sum(), x, create_graph=True)

    return d


# ------------------------------------------------------------------ reductions


@EXAMPLES
@given(data=st.data())
def test_var_std(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim = data.draw(dims_of(shape), label="dim")
    keepdim, ddof = data.draw(st.booleans(), label="keepdim"), data.draw(st.sampled_from([0, 1]))
    axes = range(len(shape)) if dim is None or dim == () else (
        [dim] if isinstance(dim, int) else dim)
    assume(math.prod(shape[a] for a in axes if shape) - ddof > 0)
    x = leaf(data.draw(spaced(shape), label="x"), device=device)
    check(lambda a: a.var(dim, keepdim, correction=ddof), x)
    check(lambda a: a.std(dim, keepdim, correction=ddof), x)


@EXAMPLES
@given(data=st.data())
def test_amax_amin(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim, keepdim = data.draw(dims_of(shape), label="dim"), data.draw(st.booleans())
    x = leaf(data.draw(spaced(shape), label="x"), device=device)
    check(lambda a: tg.amax(a, dim, keepdim) * tg.amin(a, dim, keepdim), x)


@EXAMPLES
@given(data=st.data())
def test_max_min_with_and_without_dim(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim, keepdim = data.draw(one_dim(shape), label="dim"), data.draw(st.booleans())
    x = leaf(data.draw(spaced(shape), label="x"), device=device)
    check(lambda a: a.max() * a.min() + a.max() ** 2, x)

    def along_dim(a):
        top, bottom = a.max(dim, keepdim), a.min(dim, keepdim)
        assert not top.indices.requires_grad and not bottom.indices.requires_grad
        return top.values ** 2 * bottom.values

    check(along_dim, x)


@EXAMPLES
@given(data=st.data())
def test_norm(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim, keepdim = data.draw(dims_of(shape), label="dim"), data.draw(st.booleans())
    p = data.draw(st.sampled_from([2, "fro", 1, 3, 1.5, math.inf, -math.inf, 0]), label="p")
    x = leaf(data.draw(spaced(shape, away_from_zero=True), label="x"), device=device)
    # squared, so that even the piecewise-linear norms (p = 1, ±inf) have a second
    # derivative through x; p = 0 (a count) has none at all
    check(lambda a: a.norm(p, dim, keepdim) ** 2 + a.norm(p, dim, keepdim), x)


@EXAMPLES
@given(data=st.data())
def test_cumsum(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim = data.draw(one_dim(shape), label="dim")
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    check(lambda a: tg.cumsum(a, dim) ** 2, x)


@EXAMPLES
@given(data=st.data())
def test_logsumexp(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim, keepdim = data.draw(dims_of(shape), label="dim"), data.draw(st.booleans())
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    check(lambda a: tg.logsumexp(a, dim, keepdim), x)


@EXAMPLES
@given(data=st.data())
def test_softmax_log_softmax(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim = data.draw(one_dim(shape), label="dim")
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    check(lambda a: tg.softmax(a, dim), x)
    check(lambda a: tg.log_softmax(a, dim), x)


@settings(max_examples=4)
@given(data=st.data())
def test_softmax_log_softmax_third_order(data, device):
    shape = data.draw(small_shapes(min_dims=1, max_dims=2), label="shape")
    dim = data.draw(one_dim(shape), label="dim")
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    for fn in (lambda a: tg.softmax(a, dim), lambda a: tg.log_softmax(a, dim)):
        d = first_derivatives(fn)
        # the first derivative must keep a graph back to x (else there is nothing to check)
        assert d(x)[0].requires_grad
        assert tg.gradgradcheck(d, [x])


def test_softmax_second_derivative_is_the_closed_form(device):
    # s = softmax(x), f = s_0: ∂²f/∂x_j∂x_k = s_0 (δ0j - s_j)(δ0k - s_k) - s_0 s_j (δjk - s_k)
    x = leaf(np.array([0.3, -1.2, 0.8]), device=device)
    (g,) = tg.autograd.grad(tg.softmax(x, 0)[0], x, create_graph=True)
    hessian = np.stack([tg.autograd.grad(g[j], x, retain_graph=True)[0].numpy()
                        for j in range(3)])
    s = np.exp(x.numpy()) / np.exp(x.numpy()).sum()
    e0, eye = np.eye(3)[0], np.eye(3)
    expected = s[0] * (np.outer(e0 - s, e0 - s) - (eye - s[None, :]) * s[:, None])
    np.testing.assert_allclose(hessian, expected, rtol=1e-10, atol=1e-12)


def test_index_and_truth_results_carry_no_gradient(device):
    x = leaf(np.array([[0.5, -2.0, 1.5], [3.0, 0.25, -1.0]]), device=device)
    for out in (x.argmax(), x.argmin(1), tg.argsort(x, 1), x.all(), (x > 0).any(1)):
        assert not out.requires_grad and out.grad_fn is None
    # Σ (max along dim 1)³ through gather at argmax: d²/dx² = 6·max at the argmax only
    picked = tg.gather(x, 1, x.argmax(1, keepdim=True))
    (g,) = tg.autograd.grad((picked ** 3).sum(), x, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [[0.0, 0.0, 9.0], [18.0, 0.0, 0.0]])


# ------------------------------------------------------------------ selection


@st.composite
def index_for(draw, shape: tuple[int, ...], axis: int, size: int, distinct: bool):
    """An int64 index for gather/scatter along ``axis`` of a tensor of ``shape``: as many
    dims, no larger outside ``axis``; values in [0, size). ``distinct``: no position
    repeats along ``axis`` (scatter: the last write would win)."""
    ishape = tuple(draw(st.integers(1, size if distinct else 3)) if d == axis
                   else draw(st.integers(1, n)) for d, n in enumerate(shape))
    if distinct:
        cols = math.prod(ishape) // ishape[axis]
        picks = [draw(st.permutations(range(size)))[:ishape[axis]] for _ in range(cols)]
        moved = np.array(picks, dtype=np.int64).T  # (ishape[axis], cols)
        rest = ishape[:axis] + ishape[axis + 1:]
        return np.moveaxis(moved.reshape((ishape[axis], *rest)), 0, axis)
    return draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, size - 1)))


@EXAMPLES
@given(data=st.data())
def test_gather(data, device):
    shape = data.draw(small_shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    index = tg.tensor(data.draw(index_for(shape, axis, shape[axis], False), label="index"),
                      device=device)
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    check(lambda a: tg.gather(a, axis - len(shape), index) ** 2, x)


@EXAMPLES
@given(data=st.data())
def test_scatter_and_scatter_add(data, device):
    shape = data.draw(small_shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    distinct = index_for(shape, axis, shape[axis], True)
    index = tg.tensor(data.draw(distinct, label="index"), device=device)
    # src may be larger than index (only its leading block is read)
    src_shape = tuple(n + data.draw(st.integers(0, 1)) for n in index.shape)
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    src = leaf(data.draw(arrays(src_shape), label="src"), device=device)
    check(lambda a, s: tg.scatter(a, axis, index, s) ** 2, x, src)
    check(lambda a: tg.scatter(a, axis, index, value=1.5) ** 2, x)
    repeats = tg.tensor(data.draw(index_for(shape, axis, shape[axis], False), label="repeats"),
                        device=device)
    src = leaf(data.draw(arrays(repeats.shape), label="src_add"), device=device)
    check(lambda a, s: tg.scatter_add(a, axis, repeats, s) ** 2, x, src)


@EXAMPLES
@given(data=st.data())
def test_sort_topk(data, device):
    shape = data.draw(small_shapes(), label="shape")
    dim = data.draw(one_dim(shape), label="dim")
    descending = data.draw(st.booleans(), label="descending")
    n = shape[dim] if shape else 1
    k = data.draw(st.integers(1, n), label="k")
    x = leaf(data.draw(spaced(shape), label="x"), device=device)
    check(lambda a: tg.sort(a, dim, descending).values ** 2 * a, x)
    check(lambda a: tg.topk(a, k, dim, largest=descending).values ** 3, x)


@EXAMPLES
@given(data=st.data())
def test_masked_fill(data, device):
    shape = data.draw(small_shapes(), label="shape")
    mask = tg.tensor(data.draw(hnp.arrays(bool, shape[data.draw(st.integers(0, len(shape))):]),
                               label="mask"), device=device)
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    value = leaf(np.array(0.75), device=device)
    check(lambda a, v: tg.masked_fill(a, mask, v) ** 2, x, value)
    check(lambda a: tg.masked_fill(a, mask, -2.0) ** 2, x)


# ------------------------------------------------------------------ rearranging


@EXAMPLES
@given(data=st.data())
def test_flip(data, device):
    shape = data.draw(small_shapes(min_dims=1), label="shape")
    nd = len(shape)
    dims = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd,
                              unique_by=lambda d: d % nd), label="dims")
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    check(lambda a: tg.flip(a, tuple(dims)) * a, x)


@EXAMPLES
@given(data=st.data())
def test_repeat(data, device):
    shape = data.draw(small_shapes(max_dims=2), label="shape")
    extra = data.draw(st.integers(0, 1), label="extra")
    reps = data.draw(st.lists(st.integers(1, 2), min_size=len(shape) + extra,
                              max_size=len(shape) + extra), label="reps")
    assume(reps)
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    check(lambda a: a.repeat(*reps) ** 2, x)


@EXAMPLES
@given(data=st.data())
def test_split_chunk(data, device):
    shape = data.draw(small_shapes(min_dims=1, max_side=4), label="shape")
    dim = data.draw(one_dim(shape), label="dim")
    size = data.draw(st.integers(1, shape[dim]), label="size")
    x = leaf(data.draw(arrays(shape), label="x"), device=device)
    # every other piece only: the unused pieces' gradients are zeros, also when traced
    check(lambda a: tuple(p ** 2 for p in tg.split(a, size, dim)[::2]), x)
    check(lambda a: tuple(p ** 2 * p for p in a.chunk(size, dim)), x)
