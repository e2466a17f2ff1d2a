"""Double backward through every op: one table of ``OpCase``s, each checked with
``tg.gradgradcheck`` (second derivatives, float64, against finite differences of the
first derivatives computed with ``create_graph=True``) on hypothesis-drawn shapes,
broadcasting patterns, indices, paddings and masks.

Each ``OpCase`` says how to draw its inputs: a strategy of input shapes (one per tensor
input), a strategy of keyword parameters given those shapes, the input domain and the
points (kinks) the inputs keep away from. To add ops, append ``OpCase``s to ``OPS`` in a
section of their own, above the tests at the bottom of the file. Shapes stay tiny:
gradgradcheck perturbs every element of every input and upstream gradient.

Each case is also gradchecked, and the first derivatives that the recording backward
(create_graph) computes must equal the plain backward's: gradgradcheck alone would accept
a consistently wrong recorded first derivative. A few elementwise ops are checked to
third order (gradgradcheck of their recorded first derivatives).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tensorgrad as tg
import tensorgrad.functional as F
from tensorgrad.ops.indexing import index_add
from tensorgrad.ops.shape import ToCopy, fill
from tensorgrad.testing import arrays, broadcastable_shapes, shapes

# --------------------------------------------------------------- the table's rows


def same_shapes(n: int = 1, min_dims: int = 0, max_dims: int = 3, max_side: int = 3):
    return shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side).map(
        lambda s: [s] * n)


def broadcast_shapes(n: int = 2):
    return broadcastable_shapes(n=n, max_dims=3, max_side=3).map(list)


def no_params(shapes_):
    return st.just({})


@dataclass
class OpCase:
    name: str
    fn: Callable  # fn(*tensors, **params) -> Tensor (or a tuple of Tensors)
    shapes: Callable[[], st.SearchStrategy] = same_shapes  # -> strategy of [shape, ...]
    params: Callable = no_params  # shapes -> strategy of keyword parameters
    domain: tuple = (-2.0, 2.0)  # element bounds, or one (lo, hi) per input
    avoid: tuple = ()  # non-differentiable points the inputs keep `margin` away from
    margin: float = 5e-2
    valid: Callable | None = None  # (*arrays, **params) -> bool: skip ties etc.
    # shapes and params drawn together (when params fix the shapes, as an index does)
    joint: Callable[[], st.SearchStrategy] | None = None
    tolerances: dict = field(default_factory=dict)  # for gradcheck and gradgradcheck

    def domain_of(self, i: int) -> tuple:
        return self.domain[i] if isinstance(self.domain[0], tuple) else self.domain


def draw_case(case: OpCase, data) -> tuple[list[np.ndarray], dict]:
    """Draw (float64 arrays, params) for one case."""
    if case.joint is not None:
        shapes_, params = data.draw(case.joint(), label="shapes and params")
    else:
        shapes_ = data.draw(case.shapes(), label="shapes")
        params = data.draw(case.params(shapes_), label="params")
    xs = []
    for i, s in enumerate(shapes_):
        lo, hi = case.domain_of(i)
        xs.append(data.draw(arrays(tuple(s), np.float64, min_value=lo, max_value=hi,
                                   avoid=case.avoid, margin=case.margin), label=f"input {i}"))
    if case.valid is not None:
        assume(case.valid(*xs, **params))
    return xs, params


OPS: list[OpCase] = []

# --------------------------------------------------------------- elementwise


def apart(x, y, **kw) -> bool:
    """max/min: no tie within a finite-difference step."""
    return bool(np.all(np.abs(np.subtract(x, y)) > 1e-2))


def off_integer_quotients(x, y, **kw) -> bool:
    """remainder jumps where x/y is an integer: stay away from there."""
    q = np.divide(x, y)
    return bool(np.all(np.abs(q - np.round(q)) > 1e-2))


def _pow_scalar_params(shapes_):
    return st.sampled_from([0, 1, 2, 3, -1, 0.5, -1.5, 2.5]).map(lambda p: {"p": p})


def _clamp_params(shapes_):
    return st.sampled_from([{"min": -1.0, "max": 1.5}, {"min": None, "max": 0.5},
                            {"min": -0.5, "max": None}])


@st.composite
def _where_params(draw, shapes_):
    out = np.broadcast_shapes(*shapes_)
    cshape = draw(st.sampled_from([out, out[1:]]))
    return {"cond": draw(hnp.arrays(bool, cshape))}


POSITIVE = (0.3, 2.0)

OPS += [
    OpCase("add", lambda a, b: a + b, broadcast_shapes),
    OpCase("sub", lambda a, b: a - b, broadcast_shapes),
    OpCase("mul", lambda a, b: a * b, broadcast_shapes),
    OpCase("div", lambda a, b: a / b, broadcast_shapes, domain=((-2.0, 2.0), POSITIVE)),
    OpCase("div_negative", lambda a, b: a / b, broadcast_shapes,
           domain=((-2.0, 2.0), (-2.0, -0.3))),
    OpCase("pow_tensor", lambda a, b: a**b, broadcast_shapes,
           domain=((0.5, 2.0), (-2.0, 2.0))),
    OpCase("pow_scalar", lambda a, p: a**p, params=_pow_scalar_params, domain=(0.5, 2.0)),
    OpCase("pow_int_any_sign", lambda a: a**3 - a**2),
    OpCase("python_scalars", lambda a: (2 - a) * 1.5 / 3.0 + 1 / (a * a + 1) + 2.0**a),
    OpCase("neg", lambda a: -a),
    OpCase("exp", tg.Tensor.exp),
    OpCase("log", tg.Tensor.log, domain=POSITIVE),
    OpCase("sqrt", tg.Tensor.sqrt, domain=POSITIVE),
    OpCase("abs", tg.Tensor.abs, avoid=(0.0,)),
    OpCase("tanh", tg.Tensor.tanh),
    OpCase("sigmoid", tg.Tensor.sigmoid, domain=(-4.0, 4.0)),
    OpCase("relu", tg.Tensor.relu, avoid=(0.0,)),
    OpCase("clamp", lambda a, min, max: a.clamp(min=min, max=max), params=_clamp_params,
           avoid=(-1.0, 1.5, 0.5, -0.5)),
    OpCase("maximum", tg.maximum, broadcast_shapes, valid=apart),
    OpCase("minimum", tg.minimum, broadcast_shapes, valid=apart),
    OpCase("remainder", lambda a, b: a % b, broadcast_shapes,
           domain=((-3.0, 3.0), (0.5, 2.0)), valid=off_integer_quotients),
    OpCase("where", lambda a, b, cond: tg.where(tg.tensor(cond, device=a.device), a, b),
           broadcast_shapes,
           params=_where_params),
    # floor_divide is piecewise constant (no graph): it must leave the product alone
    OpCase("floor_divide_constant", lambda a: a * tg.ops.floor_divide(a.detach(), 0.7),
           valid=lambda a: bool(np.all(np.abs(a / 0.7 - np.round(a / 0.7)) > 1e-2))),
]

# --------------------------------------------------------------- matmul, linear


@st.composite
def matmul_shapes(draw):
    """1-D, 2-D and batched operands, batch dims broadcasting against each other."""
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "batched", "bm", "bv", "vb"]))
    ba, bb = draw(broadcastable_shapes(n=2, min_dims=1, max_dims=2, max_side=2))
    return {
        "vv": [(k,), (k,)], "mv": [(n, k), (k,)], "vm": [(k,), (k, m)],
        "mm": [(n, k), (k, m)], "batched": [ba + (n, k), bb + (k, m)],
        "bm": [ba + (n, k), (k, m)],  # one matrix for a batch: backward folds the batch
        "bv": [ba + (n, k), (k,)], "vb": [(k,), bb + (k, m)],
    }[kind]


@st.composite
def linear_shapes(draw):
    lead = draw(shapes(min_dims=0, max_dims=2, max_side=2))
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    with_bias = draw(st.booleans())
    return [lead + (n_in,), (n_out, n_in)] + ([(n_out,)] if with_bias else [])


OPS += [
    OpCase("matmul", lambda a, b: a @ b, matmul_shapes),
    OpCase("F.linear", lambda x, w, b=None: F.linear(x, w, b), linear_shapes),
]

# --------------------------------------------------------------- shape ops


def _reshape_params(shapes_):
    s = shapes_[0]
    n = int(np.prod(s))
    return st.sampled_from([(-1,), tuple(reversed(s)), (1, *s), (n, 1)]).map(
        lambda shape: {"shape": shape})


def _permute_params(shapes_):
    return st.permutations(list(range(len(shapes_[0])))).map(lambda p: {"dims": tuple(p)})


@st.composite
def _expand_params(draw, shapes_):
    s = shapes_[0]
    lead = tuple(draw(st.lists(st.integers(1, 2), max_size=1)))
    sizes = tuple(draw(st.integers(1, 3)) if n == 1 else draw(st.sampled_from([n, -1]))
                  for n in s)
    return {"sizes": lead + sizes}


@st.composite
def cat_shapes(draw):
    base = draw(shapes(min_dims=1, max_dims=3, max_side=2))
    dim = draw(st.integers(-len(base), len(base) - 1))
    sizes = draw(st.lists(st.integers(1, 2), min_size=1, max_size=3))
    return [tuple(n if i == dim % len(base) else b for i, b in enumerate(base))
            for n in sizes]


def _cat_dim(shapes_):
    nd = len(shapes_[0])
    differ = [d for d in range(nd) if len({s[d] for s in shapes_}) > 1]
    return st.sampled_from(differ or list(range(-nd, nd))).map(lambda d: {"dim": d})


@st.composite
def _stack_shapes(draw):
    s = draw(shapes(min_dims=0, max_dims=2, max_side=2))
    return [s] * draw(st.integers(1, 3))


def _stack_params(shapes_):
    nd = len(shapes_[0]) + 1
    return st.integers(-nd, nd - 1).map(lambda d: {"dim": d})


@st.composite
def fill_shapes(draw):
    """x and a value that broadcasts to x's shape (dropped leading dims, size-1 dims)."""
    s = draw(shapes(min_dims=0, max_dims=3, max_side=2))
    drop = draw(st.integers(0, len(s)))
    return [s, tuple(n if draw(st.booleans()) else 1 for n in s[drop:])]


