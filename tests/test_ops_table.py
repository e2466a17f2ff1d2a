"""One table of every Tensor op drives four checks:

- forward against a NumPy reference (float64);
- ``tg.gradcheck`` in float64 over hypothesis-drawn shapes, broadcasting patterns and
  parameters, with inputs kept away from kinks and ties;
- float32 in -> float32 out, and float32 gradients (Python scalars never upcast);
- CPU vs CUDA agreement of values and gradients (``@pytest.mark.gpu``).

Each ``OpCase`` says how to draw its inputs: a strategy of input shapes (one shape
per tensor input), a strategy of keyword parameters given those shapes (dims, indices,
exponents...), the input domain and the points to avoid.
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
from tensorgrad.testing import arrays, broadcastable_shapes, shapes

# --------------------------------------------------------------- shape strategies


def same_shapes(n: int = 1, **kw) -> st.SearchStrategy:
    return shapes(**kw).map(lambda s: [s] * n)


def broadcast_shapes(n: int = 2) -> st.SearchStrategy:
    return broadcastable_shapes(n=n, max_dims=3, max_side=3).map(list)


@st.composite
def matmul_shapes(draw):
    """1-D, 2-D and batched operands, batch dims broadcasting against each other."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm", "batched", "bv", "vb"]))
    ba, bb = draw(broadcastable_shapes(n=2, min_dims=1, max_dims=2, max_side=3))
    return {
        "vv": [(k,), (k,)], "mv": [(n, k), (k,)], "vm": [(k,), (k, m)],
        "mm": [(n, k), (k, m)], "batched": [ba + (n, k), bb + (k, m)],
        "bv": [ba + (n, k), (k,)], "vb": [(k,), bb + (k, m)],
    }[kind]


@st.composite
def linear_shapes(draw):
    lead = draw(shapes(min_dims=0, max_dims=2, max_side=3))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    with_bias = draw(st.booleans())
    return [lead + (n_in,), (n_out, n_in)] + ([(n_out,)] if with_bias else [])


@st.composite
def cat_shapes(draw):
    base = draw(shapes(min_dims=1, max_dims=3, max_side=3))
    dim = draw(st.integers(-len(base), len(base) - 1))
    count = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    out = []
    for n in sizes:
        s = list(base)
        s[dim] = n
        out.append(tuple(s))
    return out


# --------------------------------------------------------------- param strategies


def no_params(shapes_):
    return st.just({})


def dims_params(shapes_, with_unbiased=False):
    """``dim`` None, an int (negative too) or a tuple, and ``keepdim``."""
    nd = len(shapes_[0])
    axes = list(range(-nd, nd))
    dim = st.none() | (st.sampled_from(axes) if axes else st.none()) | st.lists(
        st.integers(0, max(nd - 1, 0)), unique=True, max_size=nd).map(tuple)
    params = {"dim": dim if nd else st.none(), "keepdim": st.booleans()}
    if with_unbiased:
        params["unbiased"] = st.booleans()
    return st.fixed_dictionaries(params)


def one_dim(shapes_):
    nd = len(shapes_[0])
    return st.fixed_dictionaries({"dim": st.integers(-nd, nd - 1)})


def _reduced_count(shape, dim) -> int:
    if dim is None:
        return int(np.prod(shape))
    dims = (dim,) if isinstance(dim, int) else dim
    return int(np.prod([shape[d] for d in dims]))


def well_separated(a: np.ndarray, gap: float = 1e-3) -> bool:
    """No two elements closer than ``gap``: max/min never flip under a finite difference."""
    v = np.sort(a.ravel())
    return v.size < 2 or bool(np.diff(v).min() > gap)


# --------------------------------------------------------------- NumPy references


def np_softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def np_log_softmax(x, dim):
    s = x - x.max(axis=dim, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=dim, keepdims=True))


def np_reduce(fn):
    def ref(x, dim=None, keepdim=False, **kw):
        # PyTorch's rule, not NumPy's: an empty tuple of dims reduces every dimension
        axis = dim if dim is None or isinstance(dim, int) else (tuple(dim) or None)
        return fn(x, axis=axis, keepdims=keepdim, **kw)

    return ref


def np_var(x, axis, keepdims, unbiased=True):
    return np.var(x, axis=axis, keepdims=keepdims, ddof=1 if unbiased else 0)


def np_std(x, axis, keepdims, unbiased=True):
    return np.std(x, axis=axis, keepdims=keepdims, ddof=1 if unbiased else 0)


# ------------------------------------------------------------------- indexing

MASKED = "mask"  # placeholder in an index for a boolean mask drawn with the input


