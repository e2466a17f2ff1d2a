"""Traced arrays: how one backward formula also records a graph (``create_graph``).

Every op's backward is written once, on arrays, with the ``xp`` idiom::

    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * (1 - z * z)              # tanh

On a first-order pass ``g`` and ``z`` are NumPy/CuPy arrays and nothing is recorded.
With ``create_graph=True`` the engine hands the same code ``TracedArray``s instead:
NumPy-flavoured wrappers of Tensors whose every operation is a recorded tensor op.
The formula runs unchanged, and its result is a Tensor with a graph of its own, so
it can be differentiated again (to any order). ``get_array_module`` of a traced array
is ``traced_numpy``, the few NumPy functions backward formulas use, recorded.

Array code that writes in place (``gx[idx] = g``, ``xp.add.at(gx, idx, g)``,
``mask /= n``) becomes functional here: the wrapper is rebound to the new tensor.
Anything a backward needs that is not here raises, naming it: such a backward cannot
be recorded yet, and a wrong second derivative is never returned instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from .function import _tensor_type


def _ops():
    from .. import ops

    return ops


def unwrap(x: Any) -> Any:
    """A Tensor for a traced array; a constant Tensor for a raw array; scalars as they are."""
    Tensor = _tensor_type()
    if isinstance(x, TracedArray):
        return x.t
    if isinstance(x, (np.ndarray, Tensor)) or backend.is_cupy_array(x):
        return x if isinstance(x, Tensor) else Tensor._make(x, None)
    return x


def wrap(t: Any) -> TracedArray:
    return t if isinstance(t, TracedArray) else TracedArray(unwrap(t))


def apply(fn: type, *args: Any, **kwargs: Any) -> Any:
    """Run Function ``fn`` inside another op's backward (conv2d's input gradient is
    ``ConvTranspose2d``): recorded when the arguments are traced (create_graph), else
    just its forward on the raw arrays."""
    if any(isinstance(a, TracedArray) for a in args):
        return TracedArray(fn.apply(*(unwrap(a) for a in args), **kwargs))
    from .function import Context

    return fn.forward(Context((), False), *args, **kwargs)


class TracedArray:
    """A Tensor seen through NumPy's array API, for backward code under create_graph."""

    __slots__ = ("t",)
    __array_ufunc__ = None  # NumPy defers to our reflected operators (array * traced)

    def __init__(self, t: Any):
        self.t = t

    # ------------------------------------------------------------ attributes
    shape = property(lambda self: self.t.shape)
    dtype = property(lambda self: self.t.dtype)
    ndim = property(lambda self: self.t.ndim)
    size = property(lambda self: self.t.numel())
    base = None  # a traced array never shares a gradient buffer with anyone
    T = property(lambda self: TracedArray(self.t.T))

    def __repr__(self) -> str:
        return f"TracedArray({self.t!r})"

    def __len__(self) -> int:
        return len(self.t)

    # ------------------------------------------------------------ arithmetic
    def __add__(self, o):
        return TracedArray(self.t + unwrap(o))

    def __radd__(self, o):
        return TracedArray(unwrap(o) + self.t)

    def __sub__(self, o):
        return TracedArray(self.t - unwrap(o))

    def __rsub__(self, o):
        return TracedArray(unwrap(o) - self.t)

    def __mul__(self, o):
        return TracedArray(self.t * unwrap(o))

    def __rmul__(self, o):
        return TracedArray(unwrap(o) * self.t)

    def __truediv__(self, o):
        return TracedArray(self.t / unwrap(o))

    def __rtruediv__(self, o):
        return TracedArray(unwrap(o) / self.t)

    def __pow__(self, o):
        return TracedArray(self.t ** unwrap(o))

    def __rpow__(self, o):
        return TracedArray(unwrap(o) ** self.t)

    def __matmul__(self, o):
        return TracedArray(self.t @ unwrap(o))

    def __rmatmul__(self, o):
        return TracedArray(unwrap(o) @ self.t)

    def __neg__(self):
        return TracedArray(-self.t)

    def __abs__(self):
        return TracedArray(self.t.abs())

    # in-place array code becomes functional: the name is rebound to a new tensor
    def __iadd__(self, o):
        self.t = self.t + unwrap(o)
        return self

    def __isub__(self, o):
        self.t = self.t - unwrap(o)
        return self

    def __imul__(self, o):
        self.t = self.t * unwrap(o)
        return self

    def __itruediv__(self, o):
        self.t = self.t / unwrap(o)
        return self

    # comparisons and logic give constant masks (no gradient flows through them)
    def _const(self, fn, o=None):
        Tensor = _tensor_type()
        other = unwrap(o)
        other = other.data if isinstance(other, Tensor) else other
        return TracedArray(Tensor._make(fn(self.t.data, other), None))

    def __eq__(self, o):  # noqa: D105
        return self._const(lambda a, b: a == b, o)

    def __ne__(self, o):
        return self._const(lambda a, b: a != b, o)

    def __lt__(self, o):
        return self._const(lambda a, b: a < b, o)

    def __le__(self, o):
        return self._const(lambda a, b: a <= b, o)

    def __gt__(self, o):
        return self._const(lambda a, b: a > b, o)

    def __ge__(self, o):
        return self._const(lambda a, b: a >= b, o)

    def __and__(self, o):
        return self._const(lambda a, b: a & b, o)

    def __rand__(self, o):
        return self._const(lambda a, b: b & a, o)

    def __or__(self, o):
        return self._const(lambda a, b: a | b, o)

    def __invert__(self):
        return self._const(lambda a, b: ~a)

    __hash__ = None

    # ------------------------------------------------------------ indexing
    def __getitem__(self, index):
        return TracedArray(self.t[_raw_index(index)])

    def __setitem__(self, index, value):
        from ..ops.indexing import setitem

        self.t = setitem(self.t, _raw_index(index), unwrap(value))

    # ------------------------------------------------------------ NumPy methods
    def sum(self, axis=None, keepdims=False, dtype=None):
        out = self.t.sum(dim=axis, keepdim=keepdims)
        return TracedArray(out if dtype is None else out.to(dtype=dtype))

    def mean(self, axis=None, keepdims=False):
        return TracedArray(self.t.mean(dim=axis, keepdim=keepdims))

    def max(self, axis=None, keepdims=False):
        return TracedArray(_ops().amax(self.t, axis, keepdims))

    def min(self, axis=None, keepdims=False):
        return TracedArray(_ops().amin(self.t, axis, keepdims))

    def reshape(self, *shape):
        return TracedArray(self.t.reshape(*shape))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return TracedArray(self.t.permute(*(axes or reversed(range(self.ndim)))))

    def swapaxes(self, a, b):
        return TracedArray(self.t.transpose(a, b))

    def squeeze(self, axis=None):
        return TracedArray(self.t.squeeze(axis))

    def astype(self, dtype, copy=True):
        return TracedArray(self.t.to(dtype=dtype) if np.dtype(dtype) != self.dtype else self.t)

    def copy(self):
        # a new wrapper of the same tensor (tensors are never written in place), so that
        # the copy's functional writes (``gx[i] = 0`` rebinds gx.t) leave the original be
        return TracedArray(self.t)

    def __getattr__(self, name):
        raise NotImplementedError(
            f"a backward formula used the array method .{name}(), which create_graph "
            f"cannot record yet: this op's backward cannot be differentiated again"
        )


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw_index(i) for i in index)
    if isinstance(index, TracedArray):
        return index.t.data  # an index array is data, never differentiated
    return index