def copy_into_clone(a, v):
    b = a.clone()
    b.copy_(v)  # in place on a clone, under create_graph too
    return b * a


OPS += [
    OpCase("reshape", lambda a, shape: a.reshape(*shape), params=_reshape_params),
    OpCase("permute", lambda a, dims: a.permute(*dims), params=_permute_params),
    OpCase("expand", lambda a, sizes: a.expand(*sizes), params=_expand_params),
    OpCase("cat", lambda *ts, dim: tg.cat(ts, dim=dim), cat_shapes, params=_cat_dim),
    OpCase("stack", lambda *ts, dim: tg.stack(list(ts), dim=dim), _stack_shapes,
           params=_stack_params),
    OpCase("ToCopy", lambda a: ToCopy.apply(a, device=a.device, dtype=tg.float64) * a),
    OpCase("clone", lambda a: a.clone() * a),
    OpCase("fill", fill, fill_shapes),
    OpCase("copy_", copy_into_clone, fill_shapes),
]

# --------------------------------------------------------------- indexing


@st.composite
def _basic_part(draw, n: int):
    kind = draw(st.sampled_from(["int", "slice", "full"]))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "slice":
        return slice(draw(st.integers(0, n - 1)), None, draw(st.sampled_from([1, 2, -1])))
    return slice(None)