def _index_cases():
    """Indices of a (4, 5, 3) tensor: basic, advanced with repeats, masks."""
    i = np.array
    return {
        "int": 1,
        "negative_int_and_step": (-1, slice(None, None, 2)),
        "slices_with_steps": (slice(1, 4, 2), slice(None, None, 3), slice(0, 2)),
        "none_and_ellipsis": (None, Ellipsis, 1),
        "ellipsis_then_slice": (Ellipsis, slice(0, 2)),
        "all_ints": (1, 2, 0),
        "int_array_repeated": i([0, 2, 0, 0]),
        "int_list_repeated": [3, 3, 1],
        "two_arrays_repeated": (i([0, 0, 2]), slice(None), i([1, 1, 2])),
        "array_2d_repeated": (slice(None), i([[4, 4], [0, 4]])),
        "negative_array": i([-1, -1, 0]),
        "mask_full": MASKED,
        "mask_first_dim": (MASKED,),
        "mask_then_slice": (Ellipsis, MASKED),
    }


INDEX_CASES = _index_cases()


@st.composite
def index_params(draw, shapes_):
    name = draw(st.sampled_from(sorted(INDEX_CASES)))
    index = INDEX_CASES[name]
    shape = shapes_[0]
    as_tensor = draw(st.booleans())  # integer arrays also given as tg tensors
    if name == "mask_full":
        index = draw(hnp.arrays(bool, shape))
    elif name == "mask_first_dim":
        index = (draw(hnp.arrays(bool, shape[:1])),)
    elif name == "mask_then_slice":
        index = (Ellipsis, draw(hnp.arrays(bool, shape[-1:])))
    return {"index": index, "as_tensor": as_tensor}


def tg_getitem(x, index, as_tensor):
    def conv(p):
        return tg.tensor(p, device=x.device) if as_tensor and isinstance(p, np.ndarray) else p

    index = tuple(conv(p) for p in index) if isinstance(index, tuple) else conv(index)
    return x[index]


# ------------------------------------------------------------------ the table


@dataclass
class OpCase:
    name: str
    fn: Callable  # tensorgrad: fn(*tensors, **params)
    ref: Callable | None  # NumPy: ref(*arrays, **params); None: no forward check here
    arity: int = 1
    domain: tuple = (-3.0, 3.0)  # element bounds, or one (lo, hi) per input
    avoid: tuple = ()  # non-differentiable points the inputs keep `margin` away from
    margin: float = 1e-2
    broadcast: bool = False
    shapes: Callable[[], st.SearchStrategy] | None = None
    params: Callable = no_params  # shapes -> strategy of keyword parameters
    valid: Callable | None = None  # (*arrays, **params) -> bool: skip ties etc.
    unique: bool = False
    kw: dict = field(default_factory=dict)

    def shape_strategy(self) -> st.SearchStrategy:
        if self.shapes is not None:
            return self.shapes()
        if self.broadcast:
            return broadcast_shapes(self.arity)
        return same_shapes(self.arity)

    def domain_of(self, i: int) -> tuple:
        return self.domain[i] if isinstance(self.domain[0], tuple) else self.domain


def _clamp_params(shapes_):
    return st.sampled_from([{"min": -1.0, "max": 1.5}, {"min": None, "max": 0.5},
                            {"min": -0.5, "max": None}])


def _reshape_params(shapes_):
    s = shapes_[0]
    n = int(np.prod(s))
    return st.sampled_from([(-1,), tuple(reversed(s)), (1, *s), (n, 1), (-1, 1)]).map(
        lambda shape: {"shape": shape})


def _transpose_params(shapes_):
    nd = len(shapes_[0])
    return st.fixed_dictionaries({"d0": st.integers(-nd, nd - 1), "d1": st.integers(-nd, nd - 1)})


def _permute_params(shapes_):
    return st.permutations(list(range(len(shapes_[0])))).map(lambda p: {"dims": tuple(p)})


@st.composite
def _flatten_params(draw, shapes_):
    nd = len(shapes_[0])
    s = draw(st.integers(0, nd - 1))
    e = draw(st.integers(s, nd - 1))
    neg = draw(st.booleans())
    return {"start_dim": s, "end_dim": e - nd if neg else e}


def np_flatten(x, start_dim, end_dim):
    end = end_dim % x.ndim
    return x.reshape(x.shape[:start_dim] + (-1,) + x.shape[end + 1:])


def _squeeze_params(shapes_):
    nd = len(shapes_[0])
    return st.one_of(st.just({"dim": None}), st.integers(-nd, nd - 1).map(lambda d: {"dim": d})
                     if nd else st.just({"dim": None}))


def np_squeeze(x, dim):
    if dim is None:
        return np.squeeze(x)
    return np.squeeze(x, dim) if x.shape[dim] == 1 else x


def _unsqueeze_params(shapes_):
    nd = len(shapes_[0])
    return st.integers(-nd - 1, nd).map(lambda d: {"dim": d})


@st.composite
def _expand_params(draw, shapes_):
    s = shapes_[0]
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    sizes = tuple(draw(st.integers(1, 3)) if n == 1 else draw(st.sampled_from([n, -1]))
                  for n in s)
    return {"sizes": lead + sizes}


def np_expand(x, sizes):
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return np.broadcast_to(x, shape)


@st.composite
def _stack_params(draw, shapes_):
    nd = len(shapes_[0]) + 1
    return {"dim": draw(st.integers(-nd, nd - 1))}


