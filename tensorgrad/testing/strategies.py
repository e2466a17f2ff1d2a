"""Hypothesis strategies for property-based tests of tensorgrad ops (yours and ours).

Built on ``hypothesis.extra.numpy``: draw shapes, arrays with bounded elements kept
away from the points where an op is not differentiable, tensors, and shape tuples
that broadcast together; then let ``check_gradients`` gradcheck a function on them.

A worked example, testing a custom op over random shapes and broadcasting::

    import numpy as np
    import tensorgrad as tg
    from hypothesis import given, strategies as st
    from tensorgrad.testing import broadcastable_shapes, check_gradients

    class SoftPlus(tg.Function):
        # y = log(1 + e^x);  dy/dx = sigmoid(x)
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.logaddexp(0, x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g / (1 + np.exp(-x))

    @given(st.data())
    def test_softplus_times_y(data):
        shape_x, shape_y = data.draw(broadcastable_shapes(n=2, max_dims=3))
        check_gradients(lambda x, y: SoftPlus.apply(x) * y, data, [shape_x, shape_y])

``check_gradients`` draws float64 tensors of the given shapes (elements in
[-3, 3] unless told otherwise, ``avoid`` keeps them away from kinks such as 0 for
``abs``) and runs ``tg.gradcheck``: the test fails with the input, the worst element
and the analytic and numeric values when the backward is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..gradcheck import gradcheck, gradgradcheck
from ..tensor import Tensor

__all__ = [
    "arrays",
    "assert_gradcheck",
    "assert_gradgradcheck",
    "broadcastable_shapes",
    "check_gradients",
    "check_second_gradients",
    "shapes",
    "strided_arrays",
    "tensors",
]


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
           max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes: ``min_dims..max_dims`` dimensions of ``min_side..max_side`` each."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(n: int = 2, min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
                         max_side: int = 4) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """``n`` shapes that broadcast together (NumPy's rules): size-1 dims, missing
    leading dims and scalars all occur.

    >>> broadcastable_shapes(n=2).example()      # doctest: +SKIP
    ((3, 1), (2, 1, 4))
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=n, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side,
    ).map(lambda b: b.input_shapes)


def _keep_away(values: np.ndarray, avoid: Sequence[float], margin: float) -> np.ndarray:
    """Push every element closer than ``margin`` to a point in ``avoid`` out to
    ``point ± margin`` (on its own side), so finite differences never straddle a kink."""
    values = values.copy()
    for point in avoid:
        near = np.abs(values - point) < margin
        side = np.where(values[near] >= point, 1.0, -1.0)
        values[near] = point + side * margin
    return values


def _representable(lo: float, hi: float, dtype: np.dtype) -> tuple[float, float]:
    """The bounds rounded inwards to values of ``dtype`` (0.1 is not a float32)."""
    lo_d, hi_d = dtype.type(lo), dtype.type(hi)
    if lo_d < lo:
        lo_d = np.nextafter(lo_d, dtype.type(np.inf))
    if hi_d > hi:
        hi_d = np.nextafter(hi_d, dtype.type(-np.inf))
    return float(lo_d), float(hi_d)


def arrays(shape: tuple[int, ...] | st.SearchStrategy | None = None, dtype=np.float64,
           min_value: float = -3.0, max_value: float = 3.0, avoid: Sequence[float] = (),
           margin: float = 1e-2, unique: bool = False) -> st.SearchStrategy[np.ndarray]:
    """NumPy arrays of ``dtype`` with elements in ``[min_value, max_value]``.

    ``shape`` is a tuple, a strategy of tuples, or None for ``shapes()``. ``avoid`` lists
    points (kinks such as 0 for relu) the elements keep at least ``margin`` away from;
    ``unique=True`` draws distinct elements (no ties for max/min/sort).
    Integer and bool dtypes are supported too (the bounds are then rounded).

    >>> arrays((2, 3), min_value=0.1, max_value=5.0).example()   # doctest: +SKIP
    """
    dtype = np.dtype(dtype)
    shape = shapes() if shape is None else shape
    if dtype.kind == "b":
        elements = st.booleans()
    elif dtype.kind in "iu":
        elements = st.integers(int(np.ceil(min_value)), int(np.floor(max_value)))
    else:
        lo, hi = _representable(min_value, max_value, dtype)
        elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                             width=8 * dtype.itemsize)
    strategy = hnp.arrays(dtype, shape, elements=elements, unique=unique)
    if avoid and dtype.kind == "f":
        strategy = strategy.map(lambda a: _keep_away(a, avoid, margin).astype(dtype))
        if unique:  # pushing values out to point ± margin can create ties again
            strategy = strategy.filter(lambda a: np.unique(a).size == a.size)
    return strategy