@st.composite
def _index(draw, shape: tuple[int, ...], unique: bool = False):
    """An index of ``shape``: ints, slices with steps, None and Ellipsis; or integer
    arrays (one or two, broadcasting; repeated positions unless ``unique``); or a
    boolean mask over the leading dims."""
    kind = draw(st.sampled_from(["basic", "arrays", "mask"]))
    if kind == "mask":
        mask = draw(hnp.arrays(bool, shape[:draw(st.integers(1, len(shape)))]))
        return (mask,) if draw(st.booleans()) else (mask, Ellipsis)
    parts = [draw(_basic_part(n)) for n in shape[:draw(st.integers(1, len(shape)))]]
    if kind == "basic":
        if draw(st.booleans()):
            parts.insert(draw(st.integers(0, len(parts))), None)
    elif unique:  # one array of distinct positions: no element is written twice
        d = draw(st.integers(0, len(parts) - 1))
        n = shape[d]
        picks = draw(st.permutations(range(n)))[:draw(st.integers(1, n))]
        parts[d] = np.array([i - n if draw(st.booleans()) else i for i in picks])
    else:  # arrays of one shape, values free: positions repeat
        dims = draw(st.lists(st.integers(0, len(parts) - 1), min_size=1, max_size=2,
                             unique=True))
        ashape = draw(st.sampled_from([(1,), (3,), (2, 2)]))
        for d in dims:
            elements = st.integers(-shape[d], shape[d] - 1)
            parts[d] = draw(hnp.arrays(np.int64, ashape, elements=elements))
    if draw(st.booleans()):
        parts.append(Ellipsis)
    return tuple(parts)