class _Add:
    """``xp.add.at(a, index, values)``: unbuffered scatter-add, recorded (its backward
    gathers ``values``' gradient back from the same positions)."""

    @staticmethod
    def at(a: TracedArray, index, values) -> None:
        from ..ops.indexing import index_add

        a.t = index_add(a.t, _raw_index(index), unwrap(values))


class _TracedNumPy:
    """``xp`` for traced arrays: the NumPy functions backward formulas use, recorded."""

    add = _Add()

    def __getattr__(self, name):
        value = getattr(np, name)  # dtypes and constants (xp.float32, xp.inf) pass through
        if callable(value) and not isinstance(value, type):
            raise NotImplementedError(
                f"a backward formula used xp.{name}, which create_graph cannot record "
                f"yet: this op's backward cannot be differentiated again"
            )
        return value

    # ------------------------------------------------------------ creation
    @staticmethod
    def _like(a, fill):
        Tensor = _tensor_type()
        raw = unwrap(a).data
        return TracedArray(Tensor._make(fill(backend.get_array_module(raw), raw), None))

    def zeros_like(self, a, dtype=None, shape=None):
        return self._like(a, lambda xp, r: xp.zeros_like(r, dtype=dtype, shape=shape))

    def ones_like(self, a, dtype=None):
        return self._like(a, lambda xp, r: xp.ones_like(r, dtype=dtype))

    def full_like(self, a, value, dtype=None):
        return self._like(a, lambda xp, r: xp.full_like(r, value, dtype=dtype))

    def asarray(self, a, dtype=None):
        if isinstance(a, TracedArray):
            return a if dtype is None else a.astype(dtype)
        return np.asarray(a, dtype=dtype)

    # ------------------------------------------------------------ math
    @staticmethod
    def where(cond, a, b):
        Tensor = _tensor_type()
        c = unwrap(cond)
        c = c.data if isinstance(c, Tensor) else c
        ref = a if isinstance(a, TracedArray) else b
        a, b = (x if isinstance(x, TracedArray) else _scalar_like(x, ref) for x in (a, b))
        return TracedArray(_ops().where(Tensor._make(c, None), a.t, b.t))

    @staticmethod
    def exp(a):
        return TracedArray(unwrap(a).exp())

    @staticmethod
    def log(a):
        return TracedArray(unwrap(a).log())

    @staticmethod
    def sqrt(a):
        return TracedArray(unwrap(a).sqrt())

    @staticmethod
    def tanh(a):
        return TracedArray(unwrap(a).tanh())

    @staticmethod
    def abs(a):
        return TracedArray(unwrap(a).abs())

    def sign(self, a):  # piecewise constant: its derivative is 0
        return self._like(a, lambda xp, r: xp.sign(r))

    def floor_divide(self, a, b):  # piecewise constant too
        Tensor = _tensor_type()
        b = unwrap(b)
        b = b.data if isinstance(b, Tensor) else b
        return self._like(a, lambda xp, r: xp.floor_divide(r, b))

    def isnan(self, a):
        return self._like(a, lambda xp, r: xp.isnan(r))

    def isfinite(self, a):
        return self._like(a, lambda xp, r: xp.isfinite(r))

    @staticmethod
    def maximum(a, b):
        return TracedArray(_ops().maximum(unwrap(a), unwrap(b)))

    @staticmethod
    def minimum(a, b):
        return TracedArray(_ops().minimum(unwrap(a), unwrap(b)))

    @staticmethod
    def clip(a, lo, hi):
        return TracedArray(unwrap(a).clamp(lo, hi))

    @staticmethod
    def multiply(a, b):
        return wrap(a) * b

    @staticmethod
    def matmul(a, b):
        return wrap(a) @ b

    @staticmethod
    def sum(a, axis=None, keepdims=False):
        return wrap(a).sum(axis=axis, keepdims=keepdims)

    # ------------------------------------------------------------ shapes
    @staticmethod
    def broadcast_to(a, shape):
        return TracedArray(unwrap(a).expand(*shape))

    @staticmethod
    def expand_dims(a, axis):
        t = unwrap(a)
        axes = sorted(a % (t.ndim + len(axis)) for a in axis) if isinstance(axis, tuple) else [
            axis % (t.ndim + 1)]
        shape = list(t.shape)
        for ax in axes:
            shape.insert(ax, 1)
        return TracedArray(t.reshape(*shape))

    @staticmethod
    def swapaxes(a, i, j):
        return wrap(a).swapaxes(i, j)

    @staticmethod
    def concatenate(arrays, axis=0):
        return TracedArray(_ops().cat([unwrap(a) for a in arrays], axis))

    @staticmethod
    def stack(arrays, axis=0):
        return TracedArray(_ops().stack([unwrap(a) for a in arrays], axis))

    @staticmethod
    def split(a, bounds, axis=0):
        t = unwrap(a)
        edges = [0, *bounds, t.shape[axis]]
        index = [slice(None)] * t.ndim
        parts = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            index[axis] = slice(lo, hi)
            parts.append(TracedArray(t[tuple(index)]))
        return parts

    @staticmethod
    def flip(a, axis=None):
        t = unwrap(a)
        axes = range(t.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
        return TracedArray(_ops().flip(t, tuple(axes)))

    @staticmethod
    def cumsum(a, axis):
        return TracedArray(_ops().cumsum(unwrap(a), axis))

    # ------------------------------------------------------------ along an axis
    @staticmethod
    def take_along_axis(a, indices, axis):
        from ..ops.select import along

        raw = _raw_index(indices)
        return wrap(a)[along(raw, axis % raw.ndim)]

    @staticmethod
    def put_along_axis(a: TracedArray, indices, values, axis) -> None:
        """Functional, like ``add.at``: ``a`` is rebound to the written copy (a recorded
        setitem, whose backward reads the gradient back at those positions)."""
        from ..ops.indexing import setitem
        from ..ops.select import along

        raw = _raw_index(indices)
        a.t = setitem(a.t, along(raw, axis % raw.ndim), unwrap(values))


def _scalar_like(x, ref: TracedArray) -> TracedArray:
    """A scalar (or raw array) operand of ``where`` as a constant traced array."""
    if isinstance(x, (int, float, np.generic)):
        return traced_numpy._like(ref, lambda xp, r: xp.full_like(r, x))
    return TracedArray(unwrap(x))


traced_numpy = _TracedNumPy()
backend.traced_module = (TracedArray, traced_numpy)