@st.composite
def strided_arrays(draw, shape: tuple[int, ...] | st.SearchStrategy | None = None,
                   dtype=np.float64, **kwargs) -> np.ndarray:
    """Non-contiguous arrays of ``shape`` (views of a bigger array: transposed, with a
    step, or reversed), to check that ops do not assume C order. ``kwargs`` as ``arrays``."""
    if shape is None:
        shape = draw(shapes(min_dims=1))
    elif not isinstance(shape, tuple):
        shape = draw(shape)
    kind = draw(st.sampled_from(["transposed", "stepped", "reversed"]))
    if kind == "transposed":
        base = draw(arrays(shape[::-1], dtype, **kwargs))
        view = base.transpose()
    elif kind == "stepped":
        base = draw(arrays((*shape[:-1], 2 * shape[-1]) if shape else (), dtype, **kwargs))
        view = base[..., ::2] if shape else base
    else:
        view = draw(arrays(shape, dtype, **kwargs))
        view = view[::-1] if shape else view
    assert view.shape == tuple(shape)
    return view


def tensors(shape: tuple[int, ...] | st.SearchStrategy | None = None, dtype=np.float64,
            requires_grad: bool = False, device: str = "cpu",
            **kwargs) -> st.SearchStrategy[Tensor]:
    """Tensors whose values come from ``arrays(shape, dtype, **kwargs)``.

    >>> tensors((3,), requires_grad=True, avoid=[0.0]).example()   # doctest: +SKIP
    """
    from ..tensor import tensor

    return arrays(shape, dtype, **kwargs).map(
        lambda a: tensor(a, device=device, requires_grad=requires_grad)
    )


def assert_gradcheck(fn: Callable, *inputs: Tensor, **tolerances) -> None:
    """``tg.gradcheck(fn, inputs)``, making sure every float input requires grad first.
    Raises ``tg.GradcheckError`` (an AssertionError) when a gradient is wrong."""
    for t in inputs:
        if isinstance(t, Tensor) and t.dtype.kind == "f" and not t.requires_grad:
            t.requires_grad_(True)
    gradcheck(fn, inputs, **tolerances)


def assert_gradgradcheck(fn: Callable, *inputs: Tensor, **tolerances) -> None:
    """``tg.gradgradcheck(fn, inputs)`` (second derivatives against finite differences
    of the first), making sure every float input requires grad first."""
    for t in inputs:
        if isinstance(t, Tensor) and t.dtype.kind == "f" and not t.requires_grad:
            t.requires_grad_(True)
    gradgradcheck(fn, inputs, **tolerances)


def _draw_inputs(data, shapes, min_value, max_value, avoid, margin, unique, device):
    return [
        data.draw(tensors(tuple(s), np.float64, requires_grad=True, device=device,
                          min_value=min_value, max_value=max_value, avoid=avoid,
                          margin=margin, unique=unique), label=f"input {i}")
        for i, s in enumerate(shapes)
    ]


def check_gradients(fn: Callable, data: st.DataObject,
                    shapes: Sequence[tuple[int, ...]],
                    min_value: float = -3.0, max_value: float = 3.0,
                    avoid: Sequence[float] = (), margin: float = 1e-2,
                    unique: bool = False, device: str = "cpu", **tolerances) -> bool:
    """Draw one float64 tensor per shape (with ``data.draw``; options as ``arrays``)
    and gradcheck ``fn`` on them. For use inside ``@given(st.data())`` tests."""
    inputs = _draw_inputs(data, shapes, min_value, max_value, avoid, margin, unique, device)
    return gradcheck(fn, inputs, **tolerances)


def check_second_gradients(fn: Callable, data: st.DataObject,
                           shapes: Sequence[tuple[int, ...]],
                           min_value: float = -3.0, max_value: float = 3.0,
                           avoid: Sequence[float] = (), margin: float = 1e-2,
                           unique: bool = False, device: str = "cpu", **tolerances) -> bool:
    """As ``check_gradients``, for second derivatives: draws the inputs and runs
    ``tg.gradgradcheck`` (which also checks the first derivatives create_graph records
    against plain backward's). Keep ``avoid`` away from kinks: a finite difference of
    a first derivative across one is meaningless."""
    inputs = _draw_inputs(data, shapes, min_value, max_value, avoid, margin, unique, device)
    return gradgradcheck(fn, inputs, **tolerances)