@st.composite
def _stack_shapes(draw):
    s = draw(shapes(min_dims=0, max_dims=3, max_side=3))
    return [s] * draw(st.integers(1, 3))


@st.composite
def _where_params(draw, shapes_):
    out = np.broadcast_shapes(*shapes_)
    cshape = draw(st.sampled_from([out, out[1:] if out else out]))
    return {"cond": draw(hnp.arrays(bool, cshape))}


def _cat_dim(shapes_):
    # the dim along which the drawn shapes differ (any dim when they agree)
    nd = len(shapes_[0])
    differ = [d for d in range(nd) if len({s[d] for s in shapes_}) > 1]
    return st.sampled_from(differ or list(range(-nd, nd))).map(lambda d: {"dim": d})


def _pow_scalar_params(shapes_):
    return st.sampled_from([2, 3, -1, 0.5, -1.5, 2.5, 0]).map(lambda p: {"p": p})


def _dropout_params(shapes_):
    return st.sampled_from([0.2, 0.5, 0.8]).map(lambda p: {"p": p})


def tg_dropout(x, p):
    tg.manual_seed(1234)  # the same mask on every call: finite differences see one function
    return F.dropout(x, p)


def python_scalars(x):
    # every arithmetic operator with a Python scalar on either side
    return ((2 - x) * 1.5 / 3.0 + 0.5 - x / 4 + 2.0 ** x) ** 2 + 1 / (x * x + 1) + (-x) ** 3


def np_python_scalars(x):
    return ((2 - x) * 1.5 / 3.0 + 0.5 - x / 4 + 2.0 ** x) ** 2 + 1 / (x * x + 1) + (-x) ** 3


def _sep_pair(x, y, **kw) -> bool:
    return bool(np.all(np.abs(np.subtract(x, y)) > 1e-3))


def _sep_reduce(x, dim=None, **kw) -> bool:
    return well_separated(x)


def _std_valid(x, dim=None, unbiased=True, **kw) -> bool:
    n = _reduced_count(x.shape, dim)
    if n - (1 if unbiased else 0) <= 0:
        return False
    axis = dim if dim is None or isinstance(dim, int) else tuple(dim)
    return bool(np.all(np.var(x, axis=axis) > 1e-2))


def _var_valid(x, dim=None, unbiased=True, **kw) -> bool:
    return _reduced_count(x.shape, dim) - (1 if unbiased else 0) > 0


MAX_MIN_SHAPES = lambda: same_shapes(1, min_dims=0, max_dims=3)  # noqa: E731


def int_dim_params(shapes_):
    """max/min: no dim (a tensor), or one int dim and keepdim ((values, indices))."""
    nd = len(shapes_[0])
    no_dim = st.just({"dim": None, "keepdim": False})
    if not nd:
        return no_dim
    return no_dim | st.fixed_dictionaries({"dim": st.integers(-nd, nd - 1),
                                           "keepdim": st.booleans()})


def tg_max_min(op):
    def fn(a, dim=None, keepdim=False):
        out = getattr(a, op)() if dim is None else getattr(a, op)(dim, keepdim)
        return out if dim is None else out.values  # the named tuple's differentiable part

    return fn


# ---------------------------------------- selection, rearrangement, more reductions


def _on(a, arr):
    """An index or mask array as a tensor on the input's device."""
    return tg.tensor(arr, device=a.device)


@st.composite
def _sort_params(draw, shapes_):
    s = shapes_[0]
    dim = draw(st.integers(-len(s), len(s) - 1))
    return {"dim": dim, "k": draw(st.integers(1, s[dim])), "flag": draw(st.booleans())}


def np_sort(a, dim, k, flag):
    out = np.sort(a, axis=dim)
    return np.flip(out, axis=dim) if flag else out


def np_topk(a, dim, k, flag):
    out = np.flip(np.sort(a, axis=dim), axis=dim) if flag else np.sort(a, axis=dim)
    return np.take(out, np.arange(k), axis=dim)


@st.composite
def _gather_params(draw, shapes_):
    """An index no larger than every input outside ``dim``, values in range along it."""
    s = shapes_[0]
    dim = draw(st.integers(-len(s), len(s) - 1))
    d = dim % len(s)
    # along dim: any length for gather (indices repeat); no longer than src for scatter_add
    along = 4 if len(shapes_) == 1 else shapes_[1][d]
    ishape = tuple(draw(st.integers(1, min(sh[i] for sh in shapes_))) if i != d
                   else draw(st.integers(1, along)) for i in range(len(s)))
    return {"dim": dim, "index": draw(arrays(ishape, np.int64, 0, s[d] - 1))}


def np_gather(a, dim, index):
    d = dim % a.ndim
    a = a[tuple(slice(0, n) if i != d else slice(None) for i, n in enumerate(index.shape))]
    return np.take_along_axis(a, index, axis=d)