def _getitem_params(shapes_):
    return _index(shapes_[0]).map(lambda index: {"index": index})


@st.composite
def _scatter_case(draw, unique: bool):
    """x's shape, an index and the value's shape: x[index]'s, or one broadcasting to it
    (for setitem: no position written twice, as the last write would win)."""
    s = draw(shapes(min_dims=1, max_dims=3, max_side=3))
    index = draw(_index(s, unique=unique))
    target = np.empty(s)[index].shape
    value = target[draw(st.integers(0, len(target))):] if unique else target
    return [s, value], {"index": index}


def setitem_on_clone(a, v, index):
    b = a.clone()
    b[index] = v  # in place on a clone, under create_graph too
    return b * a


OPS += [
    OpCase("getitem", lambda a, index: a[index], params=_getitem_params,
           shapes=lambda: same_shapes(1, min_dims=1, max_side=3)),
    OpCase("getitem_repeated", lambda a: a[np.array([0, 0, 2, 0]), 1:] * a[-1, [1, 1]].sum(),
           shapes=lambda: st.just([(3, 2)])),
    OpCase("setitem", setitem_on_clone, joint=lambda: _scatter_case(True)),
    OpCase("index_add", lambda a, v, index: index_add(a, index, v) * a,
           joint=lambda: _scatter_case(False)),
]

# --------------------------------------------------------------- pad, dropout


@st.composite
def _pad_params(draw, shapes_):
    """(left, right, top, bottom, ...) widths, negative ones cropping, and a value."""
    s = shapes_[0]
    k = draw(st.integers(1, len(s)))
    widths = []
    for n in reversed(s[len(s) - k:]):  # last dim first, as F.pad lists them
        before = draw(st.integers(-(n - 1), 2))
        after = draw(st.integers(-(n - 1 - max(-before, 0)), 2))
        widths += [before, after]
    return {"pad": tuple(widths), "value": draw(st.sampled_from([0.0, 1.5]))}


def dropout_fn(a, p, channels):
    tg.manual_seed(1234)  # the same mask on every call: finite differences see one function
    return (F.dropout2d(a, p) if channels else F.dropout(a, p)) * a


def _dropout_params(shapes_):
    return st.fixed_dictionaries({"p": st.sampled_from([0.2, 0.5, 0.8]),
                                  "channels": st.just(len(shapes_[0]) in (3, 4))
                                  | st.just(False)})


OPS += [
    OpCase("F.pad", lambda a, pad, value: F.pad(a, pad, value=value), params=_pad_params,
           shapes=lambda: same_shapes(1, min_dims=1, max_side=3)),
    OpCase("F.dropout", dropout_fn, params=_dropout_params,
           shapes=lambda: same_shapes(1, min_dims=1, max_dims=4)),
]

# ======================================================================= tests
# (tables above this line)


def _ids(c: OpCase) -> str:
    return c.name


@pytest.mark.parametrize("case", OPS, ids=_ids)
@settings(max_examples=10)
@given(data=st.data())
def test_gradgradcheck(case, data, device):
    xs, params = draw_case(case, data)
    inputs = [tg.tensor(x, requires_grad=True, device=device) for x in xs]
    fn = lambda *ts: case.fn(*ts, **params)  # noqa: E731
    # gradgradcheck differentiates the first derivatives that the recording backward
    # computes: that they are right is gradcheck's part and the comparison's below
    assert tg.gradcheck(fn, inputs, **case.tolerances)
    assert_recorded_backward_matches(fn, inputs)
    assert tg.gradgradcheck(fn, inputs, **case.tolerances)


def assert_recorded_backward_matches(fn: Callable, inputs: list) -> None:
    """The backward on traced arrays (create_graph) gives the raw backward's values."""
    y = fn(*inputs)
    w = tg.tensor(np.random.default_rng(0).standard_normal(y.shape), device=y.device)
    loss = (y * w).sum()
    plain = tg.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
    recorded = tg.autograd.grad(loss, inputs, create_graph=True, allow_unused=True)
    for i, (p, r) in enumerate(zip(plain, recorded)):
        assert (p is None) == (r is None), f"input {i}"
        if p is not None:
            assert r.dtype == p.dtype and r.shape == p.shape, f"input {i}"
            np.testing.assert_allclose(r.numpy(), p.numpy(), rtol=1e-12, atol=1e-12,
                                       err_msg=f"input {i}")


# ------------------------------------------------------------ third order