def np_scatter_add(a, src, dim, index):
    d = dim % a.ndim
    grids = list(np.ogrid[tuple(slice(0, n) for n in index.shape)])
    grids[d] = index
    out = a.copy()
    np.add.at(out, tuple(grids), src[tuple(slice(0, n) for n in index.shape)])
    return out


@st.composite
def _mask_params(draw, shapes_):
    s = shapes_[0]
    mshape = s[draw(st.integers(0, len(s))):]
    return {"mask": draw(hnp.arrays(bool, mshape)), "value": draw(st.sampled_from([-1.0, 2.5]))}


@st.composite
def _norm_params(draw, shapes_):
    p = draw(st.sampled_from(["fro", 1, 2, 3, float("inf")]))
    return dict(draw(dims_params(shapes_)), p=p)


def np_norm(a, p, dim=None, keepdim=False):
    axis = dim if dim is None or isinstance(dim, int) else (tuple(dim) or None)
    p = 2 if p == "fro" else p
    if p == float("inf"):
        return np.abs(a).max(axis=axis, keepdims=keepdim)
    return (np.abs(a) ** p).sum(axis=axis, keepdims=keepdim) ** (1 / p)


def _norm_valid(a, p, **kw) -> bool:
    return p != float("inf") or well_separated(np.abs(a))


def _flip_params(shapes_):
    nd = len(shapes_[0])
    return st.lists(st.integers(-nd, nd - 1), unique_by=lambda d: d % nd, min_size=1).map(
        lambda dims: {"dims": tuple(dims)})


@st.composite
def _repeat_params(draw, shapes_):
    nd = len(shapes_[0])
    n = nd + draw(st.integers(0, 2))
    return {"sizes": tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))}


@st.composite
def _chunk_params(draw, shapes_):
    s = shapes_[0]
    dim = draw(st.integers(-len(s), len(s) - 1))
    return {"chunks": draw(st.integers(1, s[dim] + 1)), "dim": dim}


def tg_chunk(a, chunks, dim):
    # every piece, each scaled differently, glued back: a wrong piece shows in values
    return tg.cat([p * (k + 1) for k, p in enumerate(a.chunk(chunks, dim))], dim)


def np_chunk(a, chunks, dim):
    n = a.shape[dim]
    size = -(-n // chunks)
    pieces = np.split(a, list(range(size, n, size)), axis=dim)
    return np.concatenate([p * (k + 1) for k, p in enumerate(pieces)], axis=dim)


def _logsumexp_params(shapes_):
    nd = len(shapes_[0])
    return dims_params(shapes_).map(
        lambda p: dict(p, dim=tuple(range(nd)) if p["dim"] is None else p["dim"]))


def np_logsumexp(a, dim, keepdim):
    axis = dim if isinstance(dim, int) else (tuple(dim) or None)
    return np.log(np.exp(a).sum(axis=axis, keepdims=keepdim))

OPS = [
    # arithmetic, broadcasting
    OpCase("add", lambda a, b: a + b, np.add, arity=2, broadcast=True),
    OpCase("sub", lambda a, b: a - b, np.subtract, arity=2, broadcast=True),
    OpCase("mul", lambda a, b: a * b, np.multiply, arity=2, broadcast=True),
    OpCase("div", lambda a, b: a / b, np.divide, arity=2, broadcast=True, avoid=(0.0,),
           margin=0.3),
    OpCase("pow_tensor", lambda a, b: a**b, np.power, arity=2, broadcast=True,
           domain=((0.5, 3.0), (-2.0, 2.0))),
    OpCase("pow_scalar", lambda a, p: a**p, lambda a, p: np.power(a, float(p)),
           domain=(0.5, 3.0), params=_pow_scalar_params),
    OpCase("pow_int_negative_base", lambda a: a**3 + a**2, lambda a: a**3 + a**2),
    OpCase("neg", lambda a: -a, np.negative),
    OpCase("python_scalars", python_scalars, np_python_scalars),
    OpCase("matmul", lambda a, b: a @ b, np.matmul, arity=2, shapes=matmul_shapes),
    # unary
    OpCase("exp", tg.Tensor.exp, np.exp),
    OpCase("log", tg.Tensor.log, np.log, domain=(0.1, 5.0)),
    OpCase("sqrt", tg.Tensor.sqrt, np.sqrt, domain=(0.1, 5.0)),
    OpCase("abs", tg.Tensor.abs, np.abs, avoid=(0.0,)),
    OpCase("tanh", tg.Tensor.tanh, np.tanh),
    OpCase("sigmoid", tg.Tensor.sigmoid, lambda a: 1 / (1 + np.exp(-a)), domain=(-6.0, 6.0)),
    OpCase("relu", tg.Tensor.relu, lambda a: np.maximum(a, 0), avoid=(0.0,)),
    OpCase("clamp", lambda a, min, max: a.clamp(min=min, max=max),
           lambda a, min, max: np.clip(a, min, max), params=_clamp_params,
           avoid=(-1.0, 1.5, 0.5, -0.5)),
    OpCase("F.relu", F.relu, lambda a: np.maximum(a, 0), avoid=(0.0,)),
    OpCase("F.sigmoid", F.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    OpCase("F.tanh", F.tanh, np.tanh),
    # reductions
    OpCase("sum", lambda a, **p: a.sum(**p), np_reduce(np.sum), params=dims_params),
    OpCase("mean", lambda a, **p: a.mean(**p), np_reduce(np.mean), params=dims_params),
    OpCase("var", lambda a, **p: a.var(**p), np_reduce(np_var),
           params=lambda s: dims_params(s, True), valid=_var_valid),
    OpCase("std", lambda a, **p: a.std(**p), np_reduce(np_std),
           params=lambda s: dims_params(s, True), valid=_std_valid),
    OpCase("max", tg_max_min("max"), np_reduce(np.max), params=int_dim_params,
           valid=_sep_reduce, shapes=MAX_MIN_SHAPES),
    OpCase("min", tg_max_min("min"), np_reduce(np.min), params=int_dim_params,
           valid=_sep_reduce, shapes=MAX_MIN_SHAPES),
    OpCase("amax", lambda a, **p: a.amax(**p), np_reduce(np.max), params=dims_params,
           valid=_sep_reduce, shapes=MAX_MIN_SHAPES),
    OpCase("amin", lambda a, **p: a.amin(**p), np_reduce(np.min), params=dims_params,
           valid=_sep_reduce, shapes=MAX_MIN_SHAPES),
    OpCase("norm", lambda a, **p: a.norm(**p), np_norm, params=_norm_params,
           avoid=(0.0,), margin=0.1, valid=_norm_valid),
    OpCase("logsumexp", lambda a, **p: a.logsumexp(**p), np_logsumexp,
           params=_logsumexp_params, shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("cumsum", lambda a, dim: a.cumsum(dim), lambda a, dim: np.cumsum(a, axis=dim),
           params=one_dim, shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("softmax", lambda a, dim: a.softmax(dim), np_softmax, params=one_dim,
           shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("log_softmax", lambda a, dim: a.log_softmax(dim), np_log_softmax, params=one_dim,
           shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("F.softmax", lambda a, dim: F.softmax(a, dim), np_softmax, params=one_dim,
           shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("F.log_softmax", lambda a, dim: F.log_softmax(a, dim), np_log_softmax,
           params=one_dim, shapes=lambda: same_shapes(1, min_dims=1)),
    # shape
    OpCase("reshape", lambda a, shape: a.reshape(*shape), lambda a, shape: a.reshape(shape),
           params=_reshape_params),
    OpCase("view_tuple", lambda a, shape: a.view(shape), lambda a, shape: a.reshape(shape),
           params=_reshape_params),
    OpCase("transpose", lambda a, d0, d1: a.transpose(d0, d1),
           lambda a, d0, d1: np.swapaxes(a, d0, d1), params=_transpose_params,
           shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("permute", lambda a, dims: a.permute(*dims), lambda a, dims: a.transpose(dims),
           params=_permute_params),
    OpCase(".T", lambda a: a.T, np.transpose),
    OpCase("flatten", lambda a, **p: a.flatten(**p), np_flatten, params=_flatten_params,
           shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("squeeze", lambda a, dim: a.squeeze(dim), np_squeeze, params=_squeeze_params,
           shapes=lambda: same_shapes(1, max_side=2)),
    OpCase("unsqueeze", lambda a, dim: a.unsqueeze(dim), lambda a, dim: np.expand_dims(a, dim),
           params=_unsqueeze_params),
    OpCase("expand", lambda a, sizes: a.expand(*sizes), np_expand, params=_expand_params,
           shapes=lambda: same_shapes(1, max_side=2)),
    OpCase("cat", lambda *ts, dim: tg.cat(ts, dim=dim),
           lambda *xs, dim: np.concatenate(xs, axis=dim), shapes=cat_shapes, params=_cat_dim),
    OpCase("stack", lambda *ts, dim: tg.stack(list(ts), dim=dim),
           lambda *xs, dim: np.stack(xs, axis=dim), shapes=_stack_shapes, params=_stack_params),
    OpCase("where", lambda a, b, cond: tg.where(_on(a, cond), a, b),
           lambda a, b, cond: np.where(cond, a, b), arity=2, broadcast=True,
           params=_where_params),
    OpCase("maximum", tg.maximum, np.maximum, arity=2, broadcast=True, valid=_sep_pair),
    OpCase("minimum", tg.minimum, np.minimum, arity=2, broadcast=True, valid=_sep_pair),
    OpCase("getitem", tg_getitem, lambda a, index, as_tensor: a[index],
           shapes=lambda: st.just([(4, 5, 3)]), params=index_params),
    OpCase("F.linear", lambda x, w, b=None: F.linear(x, w, b),
           lambda x, w, b=None: x @ w.T + (0 if b is None else b), shapes=linear_shapes),
    OpCase("F.dropout", tg_dropout, None, params=_dropout_params),
    # selection and rearrangement
    OpCase("sort", lambda a, dim, k, flag: a.sort(dim, descending=flag).values, np_sort,
           params=_sort_params, valid=_sep_reduce, shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("topk", lambda a, dim, k, flag: a.topk(k, dim, largest=flag).values, np_topk,
           params=_sort_params, valid=_sep_reduce, shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("gather", lambda a, dim, index: a.gather(dim, _on(a, index)), np_gather,
           params=_gather_params, shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("scatter_add", lambda a, b, dim, index: a.scatter_add(dim, _on(a, index), b),
           np_scatter_add, arity=2, params=_gather_params,
           shapes=lambda: same_shapes(2, min_dims=1)),
    OpCase("masked_fill", lambda a, mask, value: a.masked_fill(_on(a, mask), value),
           lambda a, mask, value: np.where(mask, value, a), params=_mask_params,
           shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("flip", lambda a, dims: a.flip(dims), lambda a, dims: np.flip(a, dims),
           params=_flip_params, shapes=lambda: same_shapes(1, min_dims=1)),
    OpCase("repeat", lambda a, sizes: a.repeat(*sizes), lambda a, sizes: np.tile(a, sizes),
           params=_repeat_params, shapes=lambda: same_shapes(1, max_side=3)),
    OpCase("chunk", tg_chunk, np_chunk, params=_chunk_params,
           shapes=lambda: same_shapes(1, min_dims=1)),
]


def draw_case(case: OpCase, data, dtype=np.float64):
    """Draw (arrays, params) for one case."""
    shapes_ = data.draw(case.shape_strategy(), label="shapes")
    params = data.draw(case.params(shapes_), label="params")
    xs = []
    for i, s in enumerate(shapes_):
        lo, hi = case.domain_of(i)
        xs.append(data.draw(arrays(tuple(s), dtype, min_value=lo, max_value=hi,
                                   avoid=case.avoid, margin=case.margin, unique=case.unique),
                            label=f"input {i}"))
    if case.valid is not None:
        assume(case.valid(*xs, **params))
    return xs, params


def _ids(c):
    return c.name


@pytest.mark.parametrize("case", [c for c in OPS if c.ref is not None], ids=_ids)
@given(data=st.data())
def test_forward_matches_numpy(case, data, device):
    xs, params = draw_case(case, data)
    out = case.fn(*[tg.tensor(x, device=device) for x in xs], **params)
    expected = case.ref(*xs, **params)
    assert out.shape == np.shape(expected) and out.device == tg.tensor(0, device=device).device
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("case", OPS, ids=_ids)
@given(data=st.data())
def test_gradcheck(case, data, device):
    xs, params = draw_case(case, data)
    inputs = [tg.tensor(x, device=device, requires_grad=True) for x in xs]
    assert tg.gradcheck(lambda *ts: case.fn(*ts, **params), inputs)


@pytest.mark.parametrize("case", OPS, ids=_ids)
@settings(max_examples=3)
@given(data=st.data())
def test_gradgradcheck(case, data, device):
    """Every op of the table is twice differentiable: create_graph records its
    backward, and the second derivatives match finite differences of the first."""
    xs, params = draw_case(case, data)
    inputs = [tg.tensor(x, device=device, requires_grad=True) for x in xs]
    assert tg.gradgradcheck(lambda *ts: case.fn(*ts, **params), inputs)


@pytest.mark.parametrize("case", OPS, ids=_ids)
@given(data=st.data())
def test_float32_in_float32_out(case, data, device):
    xs, params = draw_case(case, data, dtype=np.float32)
    inputs = [tg.tensor(x, device=device, requires_grad=True) for x in xs]
    out = case.fn(*inputs, **params)
    assert out.dtype == tg.float32 and out.device == inputs[0].device
    assert out.data.dtype == np.float32
    assert tg.get_array_module(out.data) is tg.get_array_module(inputs[0].data)
    out.backward(tg.ones_like(out))
    for t in inputs:
        assert t.grad is not None and t.grad.dtype == tg.float32
        assert t.grad.shape == t.shape
    if case.ref is not None:  # float32 values are still right, to float32 precision
        expected = case.ref(*[x.astype(np.float64) for x in xs], **params)
        np.testing.assert_allclose(out.numpy(), expected, rtol=2e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("case", OPS, ids=_ids)
@given(data=st.data())
def test_cuda_matches_cpu(case, data):
    xs, params = draw_case(case, data)
    cpu = [tg.tensor(x, requires_grad=True) for x in xs]
    gpu = [tg.tensor(x, device="cuda", requires_grad=True) for x in xs]
    if case.name == "getitem" and params["as_tensor"]:
        params = dict(params, as_tensor=False)  # numpy indices are moved by the op
    out_cpu, out_gpu = case.fn(*cpu, **params), case.fn(*gpu, **params)
    assert out_gpu.device == "cuda:0"
    g = np.random.default_rng(0).standard_normal(out_cpu.shape)
    out_cpu.backward(tg.tensor(g))
    out_gpu.backward(tg.tensor(g, device="cuda"))
    if case.name != "F.dropout":  # the GPU generator draws a different mask
        np.testing.assert_allclose(out_gpu.numpy(), out_cpu.numpy(), rtol=1e-10, atol=1e-12)
        for c, d in zip(cpu, gpu):
            np.testing.assert_allclose(d.grad.numpy(), c.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_table_covers_every_op_of_the_spec():
    names = {c.name for c in OPS}
    spec = {"add", "sub", "mul", "div", "pow_tensor", "pow_scalar", "neg", "matmul", "exp",
            "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "clamp", "sum", "mean", "var",
            "std", "max", "min", "amax", "amin", "reshape", "transpose", "permute", ".T", "flatten",
            "squeeze", "unsqueeze", "expand", "softmax", "log_softmax", "cat", "stack",
            "where", "maximum", "minimum", "getitem", "F.linear", "F.dropout", "F.relu",
            "F.sigmoid", "F.tanh"}
    assert spec <= names, spec - names


# ------------------------------------------------ spot checks the table cannot express


@pytest.mark.parametrize("index", [np.array([0, 0, 0, 2]), [1, 1], (np.array([2, 2]),
                                                                      np.array([1, 1]))])
def test_getitem_gradient_accumulates_repeated_indices(index, device):
    x = tg.zeros(3, 4, dtype=tg.float64, requires_grad=True, device=device)
    x[index].sum().backward()  # host (NumPy) index arrays on any device
    expected = np.zeros((3, 4))
    np.add.at(expected, index if not isinstance(index, list) else np.array(index), 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    assert expected.max() >= 2  # the index really repeats


def test_host_indices_index_a_tensor_on_any_device_and_device_indices_only_their_own(device):
    """A NumPy index array, mask or CPU index tensor is moved to the tensor's device, as
    CuPy and PyTorch move it (not a mix of devices); a CUDA index for a CPU tensor is."""
    a = np.arange(12.0).reshape(4, 3)
    x = tg.tensor(a, device=device)
    rows, mask = np.array([3, 0, 3]), np.array([True, False, True, False])
    for index in (rows, mask, tg.tensor(rows), (rows, np.array([2, 1, 0])), (mask, 1)):
        expected = a[tuple(i.numpy() if isinstance(i, tg.Tensor) else i
                           for i in (index if isinstance(index, tuple) else (index,)))]
        got = x[index]
        assert got.device == x.device
        np.testing.assert_array_equal(got.numpy(), expected)
    y = x.clone()
    y[rows] = 0.0  # an in-place write through a host index
    assert y.numpy()[[0, 3]].sum() == 0 and y.numpy()[1].tolist() == [3.0, 4.0, 5.0]
    if x.device != "cpu":
        with pytest.raises(RuntimeError, match="cuda"):
            tg.tensor(a)[tg.tensor(rows, device=device)]


def test_log_softmax_and_softmax_are_stable_for_huge_logits():
    x = tg.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    y = x.log_softmax(1)
    assert np.isfinite(y.numpy()).all()
    np.testing.assert_allclose(y.numpy()[0], [0.0, -2e4, -1e4], rtol=1e-6)
    np.testing.assert_allclose(y.numpy()[1], np.full(3, -np.log(3)), rtol=1e-6)
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    s = x.softmax(1).numpy()
    np.testing.assert_allclose(s[0], [1.0, 0.0, 0.0], atol=1e-7)


def test_dropout_forward_keeps_or_scales_each_element():
    tg.manual_seed(0)
    x = tg.rand(200, 50) + 1.0  # no zeros, so a zero output means dropped
    p = 0.3
    y = F.dropout(x, p)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 0.02
    assert F.dropout(x, p, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0)
    with pytest.raises(ValueError, match="1.5"):
        F.dropout(x, 1.5)


def test_dropout_gradient_is_the_mask():
    tg.manual_seed(3)
    x = (tg.rand(64, 32, dtype=tg.float64) + 0.5).requires_grad_()
    p = 0.4
    y = F.dropout(x, p)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(tg.tensor(g))
    mask = (y.numpy() != 0) / (1 - p)
    np.testing.assert_allclose(x.grad.numpy(), g * mask, rtol=1e-12)


def test_dropout_is_reproducible_with_manual_seed():
    x = tg.ones(100)
    tg.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    tg.manual_seed(7)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, F.dropout(x, 0.5).numpy())


def test_max_ties_share_the_gradient():
    x = tg.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])
    x.grad = None
    x.amax(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    x.grad = None
    x.max(dim=1).values.sum().backward()  # with a dim: all to the first maximum (argmax)
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_relu_abs_clamp_gradient_at_the_kink_follows_pytorch():
    x = tg.tensor([0.0, -1.0, 1.0, 2.0], requires_grad=True)
    (x.relu() + x.abs() + x.clamp(min=-1.0, max=1.0)).sum().backward()
    # relu'(0) = 0, abs'(0) = 0; clamp passes the gradient at its bounds (inclusive)
    np.testing.assert_allclose(x.grad.numpy(), [0 + 0 + 1, 0 - 1 + 1, 1 + 1 + 1, 1 + 1 + 0])


def test_maximum_ties_split_the_gradient():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([1.0, 3.0], requires_grad=True)
    tg.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 1.0])


@pytest.mark.parametrize("op", ["sum", "mean", "var", "std", "amax", "amin"])
def test_axis_and_keepdims_are_aliases(op):
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4) ** 1.5)
    a = getattr(x, op)(dim=(0, 2), keepdim=True)
    b = getattr(x, op)(axis=(0, 2), keepdims=True)
    assert a.shape == (1, 3, 1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("op", ["max", "min"])
def test_axis_and_keepdims_are_aliases_for_max_min_with_a_dim(op):
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4) ** 1.5)
    a = getattr(x, op)(dim=2, keepdim=True)
    b = getattr(x, op)(axis=2, keepdims=True)
    assert a.values.shape == a.indices.shape == (2, 3, 1)
    np.testing.assert_array_equal(a.values.numpy(), b.values.numpy())
    np.testing.assert_array_equal(a.indices.numpy(), b.indices.numpy())


def test_argmax_argmin_have_no_gradient_and_int64():
    x = tg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], requires_grad=True)
    assert x.argmax().item() == 3 and x.argmin().item() == 4
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), [1, 0])
    np.testing.assert_array_equal(x.argmin(1, keepdim=True).numpy(), [[0], [1]])
    assert x.argmax(dim=0).dtype == tg.int64 and not x.argmax(dim=0).requires_grad


def test_comparisons_give_bool_without_grad():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for r, expected in [(x > 2, [0, 0, 1]), (x >= 2, [0, 1, 1]), (x < 2, [1, 0, 0]),
                        (x <= 2, [1, 1, 0]), (x == 2, [0, 1, 0]), (x != 2, [1, 0, 1])]:
        assert r.dtype == tg.bool and not r.requires_grad
        np.testing.assert_array_equal(r.numpy(), np.array(expected, bool))


@pytest.mark.parametrize("a_shape, b_shape",
                         [((2, 3), (4, 5)), ((3,), (4,)), ((2, 2, 3), (2, 4, 1))])
def test_matmul_error_names_both_shapes(a_shape, b_shape):
    with pytest.raises(ValueError) as e:
        tg.ones(*a_shape) @ tg.ones(*b_shape)
    assert str(a_shape) in str(e.value) and str(b_shape) in str(e.value)


def test_matmul_batch_mismatch_names_shapes():
    with pytest.raises(ValueError) as e:
        tg.ones(2, 3, 4) @ tg.ones(3, 4, 5)
    assert "(2, 3, 4)" in str(e.value) and "(3, 4, 5)" in str(e.value)


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b, tg.maximum,
                                lambda a, b: tg.where(tg.ones(3, dtype=tg.bool), a, b)])
def test_broadcast_error_names_both_shapes(op):
    with pytest.raises(ValueError) as e:
        op(tg.ones(2, 3), tg.ones(4, 1, 2))
    assert "(2, 3)" in str(e.value) and "(4, 1, 2)" in str(e.value)


def test_linear_errors_name_shapes():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4, 2\)"):
        F.linear(tg.ones(5, 3), tg.ones(4, 2))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        F.linear(tg.ones(5, 2), tg.ones(4, 2), tg.ones(3))


@pytest.mark.parametrize("bad", [
    lambda x: x.reshape(5, 5), lambda x: x.permute(0, 0, 1), lambda x: x.expand(3, 3, 4),
    lambda x: tg.cat([x, tg.ones(2, 2, 2)], dim=0),
    lambda x: tg.stack([x, tg.ones(2, 3, 3)]),
])
def test_shape_op_errors_are_value_errors(bad):
    with pytest.raises(ValueError):
        bad(tg.ones(2, 3, 4))


@pytest.mark.parametrize("bad", [lambda x: x.sum(dim=3), lambda x: x.unsqueeze(5),
                                 lambda x: x.permute(3, 1, 2),
                                 lambda x: x[5], lambda x: x[:, [0, 9]], lambda x: x.softmax(-4)])
def test_out_of_range_dims_and_indices_are_index_errors(bad):
    with pytest.raises(IndexError):
        bad(tg.ones(2, 3, 4))


def test_reductions_of_a_0d_tensor_accept_dim_0():
    x = tg.tensor(2.5, requires_grad=True)
    for op in ("sum", "mean", "amax", "amin"):
        assert getattr(x, op)(dim=0).item() == 2.5
    for op in ("max", "min"):  # (values, indices), as PyTorch's
        assert getattr(x, op)(dim=0).values.item() == 2.5
        assert getattr(x, op)(dim=-1).indices.item() == 0
    x.sum(0).backward()
    assert x.grad.item() == 1.0


def test_numpy_array_on_the_left_defers_to_the_tensor():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], dtype=np.float32) * x + np.float32(1)
    assert isinstance(y, tg.Tensor) and y.requires_grad
    np.testing.assert_allclose(y.numpy(), [4.0, 9.0])