def first_derivatives(fn: Callable) -> Callable:
    """x -> d fn(x)·w / dx, recorded (create_graph): gradgradcheck of this is a check
    of fn's third derivatives."""
    def d(*xs):
        y = fn(*xs)
        w = tg.tensor(np.linspace(-1.0, 1.5, y.numel()).reshape(y.shape), device=y.device)
        return tg.autograd.grad((y * w).sum(), xs, create_graph=True)

    return d


THIRD_ORDER = [c for c in OPS if c.name in ("mul", "div", "pow_tensor", "pow_scalar", "exp",
                                            "log", "tanh", "sigmoid", "sqrt")]


@pytest.mark.parametrize("case", THIRD_ORDER, ids=_ids)
@settings(max_examples=5)
@given(data=st.data())
def test_third_order(case, data, device):
    xs, params = draw_case(case, data)
    inputs = [tg.tensor(x, requires_grad=True, device=device) for x in xs]
    fn = first_derivatives(lambda *ts: case.fn(*ts, **params))
    assert tg.gradgradcheck(fn, inputs, **case.tolerances)


def test_third_derivative_of_tanh_is_the_closed_form(device):
    x = tg.tensor(np.array([-1.2, 0.3, 2.0]), requires_grad=True, device=device)
    (g1,) = tg.autograd.grad(x.tanh().sum(), x, create_graph=True)
    (g2,) = tg.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = tg.autograd.grad(g2.sum(), x)
    t = np.tanh(x.numpy())
    np.testing.assert_allclose(g3.numpy(), -2 * (1 - t * t) * (1 - 3 * t * t), rtol=1e-12)


# ------------------------------------------------------------ spot checks


def test_second_derivative_through_a_float32_cast(device):
    # y = (float32(x))³: the casts are ToCopy both ways; d²y/dx² = 6x, in float32 precision
    x = tg.tensor(np.array([0.5, -1.25, 2.0]), requires_grad=True, device=device)
    (g,) = tg.autograd.grad((x.float() ** 3).sum(), x, create_graph=True)
    assert g.dtype == tg.float64 and g.grad_fn is not None
    (h,) = tg.autograd.grad(g.sum(), x)
    assert h.dtype == tg.float64
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2, rtol=1e-6)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy(), rtol=1e-6)


def test_index_add_accumulates_repeats_and_gathers_back(device):
    base = tg.tensor(np.zeros((3, 2)), requires_grad=True, device=device)
    values = tg.tensor(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), requires_grad=True,
                       device=device)
    out = index_add(base, np.array([0, 2, 0]), values)
    np.testing.assert_array_equal(out.numpy(), [[6.0, 8.0], [0.0, 0.0], [3.0, 4.0]])
    g = np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])
    out.backward(tg.tensor(g, device=device))
    np.testing.assert_array_equal(base.grad.numpy(), g)
    np.testing.assert_array_equal(values.grad.numpy(), g[[0, 2, 0]])


def test_getitem_second_derivative_accumulates_repeated_indices(device):
    # f = Σ x[i]³ over i = (0, 0, 2): d²f/dx² = 6 x · (count of i)
    x = tg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, device=device)
    (g,) = tg.autograd.grad((x[np.array([0, 0, 2])] ** 3).sum(), x, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy() * np.array([2, 0, 1]))


def test_dropout_second_derivative_uses_the_forward_mask(device):
    # d²/dx² Σ dropout(x)² = 2 mask²: the mask is a constant of the graph
    tg.manual_seed(5)
    x = tg.tensor(np.linspace(0.5, 2.0, 40), requires_grad=True, device=device)
    y = F.dropout(x, 0.5)
    mask = y.numpy() / x.numpy()
    (g,) = tg.autograd.grad((y * y).sum(), x, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 2 * mask**2)
    assert 0 < (mask == 0).sum() < 40  # some dropped, some kept


def test_second_derivative_through_a_device_move(device):
    # y = x · tanh(x moved to the CPU and back): on a GPU both moves are ToCopy nodes,
    # and d²y/dx² = 2(1 - t²) - 2x·t(1 - t²), t = tanh x
    x = tg.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True, device=device)
    y = x * x.cpu().tanh().to(device)
    (g,) = tg.autograd.grad(y.sum(), x, create_graph=True)
    assert g.device == x.device
    (h,) = tg.autograd.grad(g.sum(), x)
    t, v = np.tanh(x.numpy()), x.numpy()
    np.testing.assert_allclose(h.numpy(), 2 * (1 - t * t) - 2 * v * t * (1 - t * t),
                               rtol=1e-12)
